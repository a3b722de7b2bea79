"""Errors that mean "bad input or configuration" (exit code 2).

They carry the file and line at fault so an operator can go straight to it; the CLI prints
them as ``file:line: message`` and never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input or configuration, pinned to a file and (when known) a line."""

    def __init__(self, message: str, source: str | Path | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.source = str(source) if source is not None else None
        self.line = line

    def __str__(self) -> str:
        where = self.source or ""
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}" if where else self.message

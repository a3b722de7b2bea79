"""Reading the YAML files operators edit by hand: policies, column mappings, exemptions.

A file that cannot be read and a syntax error in any of them are named the same way: an
:class:`InputError` with the file and, where known, the line.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from nanbu_secops.errors import InputError


def read_text(path: Path) -> str:
    """The file's text (a UTF-8 BOM, as Windows editors write, is dropped)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", path) from None
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), path) from None


def yaml_error(exc: yaml.YAMLError, source: str | Path) -> InputError:
    """``malformed YAML: <problem>`` at the problem's line when PyYAML knows it."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        return InputError(f"malformed YAML: {problem}", source, mark.line + 1 if mark else None)
    return InputError(f"malformed YAML: {exc}", source)

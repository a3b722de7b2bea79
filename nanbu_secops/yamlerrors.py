"""One translation of PyYAML's errors into an :class:`InputError` at the offending line.

Policies, column mappings and exemption files are all YAML that operators edit by hand; a
syntax error in any of them must name the file and line the same way.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from nanbu_secops.errors import InputError


def yaml_error(exc: yaml.YAMLError, source: str | Path) -> InputError:
    """``malformed YAML: <problem>`` at the problem's line when PyYAML knows it."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        return InputError(f"malformed YAML: {problem}", source, mark.line + 1 if mark else None)
    return InputError(f"malformed YAML: {exc}", source)

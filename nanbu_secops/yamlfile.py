"""Reading the YAML files operators edit by hand: policies, column mappings, exemptions.

A file that cannot be read and a syntax error in any of them are named the same way: an
:class:`InputError` with the file and, where known, the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


NodePath = tuple[str | int, ...]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_with_lines(path: Path, *, allow_empty: bool = False) -> tuple[Any, dict[NodePath, int]]:
    """Parse one YAML document; return the data and the line of every node by its path (a
    mapping entry at its key's line, a list item at its first line), so errors found after
    parsing can still name the line. An empty document is an error unless ``allow_empty``
    (Ansible accepts empty group_vars files), and then the data is None."""
    return read_text_with_lines(read_text(path), path, allow_empty=allow_empty)


def read_text_with_lines(text: str, path: Path | str, *, allow_empty: bool = False) -> tuple[Any, dict[NodePath, int]]:
    """:func:`read_with_lines` of a text already read (standard input); ``path`` names it in errors."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None and not allow_empty:
            raise InputError("the file is empty", path)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise yaml_error(exc, path) from None
    finally:
        loader.dispose()
    lines: dict[NodePath, int] = {(): node.start_mark.line + 1 if node is not None else 1}
    if node is not None:
        _index(node, (), lines, path)
    return data, lines


def _index(node: yaml.Node, at: NodePath, lines: dict[NodePath, int], path: Path | str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise InputError(f"duplicate key {key!r}", path, key_node.start_mark.line + 1)
            seen.add(key)
            lines[(*at, key)] = key_node.start_mark.line + 1
            _index(value_node, (*at, key), lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*at, i)] = item.start_mark.line + 1
            _index(item, (*at, i), lines, path)

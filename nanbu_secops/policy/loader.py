"""Load and validate policy files, keeping line numbers for every error."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from nanbu_secops import checks
from nanbu_secops.errors import InputError
from nanbu_secops.policy.model import Control, Policy, PolicySet, Text
from nanbu_secops.yamlfile import read_with_lines

SCHEMA_VERSION = 1
INSTALLED_POLICY_DIR = Path("/etc/nanbu-secops/policies")
SOURCE_POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"

_WHOLE_VAR = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")
_ANY_VAR = re.compile(r"\$\{([^}]*)\}")

Path_ = tuple[str | int, ...]

# libyaml's parser when PyYAML was built with it: same nodes and marks, several times faster.


def default_policy_dir() -> Path:
    """Where policies are read from when ``--policy`` is not given.

    ``$NANBU_SECOPS_POLICY_DIR``, else the folder the deploy playbook writes on terminals, else
    the ``policies/`` folder of a source checkout.
    """
    env = os.environ.get("NANBU_SECOPS_POLICY_DIR")
    if env:
        return Path(env)
    return INSTALLED_POLICY_DIR if INSTALLED_POLICY_DIR.is_dir() else SOURCE_POLICY_DIR


def _schema() -> dict[str, Any]:
    text = resources.files("nanbu_secops").joinpath("schemas/policy.schema.json").read_text("utf-8")
    return json.loads(text)


def policy_files(path: Path) -> list[Path]:
    """The policy files at ``path``: the file itself, or a folder's ``*.yml``/``*.yaml`` sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such policy file or folder", path)
    files = sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
    if not files:
        raise InputError("folder holds no policy file (*.yml)", path)
    return files


def _line(lines: dict[Path_, int], at: Path_) -> int | None:
    """Line of the node at ``at``, or of its nearest ancestor that has one."""
    for cut in range(len(at), -1, -1):
        if at[:cut] in lines:
            return lines[at[:cut]]
    return None


def _where(at: Path_) -> str:
    text = ""
    for part in at:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _validate(instance: Any, schema: dict[str, Any], path: Path, lines: dict[Path_, int], base: Path_ = ()) -> None:
    """Raise the most relevant JSON Schema error, pinned to its line."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(instance))
    if error is None:
        return
    at = (*base, *error.absolute_path)
    message = error.message
    line = _line(lines, at)
    if error.validator == "additionalProperties":
        message = message.replace("Additional properties are not allowed", "unknown key(s)")
        unknown = [k for k in error.instance if k not in error.schema.get("properties", {})]
        line = _line(lines, (*at, unknown[0])) if unknown else line
    prefix = f"{_where(at)}: " if at else ""
    raise InputError(f"{prefix}{message}", path, line)


def _substitute(value: Any, variables: dict[str, Any], at: Path_, path: Path, lines: dict[Path_, int]) -> Any:
    """Replace ``${name}`` with a variable: the value itself when it is the whole string."""
    if isinstance(value, dict):
        return {k: _substitute(v, variables, (*at, k), path, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables, (*at, i), path, lines) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(name: str) -> Any:
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none defined"
            raise InputError(f"{_where(at)}: unknown variable ${{{name}}} (variables: {known})", path, _line(lines, at))
        return variables[name]

    whole = _WHOLE_VAR.fullmatch(value)
    if whole:
        return lookup(whole.group(1))

    def render(found: re.Match[str]) -> str:
        item = lookup(found.group(1))
        return ", ".join(map(str, item)) if isinstance(item, list) else str(item)

    return _ANY_VAR.sub(render, value)


def _load_file(path: Path, schema: dict[str, Any], registry: dict[str, checks.CheckSpec]) -> Policy:
    data, lines = read_with_lines(path)
    _validate(data, schema, path, lines)
    variables: dict[str, Any] = data.get("variables") or {}
    controls: list[Control] = []
    for i, raw in enumerate(data["controls"]):
        at: Path_ = ("controls", i)
        spec = registry.get(raw["check"])
        if spec is None:
            known = ", ".join(sorted(registry))
            raise InputError(f"{_where((*at, 'check'))}: unknown check {raw['check']!r} (known: {known})",
                             path, _line(lines, (*at, "check")))
        raw = _substitute(raw, variables, at, path, lines)
        params = raw.get("params") or {}
        _validate(params, dict(spec.params), path, lines, (*at, "params"))
        controls.append(Control(
            id=raw["id"], article=str(raw["article"]), title=Text(**raw["title"]), severity=raw["severity"],
            check=raw["check"], params=params, rationale=Text(**raw["rationale"]),
            remediation=Text(**raw["remediation"]), enabled=raw.get("enabled", True),
            source=f"{path}:{_line(lines, at)}",
        ))
    meta = data["policy"]
    variable_lines = {name: _line(lines, ("variables", name)) or 0 for name in variables}
    return Policy(meta["id"], meta["version"], Text(**meta["title"]), str(path), variables, variable_lines,
                  tuple(controls))


def load_policies(path: str | Path | None = None) -> PolicySet:
    """Load every policy at ``path`` (default: :func:`default_policy_dir`) and cross-check them."""
    schema = _schema()
    registry = checks.load_all()
    policies = [_load_file(f, schema, registry) for f in policy_files(Path(path) if path else default_policy_dir())]
    seen_ids: dict[str, str] = {}
    seen_controls: dict[str, str] = {}
    for policy in policies:
        if policy.id in seen_ids:
            raise InputError(f"duplicate policy id {policy.id!r} (also in {seen_ids[policy.id]})", policy.path)
        seen_ids[policy.id] = policy.path
        for control in policy.controls:
            if control.id in seen_controls:
                file, _, line = control.source.rpartition(":")
                raise InputError(f"duplicate control id {control.id!r} (first defined at {seen_controls[control.id]})",
                                 file, int(line))
            seen_controls[control.id] = control.source
    return PolicySet(tuple(policies))


def require_variables(policies: PolicySet, schema: dict[str, Any]) -> dict[str, Any]:
    """The variables a command beside ``check`` needs, validated against ``schema``.

    They come from the first policy that defines every required name; a wrong value is an
    InputError at that variable's line.
    """
    names = set(schema.get("required", []))
    try:
        variables, policy = policies.variables(names)
    except LookupError:
        files = ", ".join(p.path for p in policies.policies)
        raise InputError(f"no policy defines the variables {', '.join(sorted(names))}", files) from None
    lines = {("variables", name): line for name, line in policy.variable_lines.items()}
    picked = {name: variables[name] for name in schema.get("properties", {}) if name in variables}
    _validate(picked, schema, Path(policy.path), lines, ("variables",))
    return picked

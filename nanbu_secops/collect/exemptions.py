"""Exemptions of service accounts from account controls: /etc/nanbu-secops/exemptions.yml.

A backup account nobody logs in to interactively is "dormant" by design. Rather than weaken the
control, the terminal's administrators list such accounts with a named owner, a reason and an
expiry date, so every exemption is accountable and lapses unless renewed::

    exemptions:
      - account: backup
        controls: [NS26-ACCT-010]   # optional; absent = every account control (NS26-ACCT-*)
        owner: 张伟 (信息股)
        reason: 夜间备份服务账号
        expires: 2027-03-31

An exemption file that cannot be read exactly as written is an error, never "no exemption":
a typo must not silently withdraw (or grant) an exemption without anyone noticing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import yaml

from nanbu_secops.collect import CollectError, Target, collector
from nanbu_secops.yamlfile import yaml_error

EXEMPTIONS = "/etc/nanbu-secops/exemptions.yml"
FIELDS = frozenset({"account", "controls", "owner", "reason", "expires"})
REQUIRED = ("account", "owner", "reason", "expires")
CONTROL_ID = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)+")
ACCOUNT_CONTROL = re.compile(r"[A-Z0-9]+-ACCT-")  # what an entry without `controls` covers


@dataclass(frozen=True)
class Exemption:
    account: str
    controls: tuple[str, ...] | None  # None: every account control
    owner: str
    reason: str
    expires: dt.date  # valid through this day, county time
    line: int  # of the entry in the file, for the evidence

    def covers(self, control_id: str) -> bool:
        if self.controls is None:
            return ACCOUNT_CONTROL.match(control_id) is not None
        return control_id in self.controls


@dataclass(frozen=True)
class Exemptions:
    entries: list[Exemption]
    source: str | None  # the file read; None when the target has none

    def applies(self, account: str, control_id: str, as_of: dt.date) -> Exemption | None:
        """The exemption of ``account`` from ``control_id`` still valid on ``as_of``, if any."""
        valid = [e for e in self.entries
                 if e.account == account and e.covers(control_id) and e.expires >= as_of]
        return max(valid, key=lambda e: e.expires, default=None)

    def expired(self, as_of: dt.date) -> list[Exemption]:
        """Entries past their date: still listed, no longer exempting anyone."""
        return [e for e in self.entries if e.expires < as_of]


class _Invalid(Exception):
    def __init__(self, node: yaml.Node, problem: str):
        super().__init__(problem)
        self.line = node.start_mark.line + 1


def _scalar(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise _Invalid(node, "expected a single value")
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, yaml.YAMLError) as exc:  # e.g. 2027-02-30 fails as a timestamp
        raise _Invalid(node, f"invalid value {node.value!r} ({exc})") from None


def _text(loader: yaml.SafeLoader, node: yaml.Node, key: str) -> str:
    value = _scalar(loader, node)
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(node, f"{key} must be non-empty text")
    return value.strip()


def _date(loader: yaml.SafeLoader, node: yaml.Node) -> dt.date:
    value = _scalar(loader, node)
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise _Invalid(node, f"expires {value!r} is not a date (YYYY-MM-DD)") from None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise _Invalid(node, f"expires {node.value!r} is not a date (YYYY-MM-DD)")
    return value


def _mapping(node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Keys of a mapping node; a duplicated key is an error (YAML loaders keep the last one)."""
    if not isinstance(node, yaml.MappingNode):
        raise _Invalid(node, f"{what} must be a mapping")
    keys: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise _Invalid(key, f"{what}: keys must be names")
        if key.value in keys:
            raise _Invalid(key, f"{what}: duplicate key {key.value!r}")
        keys[key.value] = (key, value)
    return keys


def _entry(loader: yaml.SafeLoader, node: yaml.Node) -> Exemption:
    fields = _mapping(node, "exemption")
    for name, (key, _) in fields.items():
        if name not in FIELDS:
            raise _Invalid(key, f"unknown key {name!r} (allowed: {', '.join(sorted(FIELDS))})")
    for name in REQUIRED:
        if name not in fields:
            raise _Invalid(node, f"exemption is missing {name!r}")
    controls: tuple[str, ...] | None = None
    if "controls" in fields:
        seq = fields["controls"][1]
        if not isinstance(seq, yaml.SequenceNode) or not seq.value:
            raise _Invalid(seq, "controls must be a non-empty list of control ids; "
                                "leave it out to exempt from every account control")
        ids = []
        for item in seq.value:
            value = _scalar(loader, item)
            if not isinstance(value, str) or not CONTROL_ID.fullmatch(value):
                raise _Invalid(item, f"{item.value!r} is not a control id such as NS26-ACCT-010")
            ids.append(value)
        controls = tuple(ids)
    return Exemption(
        account=_text(loader, fields["account"][1], "account"),
        controls=controls,
        owner=_text(loader, fields["owner"][1], "owner"),
        reason=_text(loader, fields["reason"][1], "reason"),
        expires=_date(loader, fields["expires"][1]),
        line=node.start_mark.line + 1,
    )


def parse_exemptions(text: str, path: str = EXEMPTIONS) -> Exemptions:
    """Parse the file; raise CollectError("path:line: problem") on anything malformed."""
    try:
        loader = yaml.SafeLoader(text)  # the reader rejects unprintable characters right here
    except yaml.YAMLError as exc:
        raise CollectError(f"{path}: not valid YAML: {exc}") from None
    try:
        root = loader.get_single_node()
        if root is None:
            return Exemptions([], path)  # an empty file exempts nobody
        top = _mapping(root, "the file")
        for name, (key, _) in top.items():
            if name != "exemptions":
                raise _Invalid(key, f"unknown key {name!r} (expected 'exemptions')")
        if "exemptions" not in top:
            return Exemptions([], path)
        items = top["exemptions"][1]
        if isinstance(items, yaml.ScalarNode) and _scalar(loader, items) is None:
            return Exemptions([], path)  # `exemptions:` with nothing listed
        if not isinstance(items, yaml.SequenceNode):
            raise _Invalid(items, "exemptions must be a list")
        return Exemptions([_entry(loader, item) for item in items.value], path)
    except _Invalid as exc:
        raise CollectError(f"{path}:{exc.line}: {exc}") from None
    except yaml.YAMLError as exc:
        raise CollectError(str(yaml_error(exc, path))) from None
    finally:
        loader.dispose()


@collector("exemptions", reads=("/etc/nanbu-secops/exemptions.yml",))
def collect(target: Target) -> Exemptions:
    if not target.fs.exists(EXEMPTIONS):
        return Exemptions([], None)
    return parse_exemptions(target.fs.read_text(EXEMPTIONS), EXEMPTIONS)

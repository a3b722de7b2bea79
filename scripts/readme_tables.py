"""Write the README's generated tables from the code that they describe, or check that they are current.

    python scripts/readme_tables.py            # rewrite the tables in README.md
    python scripts/readme_tables.py --check    # exit 1 naming each stale table (what tests/test_readme.py asks)

Each table sits between ``<!-- generated: NAME ... -->`` and ``<!-- end generated: NAME -->``:
``controls`` from the shipped policies (id, article, titles, severity) and the check registry (the facts
each check reads, and the sources their collectors declare), ``headers`` from the account, login and
roster readers' own header and value lists (nanbu_secops/accounts/sources.py). A hand-kept copy of
either would drift from what the code accepts.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from nanbu_secops import checks, collect  # noqa: E402  (the checkout's package, also when not installed)
from nanbu_secops.accounts import sources  # noqa: E402
from nanbu_secops.policy.loader import load_policies  # noqa: E402

README = PROJECT / "README.md"
SECTION = re.compile(r"(<!-- generated: (?P<name>[a-z]+) [^\n]*-->\n)(?P<body>.*?)(<!-- end generated: (?P=name) -->)",
                     re.S)


def _cell(text: str) -> str:
    """A Markdown table cell: pipes escaped, no line breaks."""
    return " ".join(text.split()).replace("|", "\\|")


def controls_table(policy_dir: Path = PROJECT / "policies") -> str:
    """One row per shipped control: id, article, zh and en title, severity, and what it reads."""
    registry = checks.load_all()
    collect.load_all()
    rows = ["| control | article | 标题 | title | severity | reads |", "|---|---|---|---|---|---|"]
    for control in load_policies(policy_dir).controls:
        reads = [source for fact in registry[control.check].facts for source in collect.READS[fact]]
        state = "" if control.enabled else " (disabled)"
        rows.append("| " + " | ".join(_cell(x) for x in (
            f"`{control.id}`{state}", control.article, control.title.zh, control.title.en, control.severity,
            "; ".join(dict.fromkeys(reads)))) + " |")
    return "\n".join(rows) + "\n"


def headers_table() -> str:
    """The accepted headers of each field of the account list, login log and roster, and the accepted values."""
    rows = ["| file | field | required | accepted headers (first the Chinese and the English name, then other spellings "
            "county exports use) |", "|---|---|---|---|"]
    for kind, fields in sources.FIELDS.items():
        for name, required, headers in fields:
            rows.append(f"| {kind} | `{name}` | {'yes' if required else 'no'} | "
                        + ", ".join(f"`{_cell(h)}`" for h in headers) + " |")
    values = {"accounts `status`": sources.STATUS, "roster `employment`": sources.EMPLOYMENT,
              "roster `establishment`": sources.ESTABLISHMENT}
    lines = ["", "Accepted values (any other is a row problem, never a guess):", ""]
    for what, table in values.items():
        by_meaning: dict[str, list[str]] = {}
        for text, meaning in table.items():
            by_meaning.setdefault(str(meaning), []).append(f"`{text}`")
        lines.append(f"- {what}: " + "; ".join(f"{meaning} = {' '.join(texts)}" for meaning, texts in by_meaning.items()))
    return "\n".join(rows + lines) + "\n"


TABLES = {"controls": controls_table, "headers": headers_table}


def render(text: str) -> tuple[str, list[str]]:
    """``text`` with every generated table replaced; the second item names the tables that changed."""
    changed: list[str] = []
    found: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"README.md: unknown generated table {name!r} (known: {', '.join(TABLES)})")
        found.add(name)
        body = TABLES[name]()
        if body != match["body"]:
            changed.append(name)
        return match[1] + body + match[4]

    new = SECTION.sub(replace, text)
    missing = set(TABLES) - found
    if missing:
        raise SystemExit(f"README.md: no generated section for {', '.join(sorted(missing))}")
    return new, changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a table is stale")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    new, changed = render(text)
    if args.check:
        for name in changed:
            print(f"README.md: the {name} table is stale; run: python scripts/readme_tables.py", file=sys.stderr)
        return 1 if changed else 0
    if changed:
        README.write_text(new, encoding="utf-8")
        print(f"README.md: rewrote {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

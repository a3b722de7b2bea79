"""Merging the proposals of every unit into one list per category for the municipal office.

Units on the same platform often ask for the same thing in slightly different words
("网站栏目增加政策解读" / "网站栏目增加 政策解读。"); the municipal office wants one item saying
how many units asked, not the same request five times. Titles are compared after normalising
away width, case, spaces and punctuation; two are near-duplicates when difflib's ratio reaches
the similarity threshold or one contains the other ("政策解读栏目" in "网站增加政策解读栏目").
Rewordings that change the order ("增加政策解读栏目") score lower and stay separate at the
default 0.8: a wrong merge hides a unit's request, a missed one only repeats it.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

from nanbu_secops import timeutil
from nanbu_secops.errors import InputError
from nanbu_secops.proposal.form import CATEGORIES, PRIORITIES, Proposal, read_form

_PRIORITY_RANK = {code: rank for rank, code in enumerate(PRIORITIES)}  # 0 = highest


@dataclass(frozen=True)
class Item:
    """One request after merging: what it is, who asked, how urgent at most."""

    category: str
    title: str  # the representative: the most common title, ties to the earliest submitted
    titles: tuple[str, ...]  # every distinct title merged, in submission order
    units: tuple[str, ...]  # distinct, in order of their first proposal (who asked first)
    priority: str  # the highest of the proposals
    proposals: tuple[Proposal, ...]  # in submission order

    @property
    def unit_count(self) -> int:
        return len(self.units)


@dataclass(frozen=True)
class Aggregate:
    categories: dict[str, tuple[Item, ...]]  # every category of CATEGORIES, in that order (maybe empty)
    similarity: float
    generated: dt.datetime  # county time

    @property
    def item_count(self) -> int:
        return sum(len(items) for items in self.categories.values())

    @property
    def proposal_count(self) -> int:
        return sum(len(item.proposals) for items in self.categories.values() for item in items)

    @property
    def units(self) -> tuple[str, ...]:
        """Every unit that sent a proposal, sorted."""
        return tuple(sorted({unit for items in self.categories.values() for item in items for unit in item.units}))


def normalise(title: str) -> str:
    """The title for comparison: NFKC (full-width to ASCII), lower case, no whitespace or punctuation.

    Punctuation is every Unicode P* character, which covers the Chinese ，。、；：“”（）《》 whether
    or not NFKC has mapped them to ASCII.
    """
    text = unicodedata.normalize("NFKC", title).lower()
    return "".join(ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


def similar(a: str, b: str, similarity: float) -> bool:
    """Near-duplicates, on normalised titles: ratio ≥ similarity, or one contains the other."""
    if not a or not b:  # a title of punctuation only contains nothing and should match nothing
        return False
    return a in b or b in a or SequenceMatcher(None, a, b).ratio() >= similarity


def _order(proposal: Proposal) -> tuple[dt.date, str, str, str]:
    return proposal.submitted, normalise(proposal.title), proposal.unit, proposal.source


def _clusters(proposals: list[Proposal], similarity: float) -> list[list[Proposal]]:
    """Greedy: each proposal (earliest first) joins the first cluster holding a near-duplicate title."""
    clusters: list[tuple[set[str], list[Proposal]]] = []
    for proposal in sorted(proposals, key=_order):
        key = normalise(proposal.title)
        for keys, members in clusters:
            if any(similar(key, other, similarity) for other in keys):
                keys.add(key)
                members.append(proposal)
                break
        else:
            clusters.append(({key}, [proposal]))
    return [members for _, members in clusters]


def _item(members: list[Proposal]) -> Item:
    """``members`` in submission order, so the first of equally common titles is the earliest."""
    counts = Counter(p.title for p in members)
    titles = tuple(dict.fromkeys(p.title for p in members))
    return Item(
        category=members[0].category,
        title=max(titles, key=counts.__getitem__),  # max keeps the first of equals
        titles=titles,
        units=tuple(dict.fromkeys(p.unit for p in members)),
        priority=min((p.priority for p in members), key=_PRIORITY_RANK.__getitem__),
        proposals=tuple(members),
    )


def aggregate(proposals: list[Proposal], similarity: float = 0.8) -> Aggregate:
    """Group by category and merge near-duplicate titles; the same input gives the same result.

    Items are sorted by how many units asked (most first), then priority, then title.
    """
    if not 0 < similarity <= 1:
        raise InputError(f"similarity must be above 0 and at most 1, not {similarity}")
    categories: dict[str, tuple[Item, ...]] = {}
    for category in CATEGORIES:
        items = [_item(c) for c in _clusters([p for p in proposals if p.category == category], similarity)]
        items.sort(key=lambda i: (-i.unit_count, _PRIORITY_RANK[i.priority], i.title))
        categories[category] = tuple(items)
    return Aggregate(categories, similarity, timeutil.now())


def load_dir(folder: Path) -> tuple[list[Proposal], list[InputError]]:
    """Every ``*.yml``/``*.yaml`` under ``folder`` (subfolders too, sorted): the good forms and the problems.

    The county office aggregates what units sent while faulty forms go back to them, so one bad
    form does not hold up the others. A missing folder, or one without any form, is an error.
    """
    if not folder.is_dir():
        raise InputError("no such folder", folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    if not files:
        raise InputError("folder holds no proposal form (*.yml, *.yaml)", folder)
    proposals: list[Proposal] = []
    errors: list[InputError] = []
    for path in files:
        proposal, problems = read_form(path)
        errors += problems
        if proposal is not None:
            proposals.append(proposal)
    return proposals, errors

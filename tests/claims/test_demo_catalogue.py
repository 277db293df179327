"""The audit rules on the project's demo catalogue (api/demo/catalogue.py) passed in as data.

This is the mapping the api performs; here it proves that no catalogue item is flagged under
its own name, nor under a trivially reformatted one, and that every item billed under its
neighbour's name (the most alike in the catalogue's order: 三人间 / 双人间 beds) is flagged.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from api.demo.catalogue import ITEMS
from claims import (
    Catalogue,
    CatalogueEntry,
    Citizen,
    ClaimLine,
    ItemClass,
    Severity,
    Sex,
    VisitType,
    audit,
    load_rules,
)
from tests.claims.factories import ISSUED, invoice

CATALOGUE = Catalogue(
    CatalogueEntry(
        item.code,
        item.name,
        ItemClass(item.item_class.value),
        item.unit_price,
        item.max_daily_milli,
        item.max_outpatient_milli,
        Sex(item.sex) if item.sex else None,
        item.min_age,
        item.max_age,
    )
    for item in ITEMS
)
RULES = load_rules()


def _reformatted(name: str) -> str:
    """What a billing system might print: full-width brackets and colon, spaces, a full stop."""
    wide = name.translate(str.maketrans("():", "（）："))
    return f" {wide[:2]} {wide[2:]}。"


def _hits(entry: CatalogueEntry, name: str) -> list[tuple[str, Severity]]:
    # Someone allowed every item: an adult of the item's sex (or a child for children's items).
    sex = entry.sex or Sex.F
    age = 5 if entry.max_age is not None else 40
    citizen = Citizen(sex, date(ISSUED.year - age, 1, 1))
    line = ClaimLine(
        entry.code, name, entry.item_class, entry.unit_price_fen, 1000, entry.unit_price_fen,
        "内科", ISSUED,
    )  # fmt: skip
    claim = invoice(
        line,
        visit=VisitType.INPATIENT,
        admitted_on=ISSUED.date() - timedelta(days=1),
        discharged_on=ISSUED.date(),
    )
    return [(h.code, h.severity) for h in audit(claim, citizen, CATALOGUE, [], 0, RULES)]


@pytest.mark.parametrize("entry", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_item_under_its_own_name_and_a_reformatted_one(entry: CatalogueEntry) -> None:
    assert _hits(entry, entry.name) == []
    assert _hits(entry, _reformatted(entry.name)) == []


def test_item_under_its_neighbours_name_is_swapped() -> None:
    entries = list(CATALOGUE.values())
    missed = [
        (entry.name, neighbour.name)
        for entry, neighbour in itertools.pairwise(entries)
        if ("item_swapped", Severity.BLOCK) not in _hits(entry, _reformatted(neighbour.name))
    ]
    assert missed == []

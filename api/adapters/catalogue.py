"""The audit catalogue (医保目录) read from a file: what the smart-audit rules check lines against.

The file is CSV, UTF-8, one entry per row under this header (see docs/catalogue.md); lines that
start with ``#`` before it or between rows are comments::

    code,name,item_class,unit_price_fen,max_daily_milli,max_outpatient_milli,sex,min_age,max_age

``item_class`` is ``A``, ``B``, ``C`` or ``self``; ``sex`` is ``F``, ``M`` or empty; the limits
and ages are integers or empty (no limit). ``ZEROCLAIM_AUDIT_CATALOGUE`` names the file; by
default the service reads ``audit_catalogue.csv`` shipped beside this module.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import claims

#: The catalogue shipped with the package (generated once from the demo catalogue).
DEFAULT_CATALOGUE = Path(__file__).with_name("audit_catalogue.csv")

COLUMNS = (
    "code",
    "name",
    "item_class",
    "unit_price_fen",
    "max_daily_milli",
    "max_outpatient_milli",
    "sex",
    "min_age",
    "max_age",
)


class CatalogueFileInvalid(Exception):
    """Raised when a catalogue file cannot be read as one: ``path``, the ``line`` (1-based,
    the header is line 1) and what is wrong."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


def _optional_int(value: str) -> int | None:
    return int(value) if value.strip() else None


def load_catalogue(path: Path = DEFAULT_CATALOGUE) -> claims.Catalogue:
    """The catalogue in ``path``; raises ``CatalogueFileInvalid`` (a wrong header, a bad value,
    a code given twice)."""
    numbered = [
        (n, text)
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if text.strip() and not text.startswith("#")
    ]
    if not numbered or tuple(next(csv.reader([numbered[0][1]]))) != COLUMNS:
        line = numbered[0][0] if numbered else 1
        raise CatalogueFileInvalid(path, line, f"the header must be {','.join(COLUMNS)}")
    entries: list[claims.CatalogueEntry] = []
    seen: set[str] = set()
    for line, text in numbered[1:]:
        (row,) = csv.reader([text])
        if len(row) != len(COLUMNS):
            raise CatalogueFileInvalid(path, line, f"{len(row)} fields, not {len(COLUMNS)}")
        values = dict(zip(COLUMNS, row, strict=True))
        if values["code"] in seen:
            raise CatalogueFileInvalid(path, line, f"code {values['code']} given twice")
        seen.add(values["code"])
        try:
            entries.append(
                claims.CatalogueEntry(
                    values["code"],
                    values["name"],
                    claims.ItemClass(values["item_class"]),
                    int(values["unit_price_fen"]),
                    _optional_int(values["max_daily_milli"]),
                    _optional_int(values["max_outpatient_milli"]),
                    claims.Sex(values["sex"]) if values["sex"] else None,
                    _optional_int(values["min_age"]),
                    _optional_int(values["max_age"]),
                )
            )
        except (ValueError, claims.ClaimInputInvalid) as exc:
            raise CatalogueFileInvalid(path, line, str(exc)) from None
    return claims.Catalogue(entries)


def write_catalogue(path: Path, entries: Iterable[claims.CatalogueEntry], header: str = "") -> None:
    """Writes ``entries`` in the format :func:`load_catalogue` reads, after ``header`` (each of
    its lines written as a ``#`` comment: what generated the file)."""

    def cell(value: object) -> str:
        return "" if value is None else str(value)

    with path.open("w", encoding="utf-8", newline="") as f:
        for comment in header.splitlines():
            f.write(f"# {comment}\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for e in entries:
            writer.writerow(
                [
                    e.code,
                    e.name,
                    e.item_class.value,
                    e.unit_price_fen,
                    cell(e.max_daily_milli),
                    cell(e.max_outpatient_milli),
                    cell(e.sex.value if e.sex is not None else None),
                    cell(e.min_age),
                    cell(e.max_age),
                ]
            )

"""The audit catalogue read from its file (docs/catalogue.md): the shipped file is the demo
catalogue, the documented example reads as documented, and a bad file says where it is bad."""

from __future__ import annotations

from pathlib import Path

import pytest

import claims
from api.adapters.catalogue import (
    DEFAULT_CATALOGUE,
    CatalogueFileInvalid,
    load_catalogue,
    write_catalogue,
)
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _demo_entries() -> list[claims.CatalogueEntry]:
    from api.demo.catalogue import CATALOGUE  # the shipped file was generated from it

    return [
        claims.CatalogueEntry(
            item.code,
            item.name,
            claims.ItemClass(item.item_class.value),
            item.unit_price,
            item.max_daily_milli,
            item.max_outpatient_milli,
            claims.Sex(item.sex) if item.sex else None,
            item.min_age,
            item.max_age,
        )
        for item in CATALOGUE.values()
    ]


def test_the_shipped_catalogue_is_the_demo_catalogue() -> None:
    assert list(load_catalogue(DEFAULT_CATALOGUE).values()) == _demo_entries()


def test_the_setting_names_the_file(tmp_path: Path) -> None:
    assert Settings().audit_catalogue_path == DEFAULT_CATALOGUE
    mine = tmp_path / "catalogue.csv"
    assert Settings(audit_catalogue=mine).audit_catalogue_path == mine


def test_the_documented_example_reads_as_documented(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    example = text.split("```csv\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.csv"
    path.write_text(example, encoding="utf-8")
    catalogue = load_catalogue(path)
    assert catalogue["F001102000010000"] == claims.CatalogueEntry(
        "F001102000010000", "普通门诊诊查费", claims.ItemClass.A, 1000, 1000, 1000
    )
    pill = catalogue["XG03DA04B001A002230866078"]
    assert (pill.item_class, pill.sex, pill.min_age, pill.max_age) == (
        claims.ItemClass.B,
        claims.Sex.F,
        14,
        60,
    )


def test_written_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "round.csv"
    write_catalogue(path, _demo_entries()[:20], "a header\nof two lines")
    assert path.read_text(encoding="utf-8").startswith("# a header\n# of two lines\ncode,")
    assert list(load_catalogue(path).values()) == _demo_entries()[:20]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("code,name\n", 1, "the header must be"),
        ("# note\n\ncode,name\n", 3, "the header must be"),
        (
            "code,name,item_class,unit_price_fen,max_daily_milli,max_outpatient_milli,sex,min_age,"
            "max_age\nF001,x,A,100,,,,\n",
            2,
            "8 fields, not 9",
        ),
        (
            "code,name,item_class,unit_price_fen,max_daily_milli,max_outpatient_milli,sex,min_age,"
            "max_age\nF001,x,D,100,,,,,\n",
            2,
            "'D' is not a valid ItemClass",
        ),
        (
            "code,name,item_class,unit_price_fen,max_daily_milli,max_outpatient_milli,sex,min_age,"
            "max_age\nF001,x,A,100,,,,,\nF001,y,A,100,,,,,\n",
            3,
            "code F001 given twice",
        ),
    ],
)
def test_a_bad_file_says_where(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueFileInvalid, match=problem) as raised:
        load_catalogue(path)
    assert raised.value.line == line

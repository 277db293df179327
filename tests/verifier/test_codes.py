"""National codes (verifier/codes.py): real-shaped examples of every family, wrong ones of each,
and reasons that say, in Chinese and English, what the code should look like."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.codes import (
    PROVINCES,
    bill_code_problem,
    check_code_problem,
    hospital_code_problem,
    icd10_problem,
    line_code_family,
    line_code_problem,
    normalise_check_code,
    same_check_code,
)

Judge = Callable[[str], "str | None"]


def assert_bilingual(reason: str | None, *wanted: str) -> None:
    """One Chinese half and one English half, each saying what is wanted."""
    assert reason is not None
    assert reason.count("；") == 1, reason
    zh, en = reason.split("；")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), zh
    assert en.isascii() and en, en
    for word in wanted:
        assert word in reason, (word, reason)


# -- line codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("XR05CBA198A001010100863", "western"),  # the example, X + 22
        ("XB05XAL211B002020400318", "western"),  # 氯化钠注射液, from a HIS settlement message
        ("XJ01DET084B001010101455", "western"),
        ("ZG02AAG0401010102831", "patent"),  # Z + 19, 归芪活血胶囊's class and name
        ("ZA04BAA0046010100456", "patent"),
        ("001102000000100", "service"),  # general outpatient consultation
        ("003401000230600", "service"),
        ("C0311120080000100123", "consumable"),  # C + 6 category + 3 + 5 + 5
        ("C1402031470000190567", "consumable"),
    ],
)
def test_good_line_codes_and_their_family(code: str, family: str) -> None:
    assert line_code_problem(code) is None
    assert line_code_family(code) == family


@pytest.mark.parametrize(
    ("code", "wanted"),
    [
        ("XR05CBA198A00101010086", ["X 加 22 位", "X and 22", "23 characters", "Western"]),
        ("XR05CBA198A0010101008631", ["X and 22", "23 characters"]),  # 24 characters
        ("xr05cba198a001010100863", ["大写", "upper-case", "Western"]),  # lower case
        ("XR05CBA198A00101010086-", ["X and 22"]),  # a sign is no letter or digit
        ("XR05CBA198A00101010086３", ["X and 22"]),  # a full-width digit
        ("ZG02AAG040101010283", ["Z 加 19 位", "Z and 19", "20 characters", "patent"]),
        ("zg02aag0401010102831", ["upper-case", "patent"]),
        ("00110200000010", ["15 位数字", "15 digits", "medical service"]),  # 14 digits
        ("0011020000001000", ["15 digits"]),  # 16 digits
        ("F001102000000100", ["national insurance catalogue", "15 digits"]),  # the old demo F
        ("C031112008000010012", ["C 加 19 位数字", "C and 19 digits", "maker"]),  # 18 digits
        ("C031112008000010012A", ["C and 19 digits"]),  # a letter among the digits
        ("T000700326", ["national insurance catalogue"]),  # herbal pieces: not accepted yet
        ("", ["national insurance catalogue", "X and 22", "Z and 19", "C and 19"]),
        (" XR05CBA198A001010100863", ["national insurance catalogue"]),
    ],
)
def test_wrong_line_codes_say_what_they_should_be(code: str, wanted: list[str]) -> None:
    assert_bilingual(line_code_problem(code), *wanted)
    with pytest.raises(ValueError, match="must be"):
        line_code_family(code)


# -- hospitals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["H33080200001", "H11010500123", "H65010200001", "H66000000001"])
def test_good_hospital_codes(code: str) -> None:
    assert hospital_code_problem(code) is None


@pytest.mark.parametrize(
    ("code", "wanted"),
    [
        ("H3308020000", ["H 加 11 位数字", "H and 11 digits", "6-digit region"]),  # 10 digits
        ("H330802000011", ["H and 11 digits"]),
        ("h33080200001", ["H and 11 digits"]),
        ("33080200001", ["H and 11 digits"]),
        ("HA3080200001", ["H and 11 digits"]),
        ("H99080200001", ["990802", "province", "GB/T 2260", "H and 11 digits"]),
        ("H00000000001", ["province"]),
    ],
)
def test_wrong_hospital_codes(code: str, wanted: list[str]) -> None:
    assert_bilingual(hospital_code_problem(code), *wanted)


# -- diagnoses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "I10.x00",  # NHSA 2.0: x and 2 digits
        "I10.x00x002",  # with an extension
        "N05.900x003",
        "J06.900",
        "E11.900",
        "A33.x00",
        "A35.x00x001",
        "A01.000x005+J17.0*",  # a dagger code with its asterisk companion
        "A01.002+G01*",
        "B49.x01+G02.1*",
        "J06.9",  # plain ICD-10
        "I10",
        "S72.00",
    ],
)
def test_good_icd10_codes(code: str) -> None:
    assert icd10_problem(code) is None


@pytest.mark.parametrize(
    ("code", "wanted"),
    [
        ("I10.X00", ["小写", "lower case", "I10.x00x002"]),  # NHSA writes the x lower case
        ("I10.x00X002", ["lower case"]),
        ("i10.x00", ["ICD-10", "a letter, 2 digits"]),
        ("I1", ["ICD-10"]),
        ("I10.", ["ICD-10"]),
        ("I10.x0", ["x and 2 digits"]),
        ("I10.x00x02", ["x and 3 more digits"]),
        ("J06.9000", ["ICD-10"]),
        ("J069", ["a dot"]),
        ("I10.x00x002 ", ["ICD-10"]),
        ("110.x00", ["a letter"]),
        ("", ["ICD-10"]),
    ],
)
def test_wrong_icd10_codes(code: str, wanted: list[str]) -> None:
    assert_bilingual(icd10_problem(code), *wanted)


# -- fiscal bill codes ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["33060125", "33060222", "11060124", "44060199", "65069900"])
def test_good_bill_codes(code: str) -> None:
    assert bill_code_problem(code) is None


@pytest.mark.parametrize(
    ("code", "wanted"),
    [
        ("3306012", ["8 位数字", "8 digits", "06"]),
        ("330601250", ["8 digits"]),
        ("3306012A", ["8 digits"]),
        ("33082025", ["digits 3-4 are 08", "06", "medical"]),  # the old demo codes
        ("33010125", ["digits 3-4 are 01"]),
        ("99060125", ["digits 1-2, 99", "province"]),
        ("00060125", ["province"]),
        ("33060025", ["digits 5-6", "cannot be 00"]),
    ],
)
def test_wrong_bill_codes(code: str, wanted: list[str]) -> None:
    assert_bilingual(bill_code_problem(code), *wanted)


def test_every_province_code_is_two_digits_of_gb_t_2260() -> None:
    assert len(PROVINCES) == 32 and all(len(p) == 2 and p.isdigit() for p in PROVINCES)
    assert {"11", "33", "44", "65"} <= PROVINCES and not {"00", "10", "71", "81"} & PROVINCES
    assert all(bill_code_problem(f"{p}060125") is None for p in PROVINCES)


# -- check codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["4ba882", "4BA882", "4Ba882", "000000", "abcdef", "c00001"])
def test_good_check_codes(code: str) -> None:
    assert check_code_problem(code) is None


@pytest.mark.parametrize("code", ["4ba88", "4ba8821", "4ba88g", "web000", "4ba88２", "", "4ba 88"])
def test_wrong_check_codes(code: str) -> None:
    assert_bilingual(check_code_problem(code), "6 hexadecimal", "十六进制", "either case")


def test_check_codes_are_kept_lower_case_and_compared_without_case() -> None:
    assert normalise_check_code("4BA882") == "4ba882"
    assert normalise_check_code("4ba882") == "4ba882"
    assert normalise_check_code("İ4BA88") == "İ4ba88"  # only ASCII letters change
    assert same_check_code("4BA882", "4ba882") and same_check_code("4ba882", "4BA882")
    assert not same_check_code("4ba883", "4ba882")
    assert not same_check_code("4ba88", "4ba882")
    assert not same_check_code("", "4ba882")


@given(st.text(max_size=30))
def test_judges_never_raise(text: str) -> None:
    judges: list[Judge] = [
        line_code_problem,
        hospital_code_problem,
        icd10_problem,
        bill_code_problem,
        check_code_problem,
    ]
    for judge in judges:
        reason = judge(text)
        assert reason is None or reason.count("；") == 1
    if line_code_problem(text) is None:
        assert line_code_family(text) in ("western", "patent", "service", "consumable")
    assert len(normalise_check_code(text)) == len(text)


def test_non_text_is_refused_not_raised() -> None:
    for judge in (line_code_problem, hospital_code_problem, icd10_problem, bill_code_problem):
        assert judge(None) is not None  # type: ignore[arg-type]
    assert check_code_problem(123456) is not None  # type: ignore[arg-type]

"""The national codes a medical e-bill carries, judged the way the catalogues write them.

Each ``*_problem`` function is pure (no I/O) and returns None when the code is good, else one
bilingual reason ``"<中文>；<English>"`` saying what the code should look like, so that a
hospital fixing a batch reads the rule, not only the refusal. Codes are judged as sent: upper
case where the catalogue writes upper case (a lower-case ``x`` in ``xr05...`` is refused, not
repaired), and the lower-case ``x`` of an NHSA diagnosis code as NHSA writes it.

**Line codes** (医保目录编码 of the National Healthcare Security Administration, 国家医保局):

- Western medicine (西药): ``X`` and 22 upper-case letters or digits, 23 characters, e.g.
  ``XR05CBA198A001010100863``: ``X``, the ATC class (``R05CB``), the generic name
  (``A198``), then dosage form, specification, packaging and maker;
- Chinese patent medicine (中成药): ``Z`` and 19 upper-case letters or digits, 20 characters;
- medical service items (医疗服务项目): 15 digits, e.g. ``001102000000100`` (general outpatient
  consultation) and ``003401000230600``;
- medical consumables (医用耗材): ``C`` and 19 digits, 20 characters: a 6-digit category (three
  levels of 2), a 3-digit generic name, a 5-digit product feature and a 5-digit maker.

Only the letter, the length and the kind of character are checked: the segments inside the
drug codes are assigned by NHSA and change with each catalogue, so they are not guessed at.
Chinese herbal pieces (中药饮片) and hospital preparations (医疗机构制剂) have codes of their
own whose structure could not be confirmed from a public source; they are refused for now
rather than accepted on a guess.

**Hospital codes** (定点医疗机构编码): ``H`` and 11 digits, a 6-digit region (GB/T 2260, the
first two a province) and a 5-digit serial, e.g. ``H33080200001`` (330802, 柯城区).

**Diagnosis codes**: ICD-10 in the national insurance edition (医保版 2.0) as NHSA writes it: a
letter, 2 digits, ``.``, then 3 digits or ``x`` and 2 digits, optionally an extension of ``x``
and 3 digits (``J06.900``, ``I10.x00``, ``I10.x00x002``, ``N05.900x003``), optionally a
dagger code's asterisk companion (``A01.000x005+J17.0*``). Every one of the 33,304 codes of
the 2.0 table as shipped with the CHS-DRG groupers has one of these shapes. A plain ICD-10 code
(``I10``, ``J06.9``) is accepted too.

**Fiscal bill codes** (票据代码), 8 digits: 1-2 the region (a GB/T 2260 province), 3-4 the
bill category, ``06`` for medical charges (医疗收费票据), 5-6 the kind (01 outpatient, 02
inpatient; any of 01 to 99 is accepted, as the finance bureaus number further kinds), 7-8 the
year (two digits), e.g. ``33060125``.

**Check codes** (校验码): 6 hexadecimal characters in either case; :func:`normalise_check_code`
gives the lower case kept, :func:`same_check_code` compares without regard to case.
"""

from __future__ import annotations

import hmac
import re
from typing import Final, Literal

LineCodeFamily = Literal["western", "patent", "service", "consumable"]

#: GB/T 2260 province-level codes, and 66 for the Xinjiang Production and Construction Corps
#: (新疆生产建设兵团), which NHSA and the finance bureaus treat as a province of its own.
PROVINCES: Final = frozenset(
    str(n)
    for n in [
        *(11, 12, 13, 14, 15),  # 北京 天津 河北 山西 内蒙古
        *(21, 22, 23),  # 辽宁 吉林 黑龙江
        *(31, 32, 33, 34, 35, 36, 37),  # 上海 江苏 浙江 安徽 福建 江西 山东
        *(41, 42, 43, 44, 45, 46),  # 河南 湖北 湖南 广东 广西 海南
        *(50, 51, 52, 53, 54),  # 重庆 四川 贵州 云南 西藏
        *(61, 62, 63, 64, 65, 66),  # 陕西 甘肃 青海 宁夏 新疆 兵团
    ]
)
MEDICAL_BILL_CATEGORY: Final = "06"

_WESTERN: Final = re.compile(r"X[0-9A-Z]{22}")
_PATENT: Final = re.compile(r"Z[0-9A-Z]{19}")
_SERVICE: Final = re.compile(r"[0-9]{15}")
_CONSUMABLE: Final = re.compile(r"C[0-9]{19}")
_HOSPITAL: Final = re.compile(r"H[0-9]{11}")
_DIGITS8: Final = re.compile(r"[0-9]{8}")
_HEX6: Final = re.compile(r"[0-9A-Fa-f]{6}")
# A dagger code's asterisk companion, as the 2.0 table writes it: +J17.0* or +G01*.
_ASTERISK: Final = r"(?:\+[A-Z][0-9]{2}(?:\.[0-9])?\*)?"
_ICD10_NHSA: Final = re.compile(r"[A-Z][0-9]{2}\.(?:[0-9]{3}|x[0-9]{2})(?:x[0-9]{3})?" + _ASTERISK)
_ICD10_PLAIN: Final = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9]{1,2})?" + _ASTERISK)

_FAMILY_RULES: Final[dict[LineCodeFamily, tuple[re.Pattern[str], str]]] = {
    "western": (
        _WESTERN,
        "应为 X 加 22 位大写字母或数字，共 23 位（西药编码）；"
        "must be X and 22 upper-case letters or digits, 23 characters (a Western-medicine code)",
    ),
    "patent": (
        _PATENT,
        "应为 Z 加 19 位大写字母或数字，共 20 位（中成药编码）；"
        "must be Z and 19 upper-case letters or digits, 20 characters"
        " (a Chinese patent medicine code)",
    ),
    "service": (
        _SERVICE,
        "应为 15 位数字（医疗服务项目编码）；must be 15 digits (a medical service item code)",
    ),
    "consumable": (
        _CONSUMABLE,
        "应为 C 加 19 位数字：6 位分类、3 位通用名、5 位产品特征、5 位生产企业（医用耗材编码）；"
        "must be C and 19 digits: 6 of category, 3 of generic name, 5 of product feature and"
        " 5 of maker (a medical consumable code)",
    ),
}
_LINE_FAMILIES: Final = (
    "应为国家医保目录编码：西药 X 加 22 位、中成药 Z 加 19 位、医疗服务项目 15 位数字、"
    "医用耗材 C 加 19 位数字；must be a national insurance catalogue code: X and 22 (Western"
    " medicine), Z and 19 (Chinese patent medicine), 15 digits (medical service item) or C and"
    " 19 digits (medical consumable)"
)
_HOSPITAL_RULE: Final = (
    "应为 H 加 11 位数字：6 位行政区划、5 位顺序号（定点医疗机构编码，如 H33080200001）",
    "must be H and 11 digits: a 6-digit region and a 5-digit serial (a designated medical"
    " institution's code, e.g. H33080200001)",
)
_ICD10_RULE: Final = (
    "应为医保版 ICD-10 编码：字母、2 位数字、点、3 位数字或 x 加 2 位数字，可再加 x 和 3 位数字"
    "（如 J06.900、I10.x00、I10.x00x002），或 ICD-10 编码（如 I10、J06.9）",
    "must be an ICD-10 code of the national insurance edition: a letter, 2 digits, a dot, 3"
    " digits or x and 2 digits, optionally x and 3 more digits (e.g. J06.900, I10.x00,"
    " I10.x00x002), or a plain ICD-10 code (e.g. I10, J06.9)",
)
_BILL_RULE: Final = (
    "应为 8 位数字：2 位地区、06（医疗收费票据）、2 位票据种类、2 位年度（如 33060125）",
    "must be 8 digits: 2 of region, 06 (medical charges), 2 of kind and 2 of year (e.g. 33060125)",
)
_CHECK_RULE: Final = (
    "应为 6 位十六进制字符（0-9、a-f，大小写均可）；"
    "must be 6 hexadecimal characters (0-9 and a-f, either case)"
)
_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def line_code_problem(code: str) -> str | None:
    """None when ``code`` is a national catalogue code of one of the four families, else what
    it should look like: the rule of the family its first character names (``X``, ``Z``,
    ``C``, a digit; in either case, so that ``xr05...`` is told to be upper case), or the four
    families when it names none."""
    if not isinstance(code, str):
        return _LINE_FAMILIES
    family = _family_of(code)
    if family is None:
        return _LINE_FAMILIES
    pattern, rule = _FAMILY_RULES[family]
    return None if pattern.fullmatch(code) else rule


def line_code_family(code: str) -> LineCodeFamily:
    """The family of a good line code (``western``, ``patent``, ``service``, ``consumable``).

    Raises ``ValueError`` with the reason of :func:`line_code_problem` for a code that is not
    good: a family is only named for a code that has its shape."""
    reason = line_code_problem(code)
    if reason is not None:
        raise ValueError(reason)
    family = _family_of(code)
    assert family is not None
    return family


def hospital_code_problem(code: str) -> str | None:
    """None when ``code`` is ``H`` and 11 digits whose region starts with a province code."""
    if not isinstance(code, str) or _HOSPITAL.fullmatch(code) is None:
        return _reason(*_HOSPITAL_RULE)
    if code[1:3] not in PROVINCES:
        return _reason(
            f"行政区划 {code[1:7]} 的前两位 {code[1:3]} 不是省级代码（GB/T 2260）",
            f"the region {code[1:7]} does not start with a province code (GB/T 2260)",
            _HOSPITAL_RULE,
        )
    return None


def icd10_problem(code: str) -> str | None:
    """None when ``code`` is an NHSA ICD-10 code (医保版 2.0) or a plain ICD-10 code; an NHSA
    code written with an upper-case ``X`` is told that NHSA writes it lower case."""
    if not isinstance(code, str):
        return _reason(*_ICD10_RULE)
    if _ICD10_NHSA.fullmatch(code) is not None or _ICD10_PLAIN.fullmatch(code) is not None:
        return None
    if "X" in code[3:] and _ICD10_NHSA.fullmatch(code[:3] + code[3:].replace("X", "x")):
        return _reason("x 应为小写", "the x is written lower case", _ICD10_RULE)
    return _reason(*_ICD10_RULE)


def bill_code_problem(code: str) -> str | None:
    """None when ``code`` is a medical fiscal bill code: 8 digits, a province, ``06``, a kind
    from 01 to 99 and a two-digit year; else the first part that is wrong, and the rule."""
    if not isinstance(code, str) or _DIGITS8.fullmatch(code) is None:
        return _reason(*_BILL_RULE)
    region, category, kind = code[0:2], code[2:4], code[4:6]
    if region not in PROVINCES:
        return _reason(
            f"第 1-2 位 {region} 不是省级地区代码（GB/T 2260）",
            f"digits 1-2, {region}, are not a province code (GB/T 2260)",
            _BILL_RULE,
        )
    if category != MEDICAL_BILL_CATEGORY:
        return _reason(
            f"第 3-4 位为 {category}，医疗收费票据应为 06",
            f"digits 3-4 are {category}, where a medical bill has 06",
            _BILL_RULE,
        )
    if kind == "00":
        return _reason(
            "第 5-6 位票据种类不能为 00", "digits 5-6, the kind, cannot be 00", _BILL_RULE
        )
    return None


def check_code_problem(code: str) -> str | None:
    """None when ``code`` is 6 hexadecimal characters, in either case."""
    if isinstance(code, str) and _HEX6.fullmatch(code) is not None:
        return None
    return _CHECK_RULE


def normalise_check_code(code: str) -> str:
    """The check code in lower case, as it is kept (``4BA882`` -> ``4ba882``); only ASCII
    letters change, so the length never does."""
    return code.translate(_LOWER)


def same_check_code(presented: str, stored: str) -> bool:
    """Whether two check codes are the same without regard to (ASCII) case, compared in
    constant time: the check code is the secret that shows the asker saw the bill."""
    return hmac.compare_digest(
        presented.translate(_LOWER).encode(), stored.translate(_LOWER).encode()
    )


def _reason(zh: str, en: str, rule: tuple[str, str] | None = None) -> str:
    """``"<zh>；<en>"``, each followed by the rule's sentence in its language when given."""
    if rule is None:
        return f"{zh}；{en}"
    return f"{zh}。{rule[0]}；{en}: {rule[1]}"


def _family_of(code: str) -> LineCodeFamily | None:
    first = code[:1].translate(_UPPER)
    if first == "X":
        return "western"
    if first == "Z":
        return "patent"
    if first == "C":
        return "consumable"
    if "0" <= first <= "9":
        return "service"
    return None

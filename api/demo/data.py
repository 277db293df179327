"""Synthetic, Quzhou-shaped demo data: hospitals, citizens and their itemised medical e-invoices.

``generate(seed, preset)`` is pure and deterministic: everything follows from ``seed`` through
``random.Random`` streams (no global random state, no clock). The ``quzhou`` preset has the shape
of the real Quzhou roll-out: 132 designated hospitals, 15,605 self-pay e-invoices issued during
2025 (Asia/Shanghai, +08:00) with exactly 1,332,000 detail lines and about 21.1 million yuan;
``small`` is a handful of hospitals and citizens for ``make run``. docs/demo-data.md describes
the shape of the data and how it is steered.

Everything here is synthetic: resident ID numbers are well formed (region, birth date, sequence,
MOD 11-2 check character) but belong to nobody, and the hospitals' signing keys are demo keys.
"""

from __future__ import annotations

import bisect
import multiprocessing
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from coincurve import PrivateKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from api.demo.catalogue import (
    BY_NAME,
    CATALOGUE,
    DIAGNOSES,
    LAB_PANELS,
    SURGERY_PACKAGES,
    CatalogueItem,
    ItemKind,
    SurgeryPackage,
)
from chain.model import HospitalLevel
from verifier.canonical import Domain, SignedFields, patient_commitment, sign_digest
from verifier.invoice import DetailLine, Invoice, VisitType, invoice_to_json

TZ = timezone(timedelta(hours=8))  # Asia/Shanghai: UTC+8, no daylight saving since 1991
YEAR = 2025
_DAYS = 365
_EPOCH = datetime(YEAR, 1, 1, tzinfo=TZ)
QUZHOU_TOTAL_FEN = 2_110_000_000  # 21.1 million yuan
QUZHOU_LINES = 1_332_000
FEN_PER_LINE = QUZHOU_TOTAL_FEN / QUZHOU_LINES  # what the amount steering aims at
OUTPATIENT_BILL_CODE = "33082501"  # 33 Zhejiang, 08 Quzhou, 25 the year, 01 outpatient (门诊)
INPATIENT_BILL_CODE = "33082502"  # ... 02 inpatient (住院)
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# -- the dataset ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoHospital:
    """A designated hospital (定点医疗机构) with its demo signing key (demo mode only)."""

    code: str  # "H" + district code + 5-digit sequence, e.g. H33080200001
    name: str
    district: str
    level: HospitalLevel
    kind: str  # general, tcm, maternal, rehab, dental, eye, ortho, community, township
    private_key: bytes

    @property
    def address(self) -> str:
        """The checksummed Ethereum address of the demo key."""
        public = PrivateKey(self.private_key).public_key.format(compressed=False)[1:]
        return to_checksum_address(keccak(public)[-20:])


@dataclass(frozen=True, slots=True)
class Citizen:
    """An insured person (参保人); synthetic."""

    id_number: str  # 18-character resident ID number (居民身份证号码)
    name: str
    sex: str  # "M" or "F"
    birth_date: date

    def age_on(self, day: date) -> int:
        """Age in whole years on ``day``."""
        before = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - before


@dataclass(frozen=True, slots=True)
class InvoicePatient:
    """Whose invoice it is: the citizen's index in ``DemoDataset.citizens`` and the invoice's
    16-byte commitment salt (known to the hospital, the service and the patient)."""

    citizen: int
    salt: bytes


@dataclass(frozen=True)
class DemoDataset:
    """A generated dataset; ``invoices`` (in order of issue) and ``patients`` are parallel."""

    preset: str
    seed: int
    hospitals: tuple[DemoHospital, ...]
    citizens: tuple[Citizen, ...]
    catalogue: Mapping[str, CatalogueItem]
    invoices: tuple[Invoice, ...]
    patients: tuple[InvoicePatient, ...]

    def hospital(self, code: str) -> DemoHospital:
        """The hospital with this code; raises ``KeyError`` naming the code."""
        for hospital in self.hospitals:
            if hospital.code == code:
                return hospital
        raise KeyError(f"no demo hospital {code!r}")

    def citizen_of(self, index: int) -> Citizen:
        """The patient of ``invoices[index]``."""
        return self.citizens[self.patients[index].citizen]

    @property
    def line_count(self) -> int:
        return sum(len(invoice.lines) for invoice in self.invoices)

    @property
    def total_fen(self) -> int:
        return sum(invoice.total for invoice in self.invoices)


@dataclass(frozen=True)
class Preset:
    """The size of a dataset: ``hospitals`` names roster entries (None: all 132); ``lines`` is
    the exact number of detail lines (None: as generated)."""

    name: str
    hospitals: tuple[str, ...] | None
    invoices: int
    lines: int | None
    citizens: int


PRESETS: Mapping[str, Preset] = {
    "quzhou": Preset("quzhou", None, 15_605, QUZHOU_LINES, 9_000),
    "small": Preset(
        "small",
        (
            "衢州市人民医院",
            "江山市中医院",
            "龙游县人民医院",
            "衢州市柯城区府山街道社区卫生服务中心",
            "龙游县湖镇中心卫生院",
            "常山县球川中心卫生院",
        ),
        60,
        None,
        30,
    ),
}


def invoice_json(invoice: Invoice) -> dict[str, Any]:
    """The invoice's JSON form (``verifier.invoice.invoice_to_json``), as a hospital uploads it."""
    return invoice_to_json(invoice)


# -- resident ID numbers (GB 11643-1999) ---------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^[1-9][0-9]{16}[0-9X]$")


def id_check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"expected 17 digits, got {first17!r}")
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def valid_id_number(s: str) -> bool:
    """Whether ``s`` is a well-formed 18-character resident ID number: digits, a real birth
    date, and the right check character (an upper-case X for 10)."""
    if not isinstance(s, str) or not _ID_SHAPE.fullmatch(s):
        return False
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    return born.year >= 1800 and id_check_character(s[:17]) == s[17]


# -- places and hospitals ------------------------------------------------------------------------

_DISTRICTS = (
    ("330802", "柯城区"),
    ("330803", "衢江区"),
    ("330881", "江山市"),
    ("330822", "常山县"),
    ("330824", "开化县"),
    ("330825", "龙游县"),
)
_DISTRICT_NAME = dict(_DISTRICTS)
_T, _S, _P, _W = (
    HospitalLevel.TERTIARY,
    HospitalLevel.SECONDARY,
    HospitalLevel.PRIMARY,
    HospitalLevel.TOWNSHIP,
)
# (district, name, level, kind); the order fixes each hospital's code.
_NAMED_HOSPITALS = (
    ("330802", "衢州市人民医院", _T, "general"),
    ("330802", "衢州市中医医院", _T, "tcm"),
    ("330803", "浙江衢化医院", _T, "general"),
    ("330802", "衢州市妇幼保健院", _T, "maternal"),
    ("330881", "江山市人民医院", _T, "general"),
    ("330802", "衢州市柯城区人民医院", _S, "general"),
    ("330802", "衢州市康复医院", _S, "rehab"),
    ("330802", "衢州市口腔医院", _S, "dental"),
    ("330802", "衢州骨伤科医院", _S, "ortho"),
    ("330802", "衢州眼科医院", _S, "eye"),
    ("330803", "衢州市衢江区人民医院", _S, "general"),
    ("330803", "衢州市衢江区中医医院", _S, "tcm"),
    ("330803", "衢州市衢江区妇幼保健院", _S, "maternal"),
    ("330881", "江山市中医院", _S, "tcm"),
    ("330881", "江山市妇幼保健院", _S, "maternal"),
    ("330881", "江山市第二人民医院", _S, "general"),
    ("330822", "常山县人民医院", _S, "general"),
    ("330822", "常山县中医医院", _S, "tcm"),
    ("330822", "常山县妇幼保健院", _S, "maternal"),
    ("330824", "开化县人民医院", _S, "general"),
    ("330824", "开化县中医院", _S, "tcm"),
    ("330824", "开化县妇幼保健院", _S, "maternal"),
    ("330825", "龙游县人民医院", _S, "general"),
    ("330825", "龙游县中医医院", _S, "tcm"),
    ("330825", "龙游县妇幼保健院", _S, "maternal"),
    ("330802", "衢州柯城康华医院", _P, "general"),
    ("330802", "衢州柯城博爱医院", _P, "general"),
    ("330802", "衢州柯城安康医院", _P, "general"),
    ("330802", "衢州柯城华康口腔医院", _P, "dental"),
    ("330802", "衢州柯城明视眼科医院", _P, "eye"),
    ("330802", "衢州柯城仁和中医医院", _P, "tcm"),
    ("330803", "衢江济民医院", _P, "general"),
    ("330803", "衢江同济医院", _P, "general"),
    ("330803", "衢江嘉禾医院", _P, "general"),
    ("330881", "江山康复医院", _P, "rehab"),
    ("330881", "江山华山医院", _P, "general"),
    ("330881", "江山贺村医院", _P, "general"),
    ("330822", "常山博济医院", _P, "general"),
    ("330822", "常山中西医结合医院", _P, "tcm"),
    ("330824", "开化同心医院", _P, "general"),
    ("330824", "开化康乐骨科医院", _P, "ortho"),
    ("330825", "龙游仁济医院", _P, "general"),
    ("330825", "龙游康宁医院", _P, "general"),
    ("330825", "龙游华康医院", _P, "general"),
)
_STREETS = (
    ("330802", "府山 荷花 花园 信安 双港 新新 衢化 白云 石室"),
    ("330803", "樟潭 浮石 东港"),
    ("330881", "双塔 虎山 清湖"),
    ("330822", "天马 紫港 金川"),
    ("330824", "芹阳"),
    ("330825", "东华 龙洲"),
)
_TOWNS = (
    ("330802", "航埠镇 石梁镇 华墅乡 沟溪乡 九华乡 七里乡 万田乡"),
    (
        "330803",
        "廿里镇 后溪镇 莲花镇 峡川镇 杜泽镇 湖南镇 全旺镇 大洲镇 高家镇 上方镇 太真乡 黄坛口乡"
        " 周家乡 双桥乡 举村乡 岭洋乡 灰坪乡",
    ),
    (
        "330881",
        "贺村镇 峡口镇 上余镇 四都镇 大桥镇 新塘边镇 坛石镇 长台镇 石门镇 廿八都镇 凤林镇"
        " 张村乡 塘源口乡 保安乡 大陈乡 碗窑乡",
    ),
    ("330822", "球川镇 白石镇 招贤镇 青石镇 辉埠镇 芳村镇 何家乡 东案乡 同弓乡 新昌乡"),
    (
        "330824",
        "华埠镇 马金镇 池淮镇 杨林镇 桐村镇 苏庄镇 齐溪镇 村头镇 林山乡 长虹乡 何田乡"
        " 音坑乡 中村乡",
    ),
    (
        "330825",
        "湖镇镇 溪口镇 小南海镇 塔石镇 横山镇 詹家镇 模环乡 石佛乡 沐尘畲族乡 庙下乡 大街乡"
        " 社阳乡 罗家乡",
    ),
)
_TOWNSHIP_COUNT = 67


def _roster() -> tuple[tuple[str, str, str, HospitalLevel, str], ...]:
    """The 132 hospitals as (code, name, district, level, kind), in a fixed order."""
    entries = list(_NAMED_HOSPITALS)
    for district, streets in _STREETS:
        city = "衢州市" if district in ("330802", "330803") else ""
        for street in streets.split():
            name = f"{city}{_DISTRICT_NAME[district]}{street}街道社区卫生服务中心"
            entries.append((district, name, _P, "community"))
    towns = [[(d, t) for t in names.split()] for d, names in _TOWNS]
    picked: list[tuple[str, str]] = []
    while len(picked) < _TOWNSHIP_COUNT:  # round-robin, so every district has its share
        for column in towns:
            if column and len(picked) < _TOWNSHIP_COUNT:
                picked.append(column.pop(0))
    for district, town in picked:
        prefix = _DISTRICT_NAME[district]
        name = f"{prefix}{town[:-1]}中心卫生院" if town.endswith("镇") else f"{prefix}{town}卫生院"
        entries.append((district, name, _W, "township"))
    seq: dict[str, int] = {}
    out = []
    for district, name, level, kind in entries:
        seq[district] = seq.get(district, 0) + 1
        out.append((f"H{district}{seq[district]:05d}", name, district, level, kind))
    return tuple(out)


ROSTER = _roster()


def _hospital_key(seed: int, code: str) -> bytes:
    rng = random.Random(f"zeroclaim-demo/{seed}/hospital-key/{code}")
    while True:
        key = rng.getrandbits(256)
        if 0 < key < _SECP256K1_N:
            return key.to_bytes(32, "big")


def _hospitals(seed: int, preset: Preset) -> tuple[DemoHospital, ...]:
    wanted = preset.hospitals
    rows = ROSTER if wanted is None else tuple(r for r in ROSTER if r[1] in wanted)
    if wanted is not None and len(rows) != len(wanted):
        raise ValueError(f"preset {preset.name!r} names hospitals that are not in the roster")
    return tuple(
        DemoHospital(code, name, district, level, kind, _hospital_key(seed, code))
        for code, name, district, level, kind in rows
    )


# -- citizens ------------------------------------------------------------------------------------

_SURNAMES = (
    "徐王郑毛周吴刘汪姜余祝叶杨张陈李黄方林胡朱邵蒋程柴华江童龚饶傅严鲁郭何罗宋潘许范占杜孙金洪戴"
)
_GIVEN = {
    ("M", False): "建国华明伟强军平林海文勇忠德荣春福根水金兴良成土发正新志",
    ("F", False): "英芳秀兰桂红华珍凤梅琴玉霞美娟素月仙菊香萍莲花丽云燕",
    ("M", True): "宇浩轩子梓杰博涵泽睿晨俊豪航辰一铭昊逸诚宸彦楷烨天",
    ("F", True): "欣怡涵梓萱雨佳诗语可馨悦彤琪思若依婷蕾瑶紫妍晴嘉心",
}
# (share of citizens, youngest age, oldest age) in 2024; the sick are older than the census.
_AGE_BANDS = ((0.14, 0, 12), (0.03, 14, 17), (0.20, 18, 39), (0.28, 40, 59), (0.35, 60, 92))
_ID_DISTRICTS = ("330802", "330803", "330881", "330822", "330824", "330825")
_ID_DISTRICT_WEIGHTS = (22, 16, 21, 12, 12, 17)


def _citizens(rng: random.Random, count: int) -> tuple[Citizen, ...]:
    quotas = [max(1, round(count * share)) for share, _, _ in _AGE_BANDS]
    quotas[-1] += count - sum(quotas)
    ages = [
        rng.randint(low, high)
        for quota, (_, low, high) in zip(quotas, _AGE_BANDS, strict=True)
        for _ in range(quota)
    ]
    rng.shuffle(ages)
    surname_weights = [1.0 / (1 + i * 0.15) for i in range(len(_SURNAMES))]
    seen: set[str] = set()
    people = []
    for i, age in enumerate(ages):
        sex = "M" if (i % 2 == 0) != (rng.random() < 0.02) else "F"
        born = date(2024 - age, 1, 1) + timedelta(days=rng.randrange(365))
        region = rng.choices(_ID_DISTRICTS, _ID_DISTRICT_WEIGHTS)[0]
        if region == "330803" and born.year < 2001:
            region = "330821"  # 衢县 became 衢江区 in 2001; older numbers keep the old code
        while True:
            seq = rng.randrange(1, 500) * 2 - (1 if sex == "M" else 0)
            first17 = f"{region}{born:%Y%m%d}{seq:03d}"
            id_number = first17 + id_check_character(first17)
            if id_number not in seen:
                seen.add(id_number)
                break
        pool = _GIVEN[(sex, born.year >= 1990)]
        given = "".join(rng.choice(pool) for _ in range(1 if rng.random() < 0.3 else 2))
        name = rng.choices(_SURNAMES, surname_weights)[0] + given
        people.append(Citizen(id_number, name, sex, born))
    return tuple(people)


# -- how often what happens ----------------------------------------------------------------------

_DEPARTMENT_MIX = {
    "general": "内科 22 神经内科 6 外科 10 骨科 8 妇产科 7 儿科 10 眼科 5 耳鼻咽喉科 5 口腔科 4"
    " 皮肤科 5 中医科 5 康复医学科 3 急诊科 10",
    "tcm": "中医科 35 内科 12 骨科 10 康复医学科 8 外科 6 妇产科 5 儿科 6 皮肤科 4 急诊科 5"
    " 神经内科 5 耳鼻咽喉科 2 眼科 2",
    "maternal": "妇产科 55 儿科 40 中医科 3 口腔科 2",
    "rehab": "康复医学科 60 骨科 15 中医科 15 神经内科 10",
    "dental": "口腔科 100",
    "eye": "眼科 100",
    "ortho": "骨科 70 康复医学科 15 中医科 15",
    "community": "全科医学科 45 中医科 15 儿科 8 口腔科 8 康复医学科 8 妇产科 6 外科 5 皮肤科 5",
    "township": "全科医学科 55 中医科 15 儿科 8 口腔科 5 外科 6 康复医学科 5 妇产科 6",
}
_INVOICE_WEIGHT = {_T: 60.0, _S: 15.0, _P: 3.0, _W: 1.2}
_INPATIENT_LEVEL = {_T: 1.2, _S: 1.1, _P: 0.6, _W: 0.5}
_INPATIENT_SHARE = {
    "内科": 0.35,
    "神经内科": 0.6,
    "外科": 0.45,
    "骨科": 0.45,
    "妇产科": 0.35,
    "儿科": 0.2,
    "眼科": 0.12,
    "耳鼻咽喉科": 0.12,
    "口腔科": 0.0,
    "皮肤科": 0.02,
    "中医科": 0.12,
    "康复医学科": 0.5,
    "急诊科": 0.03,
    "全科医学科": 0.12,
}
# Lines a day of an inpatient stay (drugs, monitoring, therapies, herbs), by department.
_LINES_A_DAY = {"中医科": (30, 48), "眼科": (14, 26), "耳鼻咽喉科": (14, 26), "妇产科": (18, 30)}
_SURGERY_RATE = {"外科": 0.5, "骨科": 0.4, "妇产科": 0.6, "眼科": 0.7, "耳鼻咽喉科": 0.6}
# Outpatient: chance of lab work, of a routine examination, of a big-ticket examination.
_OUT_LAB = {"内科": 0.7, "儿科": 0.6, "急诊科": 0.7, "全科医学科": 0.5, "神经内科": 0.5}
_OUT_EXAM = {"眼科": 0.95, "耳鼻咽喉科": 0.5, "骨科": 0.6, "口腔科": 0.3, "妇产科": 0.5}
_OUT_MAJOR = {"神经内科": 0.2, "骨科": 0.15, "急诊科": 0.15, "内科": 0.08, "外科": 0.08}
_OUT_TREAT = {"中医科": 0.6, "康复医学科": 0.9, "口腔科": 0.9, "皮肤科": 0.3, "眼科": 0.2}
_OUT_TREAT.update({"耳鼻咽喉科": 0.3, "骨科": 0.3, "外科": 0.2})
_PANEL_WEIGHTS = (
    ("血常规", 10),
    ("尿常规", 4),
    ("肝功能", 3),
    ("肾功能", 3),
    ("血糖", 3),
    ("血脂", 2),
    ("电解质", 2),
    ("粪常规", 2),
    ("糖化血红蛋白", 1),
    ("甲状腺功能", 1),
    ("乙肝两对半", 1),
    ("凝血功能", 1),
    ("肿瘤标志物", 1),
    ("血沉", 1),
    ("心肌标志物", 1),
    ("降钙素原", 1),
)
_URINE_AND_STOOL = frozenset({"尿常规", "粪常规"})


def _mix(spec: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    parts = spec.split()
    return tuple(parts[0::2]), tuple(float(w) for w in parts[1::2])


# -- line building -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pools:
    """What a department may bill a patient of one sex and age band, in one setting."""

    oral: tuple[CatalogueItem, ...]  # drugs not injected (tablets, packs, patent medicines)
    injected: tuple[CatalogueItem, ...]  # injections and infusions, carrier fluids excluded
    herbs: tuple[CatalogueItem, ...]
    labs: tuple[CatalogueItem, ...]
    exams: tuple[CatalogueItem, ...]  # routine
    major_exams: tuple[CatalogueItem, ...]
    treatments: tuple[CatalogueItem, ...]
    surgeries: tuple[SurgeryPackage, ...]


_BEDSIDE = (
    "口腔护理",
    "医用棉签",
    "一次性使用检查手套",
    "静脉注射",
    "肌肉注射",
    "皮下注射",
    "医用无菌纱布",
)
_CARRIERS = frozenset({"氯化钠注射液(100ml:0.9g)", "氯化钠注射液(250ml:2.25g)"})
_DEPT_KINDS = (ItemKind.EXAMINATION, ItemKind.TREATMENT)


def _pools(department: str, sex: str, age: int, inpatient: bool) -> _Pools:
    def fits(item: CatalogueItem) -> bool:
        return (
            (item.departments is None or department in item.departments)
            and item.allows(sex, age)
            and not (item.inpatient_only if not inpatient else item.outpatient_only)
        )

    items = [item for item in CATALOGUE.values() if fits(item)]
    drugs = [i for i in items if i.kind in (ItemKind.WESTERN_DRUG, ItemKind.PATENT_MEDICINE)]
    own = [i for i in items if i.kind in _DEPT_KINDS and i.departments is not None]
    surgeries = tuple(
        p
        for p in SURGERY_PACKAGES
        if p.department == department
        and all(
            BY_NAME[n].allows(sex, age)
            for n in (p.procedure, p.anaesthesia, *p.drugs, *(m for m, _ in p.materials))
        )
    )
    anaesthetics = {d for p in SURGERY_PACKAGES for d in p.drugs}
    return _Pools(
        oral=tuple(i for i in drugs if not i.injection),
        injected=tuple(i for i in drugs if i.injection and i.name not in _CARRIERS | anaesthetics),
        herbs=tuple(i for i in items if i.kind is ItemKind.HERBAL),
        labs=tuple(i for i in items if i.kind is ItemKind.LAB_TEST),
        exams=tuple(i for i in items if i.kind is ItemKind.EXAMINATION and not i.high_cost),
        major_exams=tuple(i for i in items if i.kind is ItemKind.EXAMINATION and i.high_cost),
        treatments=tuple(i for i in own if i.kind is ItemKind.TREATMENT and i.name != "中药代煎"),
        surgeries=surgeries,
    )


class _Bill:
    """The lines of one invoice under construction; enforces the catalogue's quantity limits
    (per day for a stay, per invoice for an outpatient visit)."""

    __slots__ = ("department", "inpatient", "lines", "used")

    def __init__(self, department: str, inpatient: bool) -> None:
        self.department = department
        self.inpatient = inpatient
        self.lines: list[tuple[int, DetailLine]] = []
        self.used: dict[tuple[int, str], int] = {}

    def room(self, item: CatalogueItem, day: int) -> int:
        limit = item.max_daily_milli if self.inpatient else item.max_outpatient_milli
        return limit - self.used.get((day, item.code), 0)

    def add(
        self, item: CatalogueItem, quantity: int, day: int, minute: int, when: datetime
    ) -> None:
        key = (day, item.code)
        used = self.used.get(key, 0) + quantity
        limit = item.max_daily_milli if self.inpatient else item.max_outpatient_milli
        if quantity <= 0 or used > limit:
            raise AssertionError(f"{item.name}: {used} over the limit {limit}")
        self.used[key] = used
        price = item.unit_price
        line = DetailLine(
            item.code,
            item.name,
            item.item_class,
            price,
            quantity,
            (price * quantity + 500) // 1000,
            self.department,
            when,
        )
        self.lines.append((day * 1440 + minute, line))

    def sorted_lines(self) -> tuple[DetailLine, ...]:
        self.lines.sort(key=lambda pair: pair[0])
        return tuple(line for _, line in self.lines)


@dataclass(slots=True)
class _Plan:
    hospital: int
    department: str
    citizen: int
    inpatient: bool
    day: int  # outpatient: day of the visit; inpatient: day of admission (0 = 1 January)
    minute: int  # outpatient: start of the visit; inpatient: the issue time on discharge
    duration: int  # outpatient: minutes to the invoice; inpatient: bed days
    lines: int

    @property
    def issued_minute(self) -> int:
        if self.inpatient:
            return (self.day + self.duration) * 1440 + self.minute
        return self.day * 1440 + self.minute + self.duration


def _choose(rng: random.Random, items: Sequence[Any], k: int) -> list[Any]:
    return rng.sample(list(items), min(k, len(items)))


class _Generator:
    """Turns plans into invoices; holds the rng, pool and time caches and the amount steering."""

    def __init__(self, rng: random.Random, hospitals: Sequence[DemoHospital]) -> None:
        self.rng = rng
        self.hospitals = hospitals
        self._pools: dict[tuple[str, str, int, bool], _Pools] = {}
        self._moments: dict[int, datetime] = {}
        self.lines_done = 0
        self.fen_done = 0

    def moment(self, day: int, minute: int) -> datetime:
        key = day * 1440 + minute
        found = self._moments.get(key)
        if found is None:
            found = self._moments[key] = _EPOCH + timedelta(minutes=key)
        return found

    def pools(self, department: str, sex: str, age: int, inpatient: bool) -> _Pools:
        band = 5 if age < 14 else 15 if age < 18 else 40  # the only age limits are 14 and 18
        key = (department, sex, band, inpatient)
        found = self._pools.get(key)
        if found is None:
            found = self._pools[key] = _pools(department, sex, band, inpatient)
        return found

    def boost(self) -> float:
        """Steers big-ticket items: more when the running total lags the target, fewer when
        it leads, so that the total lands near ``FEN_PER_LINE`` times the lines."""
        return 1.8 if self.fen_done < FEN_PER_LINE * self.lines_done else 0.3

    def invoice(self, plan: _Plan, citizen: Citizen, bill_number: str, salt: bytes) -> Invoice:
        rng = self.rng
        hospital = self.hospitals[plan.hospital]
        visit_day = date(YEAR, 1, 1) + timedelta(days=plan.day)
        age = citizen.age_on(visit_day)
        bill = _Bill(plan.department, plan.inpatient)
        if plan.inpatient:
            diagnoses = self._stay(bill, plan, hospital, citizen.sex, age)
        else:
            diagnoses = self._visit(bill, plan, hospital, citizen.sex, age)
        lines = bill.sorted_lines()
        if len(lines) != plan.lines:
            raise AssertionError(f"planned {plan.lines} lines, built {len(lines)}")
        total = sum(line.amount for line in lines)
        self.lines_done += len(lines)
        self.fen_done += total
        insurance = 0 if rng.random() < 0.88 else total * rng.randint(5, 50) // 100
        issued = plan.issued_minute
        return Invoice(
            bill_code=INPATIENT_BILL_CODE if plan.inpatient else OUTPATIENT_BILL_CODE,
            bill_number=bill_number,
            check_code=f"{rng.getrandbits(24):06x}",
            hospital=hospital.code,
            issued_at=self.moment(issued // 1440, issued % 1440),
            visit_type=VisitType.INPATIENT if plan.inpatient else VisitType.OUTPATIENT,
            admitted_on=visit_day if plan.inpatient else None,
            discharged_on=visit_day + timedelta(days=plan.duration) if plan.inpatient else None,
            department=plan.department,
            diagnoses=tuple(diagnoses),
            patient_commitment=patient_commitment(citizen.id_number, salt),
            total=total,
            insurance_paid=insurance,
            patient_paid=total - insurance,
            lines=lines,
        )

    def _diagnoses(self, department: str, sex: str, first: str | None = None) -> list[str]:
        rng = self.rng
        codes = [c for c, s in DIAGNOSES[department] if s in ("", sex) and c != first]
        picked = _choose(rng, codes, 1 if rng.random() < 0.6 else 2)
        return [first, *picked] if first else picked

    # -- an outpatient visit: consultation, lab work, examinations, treatment, prescription --

    def _visit(
        self, bill: _Bill, plan: _Plan, hospital: DemoHospital, sex: str, age: int
    ) -> list[str]:
        rng = self.rng
        dept = plan.department
        pools = self.pools(dept, sex, age, False)
        day, start, span = plan.day, plan.minute, plan.duration

        def at(fraction: float) -> tuple[int, datetime]:
            minute = start + int(span * fraction)
            return minute, self.moment(day, minute)

        def put(item: CatalogueItem, quantity: int, fraction: float) -> None:
            minute, when = at(fraction)
            bill.add(item, quantity, 0, minute, when)

        put(self._consultation(dept, hospital.level), 1000, 0.0)
        left = plan.lines - 1
        reserve = min(left, rng.randint(1, 4))  # lines kept for the prescription
        # Lab work.
        if left - reserve >= 3 and rng.random() < _OUT_LAB.get(dept, 0.3):
            budget = int((left - reserve) * rng.uniform(0.3, 0.9))
            left -= self._lab_panels(bill, pools, budget, 0, *at(0.15))
        # Examinations.
        if (
            left > reserve
            and pools.major_exams
            and rng.random() < min(0.9, _OUT_MAJOR.get(dept, 0.02) * self.boost())
        ):
            put(rng.choice(pools.major_exams), 1000, 0.35)
            left -= 1
            if left > reserve:
                put(BY_NAME["医用胶片"], 1000, 0.35)
                left -= 1
        if left > reserve and pools.exams and rng.random() < _OUT_EXAM.get(dept, 0.2):
            count = rng.randint(2, 4) if dept == "眼科" else 1
            for item in _choose(rng, pools.exams, min(count, left - reserve)):
                put(item, 1000, 0.35)
                left -= 1
        # Treatment.
        if left > reserve and pools.treatments and rng.random() < _OUT_TREAT.get(dept, 0.0):
            for item in _choose(rng, pools.treatments, min(rng.randint(1, 3), left - reserve)):
                put(item, min(item.usual_daily_milli, item.max_outpatient_milli), 0.5)
                left -= 1
        # Herbal decoction (中药饮片): one line a herb, plus the decocting fee.
        if pools.herbs and left >= 8 and rng.random() < 0.7:
            doses = rng.choice((5, 7, 7, 7, 10, 14))
            count = min(left - 1, rng.randint(8, 16))
            for herb in _choose(rng, pools.herbs, count):
                grams = rng.randint(herb.usual_daily_milli, herb.max_daily_milli) // 1000
                put(herb, grams * doses * 1000, 0.7)
            put(BY_NAME["中药代煎"], doses * 1000, 0.7)
            left -= count + 1
        # Infusion at the clinic (门诊输液).
        if left >= 5 and dept in ("内科", "儿科", "急诊科", "全科医学科") and rng.random() < 0.15:
            drips = [i for i in pools.injected if not i.high_cost]
            if drips:
                fee = "小儿头皮静脉输液" if dept == "儿科" and age < 14 else "静脉输液"
                put(BY_NAME[fee], 1000, 0.8)
                put(BY_NAME["一次性使用输液器(带针)"], 1000, 0.8)
                put(BY_NAME["氯化钠注射液(100ml:0.9g)"], 1000, 0.8)
                drug = rng.choice(drips)
                put(drug, drug.usual_daily_milli, 0.8)
                left -= 4
        # The prescription fills what is left; then more lab tests, examinations, materials.
        for item in self._fillers(rng, pools, bill):
            if left == 0:
                break
            quantity = self._outpatient_quantity(item)
            quantity = min(quantity, bill.room(item, 0))
            if quantity > 0:
                put(item, quantity, 0.7 if item.kind.is_drug else 0.3)
                left -= 1
        if left:
            raise AssertionError(f"cannot fill {plan.lines} outpatient lines in {dept}")
        return self._diagnoses(dept, sex)

    def _fillers(self, rng: random.Random, pools: _Pools, bill: _Bill) -> list[CatalogueItem]:
        used = {code for _, code in bill.used}
        drugs = [i for i in pools.oral if i.code not in used]
        rng.shuffle(drugs)
        labs = [i for i in pools.labs if i.code not in used]
        rng.shuffle(labs)
        exams = [i for i in pools.exams if i.code not in used]
        materials = [
            BY_NAME[n] for n in ("医用棉签", "一次性使用检查手套", "医用无菌纱布", "透明敷贴")
        ]
        return drugs + labs + exams + [m for m in materials if m.code not in used]

    def _outpatient_quantity(self, item: CatalogueItem) -> int:
        rng = self.rng
        if not item.kind.is_drug:
            return min(item.usual_daily_milli, item.max_outpatient_milli)
        if item.max_outpatient_milli == 3000:  # a packaged drug: one or two packs
            return rng.choice((1000, 1000, 2000))
        days = rng.choice((7, 14, 14, 28)) if item.long_prescription else rng.randint(3, 7)
        return item.usual_daily_milli * days

    def _consultation(self, dept: str, level: HospitalLevel) -> CatalogueItem:
        if dept == "急诊科":
            return BY_NAME["急诊诊查费"]
        if dept == "中医科" and self.rng.random() < 0.6:
            return BY_NAME["中医辨证论治费"]
        weights = {_T: (5, 3, 2), _S: (7, 3, 0)}.get(level, (1, 0, 0))
        names = ("普通门诊诊查费", "副主任医师门诊诊查费", "主任医师门诊诊查费")
        return BY_NAME[self.rng.choices(names, weights)[0]]

    def _lab_panels(
        self, bill: _Bill, pools: _Pools, budget: int, day: int, minute: int, when: datetime
    ) -> int:
        """Orders lab panels (one line a test, plus the blood draw) within ``budget`` lines;
        returns the number of lines added."""
        rng = self.rng
        allowed = {i.code for i in pools.labs}
        names = [n for n, _ in _PANEL_WEIGHTS]
        weights = [float(w) for _, w in _PANEL_WEIGHTS]
        added = 0
        blood = False
        while names and budget - added > 0:
            i = bisect.bisect(_cumulative(weights), rng.random() * sum(weights))
            i = min(i, len(names) - 1)
            name = names.pop(i)
            weights.pop(i)
            tests = [
                BY_NAME[t]
                for t in LAB_PANELS[name]
                if BY_NAME[t].code in allowed and bill.room(BY_NAME[t], day) >= 1000
            ]
            draw = 0 if blood or name in _URINE_AND_STOOL else 2
            if not tests or len(tests) + draw > budget - added:
                continue
            if draw:
                bill.add(BY_NAME["静脉采血"], 1000, day, minute, when)
                bill.add(BY_NAME["一次性使用真空采血管"], 3000, day, minute, when)
                blood = True
            for test in tests:
                bill.add(test, 1000, day, minute, when)
            added += len(tests) + draw
        return added

    # -- an inpatient stay: daily charges, admission work-up, surgery, the daily regimen --------

    def _stay(
        self, bill: _Bill, plan: _Plan, hospital: DemoHospital, sex: str, age: int
    ) -> list[str]:
        rng = self.rng
        dept = plan.department
        pools = self.pools(dept, sex, age, True)
        first, days = plan.day, plan.duration
        boost = self.boost()
        left = plan.lines

        def put(item: CatalogueItem, quantity: int, day: int, minute: int) -> None:
            bill.add(item, quantity, first + day, minute, self.moment(first + day, minute))

        # Daily charges: bed, nursing, ward round (算入不算出: the discharge day is not charged).
        bed = rng.choices(
            ("普通病房床位费(三人间)", "普通病房床位费(双人间)", "普通病房床位费(单人间)"),
            (85, 12, 3),
        )[0]
        icu_days = 0
        if dept in ("内科", "神经内科") and rng.random() < 0.04 * boost:
            icu_days = min(days, rng.randint(1, 3))
        care = ("Ⅱ级护理", "Ⅲ级护理") if hospital.level <= _P else ("Ⅰ级护理", "Ⅱ级护理")
        for d in range(days):
            put(BY_NAME["监护病房床位费" if d < icu_days else bed], 1000, d, 480)
            put(BY_NAME[care[0] if d < 2 else care[1]], 1000, d, 480)
            put(BY_NAME["住院诊查费"], 1000, d, 480)
        left -= 3 * days
        # The operation, if any.
        diagnoses: list[str] = []
        surgery_day = -1
        rate = (
            _SURGERY_RATE.get(dept, 0.0)
            if hospital.level >= _S or hospital.kind in ("ortho", "eye")
            else 0.0
        )
        if pools.surgeries and days >= 2 and rng.random() < min(0.95, rate * boost):
            package = rng.choice(pools.surgeries)
            size = 6 + len(package.materials) + len(package.drugs)
            if size + 4 <= left:
                surgery_day = rng.randint(1, min(2, days - 1))
                left -= self._operation(bill, package, first + surgery_day)
                diagnoses.append(rng.choice(package.diagnoses))
        if not diagnoses:
            diagnoses = self._diagnoses(dept, sex)
        elif age >= 50 and rng.random() < 0.4:
            diagnoses.append(rng.choice(("I10", "E11.9")))
        # Admission work-up on day 0.
        if left >= 4:
            put(BY_NAME["常规心电图检查(十二通道)"], 1000, 0, 600)
            left -= 1
            budget = min(left - 3, rng.randint(14, 40))
            left -= self._lab_panels(bill, pools, budget, first, 390, self.moment(first, 390))
        if left >= 3 and pools.major_exams and rng.random() < min(0.9, 0.25 * boost):
            put(rng.choice(pools.major_exams), 1000, min(1, days - 1), 600)
            put(BY_NAME["医用胶片"], 1000, min(1, days - 1), 600)
            left -= 2
        if left >= 3 and pools.exams and rng.random() < 0.6:
            put(rng.choice(pools.exams), 1000, min(1, days - 1), 630)
            left -= 1
        # Infusion days: the carrier fluid and the infusion fee, giving set and syringe lines.
        iv_days = min(days, rng.randint(max(1, days // 2), days), (left - 2) // 4)
        iv_days = max(0, iv_days) if pools.injected else 0
        carrier = BY_NAME["氯化钠注射液(100ml:0.9g)"]
        for d in range(iv_days):
            put(carrier, 1000, d, 510)
        left -= 4 * iv_days
        # The regimen fills the remaining lines exactly, one line a drug (or therapy) a day.
        for item, day, quantity, minute in self._regimen(
            pools, dept, days, iv_days, surgery_day, diagnoses, boost
        ):
            if left == 0:
                break
            if bill.room(item, first + day) >= quantity:
                put(item, quantity, day, minute)
                left -= 1
        if left:
            raise AssertionError(f"cannot fill {plan.lines} lines of a {days}-day stay in {dept}")
        self._infusion_fees(bill, first, iv_days, put)
        return diagnoses

    def _operation(self, bill: _Bill, package: SurgeryPackage, day: int) -> int:
        rng = self.rng
        minute = rng.randint(510, 840)
        when = self.moment(day, minute)
        hours = rng.randint(1, 4)
        lines: list[tuple[str, int]] = [(package.procedure, 1000), (package.anaesthesia, 1000)]
        if package.anaesthesia != "局部浸润麻醉":
            lines += [("麻醉中监测", hours * 1000), ("一次性使用手术衣包", 1000)]
        lines += [(m, q * 1000) for m, q in package.materials]
        lines += [(d, 1000) for d in package.drugs]
        lines += [("医用无菌纱布", 4000)]
        if package.department in ("外科", "妇产科") and package.anaesthesia == "全身麻醉":
            lines.append(("组织病理学检查与诊断", 1000))
        for name, quantity in lines:
            bill.add(BY_NAME[name], quantity, day, minute, when)
        return len(lines)

    def _regimen(
        self,
        pools: _Pools,
        dept: str,
        days: int,
        iv_days: int,
        surgery_day: int,
        diagnoses: list[str],
        boost: float,
    ) -> Iterator[tuple[CatalogueItem, int, int, int]]:
        """Candidate lines (item, relative day, quantity, minute) in order of priority; lazy,
        the caller takes as many as the stay has lines left."""
        rng = self.rng
        ordered: set[str] = set()

        def course(
            item: CatalogueItem, first: int, last: int, split: bool, minute: int
        ) -> Iterator[tuple[CatalogueItem, int, int, int]]:
            ordered.add(item.code)
            for day in range(first, last):
                if split and item.usual_daily_milli >= 2000:
                    half = item.usual_daily_milli // 2
                    yield item, day, half, minute
                    yield item, day, item.usual_daily_milli - half, minute + 720
                else:
                    yield item, day, item.usual_daily_milli, minute

        def span(limit: int) -> tuple[int, int]:
            start = rng.randint(0, min(2, limit - 1))
            return start, rng.randint(start + max(1, (limit - start) // 2), limit)

        injected = [i for i in pools.injected if not i.high_cost or rng.random() < 0.1 * boost]
        for item in _choose(rng, injected, rng.randint(1, 4)) if iv_days else []:
            yield from course(item, *span(iv_days), rng.random() < 0.5, 510)
        if dept == "中医科" and pools.herbs:
            start, end = span(days)
            for herb in _choose(rng, pools.herbs, rng.randint(10, 16)):
                yield from course(herb, start, end, False, 540)
            yield from course(BY_NAME["中药代煎"], start, end, False, 540)
        for item in _choose(rng, pools.treatments, rng.randint(1, 3)):
            yield from course(item, *span(days), False, 900)
        for item in _choose(rng, pools.oral, rng.randint(2, 6)):
            yield from course(item, *span(days), False, 540)
        watch = min(days, 3 if surgery_day >= 0 or dept in ("内科", "神经内科") else 1)
        for name in ("心电监测", "血氧饱和度监测", "氧气吸入"):
            begin = max(0, surgery_day)
            yield from course(BY_NAME[name], begin, min(days, begin + watch), False, 1380)
        if "E11.9" in diagnoses:
            for day in range(days):
                for minute in (390, 630, 990, 1260):
                    yield BY_NAME["末梢血糖测定"], day, 1000, minute
        dressing = BY_NAME["中换药"]
        if surgery_day >= 0 and dressing.departments and dept in dressing.departments:
            for day in range(surgery_day + 2, days, 2):
                yield dressing, day, 1000, 600
        if days >= 5:  # the mid-stay check
            for test in LAB_PANELS["血常规"]:
                yield BY_NAME[test], days // 2, 1000, 390
        # Whatever is still missing: the rest of the department's drugs, then bedside care.
        rest = [i for i in pools.oral if i.code not in ordered]
        for item in _choose(rng, rest, len(rest)):
            yield from course(item, *span(days), False, 560)
        for day in range(days):
            for name in _BEDSIDE:
                yield BY_NAME[name], day, 1000, 700
                yield BY_NAME[name], day, 1000, 1100
        # A dense short stay: single units of anything allowed, up to each day's limit.
        sweep = [*pools.oral, *(BY_NAME[name] for name in _BEDSIDE)]
        for day in range(days):
            for item in sweep + list(pools.injected if day < iv_days else ()):
                for _ in range(item.max_daily_milli // 1000):
                    yield item, day, 1000, 1000

    def _infusion_fees(
        self,
        bill: _Bill,
        first: int,
        iv_days: int,
        put: Callable[[CatalogueItem, int, int, int], None],
    ) -> None:
        injected_per_day = [0] * iv_days
        for _, line in bill.lines:
            item = CATALOGUE[line.code]
            if item.injection and item.kind is not ItemKind.MATERIAL:
                day = line.time.toordinal() - _EPOCH.toordinal() - first
                if 0 <= day < iv_days:
                    injected_per_day[day] += 1
        for day, count in enumerate(injected_per_day):
            groups = max(1, min(6, (count + 1) // 2))
            put(BY_NAME["静脉输液"], groups * 1000, day, 520)
            put(BY_NAME["一次性使用输液器(带针)"], min(4, groups) * 1000, day, 520)
            syringes = min(
                count, bill.room(BY_NAME["一次性使用无菌注射器(5ml)"], first + day) // 1000
            )
            put(BY_NAME["一次性使用无菌注射器(5ml)"], max(1, syringes) * 1000, day, 520)


def _cumulative(weights: Sequence[float]) -> list[float]:
    out, running = [], 0.0
    for w in weights:
        running += w
        out.append(running)
    return out


# -- planning: who goes where, when, for how long ------------------------------------------------


class _CitizenPool:
    def __init__(self, members: list[int], weights: list[float]) -> None:
        self.members = members
        self.cumulative = _cumulative([weights[i] for i in members])

    def pick(self, rng: random.Random) -> int:
        i = bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])
        return self.members[min(i, len(self.members) - 1)]


def _plan(
    rng: random.Random,
    preset: Preset,
    hospitals: Sequence[DemoHospital],
    citizens: Sequence[Citizen],
) -> list[_Plan]:
    count = preset.invoices
    if count < len(hospitals):
        raise ValueError("every hospital issues at least one invoice")
    activity = [
        rng.lognormvariate(0.0, 0.75) * (1.5 if c.birth_date.year <= 1965 else 1.0)
        for c in citizens
    ]
    everyone = list(range(len(citizens)))
    pools = {
        "儿科": [i for i in everyone if citizens[i].birth_date.year >= 2012],
        "妇产科": [
            i
            for i in everyone
            if citizens[i].sex == "F" and 1975 <= citizens[i].birth_date.year <= 2004
        ],
        "adult": [i for i in everyone if citizens[i].birth_date.year <= 2010],
    }
    by_dept = {key: _CitizenPool(members, activity) for key, members in pools.items() if members}
    by_dept["any"] = _CitizenPool(everyone, activity)
    adult_depts = ("内科", "神经内科", "康复医学科")
    weights = [_INVOICE_WEIGHT[h.level] for h in hospitals]
    order = list(range(len(hospitals))) + rng.choices(
        range(len(hospitals)), weights, k=count - len(hospitals)
    )
    rng.shuffle(order)
    busy: dict[int, list[tuple[int, int, bool]]] = {}
    plans = []
    for h in order:
        hospital = hospitals[h]
        names, mix = _mix(_DEPARTMENT_MIX[hospital.kind])
        dept = rng.choices(names, mix)[0]
        group = dept if dept in ("儿科", "妇产科") else "adult" if dept in adult_depts else "any"
        if group not in by_dept:
            dept, group = names[0] if names[0] not in ("儿科", "妇产科") else "中医科", "any"
        share = _INPATIENT_SHARE[dept] * _INPATIENT_LEVEL[hospital.level]
        inpatient = hospital.kind != "dental" and rng.random() < share
        days = 2 + round(18 * rng.betavariate(1.6, 3.0)) if inpatient else 0
        # A free date for the patient: no two stays within 15 days of each other (that would
        # look like a split admission, 分解住院), no visit elsewhere during a stay, no stay
        # across a 14th or 18th birthday. A patient too busy after ten tries is swapped.
        for attempt in range(300):
            if attempt % 10 == 0:
                citizen = by_dept[group].pick(rng)
                stays = busy.setdefault(citizen, [])
            day = rng.randrange(_DAYS - days)
            born = citizens[citizen].birth_date
            if _free(stays, day, day + days, inpatient) and (
                _age_band(born, day) == _age_band(born, day + days)
            ):
                break
        stays.append((day, day + days, inpatient))
        if inpatient:
            low, high = _LINES_A_DAY.get(dept, (24, 40))
            lines = rng.randint(25, 45) + round(days * rng.uniform(low, high))
            plans.append(_Plan(h, dept, citizen, True, day, rng.randint(570, 960), days, lines))
        else:
            if dept == "急诊科":
                start = rng.randrange(1440 - 151)  # the invoice is issued the same day
            else:
                start = rng.randint(450, 690) if rng.random() < 0.62 else rng.randint(810, 1020)
            lines = 5 + int(35 * rng.betavariate(1.3, 3.2))
            duration = rng.randint(20, 150)
            plans.append(_Plan(h, dept, citizen, False, day, start, duration, lines))
    if preset.lines is not None:
        _fit_line_count(rng, plans, preset.lines)
    plans.sort(key=lambda p: (p.issued_minute, p.hospital))
    return plans


def _age_band(born: date, day: int) -> int:
    """0, 1, 2 for under 14, 14 to 17, 18 and over: the catalogue's age limits. A stay never
    crosses a band, so that one set of items is allowed from admission to discharge."""
    age = Citizen("", "", "", born).age_on(date(YEAR, 1, 1) + timedelta(days=day))
    return 0 if age < 14 else 1 if age < 18 else 2


def _free(stays: list[tuple[int, int, bool]], first: int, last: int, inpatient: bool) -> bool:
    for a, b, stay in stays:
        if inpatient and (a - 15 <= last and first <= b + 15 if stay else first <= a <= last):
            return False
        if not inpatient and stay and a <= first <= b:
            return False
    return True


def _fit_line_count(rng: random.Random, plans: list[_Plan], target: int) -> None:
    """Moves the planned line counts of inpatient stays (weighted by length) until the total is
    exactly ``target``; a stay keeps at least three lines a day and a small work-up."""
    stays = [p for p in plans if p.inpatient]
    gap = target - sum(p.lines for p in plans)
    if gap and not stays:
        raise ValueError("an exact line count needs inpatient stays to adjust")
    cumulative = _cumulative([float(p.duration) for p in stays])
    step = 1 if gap > 0 else -1
    while gap:
        before = gap
        for _ in range(abs(gap)):
            plan = stays[
                min(bisect.bisect(cumulative, rng.random() * cumulative[-1]), len(stays) - 1)
            ]
            if step < 0 and plan.lines <= 3 * plan.duration + 12:
                continue
            plan.lines += step
            gap -= step
        if gap == before:
            raise ValueError(f"cannot remove {-gap} more lines from the planned stays")


# -- the entry points ----------------------------------------------------------------------------


def generate(seed: int, preset: str | Preset = "small") -> DemoDataset:
    """Generates the dataset of ``preset`` ("quzhou", "small" or a custom ``Preset``) from
    ``seed``; pure and deterministic. Raises ``KeyError`` for an unknown preset name."""
    if isinstance(preset, Preset):
        spec = preset
    elif preset in PRESETS:
        spec = PRESETS[preset]
    else:
        raise KeyError(f"unknown demo preset {preset!r}; known: {', '.join(PRESETS)}")
    master = random.Random(seed)
    hospitals = _hospitals(seed, spec)
    citizens = _citizens(random.Random(master.getrandbits(64)), spec.citizens)
    plans = _plan(random.Random(master.getrandbits(64)), spec, hospitals, citizens)
    rng = random.Random(master.getrandbits(64))
    generator = _Generator(rng, hospitals)
    offsets = [rng.randrange(1, 400_000) for _ in hospitals]
    counters: dict[tuple[int, bool], int] = {}
    invoices: list[Invoice] = []
    patients: list[InvoicePatient] = []
    for plan in plans:
        key = (plan.hospital, plan.inpatient)
        counters[key] = counters.get(key, 0) + 1
        number = f"{plan.hospital + 1:04d}{offsets[plan.hospital] + counters[key]:06d}"
        salt = rng.randbytes(16)
        invoices.append(generator.invoice(plan, citizens[plan.citizen], number, salt))
        patients.append(InvoicePatient(plan.citizen, salt))
    return DemoDataset(
        spec.name, seed, hospitals, citizens, CATALOGUE, tuple(invoices), tuple(patients)
    )


_SIGNING: tuple[tuple[Invoice, ...], dict[str, bytes], bytes] | None = None


def _sign_range(bounds: tuple[int, int]) -> list[bytes]:
    assert _SIGNING is not None
    invoices, keys, separator = _SIGNING
    out = []
    for invoice in invoices[bounds[0] : bounds[1]]:
        record_hash = SignedFields.of(invoice).record_hash()
        # = verifier.canonical.signing_digest, with the domain separator computed once
        digest = keccak(b"\x19\x01" + separator + record_hash)
        out.append(sign_digest(keys[invoice.hospital], digest))
    return out


def sign_invoices(
    dataset: DemoDataset, domain: Domain, processes: int | None = None
) -> list[bytes]:
    """Signs every invoice's record hash (EIP-712, ``domain``) with its hospital's demo key;
    returns the 65-byte signatures in invoice order. Large datasets are signed by ``processes``
    forked workers (default: 2 from 2,000 invoices, where hashing the detail dominates)."""
    global _SIGNING
    invoices = dataset.invoices
    if processes is None:
        processes = 2 if len(invoices) >= 2_000 else 1
    _SIGNING = (invoices, {h.code: h.private_key for h in dataset.hospitals}, domain.separator)
    try:
        if processes <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return _sign_range((0, len(invoices)))
        chunk = max(1, len(invoices) // (processes * 8))
        ranges = [(lo, min(lo + chunk, len(invoices))) for lo in range(0, len(invoices), chunk)]
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            parts = pool.map(_sign_range, ranges)
        return [signature for part in parts for signature in part]
    finally:
        _SIGNING = None

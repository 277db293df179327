"""A format-2 bill (the national medical e-bill's fields) to build tests on: an outpatient
visit of an employee, settled with insurance at the till, 45.00 yuan in three lines, one of
them at a sub-fen unit price (0.4167 yuan a capsule)."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from verifier.canonical import patient_commitment

HOSPITAL = "H33080200001"


def patient(n: int = 1) -> dict[str, str]:
    return {
        "id_number": f"33080219900101{n:03d}X"[-18:],
        "name": f"患者{n}",
        "salt": hashlib.sha256(b"salt%d" % n).digest()[:16].hex(),
    }


def bill(n: int = 1, hospital: str = HOSPITAL, pat: dict[str, str] | None = None) -> dict[str, Any]:
    """Bill number ``n``; every sum adds up (see docs/invoice-format.md, format 2)."""
    pat = pat or patient(n)
    return copy.deepcopy(
        {
            "format": 2,
            "bill_code": "33060125",
            "bill_number": f"{n:010d}",
            "check_code": f"{n:06x}",
            "hospital": hospital,
            "issued_at": "2025-03-01T10:00:00+08:00",
            "business_number": f"MZ20250301{n:06d}",
            "visit_type": "outpatient",
            "visit_number": f"MZ{n:08d}",
            "visit_on": "2025-03-01",
            "department": "内科",
            "scheme": "employee",
            "diagnoses": ["J06.900"],
            "patient_commitment": "0x"
            + patient_commitment(pat["id_number"], bytes.fromhex(pat["salt"])).hex(),
            "total": 4500,
            "payment": {
                "fund": 1800,
                "account": 1200,
                "other": 0,
                "cash": 1500,
                "copay": 2700,
                "deductible": 0,
                "self_pay": 0,
            },
            "charges": [
                {"code": "01", "name": "西药费", "amount": 1000},
                {"code": "06", "name": "化验费", "amount": 2500},
                {"code": "11", "name": "诊察费", "amount": 1000},
            ],
            "lines": [
                {
                    "code": "001102000000100",
                    "name": "普通门诊诊查费",
                    "unit": "次",
                    "class": "A",
                    "unit_price_e4": 100000,
                    "quantity_milli": 1000,
                    "amount": 1000,
                    "self_amount": 0,
                    "self_rate_bp": 0,
                    "charge": "11",
                    "department": "内科",
                    "time": "2025-03-01T09:00:00+08:00",
                },
                {
                    "code": "XJ01CAA040A001010100001",
                    "name": "阿莫西林胶囊",
                    "form": "胶囊剂",
                    "specification": "0.25g*24粒",
                    "unit": "粒",
                    "class": "A",
                    "unit_price_e4": 4167,
                    "quantity_milli": 24000,
                    "amount": 1000,
                    "self_amount": 0,
                    "self_rate_bp": 0,
                    "charge": "01",
                    "department": "内科",
                    "time": "2025-03-01T09:30:00+08:00",
                },
                {
                    "code": "002501010150000",
                    "name": "血细胞分析",
                    "unit": "项",
                    "class": "B",
                    "unit_price_e4": 250000,
                    "quantity_milli": 1000,
                    "amount": 2500,
                    "self_amount": 250,
                    "self_rate_bp": 1000,
                    "charge": "06",
                    "department": "检验科",
                    "time": "2025-03-01T09:10:00+08:00",
                },
            ],
        }
    )

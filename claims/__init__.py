"""Reimbursement policies, adjudication and smart-audit rules: pure functions over plain data.

Nothing here does I/O except the explicit loaders of the package's own data files
(``bundled_policies``, ``load_policy``, ``load_rules``), and nothing imports chain, verifier or
api: the api maps its records onto ``ClaimInvoice`` (with its ``Scheme`` and ``TillSplit``),
``ClaimLine``, ``Citizen`` and ``CatalogueEntry``. Money is integer fen, ratios integer basis
points. docs/claims.md describes the policy format, the arithmetic and the audit rules.
"""

from claims.accumulator import Accumulator, PoolUsage
from claims.adjudication import adjudicate, chain_payers
from claims.audit import Hit, audit, needs_review
from claims.errors import (
    AccumulatorMismatch,
    ClaimInputInvalid,
    ClaimsError,
    DataFileInvalid,
    DuplicatePayer,
    PolicyInvalid,
    Problem,
    RulesInvalid,
)
from claims.model import (
    CHINA_TZ,
    Catalogue,
    CatalogueEntry,
    Citizen,
    ClaimInvoice,
    ClaimLine,
    HospitalLevel,
    ItemClass,
    Scheme,
    Sex,
    Share,
    TillChannel,
    TillSplit,
    VisitType,
)
from claims.policy import (
    Basis,
    Benefit,
    ByLevel,
    ClassRule,
    Coverage,
    Policy,
    PolicyKind,
    PolicyRules,
    bundled_policies,
    in_chain_order,
    load_policies,
    load_policy,
    policy_from_toml,
)
from claims.reasons import Note
from claims.result import (
    Adjudication,
    CategoryResult,
    LineResult,
    ShareResult,
    Status,
    line_results,
    share_results,
)
from claims.rules import AuditRules, Rule, Severity, load_rules, rules_from_toml

__all__ = [
    "CHINA_TZ",
    "Accumulator",
    "AccumulatorMismatch",
    "Adjudication",
    "AuditRules",
    "Basis",
    "Benefit",
    "ByLevel",
    "Catalogue",
    "CatalogueEntry",
    "CategoryResult",
    "Citizen",
    "ClaimInputInvalid",
    "ClaimInvoice",
    "ClaimLine",
    "ClaimsError",
    "ClassRule",
    "Coverage",
    "DataFileInvalid",
    "DuplicatePayer",
    "Hit",
    "HospitalLevel",
    "ItemClass",
    "LineResult",
    "Note",
    "Policy",
    "PolicyInvalid",
    "PolicyKind",
    "PolicyRules",
    "PoolUsage",
    "Problem",
    "Rule",
    "RulesInvalid",
    "Scheme",
    "Severity",
    "Sex",
    "Share",
    "ShareResult",
    "Status",
    "TillChannel",
    "TillSplit",
    "VisitType",
    "adjudicate",
    "audit",
    "bundled_policies",
    "chain_payers",
    "in_chain_order",
    "line_results",
    "load_policies",
    "load_policy",
    "load_rules",
    "needs_review",
    "policy_from_toml",
    "rules_from_toml",
    "share_results",
]

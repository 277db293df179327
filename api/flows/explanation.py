"""What a citizen reads of a decision: the adjudication's outcome and each step of its
arithmetic in zh and en, stored with the claim (:func:`explain`), and, when the claim is read,
how each line of the invoice counted (:func:`readable`)."""

from __future__ import annotations

from typing import Any

import claims
from verifier.invoice import Invoice

_ITEM_CLASS = {c.value: c for c in claims.ItemClass}  # by value: the verifier's class too


def explain(adjudication: claims.Adjudication) -> dict[str, Any]:
    """What a citizen reads: the outcome and each step of the arithmetic, in zh and en."""
    return {
        "amount_fen": adjudication.amount_fen,
        "already_paid_fen": adjudication.already_paid_fen,  # what it was priced after
        "status": adjudication.status,
        "reason": {
            "code": adjudication.reason.code,
            "zh": adjudication.reason.zh,
            "en": adjudication.reason.en,
        },
        "steps": [{"code": n.code, "zh": n.zh, "en": n.en} for n in adjudication.steps],
        "categories": [
            {
                "item_class": c.item_class.value,
                "amount_fen": c.amount_fen,
                "in_policy_fen": c.in_policy_fen,
                "self_share_fen": c.self_share_fen,
                "out_of_policy_fen": c.out_of_policy_fen,
                "excluded_fen": c.excluded_fen,
            }
            for c in adjudication.categories
        ],
        # What the arithmetic started from: the lines (format 1, a manual claim on the fund)
        # or the till's shares of a format-2 bill, each share with what paid it before.
        "scheme": adjudication.scheme.value,
        "basis": adjudication.basis.value,
        "paid_at_till_fen": adjudication.paid_at_till_fen,
        "shares": [
            {
                "share": r.share.value,
                "amount_fen": r.amount_fen,
                "account_fen": r.account_fen,
                "earlier_fen": r.earlier_fen,
                "left_fen": r.left_fen,
                "coverage": r.coverage.value,
                "zh": r.note.zh,
                "en": r.note.en,
            }
            for r in adjudication.shares
        ],
        # The class rules the lines were counted by: with the invoice's lines (anchored, never
        # changed) they give each line's figures and sentence again, which :func:`readable`
        # does when a claim is read (an inpatient stay has hundreds of lines, and most
        # claims are never opened).
        "class_rules": {
            item_class.value: {
                "coverage": rule.coverage.value,
                "self_share_bp": rule.self_pay_share_bp,
            }
            for item_class, rule in adjudication.class_rules.items()
        },
    }


def readable(explanation: dict[str, Any], invoice: Invoice) -> dict[str, Any]:
    """A stored explanation with how each line of ``invoice`` counted, and its sentence in zh
    and en ("line by line")."""
    rules = explanation.get("class_rules")
    if rules is None or explanation.get("basis") == "shares":
        return explanation  # counted on the till's shares, not line by line
    class_rules = {
        claims.ItemClass(name): claims.ClassRule(
            claims.Coverage(rule["coverage"]), rule["self_share_bp"]
        )
        for name, rule in rules.items()
    }
    lines = [
        claims.ClaimLine(
            ln.code,
            ln.name,
            _ITEM_CLASS[ln.item_class],
            ln.unit_price,
            ln.quantity_milli,
            ln.amount,
            ln.department,
            ln.time,
        )
        for ln in invoice.lines
    ]
    return {
        **explanation,
        "lines": [
            {
                "line": ln.index + 1,
                "code": ln.code,
                "name": ln.name,
                "class": ln.item_class.value,
                "amount_fen": ln.amount_fen,
                "in_policy_fen": ln.in_policy_fen,
                "self_share_fen": ln.self_share_fen,
                "self_share_bp": ln.self_share_bp,
                "out_of_policy_fen": ln.out_of_policy_fen,
                "excluded_fen": ln.excluded_fen,
                "zh": ln.note.zh,
                "en": ln.note.en,
            }
            for ln in claims.line_results(lines, class_rules)
        ],
    }

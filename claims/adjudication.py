"""Adjudication: what one payer pays on one invoice under its policy, and why.

The arithmetic, in order (docs/claims.md shows a worked example):

1. Deadline: the claim date (China Standard Time) must be on or before the issue date plus
   ``deadline_days``; otherwise the claim is rejected with ``deadline_passed``.
2. Eligibility: a policy with ``eligible_flags`` pays only citizens carrying one of them.
3. Lines: each line counts by its class: in policy (after the class's self-pay share, rounded
   half up to the fen per line), out of policy, or excluded.
4. Earlier payers: what they paid is taken out of the in-policy amount first, then out of the
   out-of-policy amount; what is left is this payer's base.
5. Deductible: the year's remaining deductible (or critical-illness threshold) absorbs the base,
   in-policy part first.
6. Ratio: the rest times the ratio for the hospital level (and the out-of-policy rest times the
   out-of-policy ratio), each rounded half up to the fen once per invoice.
7. Caps: the pool's yearly cap, then the policy's annual cap over every pool, then never more
   than is still unpaid on the invoice.

Everything is integer fen; inputs are never changed; the updated accumulator is returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from claims import reasons
from claims.accumulator import Accumulator, PoolUsage
from claims.errors import AccumulatorMismatch, ClaimInputInvalid, DuplicatePayer
from claims.model import CHINA_TZ, Citizen, ClaimInvoice, ClaimLine, ItemClass
from claims.money import percent, share_of, yuan
from claims.policy import Policy
from claims.reasons import Note, note
from claims.result import Adjudication, CategoryResult, Status, split_line


def adjudicate(
    policy: Policy,
    invoice: ClaimInvoice,
    citizen: Citizen,
    accumulator: Accumulator,
    already_paid_fen: int = 0,
) -> Adjudication:
    """What ``policy``'s payer pays on ``invoice`` after earlier payers paid ``already_paid_fen``.

    ``accumulator`` holds the citizen's totals with this payer for the invoice's policy year
    (``invoice.policy_year``). Raises ``ClaimInputInvalid`` when the invoice has no
    ``claimed_at`` or ``already_paid_fen`` is negative, and ``AccumulatorMismatch`` when the
    accumulator belongs to another payer or year.
    """
    if invoice.claimed_at is None:
        raise ClaimInputInvalid("claimed_at", "adjudication needs the time of the claim")
    if isinstance(already_paid_fen, bool) or already_paid_fen < 0:
        raise ClaimInputInvalid("already_paid_fen", f"must be >= 0, got {already_paid_fen!r}")
    year = invoice.policy_year
    if (accumulator.payer, accumulator.year) != (policy.payer, year):
        raise AccumulatorMismatch((policy.payer, year), (accumulator.payer, accumulator.year))

    names = {"payer_zh": policy.name_zh, "payer_en": policy.name_en}
    categories = _categories(policy, invoice.lines)
    in_policy = sum(c.in_policy_fen for c in categories)
    out_of_policy = sum(c.out_of_policy_fen for c in categories)
    benefit = policy.benefit_for(invoice.visit_type)
    level = invoice.hospital_level
    result = Adjudication(
        payer=policy.payer,
        invoice_reference=invoice.reference,
        status=Status.APPROVED,
        amount_fen=0,
        reason=note(reasons.PAID, amount=yuan(0), **names),
        steps=(),
        invoice_lines=invoice.lines,
        class_rules=policy.classes,
        categories=categories,
        last_claim_day=invoice.issue_date + timedelta(days=policy.deadline_days),
        in_policy_fen=in_policy,
        out_of_policy_fen=out_of_policy,
        already_paid_fen=already_paid_fen,
        base_fen=0,
        out_of_policy_base_fen=0,
        deductible_fen=benefit.deductible_fen.at(level),
        deductible_applied_fen=0,
        ratio_bp=benefit.ratio_bp.at(level),
        out_of_policy_ratio_bp=benefit.out_of_policy_ratio_bp,
        before_caps_fen=0,
        cap_cut_fen=0,
        accumulator=accumulator,
    )

    # 1. Deadline.
    claim_day = invoice.claimed_at.astimezone(CHINA_TZ).date()
    dates = {
        "issue_date": invoice.issue_date.isoformat(),
        "last_day": result.last_claim_day.isoformat(),
        "claim_date": claim_day.isoformat(),
        "days": policy.deadline_days,
    }
    if claim_day > result.last_claim_day:
        return replace(
            result, status=Status.REJECTED, reason=note(reasons.DEADLINE_PASSED, **dates)
        )
    steps = [note("deadline_ok", **dates)]

    # 2. Eligibility.
    if policy.eligible_flags:
        wanted = ", ".join(sorted(policy.eligible_flags))
        if not policy.is_eligible(citizen.flags):
            return replace(
                result,
                status=Status.REJECTED,
                steps=tuple(steps),
                reason=note(reasons.NOT_ELIGIBLE, flags=wanted, **names),
            )
        held = ", ".join(sorted(policy.eligible_flags & citizen.flags))
        steps.append(note("eligible", flags=held, **names))

    # 3. Lines, by class.
    steps.extend(category.note for category in categories)

    # 4. Earlier payers: taken from the in-policy part first.
    left_on_invoice = max(0, invoice.total_fen - already_paid_fen)
    base = max(0, in_policy - already_paid_fen)
    out_base = max(0, out_of_policy - max(0, already_paid_fen - in_policy))
    if already_paid_fen:
        steps.append(
            note(
                "earlier_payers",
                paid=yuan(already_paid_fen),
                left=yuan(left_on_invoice),
                base=yuan(base),
                out_base=yuan(out_base),
            )
        )

    # 5. Deductible (threshold), yearly per pool, in-policy part first.
    usage = accumulator.pool(benefit.pool)
    deductible_left = max(0, result.deductible_fen - usage.deductible_used_fen)
    applied_in = min(base, deductible_left)
    applied_out = min(out_base, deductible_left - applied_in)
    payable, out_payable = base - applied_in, out_base - applied_out
    if result.deductible_fen:
        steps.append(
            note(
                "deductible",
                deductible=yuan(result.deductible_fen),
                used=yuan(min(usage.deductible_used_fen, result.deductible_fen)),
                applied=yuan(applied_in + applied_out),
                payable=yuan(payable + out_payable),
            )
        )

    # 6. Ratios, rounded half up once per bucket.
    paid_in = share_of(payable, result.ratio_bp)
    paid_out = share_of(out_payable, result.out_of_policy_ratio_bp)
    if base or not out_base:
        figures = {
            "ratio": percent(result.ratio_bp),
            "payable": yuan(payable),
            "paid": yuan(paid_in),
        }
        if benefit.ratio_bp.is_single:
            steps.append(note("ratio_flat", **figures))
        else:
            steps.append(
                note(
                    "ratio",
                    level_zh=reasons.LEVEL_ZH[level],
                    level_en=reasons.LEVEL_EN[level],
                    **figures,
                )
            )
    if out_base:
        steps.append(
            note(
                "out_of_policy_ratio",
                ratio=percent(result.out_of_policy_ratio_bp),
                payable=yuan(out_payable),
                paid=yuan(paid_out),
            )
        )

    # 7. Caps and the remainder limit.
    before_caps = paid_in + paid_out
    amount = before_caps
    pool_left = max(0, benefit.cap_fen - usage.paid_fen)
    cap_name = _pool_cap(benefit.pool)
    if amount > pool_left:
        steps.append(_cap_note(cap_name, benefit.cap_fen, usage.paid_fen, pool_left, amount))
        amount = pool_left
    if policy.annual_cap_fen is not None:
        annual_left = max(0, policy.annual_cap_fen - accumulator.paid_fen)
        if amount > annual_left:
            steps.append(
                _cap_note(
                    ("年度最高支付限额（合计）", "Annual cap over all visits"),
                    policy.annual_cap_fen,
                    accumulator.paid_fen,
                    annual_left,
                    amount,
                )
            )
            amount = annual_left
    capped = amount < before_caps
    if amount > left_on_invoice:
        steps.append(
            note("remainder", left=yuan(left_on_invoice), cut=yuan(amount - left_on_invoice))
        )
        amount = left_on_invoice

    if amount:
        outcome = note(reasons.PAID, amount=yuan(amount), **names)
    elif in_policy + out_of_policy == 0:
        outcome = note(reasons.NOTHING_IN_SCOPE, **names)
    elif base + out_base == 0 or left_on_invoice == 0:
        outcome = note(reasons.NOTHING_LEFT, **names)
    elif payable + out_payable == 0:
        outcome = note(reasons.BELOW_DEDUCTIBLE)
    elif before_caps == 0:
        outcome = note(reasons.ZERO_RATIO)
    elif capped:
        outcome = note(reasons.CAP_REACHED, **names)
    else:  # pragma: no cover - every zero has a cause above
        outcome = note(reasons.NOTHING_LEFT, **names)

    updated = accumulator.with_pool(
        benefit.pool,
        PoolUsage(
            usage.deductible_used_fen + applied_in + applied_out,
            usage.paid_fen + amount,
        ),
    )
    return replace(
        result,
        amount_fen=amount,
        reason=outcome,
        steps=tuple(steps),
        base_fen=base,
        out_of_policy_base_fen=out_base,
        deductible_applied_fen=applied_in + applied_out,
        before_caps_fen=before_caps,
        cap_cut_fen=before_caps - amount,
        accumulator=updated,
    )


def chain_payers(
    policies_in_order: Sequence[Policy],
    invoice: ClaimInvoice,
    citizen: Citizen,
    accumulators: Mapping[str, Accumulator],
    already_paid_fen: int = 0,
) -> list[Adjudication]:
    """Adjudicates ``invoice`` by each payer in turn, each paying from what the earlier left.

    ``accumulators`` maps payer id to the citizen's totals for the invoice's policy year; a
    payer without one starts from zero. ``already_paid_fen`` is what was paid before the chain
    (e.g. the ledger's cumulative amount). The amounts add up to at most the invoice total
    minus ``already_paid_fen``. Raises ``DuplicatePayer`` when a payer appears twice, and what
    ``adjudicate`` raises.
    """
    seen: set[str] = set()
    for policy in policies_in_order:
        if policy.payer in seen:
            raise DuplicatePayer(policy.payer)
        seen.add(policy.payer)
    year = invoice.policy_year
    paid = already_paid_fen
    results: list[Adjudication] = []
    for policy in policies_in_order:
        accumulator = accumulators.get(policy.payer) or Accumulator.empty(policy.payer, year)
        result = adjudicate(policy, invoice, citizen, accumulator, paid)
        paid += result.amount_fen
        results.append(result)
    return results


def _categories(policy: Policy, lines: Sequence[ClaimLine]) -> tuple[CategoryResult, ...]:
    sums: dict[ItemClass, list[int]] = {}
    for line in lines:
        row = sums.get(line.item_class)
        if row is None:
            row = sums[line.item_class] = [0, 0, 0, 0, 0]
        parts = split_line(policy.classes[line.item_class], line.amount_fen)
        row[0] += line.amount_fen
        row[1] += parts[0]
        row[2] += parts[1]
        row[3] += parts[2]
        row[4] += parts[3]
    return tuple(
        CategoryResult(item_class, *sums[item_class])
        for item_class in ItemClass
        if item_class in sums
    )


def _pool_cap(pool: str) -> tuple[str, str]:
    names = {
        "outpatient": ("门诊年度最高支付限额", "Yearly outpatient cap"),
        "inpatient": ("住院年度最高支付限额", "Yearly inpatient cap"),
    }
    return names.get(pool, ("年度最高支付限额", "Yearly cap"))


def _cap_note(name: tuple[str, str], cap: int, used: int, left: int, amount: int) -> Note:
    return note(
        "cap",
        cap_zh=name[0],
        cap_en=name[1],
        cap=yuan(cap),
        used=yuan(used),
        left=yuan(left),
        cut=yuan(amount - left),
    )

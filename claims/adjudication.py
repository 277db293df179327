"""Adjudication: what one payer pays on one invoice under its policy, and why.

The arithmetic, in order (docs/claims.md shows worked examples):

0. Scheme: an invoice with the till's split is counted by the payer's section for its insurance
   scheme; a payer without one rejects it with ``scheme_not_served``. An invoice without a
   split is counted by the policy's top-level rules, from its lines, as before the split.
1. Deadline: the claim date (China Standard Time) must be on or before the issue date plus
   ``deadline_days``; otherwise the claim is rejected with ``deadline_passed``.
2. Eligibility: a policy with ``eligible_flags`` pays only citizens carrying one of them.
3. Till: what the pooled fund, the personal account and the other funds paid at the till is
   never paid again, and claims together never pay more than the patient paid in cash. A
   payer whose own channel (the section's ``till_channel``) paid anything settled the invoice
   at the till and pays 0 (``settled_at_till``).
4. Base. From the lines (basis ``lines``): each line counts by its class (in policy after the
   class's self-pay share, rounded half up to the fen per line; out of policy; excluded), and
   what was paid before, at the till and by earlier payers, is taken out of the in-policy
   amount first, then out of the out-of-policy amount. From the till's shares (basis
   ``shares``): the personal account, then earlier payers, are attributed to the copay, the
   deductible share and the self-pay share in that order; what is left of each in cash counts
   by the share's coverage.
5. Deductible: the year's remaining deductible (or critical-illness threshold) absorbs the base,
   in-policy part first.
6. Ratio: the rest times the ratio for the hospital level (and the out-of-policy rest times the
   out-of-policy ratio), each rounded half up to the fen once per invoice.
7. Caps: the pool's yearly cap, then the policy's annual cap over every pool, then never more
   than is still unpaid: the total less what the till and earlier payers paid (with a split,
   the cash not reimbursed yet).

Everything is integer fen; inputs are never changed; the updated accumulator is returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from claims import reasons
from claims.accumulator import Accumulator, PoolUsage
from claims.counting import Base, count, till_note
from claims.errors import AccumulatorMismatch, ClaimInputInvalid, DuplicatePayer
from claims.model import (
    CHINA_TZ,
    Citizen,
    ClaimInvoice,
    HospitalLevel,
)
from claims.money import percent, share_of, yuan
from claims.policy_model import Basis, Benefit, Policy, PolicyRules
from claims.reasons import Note, note
from claims.result import Adjudication, Status


def adjudicate(
    policy: Policy,
    invoice: ClaimInvoice,
    citizen: Citizen,
    accumulator: Accumulator,
    already_paid_fen: int = 0,
) -> Adjudication:
    """What ``policy``'s payer pays on ``invoice`` after earlier payers paid ``already_paid_fen``.

    ``already_paid_fen`` counts claims only (what was paid at the till is in ``invoice.till``).
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
    rules = policy.rules_for(invoice)
    if rules is None:
        return _not_served(policy, invoice, accumulator, already_paid_fen)

    names = {"payer_zh": rules.name_zh, "payer_en": rules.name_en}
    benefit = rules.benefit_for(invoice.visit_type)
    base = count(rules, invoice, already_paid_fen)
    result = _opened(policy, rules, invoice, base, accumulator, already_paid_fen)

    # 0 to 2. Scheme, deadline, eligibility.
    steps, refusal = _gate(policy, invoice, citizen, result, names)
    if refusal is not None:
        return replace(result, status=Status.REJECTED, steps=tuple(steps), reason=refusal)

    # 3. Till: what it paid is never paid again; the payer's own channel settled it there.
    till = invoice.till
    if till is not None:
        steps.append(till_note(till))
        channel = rules.till_channel
        if channel is not None and till.channel(channel):
            settled = note(
                reasons.SETTLED_AT_TILL,
                channel_zh=reasons.CHANNEL_ZH[channel],
                channel_en=reasons.CHANNEL_EN[channel],
                paid=yuan(till.channel(channel)),
                **names,
            )
            return replace(result, steps=tuple(steps), reason=settled)

    # 4. The base, from the lines or from the till's shares.
    steps.extend(base.steps)
    result = replace(result, base_fen=base.base_fen, out_of_policy_base_fen=base.out_base_fen)
    return _pay(result, benefit, invoice.hospital_level, rules.annual_cap_fen, base, steps, names)


def _opened(
    policy: Policy,
    rules: PolicyRules,
    invoice: ClaimInvoice,
    base: Base,
    accumulator: Accumulator,
    already_paid_fen: int,
) -> Adjudication:
    """The adjudication as it starts: approved, nothing paid, the figures that do not depend on
    the steps."""
    benefit = rules.benefit_for(invoice.visit_type)
    level = invoice.hospital_level
    return Adjudication(
        payer=policy.payer,
        invoice_reference=invoice.reference,
        status=Status.APPROVED,
        amount_fen=0,
        reason=note(reasons.PAID, amount=yuan(0), payer_zh=rules.name_zh, payer_en=rules.name_en),
        steps=(),
        invoice_lines=invoice.lines,
        class_rules=rules.classes,
        categories=base.categories,
        last_claim_day=invoice.issue_date + timedelta(days=policy.deadline_days),
        in_policy_fen=base.in_policy_fen,
        out_of_policy_fen=base.out_of_policy_fen,
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
        scheme=invoice.scheme,
        basis=rules.basis,
        pool=benefit.pool,
        till=invoice.till,
        paid_at_till_fen=base.paid_at_till_fen,
        shares=base.shares,
    )


def _gate(
    policy: Policy,
    invoice: ClaimInvoice,
    citizen: Citizen,
    result: Adjudication,
    names: Mapping[str, str],
) -> tuple[list[Note], Note | None]:
    """Steps 0 to 2: the steps passed, and the reason of a rejection (None: go on)."""
    steps: list[Note] = []
    if invoice.till is not None:
        scheme = invoice.scheme
        steps.append(
            note(
                "scheme",
                scheme_zh=reasons.SCHEME_ZH[scheme],
                scheme_en=reasons.SCHEME_EN[scheme],
                **names,
            )
        )

    # 1. Deadline.
    assert invoice.claimed_at is not None, "checked by adjudicate"
    claim_day = invoice.claimed_at.astimezone(CHINA_TZ).date()
    dates = {
        "issue_date": invoice.issue_date.isoformat(),
        "last_day": result.last_claim_day.isoformat(),
        "claim_date": claim_day.isoformat(),
        "days": policy.deadline_days,
    }
    if claim_day > result.last_claim_day:
        return steps, note(reasons.DEADLINE_PASSED, **dates)
    steps.append(note("deadline_ok", **dates))

    # 2. Eligibility.
    if policy.eligible_flags:
        wanted = ", ".join(sorted(policy.eligible_flags))
        if not policy.is_eligible(citizen.flags):
            return steps, note(reasons.NOT_ELIGIBLE, flags=wanted, **names)
        held = ", ".join(sorted(policy.eligible_flags & citizen.flags))
        steps.append(note("eligible", flags=held, **names))
    return steps, None


def _pay(
    result: Adjudication,
    benefit: Benefit,
    level: HospitalLevel,
    annual_cap_fen: int | None,
    base: Base,
    steps: list[Note],
    names: Mapping[str, str],
) -> Adjudication:
    """Steps 5 to 7 (deductible, ratios, caps) and the outcome, on the base of step 4."""
    accumulator = result.accumulator
    left_on_invoice = base.left_on_invoice_fen

    # 5. Deductible (threshold), yearly per pool, in-policy part first.
    usage = accumulator.pool(benefit.pool)
    deductible_left = max(0, result.deductible_fen - usage.deductible_used_fen)
    applied_in = min(base.base_fen, deductible_left)
    applied_out = min(base.out_base_fen, deductible_left - applied_in)
    payable, out_payable = base.base_fen - applied_in, base.out_base_fen - applied_out
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
    figures = (payable, paid_in, out_payable, paid_out)
    steps.extend(_ratio_notes(result, benefit, level, figures, base))

    # 7. Caps and the remainder limit.
    before_caps = paid_in + paid_out
    amount = before_caps
    pool_left = max(0, benefit.cap_fen - usage.paid_fen)
    if amount > pool_left:
        cap_name = _pool_cap(benefit.pool)
        steps.append(_cap_note(cap_name, benefit.cap_fen, usage.paid_fen, pool_left, amount))
        amount = pool_left
    if annual_cap_fen is not None:
        annual_left = max(0, annual_cap_fen - accumulator.paid_fen)
        if amount > annual_left:
            steps.append(
                _cap_note(
                    ("年度最高支付限额（合计）", "Annual cap over all visits"),
                    annual_cap_fen,
                    accumulator.paid_fen,
                    annual_left,
                    amount,
                )
            )
            amount = annual_left
    capped = amount < before_caps
    if amount > left_on_invoice:
        code = "remainder" if result.till is None else "remainder_cash"
        steps.append(note(code, left=yuan(left_on_invoice), cut=yuan(amount - left_on_invoice)))
        amount = left_on_invoice

    if amount:
        outcome = note(reasons.PAID, amount=yuan(amount), **names)
    elif base.in_policy_fen + base.out_of_policy_fen == 0:
        outcome = note(reasons.NOTHING_IN_SCOPE, **names)
    elif base.base_fen + base.out_base_fen == 0 or left_on_invoice == 0:
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
        deductible_applied_fen=applied_in + applied_out,
        before_caps_fen=before_caps,
        cap_cut_fen=before_caps - amount,
        accumulator=updated,
    )


def _ratio_notes(
    result: Adjudication,
    benefit: Benefit,
    level: HospitalLevel,
    figures: tuple[int, int, int, int],
    base: Base,
) -> list[Note]:
    """Step 6 explained: (in-policy payable, paid; out-of-policy payable, paid)."""
    payable, paid_in, out_payable, paid_out = figures
    notes = []
    if base.base_fen or not base.out_base_fen:
        shown = {
            "ratio": percent(result.ratio_bp),
            "payable": yuan(payable),
            "paid": yuan(paid_in),
        }
        if benefit.ratio_bp.is_single:
            notes.append(note("ratio_flat", **shown))
        else:
            notes.append(
                note(
                    "ratio",
                    level_zh=reasons.LEVEL_ZH[level],
                    level_en=reasons.LEVEL_EN[level],
                    **shown,
                )
            )
    if base.out_base_fen:
        notes.append(
            note(
                "out_of_policy_ratio",
                ratio=percent(result.out_of_policy_ratio_bp),
                payable=yuan(out_payable),
                paid=yuan(paid_out),
            )
        )
    return notes


def _not_served(
    policy: Policy, invoice: ClaimInvoice, accumulator: Accumulator, already_paid_fen: int
) -> Adjudication:
    """The rejection of an invoice whose scheme the payer has no section for."""
    served = policy.served_schemes
    reason = note(
        reasons.SCHEME_NOT_SERVED,
        payer_zh=policy.name_zh,
        payer_en=policy.name_en,
        patients_zh=reasons.PATIENTS_ZH[invoice.scheme],
        patients_en=reasons.PATIENTS_EN[invoice.scheme],
        served_zh="、".join(reasons.PATIENTS_ZH[s] for s in served) or "无",
        served_en="; ".join(reasons.PATIENTS_EN[s] for s in served) or "nobody",
    )
    till = invoice.till
    return Adjudication(
        payer=policy.payer,
        invoice_reference=invoice.reference,
        status=Status.REJECTED,
        amount_fen=0,
        reason=reason,
        steps=(),
        invoice_lines=invoice.lines,
        class_rules=policy.classes,
        categories=(),
        last_claim_day=invoice.issue_date + timedelta(days=policy.deadline_days),
        in_policy_fen=0,
        out_of_policy_fen=0,
        already_paid_fen=already_paid_fen,
        base_fen=0,
        out_of_policy_base_fen=0,
        deductible_fen=0,
        deductible_applied_fen=0,
        ratio_bp=0,
        out_of_policy_ratio_bp=0,
        before_caps_fen=0,
        cap_cut_fen=0,
        accumulator=accumulator,
        scheme=invoice.scheme,
        basis=Basis.SHARES,
        pool=None,
        till=till,
        paid_at_till_fen=till.paid_at_till_fen if till is not None else 0,
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
    payer without one starts from zero. ``already_paid_fen`` is what claims paid before the
    chain (e.g. the ledger's cumulative amount). The amounts add up to at most the invoice
    total less what was paid at the till and ``already_paid_fen`` (with a till split: the cash
    not reimbursed yet). Raises ``DuplicatePayer`` when a payer appears twice, and what
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


def _pool_cap(pool: str) -> tuple[str, str]:
    names = {
        "outpatient": ("门诊年度最高支付限额", "Yearly outpatient cap"),
        "inpatient": ("住院年度最高支付限额", "Yearly inpatient cap"),
    }
    return names.get(pool.rsplit(".", 1)[-1], ("年度最高支付限额", "Yearly cap"))


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

"""Step 4 of adjudication: what a payer counts on an invoice, and what is left of it for it.

From the lines (basis ``lines``), by catalogue class, less what was paid before this payer (at
the till, then by earlier payers), in-policy part first. From the till's shares (basis
``shares``), what is left in cash of each of the patient's shares once the personal account and
earlier payers are attributed to them (``claims.result.share_results``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from claims.model import ClaimInvoice, ClaimLine, ItemClass, TillSplit
from claims.money import yuan
from claims.policy_model import Basis, Coverage, PolicyRules
from claims.reasons import Note, note
from claims.result import CategoryResult, ShareResult, share_results, split_line


@dataclass(frozen=True, slots=True)
class Base:
    """Step 4's figures: what the payer counts and what is left of it for this payer."""

    categories: tuple[CategoryResult, ...]
    shares: tuple[ShareResult, ...]
    in_policy_fen: int
    out_of_policy_fen: int
    paid_at_till_fen: int
    base_fen: int
    out_base_fen: int
    left_on_invoice_fen: int  # the total less what the till and earlier payers paid
    steps: tuple[Note, ...]


def count(rules: PolicyRules, invoice: ClaimInvoice, already_paid_fen: int) -> Base:
    """What ``rules`` count on ``invoice`` after earlier payers paid ``already_paid_fen``, with
    the steps that explain it."""
    till = invoice.till
    at_till = till.paid_at_till_fen if till is not None else 0
    left_on_invoice = max(0, invoice.total_fen - at_till - already_paid_fen)
    if rules.basis is Basis.SHARES:
        assert till is not None, "a scheme's section applies only with a till split"
        shares = share_results(till, already_paid_fen, rules.shares)
        in_policy, out_of_policy, base, out_base = share_sums(shares)
        return Base(
            (),
            shares,
            in_policy,
            out_of_policy,
            at_till,
            base,
            out_base,
            left_on_invoice,
            (
                *(share.note for share in shares if share.amount_fen),
                till_base_note(at_till, already_paid_fen, left_on_invoice, base, out_base),
            ),
        )
    by_class = categories(rules, invoice.lines)
    in_policy = sum(c.in_policy_fen for c in by_class)
    out_of_policy = sum(c.out_of_policy_fen for c in by_class)
    paid = at_till + already_paid_fen  # taken from the in-policy part first
    base = max(0, in_policy - paid)
    out_base = max(0, out_of_policy - max(0, paid - in_policy))
    steps: tuple[Note, ...] = tuple(category.note for category in by_class)
    if till is not None and paid:
        steps += (till_base_note(at_till, already_paid_fen, left_on_invoice, base, out_base),)
    elif already_paid_fen:
        earlier = note(
            "earlier_payers",
            paid=yuan(already_paid_fen),
            left=yuan(left_on_invoice),
            base=yuan(base),
            out_base=yuan(out_base),
        )
        steps += (earlier,)
    return Base(
        by_class,
        (),
        in_policy,
        out_of_policy,
        at_till,
        base,
        out_base,
        left_on_invoice,
        steps,
    )


def share_sums(shares: Sequence[ShareResult]) -> tuple[int, int, int, int]:
    """(in policy, out of policy, in-policy base, out-of-policy base) of the shares."""
    sums = {coverage: [0, 0] for coverage in Coverage}
    for share in shares:
        sums[share.coverage][0] += share.amount_fen
        sums[share.coverage][1] += share.left_fen
    inside, outside = sums[Coverage.IN_POLICY], sums[Coverage.OUT_OF_POLICY]
    return inside[0], outside[0], inside[1], outside[1]


def till_note(till: TillSplit) -> Note:
    """The till's split in one sentence."""
    return note(
        "till",
        fund=yuan(till.fund_fen),
        account=yuan(till.account_fen),
        other=yuan(till.other_fen),
        cash=yuan(till.cash_fen),
        total=yuan(till.total_fen),
        copay=yuan(till.copay_fen),
        deductible=yuan(till.deductible_fen),
        self_pay=yuan(till.self_pay_fen),
        paid_at_till=yuan(till.paid_at_till_fen),
    )


def till_base_note(at_till: int, paid: int, left: int, base: int, out_base: int) -> Note:
    """What was paid before this payer (at the till, by earlier payers) and its base."""
    return note(
        "earlier_payers_till",
        at_till=yuan(at_till),
        paid=yuan(paid),
        left=yuan(left),
        base=yuan(base),
        out_base=yuan(out_base),
    )


def categories(rules: PolicyRules, lines: Sequence[ClaimLine]) -> tuple[CategoryResult, ...]:
    """The lines added up by catalogue class, counted by ``rules``' class rules."""
    sums: dict[ItemClass, list[int]] = {}
    for line in lines:
        row = sums.get(line.item_class)
        if row is None:
            row = sums[line.item_class] = [0, 0, 0, 0, 0]
        parts = split_line(rules.classes[line.item_class], line.amount_fen)
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

"""What adjudication returns: the decision, its figures and its explanation, per line and class,
or per patient's share of the till's split.

Per-line results and every sentence are built on demand (``Adjudication.lines``,
``LineResult.note``): an inpatient invoice can have thousands of lines, and most callers only
store the totals.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from claims import reasons
from claims.accumulator import Accumulator
from claims.model import ClaimLine, ItemClass, Scheme, Share, TillSplit
from claims.money import percent, share_of, yuan
from claims.policy_model import Basis, ClassRule, Coverage
from claims.reasons import Note, note


def split_line(rule: ClassRule, amount_fen: int) -> tuple[int, int, int, int]:
    """(in policy, self-pay share, out of policy, excluded) of a line's amount under ``rule``;
    the class-B share is rounded half up to the fen, per line."""
    if rule.coverage is Coverage.IN_POLICY:
        share = share_of(amount_fen, rule.self_pay_share_bp) if rule.self_pay_share_bp else 0
        return amount_fen - share, share, 0, 0
    if rule.coverage is Coverage.OUT_OF_POLICY:
        return 0, 0, amount_fen, 0
    return 0, 0, 0, amount_fen


def fill(amounts: Sequence[int], money_fen: int) -> list[int]:
    """How much of ``money_fen`` goes to each amount, in order, each filled before the next
    (what is beyond their sum goes nowhere)."""
    out = []
    for amount in amounts:
        taken = min(amount, money_fen)
        out.append(taken)
        money_fen -= taken
    return out


@dataclass(frozen=True, slots=True)
class ShareResult:
    """How one of the patient's shares counted for a payer:
    ``amount == account + earlier + left``.

    ``account`` is what the personal account paid of it at the till, ``earlier`` what claims
    of earlier payers reimbursed of its cash, ``left`` the cash not reimbursed yet: all this
    payer may count, by ``coverage``.
    """

    share: Share
    amount_fen: int
    account_fen: int
    earlier_fen: int
    left_fen: int
    coverage: Coverage

    @property
    def note(self) -> Note:
        return note(
            "share",
            share_zh=reasons.SHARE_ZH[self.share],
            share_en=reasons.SHARE_EN[self.share],
            amount=yuan(self.amount_fen),
            account=yuan(self.account_fen),
            earlier=yuan(self.earlier_fen),
            left=yuan(self.left_fen),
            coverage_zh=reasons.COVERAGE_ZH[self.coverage],
            coverage_en=reasons.COVERAGE_EN[self.coverage],
        )


def share_results(
    till: TillSplit, already_paid_fen: int, coverage: Mapping[Share, Coverage]
) -> tuple[ShareResult, ...]:
    """The patient's shares with what paid them before this payer: the personal account at the
    till, then ``already_paid_fen`` of earlier claims, each attributed to the shares in the
    order copay, deductible, self-pay (``Share`` order)."""
    amounts = [till.share(share) for share in Share]
    account = fill(amounts, till.account_fen)
    cash = [amount - paid for amount, paid in zip(amounts, account, strict=True)]
    earlier = fill(cash, already_paid_fen)
    return tuple(
        ShareResult(share, amount, acc, early, left - early, coverage[share])
        for share, amount, acc, left, early in zip(
            Share, amounts, account, cash, earlier, strict=True
        )
    )


class Status(enum.StrEnum):
    APPROVED = "approved"  # the amount may be 0; the reason says why
    REJECTED = "rejected"  # deadline passed or not eligible


@dataclass(frozen=True, slots=True)
class LineResult:
    """How one line counted: ``in_policy + self_share + out_of_policy + excluded == amount``."""

    index: int  # 0-based position on the invoice
    code: str
    name: str
    item_class: ItemClass
    amount_fen: int
    in_policy_fen: int
    self_share_fen: int  # the class-B share the citizen pays first (乙类先自付)
    out_of_policy_fen: int
    excluded_fen: int
    self_share_bp: int

    @property
    def note(self) -> Note:
        """The line's sentence (built on demand: invoices can have thousands of lines)."""
        common = {
            "line": self.index + 1,
            "name": self.name,
            "class_zh": reasons.CLASS_ZH[self.item_class],
            "class_en": reasons.CLASS_EN[self.item_class],
            "amount": yuan(self.amount_fen),
        }
        if self.self_share_fen:
            return note(
                "line_self_pay_share",
                share_ratio=percent(self.self_share_bp),
                share=yuan(self.self_share_fen),
                counted=yuan(self.in_policy_fen),
                **common,
            )
        if self.in_policy_fen:
            return note("line_in_policy", **common)
        if self.out_of_policy_fen:
            return note("line_out_of_policy", **common)
        return note("line_excluded", **common)


def line_results(
    lines: Sequence[ClaimLine], class_rules: Mapping[ItemClass, ClassRule]
) -> tuple[LineResult, ...]:
    """How each line counts under a policy's class rules: an adjudication's lines, again from
    the invoice and the rules alone (so a stored decision need not store every line)."""
    out = []
    for i, line in enumerate(lines):
        rule = class_rules[line.item_class]
        parts = split_line(rule, line.amount_fen)
        out.append(
            LineResult(
                i,
                line.code,
                line.name,
                line.item_class,
                line.amount_fen,
                *parts,
                rule.self_pay_share_bp,
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CategoryResult:
    """The lines of one catalogue class added up."""

    item_class: ItemClass
    amount_fen: int
    in_policy_fen: int
    self_share_fen: int
    out_of_policy_fen: int
    excluded_fen: int

    @property
    def note(self) -> Note:
        return note(
            "category",
            class_zh=reasons.CLASS_ZH[self.item_class],
            class_en=reasons.CLASS_EN[self.item_class],
            amount=yuan(self.amount_fen),
            in_policy=yuan(self.in_policy_fen),
            share=yuan(self.self_share_fen),
            out_of_policy=yuan(self.out_of_policy_fen),
            excluded=yuan(self.excluded_fen),
        )


@dataclass(frozen=True, slots=True)
class Adjudication:
    """One payer's decision on one invoice, with every figure a citizen needs to follow it."""

    payer: str
    invoice_reference: str
    status: Status
    amount_fen: int
    reason: Note  # the outcome: one of reasons.OUTCOMES
    steps: tuple[Note, ...]  # the explanation, in the order of the arithmetic
    invoice_lines: tuple[ClaimLine, ...]
    class_rules: Mapping[ItemClass, ClassRule]  # the policy's, to explain each line
    categories: tuple[CategoryResult, ...]  # A, B, C, self (only classes present)
    last_claim_day: date
    in_policy_fen: int  # the invoice's in-policy amount under this policy
    out_of_policy_fen: int
    already_paid_fen: int  # by earlier payers
    base_fen: int  # in-policy amount left after earlier payers
    out_of_policy_base_fen: int
    deductible_fen: int  # the deductible (threshold) for this hospital level
    deductible_applied_fen: int  # met by this invoice
    ratio_bp: int
    out_of_policy_ratio_bp: int
    before_caps_fen: int  # what the ratios give, before caps and the remainder limit
    cap_cut_fen: int  # taken off by the caps and the remainder limit
    accumulator: Accumulator  # the payer's totals after this adjudication
    # The till's split (docs/claims.md, "The till's split"); defaults: an invoice without one.
    scheme: Scheme = Scheme.NONE
    basis: Basis = Basis.LINES  # what the arithmetic started from
    pool: str | None = None  # the accumulator pool the claim counts in (None: rejected early)
    till: TillSplit | None = None
    paid_at_till_fen: int = 0  # fund + account + other at the till: never paid again
    shares: tuple[ShareResult, ...] = ()  # basis shares: how each of the patient's shares counted

    @property
    def lines(self) -> tuple[LineResult, ...]:
        """How each line counted (computed on each access); none when the payer counted the
        till's shares instead of the lines."""
        if self.basis is Basis.SHARES:
            return ()
        return line_results(self.invoice_lines, self.class_rules)

    @property
    def reason_code(self) -> str:
        return self.reason.code

    @property
    def explanation(self) -> tuple[Note, ...]:
        """Steps, then one sentence per line, then the outcome."""
        return (*self.steps, *(line.note for line in self.lines), self.reason)

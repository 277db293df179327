"""Properties of the payer chain over random invoices and accumulators.

Whatever the invoice, the citizen's running totals and the order of payers: no payer pays a
negative amount, together they never pay more than is left on the invoice, caps hold, and the
pure functions leave their inputs as they were. With the till's split, whatever the split: the
payers together never pay more than the cash, and what the till paid is never paid again.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims import (
    Accumulator,
    Citizen,
    ClaimInvoice,
    HospitalLevel,
    ItemClass,
    Policy,
    PoolUsage,
    Scheme,
    Sex,
    Status,
    TillSplit,
    VisitType,
    bundled_policies,
    chain_payers,
    in_chain_order,
)
from claims.policy import Basis, Coverage
from claims.reasons import OUTCOMES
from tests.claims.factories import CST, line, policies, till_policies

BUNDLED = in_chain_order(bundled_policies().values())
TEST = in_chain_order(policies().values())
TILL_TEST = in_chain_order(till_policies().values())
POOLS = ("all", "outpatient", "inpatient")

amounts = st.integers(min_value=0, max_value=3_000_000)


@st.composite
def invoices(draw: st.DrawFn) -> ClaimInvoice:
    visit = draw(st.sampled_from(VisitType))
    classes = st.sampled_from(list(ItemClass))
    lines = draw(st.lists(st.tuples(classes, amounts), min_size=1, max_size=12))
    line_sum = sum(fen for _, fen in lines)
    total = draw(st.one_of(st.just(line_sum), st.integers(min_value=0, max_value=line_sum + 10)))
    issued = datetime(2025, 1, 1, tzinfo=CST) + timedelta(minutes=draw(st.integers(0, 525_000)))
    claimed = issued + timedelta(days=draw(st.integers(0, 800)))
    stay = (issued.date() - timedelta(days=3), issued.date())
    return ClaimInvoice(
        reference="33082502-0000000001",
        hospital="H33080200001",
        hospital_level=draw(st.sampled_from(HospitalLevel)),
        visit_type=visit,
        issued_at=issued,
        total_fen=total,
        lines=tuple(line(k, fen) for k, fen in lines),
        admitted_on=stay[0] if visit is VisitType.INPATIENT else None,
        discharged_on=stay[1] if visit is VisitType.INPATIENT else None,
        claimed_at=claimed,
    )


@st.composite
def accumulators(draw: st.DrawFn, chain: list[Policy], year: int) -> dict[str, Accumulator]:
    out = {}
    for policy in chain:
        if draw(st.booleans()):
            continue  # no accumulator yet: the chain starts from zero
        pools = tuple(
            (pool, PoolUsage(draw(st.integers(0, 3_000_000)), draw(st.integers(0, 50_000_000))))
            for pool in draw(st.lists(st.sampled_from(POOLS), unique=True))
        )
        out[policy.payer] = Accumulator(policy.payer, year, pools)
    return out


Case = tuple[list[Policy], ClaimInvoice, Citizen, dict[str, Accumulator], int]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    chain = draw(st.sampled_from([BUNDLED, TEST]))
    if draw(st.booleans()):
        chain = draw(st.permutations(chain))
    chain = chain[: draw(st.integers(1, len(chain)))]
    claim = draw(invoices())
    flags = draw(st.frozensets(st.sampled_from(["low_income", "extreme_poverty", "veteran"])))
    citizen = Citizen(Sex.F, date(1970, 1, 1), flags)
    accs = draw(accumulators(chain, claim.policy_year))
    paid = draw(st.integers(0, claim.total_fen + 100))
    return chain, claim, citizen, accs, paid


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_chain_never_pays_more_than_is_left(case: Case) -> None:
    chain, claim, citizen, accs, already_paid = case
    before = copy.deepcopy((claim, citizen, accs))
    results = chain_payers(chain, claim, citizen, accs, already_paid)

    assert (claim, citizen, accs) == before  # inputs untouched
    amounts = [r.amount_fen for r in results]
    assert all(a >= 0 for a in amounts)
    assert sum(amounts) <= max(0, claim.total_fen - already_paid)
    paid_so_far = already_paid
    for policy, result in zip(chain, results, strict=True):
        assert result.payer == policy.payer
        assert result.already_paid_fen == paid_so_far
        paid_so_far += result.amount_fen
        old = accs.get(policy.payer) or Accumulator.empty(policy.payer, claim.policy_year)
        pool = policy.benefit_for(claim.visit_type)
        old_usage, new_usage = old.pool(pool.pool), result.accumulator.pool(pool.pool)
        assert new_usage.paid_fen == old_usage.paid_fen + result.amount_fen
        assert new_usage.deductible_used_fen >= old_usage.deductible_used_fen
        # The caps hold (an accumulator already over a cap gets nothing more).
        assert result.amount_fen == 0 or new_usage.paid_fen <= pool.cap_fen
        if policy.annual_cap_fen is not None:
            assert result.amount_fen == 0 or result.accumulator.paid_fen <= policy.annual_cap_fen
        assert result.amount_fen <= result.base_fen + result.out_of_policy_base_fen
        if result.status is Status.REJECTED:
            assert result.amount_fen == 0 and result.accumulator == old
        for ln in result.lines:
            parts = ln.in_policy_fen + ln.self_share_fen + ln.out_of_policy_fen + ln.excluded_fen
            assert parts == ln.amount_fen


maybe_zero = st.one_of(st.just(0), amounts)


@st.composite
def tills(draw: st.DrawFn, scheme: Scheme) -> TillSplit:
    insured = scheme is not Scheme.NONE
    fund = draw(maybe_zero) if insured else 0
    account = draw(maybe_zero) if insured else 0
    other, cash = draw(maybe_zero), draw(amounts)
    patient = account + cash
    copay = draw(st.integers(0, patient))
    deductible = draw(st.integers(0, patient - copay))
    return TillSplit(fund, account, other, cash, copay, deductible, patient - copay - deductible)


@st.composite
def till_cases(draw: st.DrawFn) -> Case:
    chain = draw(st.sampled_from([BUNDLED, TILL_TEST]))
    if draw(st.booleans()):
        chain = draw(st.permutations(chain))
    chain = chain[: draw(st.integers(1, len(chain)))]
    plain = draw(invoices())
    scheme = draw(st.sampled_from(Scheme))
    split = draw(tills(scheme))
    claim = replace(plain, total_fen=split.total_fen, scheme=scheme, till=split)
    flags = draw(st.frozensets(st.sampled_from(["low_income", "extreme_poverty", "veteran"])))
    citizen = Citizen(Sex.M, date(1970, 1, 1), flags)
    accs = draw(accumulators(chain, claim.policy_year))
    paid = draw(st.integers(0, split.cash_fen + 100))
    return chain, claim, citizen, accs, paid


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(till_cases())
def test_claims_never_pay_beyond_the_cash_nor_what_the_till_paid(case: Case) -> None:
    chain, claim, citizen, accs, already_paid = case
    split = claim.till
    assert split is not None
    before = copy.deepcopy((claim, citizen, accs))
    results = chain_payers(chain, claim, citizen, accs, already_paid)

    assert (claim, citizen, accs) == before  # inputs untouched
    amounts = [r.amount_fen for r in results]
    assert all(a >= 0 for a in amounts)
    # the chain pays out of the cash only: the till's fund, account and other are never paid
    assert sum(amounts) <= max(0, split.cash_fen - already_paid)
    if already_paid <= split.cash_fen:
        assert split.paid_at_till_fen + already_paid + sum(amounts) <= claim.total_fen
    for policy, result in zip(chain, results, strict=True):
        assert result.reason_code in OUTCOMES
        assert all("{" not in n.zh + n.en for n in result.explanation)
        assert result.amount_fen <= max(0, split.cash_fen - result.already_paid_fen)
        old = accs.get(policy.payer) or Accumulator.empty(policy.payer, claim.policy_year)
        rules = policy.schemes.get(claim.scheme)
        if rules is None:
            assert (result.status, result.reason_code) == (Status.REJECTED, "scheme_not_served")
            assert result.accumulator == old and result.pool is None
            continue
        assert result.paid_at_till_fen == split.paid_at_till_fen
        if rules.till_channel is not None and split.channel(rules.till_channel):
            assert result.amount_fen == 0 and result.accumulator == old
            assert result.reason_code in ("settled_at_till", "deadline_passed", "not_eligible")
        benefit = rules.benefit_for(claim.visit_type)
        assert result.pool == benefit.pool and benefit.pool.startswith(f"{claim.scheme.value}.")
        old_usage, new_usage = old.pool(benefit.pool), result.accumulator.pool(benefit.pool)
        assert new_usage.paid_fen == old_usage.paid_fen + result.amount_fen
        assert result.amount_fen == 0 or new_usage.paid_fen <= benefit.cap_fen
        if result.status is Status.REJECTED:
            assert result.amount_fen == 0 and result.accumulator == old
        assert result.basis is rules.basis
        if rules.basis is Basis.SHARES:
            shares = result.shares
            assert sum(s.account_fen for s in shares) == split.account_fen
            left = max(0, split.cash_fen - result.already_paid_fen)
            assert sum(s.left_fen for s in shares) == left
            covered = sum(s.left_fen for s in shares if s.coverage is not Coverage.EXCLUDED)
            assert result.amount_fen <= result.base_fen + result.out_of_policy_base_fen
            assert result.base_fen + result.out_of_policy_base_fen <= covered

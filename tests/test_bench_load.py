"""The load generator itself, small: a real service process over loopback, concurrent clients,
and the requirements it checks (no 5xx, one accepted claim per invoice, no double payment,
the database in agreement with the chain). `make bench` runs it at full size."""

from __future__ import annotations

from bench import load


def test_the_load_generator_runs_and_checks_its_requirements() -> None:
    out = load.run(clients=4, every=100)
    assert out["load_requests"] > 100
    assert out["load_5xx"] == 0
    assert out["load_claims_accepted_once"] == out["load_invoices_claimed"] > 0
    assert out["load_claim_again_requests"] > 0  # the deliberate duplicates were sent
    assert out["load_double_payments"] == out["load_paid_above_total"] == 0
    assert out["load_reconciliation_consistent"] and out["load_settled"]

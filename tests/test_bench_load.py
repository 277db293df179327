"""The load generator itself, small: a real service process over loopback, concurrent clients
with attacks mixed in, and the requirements it checks (no 5xx, no attack accepted, one
decision per claim in review, /healthz p99 and the service's memory within bounds, one
accepted claim per invoice, no double payment, the database in agreement with the chain).
`make bench` runs it at full size."""

from __future__ import annotations

import pytest

from bench import load


def test_the_load_generator_runs_and_checks_its_requirements() -> None:
    out = load.run(clients=4, every=100, timed=False)
    assert out["load_requests"] > 100
    assert out["load_5xx"] == 0
    assert out["load_claims_accepted_once"] == out["load_invoices_claimed"] > 0
    assert out["load_claim_again_requests"] > 0  # the deliberate duplicates were sent
    assert out["load_double_payments"] == out["load_paid_above_total"] == 0
    assert out["load_reconciliation_consistent"] and out["load_settled"]
    # The attacks were sent, and refused.
    for kind in ("wrong_code_typed", "wrong_code_pointer", "bomb_verify", "bomb_claim"):
        assert out[f"load_attack_{kind}_requests"] >= 2, kind
    assert out["load_attack_oversized_verify_status"] == {"413": 1}
    assert out["load_attack_oversized_claim_status"] == {"413": 1}
    assert out["load_attacks_accepted"] == 0
    assert out["load_review_decided_twice"] == 0
    # Measured throughout; the latency bound is the benchmark's (`make bench`), not a test's.
    assert out["load_healthz_samples"] > 10 and out["load_healthz_failures"] == 0
    assert out["load_healthz_ms_p99"] > 0
    assert 0 < out["load_service_peak_rss_mb"] < load.PEAK_RSS_MB


def test_a_pixel_bomb_is_small_and_declares_its_size() -> None:
    bomb = load.pixel_bomb()
    assert len(bomb) < 64 * 1024
    assert bomb[12:16] == b"IHDR"
    assert int.from_bytes(bomb[16:20], "big") == 39_000_000
    assert int.from_bytes(bomb[20:24], "big") == 1


def test_requirements_broken_keep_the_figures() -> None:
    figures = {
        "load_5xx": 1,
        "load_attacks_accepted": 0,
        "load_review_decided_twice": 0,
        "load_healthz_failures": 0,
        "load_healthz_ms_p99": 250.0,
        "load_service_peak_rss_mb": 512.0,
        "load_claims_accepted_twice": 0,
        "load_invoices_claimed": 3,
        "load_claims_accepted_once": 3,
        "load_double_payments": 0,
        "load_paid_above_total": 0,
        "load_settled": True,
        "load_reconciliation_consistent": True,
    }
    with pytest.raises(load.LoadRequirementsBroken) as broken:
        load._require(figures)
    assert broken.value.figures is figures
    assert broken.value.failed == {"server errors": 1, "/healthz p99 ms at or over 100": 250.0}
    # Untimed (the small run above), the latency bound alone breaks nothing.
    load._require({**figures, "load_5xx": 0}, timed=False)
    with pytest.raises(load.LoadRequirementsBroken, match="server errors"):
        load._require(figures, timed=False)

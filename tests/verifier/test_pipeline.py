"""The pipeline offline, property-tested: nothing but the genuine payload verifies, and no input
makes it raise."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.model import HospitalKey, HospitalLevel
from tests.conftest import ROOT
from verifier.pipeline import STEPS, Verdict, verify
from verifier.trust_list import (
    TrustedHospital,
    TrustList,
    build_trust_list,
    load_trust_list,
    sign_trust_list,
)

VECTORS = ROOT / "tests" / "verifier" / "vectors" / "verify"
LEDGER = json.loads((VECTORS / "ledger.json").read_text())
VALID = json.loads((VECTORS / "valid.json").read_text())["text"]
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def trust() -> TrustList:
    hospital_key = Account.from_key(bytes.fromhex(LEDGER["hospital_key"][2:]))
    hospital = TrustedHospital(
        LEDGER["hospital"],
        HospitalLevel.TERTIARY,
        "test",
        (HospitalKey(0, hospital_key.address, datetime(2024, 1, 1, tzinfo=UTC), None),),
    )
    body = build_trust_list(
        [hospital],
        LEDGER["chain_id"],
        LEDGER["contract"],
        1,
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    authority = bytes.fromhex(LEDGER["authority_key"][2:])
    return load_trust_list(
        sign_trust_list(body, authority), Account.from_key(authority).address, NOW
    )


TRUST = trust()


def offline(source: bytes | str) -> Verdict:
    return verify(source, judge=TRUST, facts=None, domain=TRUST.domain)


def test_the_genuine_payload_verifies_offline_and_says_what_it_could_not_check() -> None:
    verdict = offline(VALID)
    assert verdict.valid and verdict.offline
    assert [s.step for s in verdict.steps] == list(STEPS)
    assert [s.status for s in verdict.steps] == ["passed"] * 5 + ["skipped"] * 3
    assert "cannot check the ledger" in verdict.steps[5].message_en


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=4, max_value=len(VALID) - 1),
    st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"),
)
def test_no_single_character_change_verifies(position: int, char: str) -> None:
    mutated = VALID[:position] + char + VALID[position + 1 :]
    verdict = offline(mutated)
    assert verdict.valid == (mutated == VALID)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400)))
def test_random_input_never_raises_and_never_verifies(source: str | bytes) -> None:
    verdict = offline(source)
    assert not verdict.valid
    assert verdict.failed_step in ("decode", "parse", "canonicalise", "signature", "registry")

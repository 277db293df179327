"""The claim, review and settle flows on the fakes: what each step stores and asks of the
ledger, and the invariants (one claim per invoice and payer, a lock while in review, paid
once, reconcile before settle)."""

from __future__ import annotations

import pytest

from api.db.models import ClaimState
from api.refusals import Conflict, NotFound
from chain.errors import InvoiceVoided
from tests.fast.conftest import UNKNOWN, World
from tests.fast.fakes import LedgerCrashed


def test_a_claim_is_stored_with_its_history(world: World) -> None:
    invoice_id = world.invoice()
    claim = world.submit(invoice_id)
    assert claim.state == ClaimState.APPROVED and claim.amount_fen > 0
    assert world.stored(claim.id).state == ClaimState.APPROVED
    assert world.events(claim.id) == ["submitted", "verified", "adjudicated", "approved"]
    assert world.ledger.locks == {}  # approved at once: no lock needed


def test_a_claim_going_to_review_locks_the_invoice_for_its_payer(world: World) -> None:
    invoice_id = world.invoice(UNKNOWN)
    claim = world.submit(invoice_id)
    assert claim.state == ClaimState.IN_REVIEW and claim.reason_code == "audit_hits"
    assert world.ledger.locks == {invoice_id: "basic"}


def test_a_second_claim_of_an_invoice_from_the_same_payer_is_a_duplicate(world: World) -> None:
    invoice_id = world.invoice()
    first = world.submit(invoice_id)
    with pytest.raises(Conflict, match="claimed from basic already") as refused:
        world.submit(invoice_id)
    assert refused.value.code == "duplicate_claim"
    assert refused.value.details == {"first_claim": first.id, "first_state": "approved"}


def test_an_unknown_invoice_is_refused_as_not_found(world: World) -> None:
    with pytest.raises(NotFound) as refused:
        world.claim.submit(world.citizen, "0x" + "ab" * 32, "basic", "app")
    assert refused.value.code == "invoice_not_found"


def test_refusal_by_review_releases_the_lock_and_gives_the_totals_back(world: World) -> None:
    claim = world.submit(world.invoice(UNKNOWN))
    world.review.decide(claim.id, approve=False, reviewer="payer:basic:1", reason="fake")
    stored = world.stored(claim.id)
    assert (stored.state, stored.reason_code, stored.amount_fen) == ("rejected", "fake", 0)
    assert world.ledger.locks == {}
    with pytest.raises(Conflict) as again:
        world.review.decide(claim.id, approve=True, reviewer="payer:basic:2", reason=None)
    assert again.value.code == "already_decided"
    assert again.value.details["decided_by"] == "payer:basic:1"


def test_approval_by_review_keeps_the_lock_until_settled(world: World) -> None:
    invoice_id = world.invoice(UNKNOWN)
    claim = world.submit(invoice_id)
    world.review.decide(claim.id, approve=True, reviewer="payer:basic:1", reason=None)
    assert world.ledger.locks == {invoice_id: "basic"}
    assert world.settle.run() == 1
    assert world.ledger.locks == {}
    assert world.stored(claim.id).state == ClaimState.PAID


def test_settle_pays_approved_claims_once_and_marks_them_paid(world: World) -> None:
    invoice_id = world.invoice()
    claim = world.submit(invoice_id)
    assert world.settle.run() == 1
    stored = world.stored(claim.id)
    assert stored.state == ClaimState.PAID and stored.settle_tx is not None
    assert world.ledger.paid == {invoice_id: claim.amount_fen}
    assert [p.amount_fen for p in world.payments(claim.id)] == [claim.amount_fen]
    assert world.events(claim.id)[-2:] == ["settled", "paid"]
    assert world.settle.run() == 0  # nothing left: never paid twice
    assert world.ledger.paid == {invoice_id: claim.amount_fen}
    assert len(world.ledger.settle_calls) == 1


def test_a_settlement_the_ledger_refuses_marks_the_claim_rejected(world: World) -> None:
    invoice_id = world.invoice()
    claim = world.submit(invoice_id)
    world.ledger.refuse[claim.id] = InvoiceVoided(invoice_id)
    assert world.settle.run() == 0
    stored = world.stored(claim.id)
    assert (stored.state, stored.reason_code) == ("rejected", "ledger_InvoiceVoided")
    assert world.payments(claim.id) == []
    assert world.ledger.paid == {}


def test_reconciliation_after_a_crash_marks_paid_without_paying_twice(world: World) -> None:
    invoice_id = world.invoice()
    claim = world.submit(invoice_id)
    world.ledger.crash_after_settle = True
    with pytest.raises(LedgerCrashed):
        world.settle.run()
    # The chain paid; the database never heard: the claim is left settling.
    assert world.stored(claim.id).state == ClaimState.SETTLING
    assert world.ledger.paid == {invoice_id: claim.amount_fen}
    world.ledger.crash_after_settle = False
    assert world.settle.run() == 0  # reconciled, not sent again
    assert world.stored(claim.id).state == ClaimState.PAID
    assert [p.amount_fen for p in world.payments(claim.id)] == [claim.amount_fen]
    assert world.ledger.paid == {invoice_id: claim.amount_fen}
    assert len(world.ledger.settle_calls) == 1


def test_a_claim_left_settling_without_an_event_is_approved_again_and_sent(world: World) -> None:
    invoice_id = world.invoice()
    claim = world.submit(invoice_id)
    with world.uow() as db:
        db.get_one(type(claim), claim.id).state = ClaimState.SETTLING
        db.commit()
    assert world.settle.run() == 1
    assert world.stored(claim.id).state == ClaimState.PAID
    assert world.ledger.paid == {invoice_id: claim.amount_fen}


def test_the_fake_ledger_has_every_member_of_the_port() -> None:
    from api.flows import ports
    from tests.fast.fakes import FakeLedger

    wanted = [n for n in dir(ports.Ledger) if not n.startswith("_")]
    assert [n for n in wanted if not hasattr(FakeLedger(), n)] == []

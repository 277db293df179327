"""The sequencer core: batching, idempotent anchoring after crashes, settlement with refusals."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account

from chain import errors
from chain.factory import LedgerSession
from chain.log import MerkleLog
from chain.model import Checkpoint, HospitalLevel, InvoiceLeaf
from chain.sequencer import LogDiverged, Sequencer, SettlementRequest


def leaf(n: int, total: int = 1_000) -> InvoiceLeaf:
    return InvoiceLeaf(
        hashlib.sha256(b"inv%d" % n).digest(), hashlib.sha256(b"rec%d" % n).digest(), "H1", total
    )


HOSPITAL_KEY = Account.from_key(hashlib.sha256(b"H1 signing key").digest())


def register_h1(session: LedgerSession) -> None:
    """Registers the hospital of :func:`leaf`, whose key signs the settlements' invoices."""
    session.ledger.register_hospital(
        session.authority,
        "H1",
        HospitalLevel.PRIMARY,
        HOSPITAL_KEY.address,
        datetime(2025, 1, 1, tzinfo=UTC),
    )


def request(
    session: LedgerSession, reference: str, x: InvoiceLeaf, amount: int
) -> SettlementRequest:
    """A settlement request with the hospital's signature of the invoice."""
    return SettlementRequest(
        reference, x, amount, session.ledger.sign_record(HOSPITAL_KEY, x.record_hash)
    )


class FakeClock:
    """Monotonic time under the test's control (anchoring by interval)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log(tmp_path: Path) -> MerkleLog:
    return MerkleLog(tmp_path / "log.sqlite")


def test_ingest_anchors_every_full_batch(session: LedgerSession, log: MerkleLog) -> None:
    seq = Sequencer(log, session.ledger, session.sequencer, batch_size=100)
    checkpoints = seq.ingest([leaf(i) for i in range(250)])
    assert [c.size for c in checkpoints] == [100, 200]
    assert seq.pending_leaves() == 50
    last = seq.anchor()
    assert last == Checkpoint(250, log.root())
    assert session.ledger.latest_checkpoint() == last
    assert [e.args["size"] for e in session.ledger.events(name="CheckpointAnchored")] == [
        100,
        200,
        250,
    ]


def test_anchor_by_interval(session: LedgerSession, log: MerkleLog) -> None:
    clock = FakeClock()
    seq = Sequencer(
        log, session.ledger, session.sequencer, batch_size=1000, interval_ms=2000, clock=clock
    )
    seq.append([leaf(1)])
    assert not seq.anchor_due() and seq.anchor_if_due() is None
    clock.now = 2.1
    assert seq.anchor_if_due() == Checkpoint(1, log.root())
    clock.now = 10.0
    assert seq.anchor_if_due() is None  # nothing new: no empty checkpoint


def test_rerun_after_crash_anchors_nothing_twice(session: LedgerSession, log: MerkleLog) -> None:
    leaves = [leaf(i) for i in range(30)]
    first = Sequencer(log, session.ledger, session.sequencer, batch_size=10)
    first.ingest(leaves)
    blocks = session.backend.block_number()
    # A restarted sequencer sees the same pending work again (the outbox was not yet marked).
    second = Sequencer(log, session.ledger, session.sequencer, batch_size=10)
    assert second.append(leaves) == list(range(30))
    assert log.size == 30
    assert second.anchor() is None
    assert session.backend.block_number() == blocks


def test_crash_between_append_and_anchor_is_anchored_once(
    session: LedgerSession, log: MerkleLog
) -> None:
    Sequencer(log, session.ledger, session.sequencer, batch_size=1000).append(
        [leaf(i) for i in range(5)]
    )
    restarted = Sequencer(log, session.ledger, session.sequencer, batch_size=1000, interval_ms=0)
    assert restarted.anchor_if_due() == Checkpoint(5, log.root())
    assert restarted.anchor_if_due() is None
    assert len(session.ledger.events(name="CheckpointAnchored")) == 1


def test_a_log_that_lost_leaves_or_diverged_is_refused(
    session: LedgerSession, tmp_path: Path, log: MerkleLog
) -> None:
    Sequencer(log, session.ledger, session.sequencer).ingest([leaf(i) for i in range(4)])
    Sequencer(log, session.ledger, session.sequencer).anchor()
    with pytest.raises(LogDiverged, match="the log is shorter"):
        Sequencer(MerkleLog(tmp_path / "empty.sqlite"), session.ledger, session.sequencer).anchor()
    forged = MerkleLog(tmp_path / "forged.sqlite")
    forged.append([(x.invoice_id, x.entry()) for x in [leaf(0), leaf(1), leaf(2), leaf(99)]])
    with pytest.raises(LogDiverged, match="root there is"):
        Sequencer(forged, session.ledger, session.sequencer).anchor()


def test_settle_reports_each_refusal_and_settles_the_rest(
    session: LedgerSession, log: MerkleLog
) -> None:
    register_h1(session)
    seq = Sequencer(log, session.ledger, session.sequencer, settle_batch_size=3)
    leaves = [leaf(i, total=1_000) for i in range(7)]
    seq.append(leaves)  # not anchored yet: settle anchors first
    requests = [
        request(session, f"claim-{i}", x, 1_500 if i in (1, 5) else 600)
        for i, x in enumerate(leaves)
    ]
    outcomes = seq.settle(session.payers["basic"], requests)
    assert sorted(o.request.reference for o in outcomes if o.settled) == [
        "claim-0",
        "claim-2",
        "claim-3",
        "claim-4",
        "claim-6",
    ]
    refused = {o.request.reference: o.error for o in outcomes if not o.settled}
    assert set(refused) == {"claim-1", "claim-5"}
    assert all(isinstance(e, errors.PaidAboveTotal) for e in refused.values())
    paid = [session.ledger.claim_state(x.invoice_id).paid for x in leaves]
    assert paid == [600, 0, 600, 600, 600, 0, 600]


def test_payers_in_chain_never_pay_above_the_total(session: LedgerSession, log: MerkleLog) -> None:
    register_h1(session)
    seq = Sequencer(log, session.ledger, session.sequencer)
    x = leaf(1, total=10_000)
    seq.append([x])
    basic, commercial = session.payers["basic"], session.payers["commercial"]
    assert seq.settle(basic, [request(session, "b", x, 7_000)])[0].settled
    (greedy,) = seq.settle(commercial, [request(session, "c1", x, 10_000)])
    assert isinstance(greedy.error, errors.PaidAboveTotal) and greedy.error.paid == 7_000
    assert seq.settle(commercial, [request(session, "c2", x, 3_000)])[0].settled
    # The same invoice twice in one call goes in two batches; the second is over the cap.
    again = seq.settle(basic, [request(session, "d1", x, 1), request(session, "d2", x, 1)])
    assert [o.settled for o in again] == [False, False]
    assert session.ledger.claim_state(x.invoice_id).paid == 10_000


def test_settling_an_invoice_not_in_the_log_is_refused(
    session: LedgerSession, log: MerkleLog
) -> None:
    seq = Sequencer(log, session.ledger, session.sequencer)
    with pytest.raises(errors.LedgerError, match="not in the log"):
        seq.settle(session.payers["basic"], [request(session, "ghost", leaf(404), 1)])

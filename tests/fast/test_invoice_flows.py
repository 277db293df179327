"""The invoice side's flows and reads on in-memory fakes: anchoring, the red-letter reversal,
finding an invoice, staff tokens and hospitals' API keys."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db import models
from api.flows.anchor import AnchorFlow
from api.flows.void import VoidFlow
from api.identity.hospitals import Hospitals, UnknownHospital
from api.identity.staff import StaffTokens
from api.read.invoices import InvoiceReads
from api.refusals import Conflict, Invalid, NotFound
from chain.abi import Event
from chain.model import Checkpoint, InvoiceLeaf
from tests.fast.conftest import PASSING
from tests.fast.fakes import (
    HOSPITAL,
    FakeLedger,
    add_citizen,
    add_hospital,
    add_invoice,
    memory_uow,
)

NOW = datetime(2026, 1, 15, 10, tzinfo=UTC)
RED = "0x" + "Ab" * 32  # kept as given in the audit log
SIGNATURE = "0x" + "01" * 65


@dataclass
class LogLedger(FakeLedger):
    """A fake ledger with a log: appended leaves, checkpoints as events, relayed voids."""

    leaves: list[InvoiceLeaf] = field(default_factory=list)
    voided: list[tuple[InvoiceLeaf, int, bytes, bytes]] = field(default_factory=list)

    def append(self, leaves: Sequence[InvoiceLeaf]) -> list[int]:
        indexes = []
        for leaf in leaves:
            if leaf not in self.leaves:
                self.leaves.append(leaf)
            indexes.append(self.leaves.index(leaf))
        return indexes

    def anchor(self, force: bool = False) -> Checkpoint | None:
        if not force or not self.leaves:
            return None
        size = len(self.leaves)
        root = hashlib.sha256(b"root%d" % size).digest()
        self.emitted.append(
            Event("CheckpointAnchored", {"size": size, "root": root}, size, b"\x07" * 32, 0)
        )
        return Checkpoint(size, root)

    def anchored(self) -> Checkpoint | None:
        anchored = self.events(name="CheckpointAnchored")
        last = anchored[-1].args if anchored else None
        return Checkpoint(last["size"], last["root"]) if last else None

    def void(self, leaf: InvoiceLeaf, leaf_index: int, red: bytes, signature: bytes) -> None:
        self.voided.append((leaf, leaf_index, red, signature))


@pytest.fixture
def uow() -> sessionmaker[Session]:
    uow = memory_uow()
    with uow() as db:
        add_hospital(db)
        add_hospital(db, "H33088100002")
        db.commit()
    return uow


def _invoice(uow: sessionmaker[Session], anchored: bool = True) -> models.Invoice:
    with uow() as db:
        citizen = db.scalar(select(models.Citizen)) or add_citizen(db)
        row = add_invoice(db, citizen, PASSING)
        if not anchored:
            row.leaf_index = row.checkpoint_size = None
        db.commit()
        return row


def test_anchoring_appends_the_outbox_once_and_records_the_checkpoint(
    uow: sessionmaker[Session],
) -> None:
    ledger = LogLedger()
    rows = [_invoice(uow, anchored=False) for _ in range(3)]
    with uow() as db:
        db.add_all(models.Outbox(invoice_id=r.invoice_id, created_at=NOW) for r in rows)
        db.commit()
    anchoring = AnchorFlow(uow, ledger, clock=lambda: NOW)
    assert anchoring.run_once(force=True) == 3
    assert anchoring.run_once(force=True) == 0  # drained: nothing appended twice
    assert [leaf.invoice_id for leaf in ledger.leaves] == [r.invoice_id for r in rows]
    with uow() as db:
        stored = {r.invoice_id: r for r in db.scalars(select(models.Invoice))}
        assert [stored[r.invoice_id].leaf_index for r in rows] == [0, 1, 2]
        assert {stored[r.invoice_id].checkpoint_size for r in rows} == {3}
        assert db.scalars(select(models.Checkpoint.size)).all() == [3]


def test_a_void_is_relayed_then_recorded_with_who_asked(uow: sessionmaker[Session]) -> None:
    ledger = LogLedger()
    row = _invoice(uow)
    key = "0x" + row.invoice_id.hex()
    reads = InvoiceReads(uow, ledger)
    voided = VoidFlow(uow, ledger, reads, clock=lambda: NOW).void(HOSPITAL, key, RED, SIGNATURE)
    assert voided.row.invoice_id == row.invoice_id and voided.status == "voided"
    leaf, index, red, signature = ledger.voided[0]
    assert (leaf.invoice_id, index) == (row.invoice_id, row.leaf_index)
    assert (red, signature) == (bytes.fromhex(RED[2:]), bytes.fromhex(SIGNATURE[2:]))
    view = reads.view(key)
    assert view.status == "voided" and view.row.voided_at == NOW
    with uow() as db:
        entry = db.scalar(select(models.AuditEntry))
    assert entry is not None
    assert (entry.actor, entry.action) == (f"hospital:{HOSPITAL}", "invoice_voided")
    assert entry.detail == {"red_invoice_id": RED}


@pytest.mark.parametrize(
    ("hospital", "anchored", "voided", "refusal", "code"),
    [
        ("H33088100002", True, False, NotFound, "invoice_not_found"),  # another's invoice
        (HOSPITAL, False, False, Conflict, "invoice_not_anchored"),
        (HOSPITAL, True, True, Conflict, "invoice_voided"),
    ],
)
def test_a_void_is_refused(
    uow: sessionmaker[Session],
    hospital: str,
    anchored: bool,
    voided: bool,
    refusal: type[Exception],
    code: str,
) -> None:
    ledger = LogLedger()
    row = _invoice(uow, anchored)
    flow = VoidFlow(uow, ledger, InvoiceReads(uow, ledger), clock=lambda: NOW)
    if voided:
        flow.void(HOSPITAL, "0x" + row.invoice_id.hex(), RED, SIGNATURE)
    with pytest.raises(refusal) as raised:
        flow.void(hospital, "0x" + row.invoice_id.hex(), RED, SIGNATURE)
    assert getattr(raised.value, "code", None) == code
    assert len(ledger.voided) == int(voided)


def test_an_invoice_is_found_by_id_or_reference_and_only_by_who_may_read_it(
    uow: sessionmaker[Session],
) -> None:
    row = _invoice(uow)
    reads = InvoiceReads(uow, LogLedger())
    reference = f"{row.bill_code}-{row.bill_number}"
    assert reads.find(reference).invoice_id == row.invoice_id
    assert reads.find("0x" + row.invoice_id.hex()).invoice_id == row.invoice_id
    with pytest.raises(Invalid, match="invoice id"):
        reads.find("not a key")
    with pytest.raises(NotFound, match=f"no invoice {reference}"):
        reads.find(reference, lambda r: r.hospital == "H33088100002")
    with uow() as db:  # the same bill code and number issued by another hospital too
        copy = add_invoice(db, add_citizen(db, 2), PASSING)
        copy.bill_number, copy.hospital = row.bill_number, "H33088100002"
        db.commit()
    with pytest.raises(Conflict) as ambiguous:
        reads.find(reference)
    assert (ambiguous.value.code, ambiguous.value.details) == (
        "invoice_key_ambiguous",
        {"count": 2},
    )
    assert reads.find(reference, lambda r: r.hospital == HOSPITAL).invoice_id == row.invoice_id


def test_staff_tokens_issue_name_and_revoke(uow: sessionmaker[Session]) -> None:
    tokens = StaffTokens(uow, SecretStr("the-admin-token"), ("basic",), clock=lambda: NOW)
    token = tokens.issue("desk-1", "payer", "basic")
    staff = tokens.staff_for(token)
    assert staff is not None and (staff.role, staff.payer) == ("payer", "basic")
    assert tokens.staff_for("the-admin-token") is not None
    for name, role, payer, refusal, code in (
        ("desk-2", "payer", "nobody", Invalid, "staff_invalid"),
        ("audit-1", "auditor", "basic", Invalid, "staff_invalid"),
        ("desk-1", "payer", "basic", Conflict, "staff_exists"),
    ):
        with pytest.raises(refusal) as raised:
            tokens.issue(name, role, payer)  # type: ignore[arg-type]
        assert raised.value.code == code  # type: ignore[attr-defined]
    tokens.revoke("desk-1", "admin:authority")
    assert tokens.staff_for(token) is None
    with pytest.raises(NotFound, match="no live staff token named 'desk-1'"):
        tokens.revoke("desk-1", "admin:authority")


def test_hospital_api_keys_rotate_and_revoke(uow: sessionmaker[Session]) -> None:
    hospitals = Hospitals(uow, LogLedger(), registry=None, clock=lambda: NOW)  # type: ignore[arg-type]
    key = hospitals.rotate_api_key(HOSPITAL, "admin:authority")
    assert hospitals.for_api_key(key) == HOSPITAL
    hospitals.revoke_api_key(HOSPITAL, "admin:authority")
    assert hospitals.for_api_key(key) is None
    with pytest.raises(NotFound) as none_left:
        hospitals.revoke_api_key(HOSPITAL, "admin:authority")
    assert none_left.value.code == "api_key_not_found"
    with pytest.raises(UnknownHospital) as unknown:
        hospitals.rotate_api_key("H00000000000", "admin:authority")
    assert (unknown.value.code, str(unknown.value)) == (
        "hospital_not_found",
        "no hospital 'H00000000000'",
    )

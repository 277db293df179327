"""In-memory fakes of the flows' ports (``api.flows.ports``), for the fast tier.

- ``memory_uow()``: a unit of work on an in-memory SQLite database (one connection shared by
  every session, ``StaticPool``), the schema made by ``create_all``: no migrations.
- ``FakeLedger``: the ledger gateway as dicts: locks, what each invoice was paid, the
  ``InvoiceSettled`` events, and scripted refusals of settlements; no py-evm, no log.
- ``FakeVerifier``: the verify flow's ``verify_many`` for the one tap: an invoice's own
  payload verifies, anything else finds no bill.
- ``NoLimits``: failed attempts never limited.

And builders of what the claim flow reads: a hospital, a citizen, an invoice with one line.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from api.db import models
from api.read.invoices import payload_of
from chain.abi import Event
from chain.backend import TxReceipt
from chain.errors import ContractRevert, InvoiceLocked, InvoiceNotLocked, PaidAboveTotal
from chain.model import Checkpoint, Hospital, HospitalLevel, InvoiceLeaf, InvoiceLedgerState
from chain.sequencer import SettlementOutcome, SettlementRequest
from verifier.canonical import Domain
from verifier.pipeline import StepResult, Verdict
from verifier.qr import encode_payload

PAYERS = ("basic", "critical", "assistance", "commercial")
DOMAIN = Domain(5700, "0x" + "11" * 20)
CST = timezone(timedelta(hours=8))


def memory_uow() -> sessionmaker[Session]:
    """A unit of work on a fresh in-memory database with the models' schema."""
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    models.Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


class LedgerCrashed(Exception):
    """Raised by ``FakeLedger.settle`` after the payments were made, as if the process died
    between the chain's answer and the database's transaction."""


@dataclass
class FakeLedger:
    """The ledger gateway (``ports.Ledger``) as plain dicts.

    ``locks``: invoice id -> payer holding it for review; ``paid``: invoice id -> fen paid by
    every payer; ``emitted``: the contract's events (``InvoiceSettled``); ``refuse``: claim id
    -> the contract error its settlement gets; ``crash_after_settle``: ``settle`` pays, then
    raises ``LedgerCrashed``; ``settle_calls``: (payer, claim ids) of each ``settle``."""

    locks: dict[bytes, str] = field(default_factory=dict)
    paid: dict[bytes, int] = field(default_factory=dict)
    emitted: list[Event] = field(default_factory=list)
    refuse: dict[str, ContractRevert] = field(default_factory=dict)
    crash_after_settle: bool = False
    settle_calls: list[tuple[str, list[str]]] = field(default_factory=list)
    _blocks: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # -- what the ledger is ------------------------------------------------------------------

    backend_name = "fake"
    chain_id = DOMAIN.chain_id
    address = DOMAIN.contract
    authority_address = "0x" + "aa" * 20
    payers = PAYERS
    anchor_interval_ms = 0

    def payer_address(self, payer: str) -> str:
        return "0x" + hashlib.sha256(payer.encode()).hexdigest()[:40]

    def sign_as_authority(self, sign: Callable[[bytes], dict[str, Any]]) -> dict[str, Any]:
        return sign(b"\x01" * 32)

    # -- reads -------------------------------------------------------------------------------

    def block_number(self) -> int:
        return len(self.emitted)

    def block_timestamp(self, block_number: int) -> int:
        return 0

    def events(
        self, from_block: int = 0, to_block: int | None = None, name: str | None = None
    ) -> list[Event]:
        return [
            e
            for e in self.emitted
            if name in (None, e.name)
            and e.block_number >= from_block
            and (to_block is None or e.block_number <= to_block)
        ]

    def hospital(self, code: str) -> Hospital | None:
        return None

    def checkpoint(self, size: int) -> Checkpoint | None:
        return None

    def anchored(self) -> Checkpoint | None:
        return None

    def claim_state(self, invoice_id: bytes) -> InvoiceLedgerState:
        holder = self.locks.get(invoice_id)
        return InvoiceLedgerState(
            invoice_id,
            False,
            self.payer_address(holder) if holder else None,
            self.paid.get(invoice_id, 0),
        )

    def claim_states(self, invoice_ids: Sequence[bytes]) -> dict[bytes, InvoiceLedgerState]:
        return {i: self.claim_state(i) for i in invoice_ids}

    def log_size(self) -> int:
        return 0

    def leaf_hash(self, index: int) -> bytes:
        raise NotImplementedError

    def log_root(self, size: int | None = None) -> bytes:
        raise NotImplementedError

    def log_entries(self, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        raise NotImplementedError

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        raise NotImplementedError

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        raise NotImplementedError

    # -- the registry and the log: not the claim side's -----------------------------------------

    def register_hospital(
        self, code: str, level: HospitalLevel, signer: str, valid_from: datetime
    ) -> None:
        raise NotImplementedError

    def rotate_hospital_key(self, code: str, signer: str, valid_from: datetime) -> Hospital:
        raise NotImplementedError

    def revoke_hospital_key(self, code: str, key_index: int, revoked_at: datetime) -> None:
        raise NotImplementedError

    def append(self, leaves: Sequence[InvoiceLeaf]) -> list[int]:
        raise NotImplementedError

    def anchor(self, force: bool = False) -> Checkpoint | None:
        return None

    def void(self, leaf: InvoiceLeaf, leaf_index: int, red: bytes, signature: bytes) -> None:
        raise NotImplementedError

    # -- payers ------------------------------------------------------------------------------

    def lock_invoice(self, payer: str, invoice_id: bytes) -> None:
        holder = self.locks.get(invoice_id)
        if holder is not None and holder != payer:
            raise InvoiceLocked(invoice_id, self.payer_address(holder))
        self.locks[invoice_id] = payer

    def release_invoice(self, payer: str, invoice_id: bytes) -> None:
        if self.locks.get(invoice_id) != payer:
            raise InvoiceNotLocked(invoice_id, self.payer_address(payer))
        del self.locks[invoice_id]

    def settle(self, payer: str, requests: Sequence[SettlementRequest]) -> list[SettlementOutcome]:
        self.settle_calls.append((payer, [r.reference for r in requests]))
        outcomes = []
        for r in requests:
            iid = r.leaf.invoice_id
            holder = self.locks.get(iid)
            paid = self.paid.get(iid, 0)
            error: ContractRevert | None = self.refuse.get(r.reference)
            if error is None and holder is not None and holder != payer:
                error = InvoiceLocked(iid, self.payer_address(holder))
            if error is None and paid + r.amount > r.leaf.total:
                error = PaidAboveTotal(iid, paid, r.amount, r.leaf.total)
            if error is not None:
                outcomes.append(SettlementOutcome(r, error=error))
                continue
            self.paid[iid] = paid + r.amount
            self.locks.pop(iid, None)
            block = next(self._blocks)
            tx = hashlib.sha256(f"tx{block}".encode()).digest()
            self.emitted.append(
                Event(
                    "InvoiceSettled",
                    {"invoice_id": iid, "payer": self.payer_address(payer), "amount": r.amount},
                    block,
                    tx,
                    0,
                )
            )
            outcomes.append(SettlementOutcome(r, receipt=TxReceipt(tx, block, True, 50_000, ())))
        if self.crash_after_settle:
            raise LedgerCrashed
        return outcomes

    def settled_events(self) -> Iterator[Event]:
        yield from self.events(name="InvoiceSettled")


class FakeVerifier:
    """Verifies the one tap: the payload of a stored invoice verifies (its status step reads
    the fake ledger's paid amount and lock); any other source finds no bill."""

    def __init__(self, ledger: FakeLedger) -> None:
        self._ledger = ledger
        self.calls = 0

    def verify_many(
        self, sources: Sequence[bytes | str], rows: Mapping[bytes, models.Invoice]
    ) -> list[Verdict]:
        self.calls += 1
        by_text = {encode_payload(payload_of(DOMAIN, row)): iid for iid, row in rows.items()}
        verdicts = []
        for source in sources:
            iid = by_text.get(source) if isinstance(source, str) else None
            if iid is None:
                step = StepResult("inclusion", "failed", "invoice_unknown", "", "")
                verdicts.append(Verdict(False, (step,), None, None, "inclusion", 0.0))
                continue
            state = self._ledger.claim_state(iid)
            status = StepResult(
                "status",
                "passed",
                "status_ok",
                "",
                "",
                {"paid": state.paid, "locked_by": state.locked_by},
            )
            verdicts.append(Verdict(True, (status,), iid, None, None, 0.0))
        return verdicts


class NoLimits:
    """Failed attempts never limited."""

    def admit(self, asker: str) -> None:
        pass

    def record(self, asker: str | None, bill: str | None) -> None:
        pass


# -- what the claim flow reads ---------------------------------------------------------------

HOSPITAL = "H33080200001"
ISSUED = datetime(2026, 1, 10, 10, tzinfo=CST)
_counter = itertools.count(1)


def add_hospital(db: Session, code: str = HOSPITAL, level: int = 3) -> None:
    db.add(
        models.Hospital(
            code=code, name="衢州市人民医院", level=level, api_key_hash=None, created_at=ISSUED
        )
    )


def add_citizen(db: Session, n: int = 1, low_income: bool = False) -> models.Citizen:
    citizen = models.Citizen(
        id_number_hash=hashlib.sha256(f"citizen{n}".encode()).digest(),
        name_enc=b"",
        sex="F",
        birth_date=date(1980, 5, 1),
        assistance_eligible=low_income,
        password_hash=None,
        created_at=ISSUED,
    )
    db.add(citizen)
    db.flush()
    return citizen


def add_invoice(
    db: Session, citizen: models.Citizen, entry: Any, quantity_milli: int = 1000
) -> models.Invoice:
    """An outpatient invoice of ``citizen`` with one line of the catalogue ``entry``."""
    n = next(_counter)
    amount = entry.unit_price_fen * quantity_milli // 1000
    iid = hashlib.sha256(f"invoice{n}".encode()).digest()
    row = models.Invoice(
        invoice_id=iid,
        bill_code="33010125",
        bill_number=f"{n:010d}",
        check_code="123456",
        hospital=HOSPITAL,
        issued_at=ISSUED,
        issued_utc_offset_minutes=480,
        visit_type="outpatient",
        admitted_on=None,
        discharged_on=None,
        department="内科",
        diagnoses=["J06.9"],
        total=amount,
        insurance_paid=0,
        patient_paid=amount,
        line_count=1,
        patient_commitment=b"\x00" * 32,
        patient_id_hash=citizen.id_number_hash,
        patient_name_enc=None,
        patient_salt_enc=None,
        detail_root=hashlib.sha256(b"root" + iid).digest(),
        record_hash=hashlib.sha256(b"record" + iid).digest(),
        signature=b"\x01" * 65,
        signer="0x" + "22" * 20,
        received_at=ISSUED.astimezone(UTC),
        batch_id="fast",
        leaf_index=n,
        checkpoint_size=n + 1,
        voided_by=None,
        voided_at=None,
    )
    db.add(row)
    db.flush()
    db.add(
        models.InvoiceLine(
            invoice_id=iid,
            line_no=1,
            code=entry.code,
            name=entry.name,
            item_class=entry.item_class.value,
            unit_price=entry.unit_price_fen,
            quantity_milli=quantity_milli,
            amount=amount,
            department="内科",
            at_epoch=int(ISSUED.timestamp()),
            utc_offset_minutes=480,
        )
    )
    return row

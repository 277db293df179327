"""Database models (SQLAlchemy 2.0): the service's indexed read model of invoices.

The database is not the source of truth for what was anchored or paid: the chain is, and the
auditor's reconciliation recomputes the log from these rows and compares it with the chain.
Personal data: ``patient_id_hash`` is an HMAC of the ID number, ``patient_name_enc`` and
``patient_salt_enc`` are AES-GCM ciphertexts (see ``api.adapters.personal_data``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend: stored in UTC, read back as aware UTC.

    SQLite has no timezone type and would hand back naive values; a naive value written here
    is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, bytes: LargeBinary}


class Hospital(Base):
    """A hospital as the chain registers it, with its upload API key (hash only)."""

    __tablename__ = "hospitals"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer)
    api_key_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]


class HospitalKey(Base):
    """One signing key of a hospital, mirrored from the chain's registry events."""

    __tablename__ = "hospital_keys"

    hospital: Mapped[str] = mapped_column(ForeignKey("hospitals.code"), primary_key=True)
    key_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    signer: Mapped[str] = mapped_column(String(42), index=True)
    valid_from: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Invoice(Base):
    """An accepted invoice: header, signature, and where it is in the log and on chain."""

    __tablename__ = "invoices"
    __table_args__ = (
        # A bill number is unique within its issuing hospital only (bill codes are shared by a
        # region's hospitals); bill code first, so that the index finds a bill by code and
        # number whoever issued it.
        UniqueConstraint("bill_code", "bill_number", "hospital", name="uq_invoices_hospital_bill"),
        Index("ix_invoices_hospital_issued", "hospital", "issued_at"),
    )

    invoice_id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    bill_code: Mapped[str] = mapped_column(String(8))
    bill_number: Mapped[str] = mapped_column(String(10))
    check_code: Mapped[str] = mapped_column(String(6))
    hospital: Mapped[str] = mapped_column(ForeignKey("hospitals.code"))
    issued_at: Mapped[datetime]
    # The offset the hospital wrote the issue time with (signed, in the visit record).
    issued_utc_offset_minutes: Mapped[int] = mapped_column(SmallInteger)
    visit_type: Mapped[str] = mapped_column(String(12))
    admitted_on: Mapped[date | None] = mapped_column(Date)
    discharged_on: Mapped[date | None] = mapped_column(Date)
    department: Mapped[str] = mapped_column(String(100))
    diagnoses: Mapped[list[str]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(BigInteger)
    insurance_paid: Mapped[int] = mapped_column(BigInteger)
    patient_paid: Mapped[int] = mapped_column(BigInteger)
    line_count: Mapped[int] = mapped_column(Integer)
    patient_commitment: Mapped[bytes] = mapped_column(LargeBinary(32))
    patient_id_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    patient_name_enc: Mapped[bytes | None]
    patient_salt_enc: Mapped[bytes | None]
    # The patient's insurance number, sex and age when the bill gave them (format 2), as one
    # encrypted JSON object.
    patient_details_enc: Mapped[bytes | None]
    detail_root: Mapped[bytes] = mapped_column(LargeBinary(32))
    record_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(65))
    signer: Mapped[str] = mapped_column(String(42))
    received_at: Mapped[datetime]
    batch_id: Mapped[str] = mapped_column(String(36), index=True)
    # Set by the sequencer: position in the log, then the first checkpoint covering it.
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    checkpoint_size: Mapped[int | None] = mapped_column(BigInteger, index=True)
    voided_by: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    voided_at: Mapped[datetime | None]
    # 1 for the first invoice model, 2 for the national medical e-bill's (verifier.invoice);
    # a format-2 bill keeps its further header fields, split and charge categories in ``bill``
    # (``insurance_paid`` is then what the funds and the account paid, ``patient_paid`` cash).
    format: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    bill: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InvoiceLine(Base):
    """One itemised detail line (明细) of an invoice; ``line_no`` counts from 1, the line's
    leaf in the detail tree (leaf 0 is the visit record)."""

    __tablename__ = "invoice_lines"

    invoice_id: Mapped[bytes] = mapped_column(ForeignKey("invoices.invoice_id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(30), index=True)
    name: Mapped[str] = mapped_column(String(200))
    item_class: Mapped[str] = mapped_column(String(4))
    unit_price: Mapped[int] = mapped_column(BigInteger)
    quantity_milli: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    department: Mapped[str] = mapped_column(String(100))
    # The line's time as an instant (seconds since the epoch, UTC) and the UTC offset it was
    # written with, so that the hospital's local time is restored exactly. Integers keep the
    # bulk insert of a million lines free of per-row type conversion.
    at_epoch: Mapped[int] = mapped_column(BigInteger)
    utc_offset_minutes: Mapped[int] = mapped_column(SmallInteger)
    # Format 2 only (NULL for a format-1 line): the unit price exactly, in ten-thousandths of a
    # yuan (``unit_price`` is then it rounded to the fen, for display), the self-pay amount and
    # share, dosage form, specification, unit and the charge category's code.
    unit_price_e4: Mapped[int | None] = mapped_column(BigInteger)
    self_amount: Mapped[int | None] = mapped_column(BigInteger)
    self_rate_bp: Mapped[int | None] = mapped_column(Integer)
    form: Mapped[str | None] = mapped_column(String(50))
    specification: Mapped[str | None] = mapped_column(String(100))
    unit: Mapped[str | None] = mapped_column(String(20))
    charge_code: Mapped[str | None] = mapped_column(String(20))

    @property
    def time(self) -> datetime:
        zone = timezone(timedelta(minutes=self.utc_offset_minutes))
        return datetime.fromtimestamp(self.at_epoch, zone)


class Outbox(Base):
    """Work for the sequencer, written in the same transaction as the invoice it concerns."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[bytes] = mapped_column(ForeignKey("invoices.invoice_id"), unique=True)
    created_at: Mapped[datetime]
    appended_at: Mapped[datetime | None] = mapped_column(index=True)


class Checkpoint(Base):
    """A checkpoint the sequencer anchored (the chain has the authoritative copy)."""

    __tablename__ = "checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    tx_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    anchored_at: Mapped[datetime]


class Verification(Base):
    """How many times an invoice was verified successfully by others than staff (查验次数),
    shown in every valid verdict; an invoice verified unusually often is a smart-audit
    signal."""

    __tablename__ = "verifications"

    invoice_id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime]


class VerificationFailure(Base):
    """Failed verifications of one bill (an unknown bill or a wrong check code: told apart by
    nothing) in one clock hour, counted apart from :class:`Verification`; the hour's limit
    makes guessing a bill's check code hopeless."""

    __tablename__ = "verification_failures"

    bill: Mapped[str] = mapped_column(String(40), primary_key=True)  # BILLCODE-BILLNUMBER
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix time // 3600
    failures: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime]


class Citizen(Base):
    """An insured person (参保人). The ID number only as its HMAC; the name encrypted."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id_number_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    name_enc: Mapped[bytes]
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date)
    assistance_eligible: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[bytes | None] = mapped_column(LargeBinary(96))
    created_at: Mapped[datetime]


class CitizenToken(Base):
    """A sign-in session: the bearer token's SHA-256, never the token."""

    __tablename__ = "citizen_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    expires_at: Mapped[datetime]


class ClaimState(StrEnum):
    """Where a claim is (``claims.state``, and the state of a ``ClaimEvent``): the values are
    the strings stored.

    submitted -> verified -> adjudicated -> approved | in_review | rejected; in_review ->
    approved | rejected (by a reviewer); approved -> settling (picked up by a settlement);
    settling -> paid (settled on chain, its ``settled`` and ``paid`` events written together),
    approved again (a crash before the transaction, a refusal for a figure that moves) or
    rejected (refused by the ledger, or priced again to nothing). paid and rejected are final.
    """

    SUBMITTED = "submitted"
    VERIFIED = "verified"
    ADJUDICATED = "adjudicated"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    SETTLING = "settling"
    SETTLED = "settled"
    PAID = "paid"
    REJECTED = "rejected"

    def can_become(self, new: ClaimState) -> bool:
        return new in CLAIM_TRANSITIONS[self]

    def to(self, new: ClaimState) -> ClaimState:
        """``new``, once checked against the table; raises ``IllegalClaimTransition``."""
        if not self.can_become(new):
            raise IllegalClaimTransition(self, new)
        return new


class IllegalClaimTransition(Exception):
    """Raised when code is about to write a claim state that the current one cannot become
    (a bug, never a user's error): ``current`` and ``new`` name the move."""

    def __init__(self, current: ClaimState, new: ClaimState) -> None:
        super().__init__(f"a claim cannot go from {current} to {new}")
        self.current = current
        self.new = new


_S = ClaimState
#: The allowed moves: every write of a claim's state goes through ``ClaimState.to``.
CLAIM_TRANSITIONS: dict[ClaimState, frozenset[ClaimState]] = {
    _S.SUBMITTED: frozenset({_S.VERIFIED, _S.REJECTED}),
    _S.VERIFIED: frozenset({_S.ADJUDICATED, _S.REJECTED}),
    _S.ADJUDICATED: frozenset({_S.APPROVED, _S.IN_REVIEW, _S.REJECTED}),
    _S.IN_REVIEW: frozenset({_S.APPROVED, _S.REJECTED}),
    _S.APPROVED: frozenset({_S.SETTLING}),
    _S.SETTLING: frozenset({_S.SETTLED, _S.PAID, _S.APPROVED, _S.REJECTED}),
    _S.SETTLED: frozenset({_S.PAID}),
    _S.PAID: frozenset(),
    _S.REJECTED: frozenset(),
}
del _S

#: Claims that will be paid and are not yet: what a later payer in the chain prices after.
UNPAID_STATES = (ClaimState.APPROVED, ClaimState.IN_REVIEW, ClaimState.SETTLING)
#: Claims whose outcome is known (for the approval rate).
DECIDED_STATES = (
    ClaimState.APPROVED,
    ClaimState.SETTLING,
    ClaimState.SETTLED,
    ClaimState.PAID,
    ClaimState.REJECTED,
)


class Claim(Base):
    """A citizen's claim of one invoice from one payer. One per (invoice, payer), whatever the
    channel: the unique constraint is what makes two simultaneous claims one approval."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("invoice_id", "payer", name="uq_claims_invoice_payer"),)

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    invoice_id: Mapped[bytes] = mapped_column(ForeignKey("invoices.invoice_id"), index=True)
    payer: Mapped[str] = mapped_column(String(32))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    adjudication: Mapped[dict[str, Any]] = mapped_column(JSON)
    audit_hits: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    settle_tx: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class ClaimEvent(Base):
    """Every check and state change of a claim, in order: its history."""

    __tablename__ = "claim_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class Payment(Base):
    """The payment of a settled claim: created once (the claim id is the key)."""

    __tablename__ = "payments"

    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), primary_key=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    paid_at: Mapped[datetime]


class PayerAccumulator(Base):
    """A citizen's yearly totals with a payer, by pool (deductible met, paid): moved when a claim
    is decided, given back when it ends rejected."""

    __tablename__ = "payer_accumulators"

    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), primary_key=True)
    payer: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    pools: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Bumped by every write, which is conditional on the version read (api/flows/totals.py):
    # two workers never lose each other's update.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class StaffToken(Base):
    """A bearer token of a payer's staff (reviewers, counter) or of an auditor, issued by the
    authority; only its SHA-256 is stored."""

    __tablename__ = "staff_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # payer | auditor
    payer: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who changed what, and when: append-only (the database refuses updates and deletes).
    Claims' own state changes are in ``claim_events``, append-only too."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(120))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

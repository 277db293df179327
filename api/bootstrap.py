"""The service objects the routes work with, opened once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.adapters.catalogue import load_catalogue
from api.adapters.ledger import LedgerGateway
from api.adapters.personal_data import PersonalData
from api.adapters.registry import RegistryCache
from api.adapters.sequencer_lock import SequencerLock
from api.adapters.workers import WorkerPool
from api.db.session import make_engine, session_factory, upgrade
from api.flows.anchor import AnchorFlow
from api.flows.claim import ClaimFlow
from api.flows.decide import Decider, start_worker
from api.flows.review import ReviewFlow
from api.flows.settle import SettleFlow
from api.flows.upload import UploadFlow
from api.flows.verify import RateLimiter, VerifyFlow, photo_reader
from api.flows.verify_failures import FailedAttempts
from api.flows.void import VoidFlow
from api.identity.citizens import Citizens, SignInLimits
from api.identity.hospitals import Hospitals
from api.identity.staff import AuditLog, StaffTokens
from api.read.claims import ClaimReads
from api.read.health import HealthRead
from api.read.invoices import InvoiceReads
from api.read.ledger import LedgerReads
from api.read.qr import QrReads
from api.read.reconciliation import Reconciler
from api.read.trust import TrustListRead
from api.settings import Settings
from chain.factory import open_ledger
from chain.log import MerkleLog
from chain.sequencer import Sequencer
from verifier.canonical import Domain


@dataclass
class Services:
    """The flows, reads and identity checks the routes call, and what they are built on.

    ``sessions`` is the unit of work (a ``sessionmaker``); ``ledger`` is the ledger gateway,
    which owns the ledger lock: nothing here reaches the chain or the log any other way.
    """

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    ledger: LedgerGateway
    domain: Domain
    registry: RegistryCache
    # flows, in the order of the data
    ingest: UploadFlow
    anchoring: AnchorFlow
    verification: VerifyFlow
    claim: ClaimFlow
    review: ReviewFlow
    settle: SettleFlow
    void: VoidFlow
    # reads
    invoices: InvoiceReads
    qr: QrReads
    claim_reads: ClaimReads
    trust_list: TrustListRead
    health: HealthRead
    ledger_reads: LedgerReads
    reconciliation: Reconciler
    # identity
    hospitals: Hospitals
    citizens: Citizens
    staff_tokens: StaffTokens
    audit: AuditLog
    # the per-client limits the routes apply
    rate_limiter: RateLimiter
    photo_claim_limiter: RateLimiter  # per citizen

    def close(self) -> None:
        self.claim.close()
        self.ingest.close()
        self.ledger.close()
        self.engine.dispose()


def _open_ledger(settings: Settings) -> LedgerGateway:
    session = open_ledger(settings.ledger_config())
    merkle_log = MerkleLog(settings.data_dir / "ledger" / "log.sqlite")
    sequencer = Sequencer(
        merkle_log,
        session.ledger,
        session.sequencer,
        batch_size=settings.anchor_batch_size,
        interval_ms=settings.anchor_interval_ms,
        settle_batch_size=settings.settle_batch_size,
    )
    return LedgerGateway(session, merkle_log, sequencer)


def open_services(settings: Settings) -> Services:
    """Everything, built bottom-up from ``settings``: database, ledger, then the flows."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database)
    upgrade(engine)
    sessions = session_factory(engine)
    gateway = _open_ledger(settings)
    registry = RegistryCache(gateway)
    domain = Domain(gateway.chain_id, gateway.address)
    personal = PersonalData(
        settings.hmac_key.get_secret_value().encode(),
        bytes.fromhex(settings.encryption_key.get_secret_value()),
    )
    failures = FailedAttempts(
        sessions,
        settings.verify_failures_per_minute,
        settings.verify_failures_burst,
        settings.verify_bill_failures_per_hour,
    )
    verification = VerifyFlow(
        sessions, gateway, registry, domain, failures, photo_reader(settings.image_limits())
    )
    invoices = InvoiceReads(sessions, gateway)
    catalogue_path = settings.audit_catalogue_path
    decider = Decider(sessions, load_catalogue(catalogue_path))
    # One worker: this process verifies and decides too (see ClaimFlow._parts).
    decide_pool = WorkerPool(
        1, initializer=start_worker, initargs=(settings.database, catalogue_path)
    )
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        ledger=gateway,
        domain=domain,
        registry=registry,
        ingest=UploadFlow(
            sessions, registry, domain, personal, max_issue_age=settings.max_issue_age
        ),
        anchoring=AnchorFlow(sessions, gateway),
        verification=verification,
        claim=ClaimFlow(
            sessions,
            gateway,
            verification,
            failures,
            domain,
            decider,
            decide_pool,
            parallel=(os.cpu_count() or 1) >= 2,
        ),
        review=ReviewFlow(sessions, gateway),
        settle=SettleFlow(sessions, gateway, decider),
        void=VoidFlow(sessions, gateway, invoices),
        invoices=invoices,
        qr=QrReads(sessions, gateway, domain, personal),
        claim_reads=ClaimReads(sessions),
        trust_list=TrustListRead(sessions, gateway, registry, domain),
        health=HealthRead(
            sessions,
            gateway,
            settings,
            lambda: SequencerLock(engine, settings.data_dir).holder(),
        ),
        ledger_reads=LedgerReads(gateway),
        reconciliation=Reconciler(sessions, gateway),
        hospitals=Hospitals(sessions, gateway, registry),
        citizens=Citizens(sessions, personal, SignInLimits.from_settings(settings)),
        staff_tokens=StaffTokens(sessions, settings.admin_token, gateway.payers),
        audit=AuditLog(sessions),
        rate_limiter=RateLimiter(settings.verify_per_minute, settings.verify_burst),
        photo_claim_limiter=RateLimiter(
            settings.photo_claims_per_minute, settings.photo_claims_burst
        ),
    )

"""The service objects the routes work with, opened once per process."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.adapters.catalogue import load_catalogue
from api.adapters.ledger import LedgerGateway
from api.adapters.personal_data import PersonalData
from api.adapters.registry import RegistryCache
from api.adapters.sequencer_lock import SequencerLock
from api.adapters.workers import WorkerPool
from api.db.session import make_engine, session_factory, upgrade
from api.flows.anchor import AnchorService
from api.flows.claim import ClaimFlow
from api.flows.decide import Decider, start_worker
from api.flows.review import ReviewFlow
from api.flows.settle import SettleFlow
from api.flows.upload import IngestService
from api.flows.verify import RateLimiter, VerificationService, photo_reader
from api.flows.verify_failures import FailedAttempts
from api.flows.void import VoidService
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
from chain.factory import LedgerSession, open_ledger
from chain.log import MerkleLog
from chain.sequencer import Sequencer
from verifier.canonical import Domain


@dataclass
class Services:
    """Database, ledger session, invoice log, sequencer and the services built on them.

    ``lock`` serialises ledger and log access: py-evm and the log's connection are used from
    one thread at a time.
    """

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    session: LedgerSession
    log: MerkleLog
    sequencer: Sequencer
    registry: RegistryCache
    ingest: IngestService
    anchoring: AnchorService
    domain: Domain
    ledger: LedgerGateway
    lock: threading.RLock
    verification: VerificationService = field(init=False)
    void: VoidService = field(init=False)
    hospitals: Hospitals = field(init=False)
    staff_tokens: StaffTokens = field(init=False)
    audit: AuditLog = field(init=False)
    invoices: InvoiceReads = field(init=False)
    qr: QrReads = field(init=False)
    trust_list: TrustListRead = field(init=False)
    health: HealthRead = field(init=False)
    ledger_reads: LedgerReads = field(init=False)
    reconciliation: Reconciler = field(init=False)
    rate_limiter: RateLimiter = field(init=False)
    photo_claim_limiter: RateLimiter = field(init=False)  # per citizen
    sign_in_limits: SignInLimits = field(init=False)
    citizens: Citizens = field(init=False)
    claim_reads: ClaimReads = field(init=False)
    claim: ClaimFlow = field(init=False)
    review: ReviewFlow = field(init=False)
    settle: SettleFlow = field(init=False)

    def close(self) -> None:
        self.claim.close()
        self.ingest.close()
        self.log.close()
        self.session.close()
        self.engine.dispose()


def open_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database)
    upgrade(engine)
    sessions = session_factory(engine)
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
    gateway = LedgerGateway(session, merkle_log, sequencer)
    registry = RegistryCache(gateway)
    domain = Domain(session.backend.chain_id, session.ledger.address)
    personal = PersonalData(
        settings.hmac_key.get_secret_value().encode(),
        bytes.fromhex(settings.encryption_key.get_secret_value()),
    )
    ingest = IngestService(
        sessions, registry, domain, personal, max_issue_age=settings.max_issue_age
    )
    anchoring = AnchorService(sessions, gateway)
    services = Services(
        settings,
        engine,
        sessions,
        session,
        merkle_log,
        sequencer,
        registry,
        ingest,
        anchoring,
        domain,
        gateway,
        # Until every caller goes through the gateway, the old lock is the gateway's.
        gateway._lock,
    )
    failures = FailedAttempts(
        sessions,
        settings.verify_failures_per_minute,
        settings.verify_failures_burst,
        settings.verify_bill_failures_per_hour,
    )
    services.verification = VerificationService(
        sessions, gateway, registry, domain, failures, photo_reader(settings.image_limits())
    )
    services.hospitals = Hospitals(sessions, gateway, registry)
    services.staff_tokens = StaffTokens(sessions, settings.admin_token, gateway.payers)
    services.audit = AuditLog(sessions)
    services.invoices = InvoiceReads(sessions, gateway)
    services.void = VoidService(sessions, gateway, services.invoices)
    services.qr = QrReads(sessions, gateway, domain, personal)
    services.trust_list = TrustListRead(sessions, gateway, registry, domain)
    services.health = HealthRead(
        sessions,
        gateway,
        settings,
        lambda: SequencerLock(services.engine, settings.data_dir).holder(),
    )
    services.ledger_reads = LedgerReads(gateway)
    services.reconciliation = Reconciler(sessions, gateway)
    services.rate_limiter = RateLimiter(settings.verify_per_minute, settings.verify_burst)
    services.photo_claim_limiter = RateLimiter(
        settings.photo_claims_per_minute, settings.photo_claims_burst
    )
    services.sign_in_limits = SignInLimits.from_settings(settings)
    services.citizens = Citizens(sessions, personal, services.sign_in_limits)
    catalogue_path = settings.audit_catalogue_path
    decider = Decider(sessions, load_catalogue(catalogue_path))
    # One worker: this process verifies and decides too (see ClaimFlow._parts).
    decide_pool = WorkerPool(
        1, initializer=start_worker, initargs=(settings.database, catalogue_path)
    )
    services.claim = ClaimFlow(
        sessions,
        gateway,
        services.verification,
        failures,
        domain,
        decider,
        decide_pool,
        parallel=(os.cpu_count() or 1) >= 2,
    )
    services.review = ReviewFlow(sessions, gateway)
    services.claim_reads = ClaimReads(sessions)
    services.settle = SettleFlow(sessions, gateway, decider)
    return services

"""The service objects the routes work with, opened once per process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.adapters.ledger import LedgerGateway
from api.adapters.personal_data import PersonalData
from api.adapters.registry import RegistryCache
from api.db.session import make_engine, session_factory, upgrade
from api.flows.anchor import AnchorService
from api.flows.upload import IngestService
from api.flows.verify import RateLimiter, VerificationService
from api.settings import Settings

if TYPE_CHECKING:
    from api.flows.claim import ClaimService
    from api.identity.citizens import SignInLimits
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
    rate_limiter: RateLimiter = field(init=False)
    photo_claim_limiter: RateLimiter = field(init=False)  # per citizen
    sign_in_limits: SignInLimits = field(init=False)
    claims: ClaimService = field(init=False)

    def close(self) -> None:
        self.claims.close()
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
    anchoring = AnchorService(sessions, sequencer)
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
    services.verification = VerificationService(services)
    services.rate_limiter = RateLimiter(settings.verify_per_minute, settings.verify_burst)
    services.photo_claim_limiter = RateLimiter(
        settings.photo_claims_per_minute, settings.photo_claims_burst
    )
    from api.identity.citizens import SignInLimits

    services.sign_in_limits = SignInLimits.from_settings(settings)
    from api.flows.claim import ClaimService

    services.claims = ClaimService(services)
    return services

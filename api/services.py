"""The service objects the routes work with, opened once per process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from api.settings import Settings
from chain.factory import LedgerSession, open_ledger
from chain.log import MerkleLog
from chain.sequencer import Sequencer


@dataclass
class Services:
    """Ledger session, invoice log and sequencer; ``lock`` serialises ledger access (py-evm
    and the log connection are used from one thread at a time)."""

    settings: Settings
    session: LedgerSession
    log: MerkleLog
    sequencer: Sequencer
    lock: threading.RLock = field(default_factory=threading.RLock)

    def close(self) -> None:
        self.log.close()
        self.session.close()


def open_services(settings: Settings) -> Services:
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
    return Services(settings, session, merkle_log, sequencer)

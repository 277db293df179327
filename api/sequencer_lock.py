"""One sequencer at a time, across worker processes and hosts.

On PostgreSQL a session-level advisory lock, held on a connection of its own for as long as
the process runs the sequencer; on SQLite (one host by nature) an exclusive ``flock`` on a file
beside the database. Whoever holds it anchors and settles; the other workers serve requests.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

ADVISORY_KEY = 0x7A65726F636C61  # "zerocla"


class SequencerLock:
    def __init__(self, engine: Engine, data_dir: Path) -> None:
        self._engine = engine
        self._path = data_dir / "sequencer.lock"
        self._held: Any = None

    @property
    def held(self) -> bool:
        return self._held is not None

    def try_acquire(self) -> bool:
        """True when this process holds the lock (now or already)."""
        if self._held is not None:
            return True
        if self._engine.dialect.name == "postgresql":
            connection = self._engine.connect()
            if connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}):
                self._held = connection
                return True
            connection.close()
            return False
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._held = fd
        return True

    def release(self) -> None:
        if self._held is None:
            return
        if isinstance(self._held, int):
            fcntl.flock(self._held, fcntl.LOCK_UN)
            os.close(self._held)
        else:
            self._held.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            self._held.close()
        self._held = None

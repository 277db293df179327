"""One sequencer at a time, across worker processes and hosts.

On PostgreSQL a session-level advisory lock, held on a connection of its own for as long as
the process runs the sequencer; on SQLite (one host by nature) an exclusive ``flock`` on a file
beside the database. Whoever holds it anchors and settles; the other workers serve requests.

A lock can be held by a process that no longer sequences: one stopped by a debugger or the
kernel, or a child forked with the lock's file descriptor or connection in it, which keeps
the lock after its parent died. So the holder *beats*: a thread touches the lock every second
(on PostgreSQL a query on the lock's own connection, which also notices when that connection,
and with it the lock, is lost; on SQLite the lock file's modification time), and
:meth:`SequencerLock.holder` tells any worker, on any host, who holds the lock and when it
last beat (``/readyz`` is not ready when nobody holds it or its holder went silent). A child
forked from the holder closes its copy of the lock file at once; pools of worker processes
are never forked from the service (api/adapters/workers.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, text

ADVISORY_KEY = 0x7A65726F636C61  # "zerocla"
#: Seconds between two beats of the holder.
BEAT_EVERY_S = 1.0
#: Who holds the advisory lock, from any session: a bigint key is split into two oids.
_HOLDER = text(
    "SELECT a.pid, a.application_name, a.state_change FROM pg_locks l"
    " JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid = CAST(:hi AS oid) AND l.objid = CAST(:lo AS oid)"
)


@dataclass(frozen=True)
class Holder:
    """The process holding the sequencer lock: ``name`` is its host and pid (``host:pid``),
    ``beat_at`` its last beat, None when this database role may not see it."""

    name: str
    beat_at: datetime | None


class SequencerLock:
    def __init__(self, engine: Engine, data_dir: Path, beat_every_s: float = BEAT_EVERY_S) -> None:
        self._engine = engine
        self._path = data_dir / "sequencer.lock"
        self._beat_every_s = beat_every_s
        self._held: Connection | int | None = None
        self._lost = threading.Event()  # the connection died: the server dropped the lock
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None
        self._use = threading.Lock()  # the lock's connection, one thread at a time
        self._name = f"{socket.gethostname()}:{os.getpid()}"
        _LOCKS.add(self)

    @property
    def held(self) -> bool:
        return self._held is not None and not self._lost.is_set()

    def try_acquire(self) -> bool:
        """True when this process holds the lock (now or already)."""
        if self._held is not None:
            if not self._lost.is_set():
                return True
            self.release()  # lost with its connection: take it again, if nobody else did
        if self._engine.dialect.name == "postgresql":
            self._held = self._acquire_advisory()
        else:
            self._held = self._acquire_file()
        if self._held is None:
            return False
        self._stop.clear()
        self._lost.clear()
        self._beater = threading.Thread(target=self._beat, name="sequencer-beat", daemon=True)
        self._beater.start()
        return True

    def _acquire_advisory(self) -> Connection | None:
        # Autocommit: the lock belongs to the session, and no transaction stays open on it.
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}):
                connection.execute(
                    text("SELECT set_config('application_name', :name, false)"),
                    {"name": f"zeroclaim sequencer {self._name}"[:63]},
                )
                return connection
        except Exception:
            connection.close()
            raise
        connection.close()
        return None

    def _acquire_file(self) -> int | None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.pwrite(fd, self._name.encode(), 0)
        return fd

    def _beat(self) -> None:
        while not self._stop.wait(self._beat_every_s):
            try:
                with self._use:
                    if isinstance(self._held, int):
                        os.utime(self._held)
                    elif self._held is not None:
                        self._held.execute(text("SELECT 1"))
            except Exception:  # the connection (and the lock) is gone; try_acquire retakes it
                self._lost.set()
                return

    def release(self) -> None:
        self._stop.set()
        if self._beater is not None and self._beater is not threading.current_thread():
            self._beater.join()
        self._beater = None
        held, self._held = self._held, None
        if isinstance(held, int):
            fcntl.flock(held, fcntl.LOCK_UN)
            os.close(held)
        elif held is not None:
            with contextlib.suppress(Exception):  # a lost connection has nothing to unlock
                if not self._lost.is_set():
                    held.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            with contextlib.suppress(Exception):
                held.close()

    def holder(self) -> Holder | None:
        """Who holds the lock (this process or another, on any host) and its last beat;
        None when nobody holds it."""
        if self._engine.dialect.name == "postgresql":
            with self._engine.connect() as connection:
                row = connection.execute(
                    _HOLDER, {"hi": ADVISORY_KEY >> 32, "lo": ADVISORY_KEY & 0xFFFFFFFF}
                ).first()
            if row is None:
                return None
            name = (row.application_name or "").removeprefix("zeroclaim sequencer ")
            return Holder(name or f"postgresql backend {row.pid}", row.state_change)
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:  # a shared lock is granted only when nobody holds the exclusive one
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                beat_at = datetime.fromtimestamp(os.fstat(fd).st_mtime, UTC)
                return Holder(os.pread(fd, 300, 0).decode(errors="replace"), beat_at)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def _forget_in_child(self) -> None:
        """In a child just forked: the lock stays with the parent alone. The child's copy of
        the lock's descriptor is closed (a flock lives on while any copy is open); a lock
        connection's socket is pointed at /dev/null instead, so that nothing the child does
        with it (closing it sends the server a goodbye) reaches the parent's session."""
        held, self._held = self._held, None
        self._beater = None
        if isinstance(held, int):
            os.close(held)
        elif held is not None:
            dbapi = held.connection.dbapi_connection
            if dbapi is not None:
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, dbapi.fileno(), inheritable=False)
                os.close(devnull)
            _ORPHANED.append(held)  # never closed, never reused here


_LOCKS: weakref.WeakSet[SequencerLock] = weakref.WeakSet()
_ORPHANED: list[Connection] = []


def _after_fork_in_child() -> None:
    for lock in list(_LOCKS):
        lock._forget_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)

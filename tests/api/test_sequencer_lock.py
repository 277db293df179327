"""One sequencer at a time: the PostgreSQL advisory lock is held by one process; when that
process dies (SIGKILL, no clean-up), another takes the lock over, even when it had forked a
child that lives on. The holder beats, so a holder that stopped (or lost its connection, and
with it the lock) is told from a live one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from api.adapters.sequencer_lock import SequencerLock
from api.db.session import make_engine
from tests.api import killing
from tests.conftest import ROOT, fresh_database

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from api.db.session import make_engine
    from api.adapters.sequencer_lock import SequencerLock
    lock = SequencerLock(make_engine(sys.argv[1]), Path(sys.argv[2]))
    assert lock.try_acquire()
    print("held", flush=True)
    time.sleep(600)
""")


def test_another_process_takes_over_when_the_holder_dies(
    postgres_server: str, tmp_path: Path
) -> None:
    url = fresh_database(postgres_server)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    engine = make_engine(url)
    mine = SequencerLock(engine, tmp_path)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not mine.try_acquire()  # one at a time
        assert not mine.try_acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not mine.try_acquire():
            assert time.monotonic() < deadline, "the lock of a dead holder was never freed"
            time.sleep(0.1)
        assert mine.held
        other = SequencerLock(engine, tmp_path)
        assert not other.try_acquire()  # and now this process holds it alone
        mine.release()
        assert other.try_acquire()
        other.release()
    finally:
        holder.kill()
        mine.release()
        engine.dispose()


def test_on_sqlite_a_file_lock_does_the_same(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/db.sqlite")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, f"sqlite:///{tmp_path}/db.sqlite", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    mine = SequencerLock(engine, tmp_path)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not mine.try_acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert mine.try_acquire()  # the kernel dropped the dead process's flock
    finally:
        holder.kill()
        mine.release()
        engine.dispose()


FORKS = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from api.db.session import make_engine
    from api.adapters.sequencer_lock import SequencerLock
    lock = SequencerLock(make_engine(sys.argv[1]), Path(sys.argv[2]))
    assert lock.try_acquire()
    child = os.fork()  # as a worker pool forked after the lock was taken would
    if child == 0:
        time.sleep(600)
        os._exit(0)
    print("held", child, flush=True)
    time.sleep(600)
""")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db.sqlite"
    return fresh_database(request.getfixturevalue("postgres_server"))


def _start(script: str, url: str, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, url, str(data)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_child_forked_by_the_holder_does_not_keep_the_lock(database: str, tmp_path: Path) -> None:
    holder = _start(FORKS, database, tmp_path)
    engine = make_engine(database)
    mine = SequencerLock(engine, tmp_path)
    child = 0
    try:
        assert holder.stdout is not None
        word, pid = holder.stdout.readline().split()
        child = int(pid)
        assert word == "held" and not mine.try_acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        killing.wait_until(mine.try_acquire, 10, "the forked child kept the lock")
        assert killing.alive(child)  # still there, and the lock is free all the same
    finally:
        holder.kill()
        if child:
            os.kill(child, signal.SIGKILL)
        mine.release()
        engine.dispose()


def test_the_holder_beats_and_a_stopped_holder_falls_silent(database: str, tmp_path: Path) -> None:
    engine = make_engine(database)
    probe = SequencerLock(engine, tmp_path)
    assert probe.holder() is None  # nobody yet
    holder = _start(HOLDER, database, tmp_path)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        found = probe.holder()
        assert found is not None and found.name.endswith(f":{holder.pid}")

        def silent_for() -> float:
            found = probe.holder()
            assert found is not None and found.beat_at is not None
            return (datetime.now(UTC) - found.beat_at).total_seconds()

        killing.wait_until(lambda: silent_for() < 1.5, 5, "the holder does not beat")
        holder.send_signal(signal.SIGSTOP)  # holds the lock, does nothing
        killing.wait_until(lambda: silent_for() > 2.5, 10, "a stopped holder still beats")
        holder.send_signal(signal.SIGCONT)
        killing.wait_until(lambda: silent_for() < 1.5, 5, "the holder does not beat again")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        killing.wait_until(lambda: probe.holder() is None, 10, "a dead process holds the lock")
    finally:
        holder.kill()
        engine.dispose()


def test_a_holder_whose_connection_dies_knows_it_lost_the_lock(postgres_server: str) -> None:
    engine = make_engine(fresh_database(postgres_server))
    mine = SequencerLock(engine, Path("unused"), beat_every_s=0.1)
    try:
        assert mine.try_acquire()
        with engine.connect() as connection:  # the server ends the session (a restart, a DBA)
            ended = connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database()"
                    " AND application_name LIKE 'zeroclaim sequencer %'"
                )
            )
        assert ended == 1
        killing.wait_until(lambda: not mine.held, 5, "the holder still thinks it holds the lock")
        assert mine.try_acquire()  # a new session takes the lock again
        found = mine.holder()
        assert found is not None and found.name.endswith(f":{os.getpid()}")
    finally:
        mine.release()
        engine.dispose()

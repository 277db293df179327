"""One sequencer at a time: the PostgreSQL advisory lock is held by one process; when that
process dies (SIGKILL, no clean-up), another takes the lock over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from api.db.session import make_engine
from api.sequencer_lock import SequencerLock
from tests.conftest import ROOT, fresh_database

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from api.db.session import make_engine
    from api.sequencer_lock import SequencerLock
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

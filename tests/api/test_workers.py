"""The worker pools: a worker that dies (killed for its memory, say) costs only the tasks it
held; the pool is replaced and later batches run."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from api.adapters.workers import WorkerPool


def test_a_pool_whose_worker_was_killed_is_replaced() -> None:
    pool = WorkerPool(1)
    try:
        assert pool.submit(os.getpid).result(timeout=60) != os.getpid()
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGKILL)
        # The executor notices the death and marks itself broken; what was in flight fails.
        deadline = time.monotonic() + 30
        while True:
            try:
                result = pool.submit(os.getpid).result(timeout=60)
            except BrokenProcessPool:
                assert time.monotonic() < deadline, "the pool never recovered"
                time.sleep(0.1)
                continue
            break
        assert result not in (pid, os.getpid())
        assert pool.pids() and pid not in pool.pids()
    finally:
        pool.close()


def test_a_closed_pool_starts_again_on_the_next_task() -> None:
    pool = WorkerPool(1)
    assert not pool.started
    try:
        assert pool.submit(int, "7").result(timeout=60) == 7
        pool.close()
        assert not pool.started
        assert pool.submit(int, "8").result(timeout=60) == 8
    finally:
        pool.close()


@pytest.mark.parametrize("size", [1, 2])
def test_every_task_of_a_batch_runs_in_a_worker(size: int) -> None:
    pool = WorkerPool(size)
    try:
        pids = {f.result(timeout=60) for f in [pool.submit(os.getpid) for _ in range(8)]}
        assert os.getpid() not in pids and 1 <= len(pids) <= size
    finally:
        pool.close()

"""Worker processes for the CPU-bound parts of large batches (signature recovery at upload,
claim decisions), started on first use and shut down with the services.

A worker must never hold what the service holds. The pools start on first use, long after the
server bound its socket, the sequencer took its lock and uvicorn installed its signal
handlers, so they are never forked from the service: their processes come from a fork server
(or are spawned where there is none), a fresh interpreter started with ``exec`` that inherits
no listening socket, no database connection, no lock file and no signal handler. And a worker
dies with the process that started it: a thread in each worker waits on the parent's sentinel
(a pipe only the parent holds open, closed by the kernel when it dies, even by SIGKILL) and
ends the worker then. ``PR_SET_PDEATHSIG`` would not do: it fires when the *thread* that
started the worker ends (a request thread of the server), and the parent of a fork server's
worker is the fork server, which itself lives until every worker is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from typing import Any

#: The modules whose functions the pools run, imported once by the fork server, so that a new
#: worker is ready in milliseconds rather than the second an interpreter takes to import them.
PRELOAD = ["api.flows.upload", "api.flows.decide"]


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _exit_with_parent() -> None:
    """Waits until the parent process is gone, then ends this worker at once."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
    os._exit(1)


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """Runs in each worker before its first task."""
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    # Ctrl-C reaches the whole process group; the parent shuts the pool down in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


class WorkerPool:
    """``size`` worker processes (default: one per core), each set up by ``initializer``
    (a module-level function: it is sent to the worker by name)."""

    def __init__(
        self,
        size: int | None = None,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self.size = size if size is not None else (os.cpu_count() or 1)
        self._initializer = initializer
        self._initargs = initargs
        self._pool: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self._pool is not None

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Runs ``fn(*args)`` in a worker. A pool broken by a worker's death (killed for its
        memory, say) is replaced, so only the tasks it held fail with ``BrokenProcessPool``
        and every later one runs again."""
        if self._pool is None:
            self._pool = self._new_pool()
        try:
            return self._pool.submit(fn, *args)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(fn, *args)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.size,
            mp_context=_context(),
            initializer=_start_worker,
            initargs=(self._initializer, self._initargs),
        )

    def pids(self) -> list[int]:
        """The worker processes' ids (none before the first task)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(processes)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

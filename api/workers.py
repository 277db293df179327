"""Worker processes for the CPU-bound parts of large batches (signature recovery at upload,
claim decisions), started on first use and shut down with the services."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any


class WorkerPool:
    """``size`` worker processes (default: one per core), each set up by ``initializer``."""

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
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.size, initializer=self._initializer, initargs=self._initargs
            )
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

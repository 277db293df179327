"""Running a service script in its own process and killing it with SIGKILL mid-work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT


def run_and_kill(
    script: str, args: list[str], lines_before_kill: int, delay: float, may_die: bool = False
) -> list[str]:
    """Runs ``script`` with ``args``, reads ``lines_before_kill`` lines of its output (its
    acknowledgements), waits ``delay`` seconds and kills it; returns every line it printed,
    those read after the kill too. ``may_die``: the script may kill itself before that many."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: list[str] = []
    try:
        assert proc.stdout is not None
        for _ in range(lines_before_kill):
            line = proc.stdout.readline()
            if not line and may_die:
                break
            assert line, proc.stderr.read() if proc.stderr else "the process died"
            printed.append(line.strip())
        time.sleep(delay)  # somewhere in the next piece of work
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.stdout is not None
    printed += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    return printed

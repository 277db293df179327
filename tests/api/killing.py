"""Running a service script in its own process and killing it with SIGKILL mid-work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (parent := _parent_of(int(entry.name))) is not None:
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found if alive(p)}


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Polls ``condition`` until it holds; returns how long that took, fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"after {seconds} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def start_service(
    env: dict[str, str], log: Path, command: tuple[str, ...] = ("-m", "api.cli", "run")
) -> subprocess.Popen[bytes]:
    """``zeroclaim run`` (or another ``python`` command) in its own process with
    ``ZEROCLAIM_*`` from ``env``; its output goes to ``log`` (a pipe nobody reads would stall
    it)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

"""Runs the benchmarks and merges their figures into bench/results.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import claims, decode, ingest, ledger, load, verify

RESULTS = Path(__file__).resolve().parent / "results.json"
BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "ledger": ledger.run,
    "ingest": ingest.run,
    "verify": verify.run,
    "decode": decode.run,
    "claims": claims.run,
    "load": load.run,
}


def machine() -> str:
    model = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help="benchmarks to run")
    parser.add_argument("--leaves", type=int, default=1_000_000, help="ledger: leaves to append")
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = machine()
    broken: list[str] = []
    for name in args.names:
        try:
            figures = (
                BENCHMARKS[name](leaves=args.leaves) if name == "ledger" else BENCHMARKS[name]()
            )
        except load.LoadRequirementsBroken as exc:
            # The figures of a failed run are kept too: they say which bound broke, and by how much.
            figures = exc.figures
            broken.append(f"{name}: {exc}")
        for key, value in figures.items():
            print(f"{key:40} {value}")
        results.update(figures)
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"written to {RESULTS}")
    if broken:
        sys.exit("\n".join(broken))


if __name__ == "__main__":
    main()

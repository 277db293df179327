"""Fixtures shared by every test folder: real ledger backends, fresh per test.

The RPC backend runs against a real anvil process (npm package @foundry-rs/anvil, installed by
``make setup``), started once per session; each test deploys its own contract, so tests do not
see each other's state.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.factory import LedgerConfig, LedgerSession, open_ledger

ROOT = Path(__file__).resolve().parent.parent
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
CHAIN_ID = 5700
BACKENDS = ("embedded", "rpc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """A real anvil JSON-RPC node on loopback, zero base fee like a permissioned network."""
    if not ANVIL.exists():
        pytest.fail(f"{ANVIL} missing: run `make setup`")
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(ANVIL),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            str(CHAIN_ID),
            "--hardfork",
            "cancun",
            "--block-base-fee-per-gas",
            "0",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                proc.kill()
                pytest.fail(f"anvil did not start: {err}")
            time.sleep(0.05)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def make_config(
    backend: str,
    data_dir: Path,
    rpc_url: str | None = None,
    payers: tuple[str, ...] = ("basic", "commercial"),
) -> LedgerConfig:
    return LedgerConfig(
        data_dir=data_dir,
        keystore_password="test-password",
        backend=backend,  # type: ignore[arg-type]
        chain_id=CHAIN_ID,
        rpc_url=rpc_url,
        payers=payers,
        kdf_iterations=2,  # fast keystores for tests; production uses scrypt
    )


@pytest.fixture(params=BACKENDS)
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerSession]:
    """A freshly bootstrapped ledger on each backend: contract deployed, roles granted."""
    url = request.getfixturevalue("anvil_url") if request.param == "rpc" else None
    opened = open_ledger(make_config(request.param, tmp_path / "data", url))
    yield opened
    opened.close()

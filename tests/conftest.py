"""Fixtures shared by every test folder: real ledger backends, fresh per test.

The RPC backend runs against a real anvil process (npm package @foundry-rs/anvil, installed by
``make setup``), started once per session; each test deploys its own contract, so tests do not
see each other's state.
"""

from __future__ import annotations

import os
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


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries missing: run `make setup` (Debian postgresql)")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server (Debian's package) in a throw-away cluster on a free port.

    Runs as the ``postgres`` system user, since the server refuses to run as root.
    """
    import shutil
    import tempfile

    bin_dir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="zeroclaim-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run(
        [
            *as_postgres,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    subprocess.run(
        [
            *as_postgres,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server, for one test."""
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    dsn = server_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


@pytest.fixture(params=BACKENDS)
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerSession]:
    """A freshly bootstrapped ledger on each backend: contract deployed, roles granted."""
    url = request.getfixturevalue("anvil_url") if request.param == "rpc" else None
    opened = open_ledger(make_config(request.param, tmp_path / "data", url))
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def _database_from_environment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ZEROCLAIM_TEST_DATABASE=postgresql`` (the second pass of ``make test``): every service
    a test opens without naming its database, in process or in a subprocess, gets a fresh
    PostgreSQL database instead of SQLite in its data directory."""
    if os.environ.get("ZEROCLAIM_TEST_DATABASE") != "postgresql":
        return
    if request.node.path.parent.name in ("chain", "verifier", "claims"):
        return  # no database there
    server = request.getfixturevalue("postgres_server")
    monkeypatch.setenv("ZEROCLAIM_DATABASE_URL", fresh_database(server))

"""Opens the configured ledger backend and the deployed contract; bootstraps a fresh one.

A fresh data directory bootstraps itself with no manual step: keystores for the authority, the
sequencer and the payers the service settles for, the contract deployed by the authority, the
roles granted, and ``deployment.json`` recording where it is. Opening again reads that record
and checks that the contract on chain is this build.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from eth_account.signers.local import LocalAccount

from chain.backend import Backend
from chain.errors import LedgerConfigError
from chain.keys import KeyStore
from chain.ledger import Call, Ledger, role_id
from chain.model import Role

DEPLOYMENT_FILE = "deployment.json"


@dataclass(frozen=True)
class LedgerConfig:
    """What the ledger needs to know; built from the service settings (``api.settings``)."""

    data_dir: Path
    keystore_password: str
    backend: Literal["embedded", "rpc"] = "embedded"
    chain_id: int = 5700
    rpc_url: str | None = None
    rpc_poa: bool = False
    rpc_timeout_seconds: float = 30.0
    contract_address: str | None = None
    payers: tuple[str, ...] = ("basic",)
    kdf_iterations: int | None = None

    @property
    def keystore_dir(self) -> Path:
        return self.data_dir / "keys"


@dataclass
class LedgerSession:
    """An open ledger with the service's unlocked accounts."""

    config: LedgerConfig
    backend: Backend
    ledger: Ledger
    keys: KeyStore
    authority: LocalAccount
    sequencer: LocalAccount
    payers: dict[str, LocalAccount]

    def close(self) -> None:
        self.backend.close()


def open_backend(config: LedgerConfig) -> Backend:
    """The backend named by the configuration (web3.py is imported only for ``rpc``)."""
    if config.backend == "embedded":
        from chain.embedded import EmbeddedBackend

        return EmbeddedBackend(config.data_dir / "ledger.sqlite", config.chain_id)
    if config.backend == "rpc":
        if not config.rpc_url:
            raise LedgerConfigError("the rpc ledger backend needs rpc_url")
        from chain.rpc import RpcBackend

        return RpcBackend(
            config.rpc_url,
            poa=config.rpc_poa,
            timeout_seconds=config.rpc_timeout_seconds,
            expected_chain_id=config.chain_id,
        )
    raise LedgerConfigError(f"unknown ledger backend {config.backend!r}")


def open_ledger(config: LedgerConfig) -> LedgerSession:
    """Opens (and on first use bootstraps) the ledger described by ``config``."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    keys = KeyStore(config.keystore_dir, config.keystore_password, config.kdf_iterations)
    authority = keys.load_or_create("authority")
    sequencer = keys.load_or_create("sequencer")
    payers = {name: keys.load_or_create(f"payer-{name}") for name in config.payers}
    backend = open_backend(config)
    try:
        ledger = _attach_or_deploy(config, backend, authority)
        _grant_missing_roles(ledger, authority, sequencer, payers)
    except BaseException:
        backend.close()
        raise
    return LedgerSession(config, backend, ledger, keys, authority, sequencer, payers)


def _attach_or_deploy(config: LedgerConfig, backend: Backend, authority: LocalAccount) -> Ledger:
    record_path = config.data_dir / DEPLOYMENT_FILE
    address = config.contract_address
    if address is None and record_path.exists():
        record = json.loads(record_path.read_text())
        if record["chain_id"] != backend.chain_id:
            raise LedgerConfigError(
                f"{record_path} is for chain {record['chain_id']}, the node is chain "
                f"{backend.chain_id}"
            )
        address = record["contract"]
    if address is not None:
        ledger = Ledger(backend, address)
        ledger.check_deployed()
        return ledger
    ledger = Ledger.deploy(backend, authority)
    record = {
        "backend": config.backend,
        "chain_id": backend.chain_id,
        "contract": ledger.address,
        "block": backend.block_number(),
        "deployed_at": datetime.now(UTC).isoformat(),
        "authority": authority.address,
    }
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    with open(tmp) as f:
        os.fsync(f.fileno())
    tmp.replace(record_path)
    return ledger


def _grant_missing_roles(
    ledger: Ledger,
    authority: LocalAccount,
    sequencer: LocalAccount,
    payers: dict[str, LocalAccount],
) -> None:
    wanted = [(Role.SEQUENCER, sequencer.address)]
    wanted += [(Role.PAYER, payer.address) for payer in payers.values()]
    missing = [(role, address) for role, address in wanted if not ledger.has_role(role, address)]
    if missing:
        ledger.transact_many(
            [Call(authority, "grantRole", (role_id(role), address)) for role, address in missing]
        )

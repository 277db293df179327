"""The one settings object of the service (environment variables ``ZEROCLAIM_*`` or ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chain.factory import LedgerConfig

DEV_PASSWORD = "zeroclaim-development-only"


class Settings(BaseSettings):
    """Service configuration. Outside ``development`` it refuses the development defaults."""

    model_config = SettingsConfigDict(env_prefix="ZEROCLAIM_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000

    ledger_backend: Literal["embedded", "rpc"] = "embedded"
    chain_id: int = 5700
    rpc_url: str | None = None
    rpc_poa: bool = Field(False, description="QBFT/IBFT/Clique extra-data (Besu networks)")
    contract_address: str | None = None
    keystore_password: SecretStr = SecretStr(DEV_PASSWORD)
    payers: tuple[str, ...] = ("basic", "critical", "assistance", "commercial")

    anchor_batch_size: int = Field(1024, ge=1, description="leaves per checkpoint")
    anchor_interval_ms: int = Field(2000, ge=0, description="max wait before a checkpoint")
    settle_batch_size: int = Field(500, ge=1, description="payments per settlement transaction")

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        unsafe_password = self.keystore_password.get_secret_value() in ("", DEV_PASSWORD)
        if self.environment != "development" and unsafe_password:
            raise ValueError("set ZEROCLAIM_KEYSTORE_PASSWORD outside development")
        if self.ledger_backend == "rpc" and not self.rpc_url:
            raise ValueError("ZEROCLAIM_RPC_URL is required with ZEROCLAIM_LEDGER_BACKEND=rpc")
        return self

    def ledger_config(self) -> LedgerConfig:
        return LedgerConfig(
            data_dir=self.data_dir / "ledger",
            keystore_password=self.keystore_password.get_secret_value(),
            backend=self.ledger_backend,
            chain_id=self.chain_id,
            rpc_url=self.rpc_url,
            rpc_poa=self.rpc_poa,
            contract_address=self.contract_address,
            payers=self.payers,
            # Development keystores unlock fast; production ones use scrypt.
            kdf_iterations=1000 if self.environment == "development" else None,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()

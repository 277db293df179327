"""The one settings object of the service (environment variables ``ZEROCLAIM_*`` or ``.env``)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chain.factory import LedgerConfig

if TYPE_CHECKING:
    from verifier.decode import ImageLimits

DEV_PASSWORD = "zeroclaim-development-only"
# Development-only secrets; production must set its own (refused below).
DEV_HMAC_KEY = "dev-hmac-key-0123456789abcdef0123456789abcdef"
DEV_ENCRYPTION_KEY = "00" * 32
DEV_ADMIN_TOKEN = "dev-admin-token"


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

    database_url: str | None = Field(None, description="default: SQLite in data_dir")
    admin_token: SecretStr = Field(
        SecretStr(DEV_ADMIN_TOKEN), description="bearer token of the authority's admin API"
    )
    hmac_key: SecretStr = SecretStr(DEV_HMAC_KEY)
    encryption_key: SecretStr = Field(
        SecretStr(DEV_ENCRYPTION_KEY), description="64 hex digits: AES-256-GCM key"
    )

    verify_per_minute: int = Field(60, ge=1, description="verifications per client per minute")
    verify_burst: int = Field(20, ge=1, description="verifications a client may send at once")
    sign_in_per_minute: int = Field(20, ge=1, description="citizen sign-ins per client per minute")
    sign_in_burst: int = Field(30, ge=1, description="citizen sign-ins a client may send at once")
    sign_in_account_per_hour: int = Field(
        10, ge=1, description="sign-in attempts per ID number per hour (also its burst)"
    )
    verify_failures_per_minute: int = Field(
        2,
        ge=1,
        description="failed verifications (unknown bill or wrong check code) per client"
        " or signed-in citizen per minute",
    )
    verify_failures_burst: int = Field(
        10, ge=1, description="failed verifications a client or citizen may make at once"
    )
    verify_bill_failures_per_hour: int = Field(
        10,
        ge=1,
        description="failed verifications of one bill code and number per clock hour,"
        " from everybody; then 429 for that bill until the hour ends",
    )

    max_issue_age_days: int | None = Field(
        None,
        ge=1,
        description="uploads: oldest issue time accepted, in days before arrival; unset: 30"
        " outside development, no bound in development (the demo data is of 2025)",
    )

    audit_catalogue: Path | None = Field(
        None,
        description="the audit catalogue (CSV, docs/catalogue.md) the smart-audit rules check"
        " lines against; unset: the catalogue shipped in api/adapters/audit_catalogue.csv",
    )

    anchor_batch_size: int = Field(1024, ge=1, description="leaves per checkpoint")
    anchor_interval_ms: int = Field(2000, ge=0, description="max wait before a checkpoint")
    settle_batch_size: int = Field(500, ge=1, description="payments per settlement transaction")
    max_upload_bytes: int = Field(
        64 * 1024 * 1024, ge=1, description="largest invoice batch (JSON or CSV) accepted"
    )
    max_image_bytes: int = Field(8 * 1024 * 1024, ge=1, description="largest photo accepted")
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="most pixels of a photo, read from its header"
    )
    max_image_side: int = Field(16_384, ge=1, description="widest or tallest photo, in pixels")
    max_image_decoded_bytes: int = Field(
        48 * 1024 * 1024, ge=1, description="most memory a photo may take decoded"
    )
    photo_claims_per_minute: int = Field(
        10, ge=1, description="claims by photo per citizen per minute"
    )
    photo_claims_burst: int = Field(
        5, ge=1, description="claims by photo a citizen may send at once"
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1, description="largest other request body")
    ready_max_anchoring_lag: int = Field(
        10_000, ge=0, description="/readyz: most leaves appended but not yet anchored"
    )
    ready_max_settlement_wait_s: float = Field(
        600, ge=0, description="/readyz: longest an approved claim may wait for settlement"
    )
    ready_max_anchoring_stall_s: float = Field(
        60,
        ge=0,
        description="/readyz: longest invoices may wait for anchoring while it does not move",
    )
    ready_max_sequencer_silence_s: float = Field(
        10,
        ge=0,
        description="/readyz: longest the sequencer lock's holder may go without a heartbeat"
        " (it beats every second)",
    )

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.environment != "development":
            defaults = {
                "ZEROCLAIM_KEYSTORE_PASSWORD": self.keystore_password.get_secret_value()
                in ("", DEV_PASSWORD),
                "ZEROCLAIM_ADMIN_TOKEN": self.admin_token.get_secret_value()
                in ("", DEV_ADMIN_TOKEN),
                "ZEROCLAIM_HMAC_KEY": self.hmac_key.get_secret_value() == DEV_HMAC_KEY,
                "ZEROCLAIM_ENCRYPTION_KEY": self.encryption_key.get_secret_value()
                == DEV_ENCRYPTION_KEY,
            }
            unsafe = [name for name, is_default in defaults.items() if is_default]
            if unsafe:
                raise ValueError(f"set {', '.join(unsafe)} outside development")
        if len(bytes.fromhex(self.encryption_key.get_secret_value())) != 32:
            raise ValueError("ZEROCLAIM_ENCRYPTION_KEY must be 64 hex digits (32 bytes)")
        if self.ledger_backend == "rpc" and not self.rpc_url:
            raise ValueError("ZEROCLAIM_RPC_URL is required with ZEROCLAIM_LEDGER_BACKEND=rpc")
        return self

    @property
    def max_issue_age(self) -> timedelta | None:
        """How long before its upload an invoice may have been issued (None: no bound)."""
        if self.max_issue_age_days is not None:
            return timedelta(days=self.max_issue_age_days)
        return None if self.environment == "development" else timedelta(days=30)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'zeroclaim.sqlite'}"

    @property
    def audit_catalogue_path(self) -> Path:
        """The audit catalogue's file: ``ZEROCLAIM_AUDIT_CATALOGUE`` or the shipped one."""
        from api.adapters.catalogue import DEFAULT_CATALOGUE

        return self.audit_catalogue or DEFAULT_CATALOGUE

    def image_limits(self) -> ImageLimits:
        """The photo limits of ``verifier.decode``, checked from the header before decoding."""
        from verifier.decode import ImageLimits

        return ImageLimits(self.max_image_pixels, self.max_image_side, self.max_image_decoded_bytes)

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

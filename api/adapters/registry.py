"""The hospital registry as the service sees it: a cache kept current from the chain's events.

Checking each invoice signature with a contract call would cost ~15 ms per invoice; instead the
cache replays HospitalRegistered / HospitalKeyRotated / HospitalKeyRevoked events once, then
reads only the events of new blocks before each batch (one ``eth_getLogs``-style call).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.adapters.ledger import LedgerGateway
from chain.model import HospitalLevel, from_timestamp, hospital_code_str


@dataclass
class CachedKey:
    signer: str
    valid_from: datetime
    revoked_at: datetime | None
    # The anchored log size when a revocation (not a rotation) was recorded; see
    # chain.model.HospitalKey.
    revoked_log_size: int | None = None

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.revoked_at is None or moment < self.revoked_at)


@dataclass
class CachedHospital:
    code: str
    level: HospitalLevel
    keys: list[CachedKey] = field(default_factory=list)


class RegistryCache:
    """Hospitals and their key history, replayed from the ledger's events."""

    _EVENTS = ("HospitalRegistered", "HospitalKeyRotated", "HospitalKeyRevoked")

    def __init__(self, ledger: LedgerGateway) -> None:
        self._ledger = ledger
        self._hospitals: dict[str, CachedHospital] = {}
        self._next_block = 0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Applies the registry events of blocks not seen yet."""
        with self._lock:
            head = self._ledger.block_number()
            if head < self._next_block:
                return
            events = [
                e for e in self._ledger.events(self._next_block, head) if e.name in self._EVENTS
            ]
            for event in events:
                self._apply(event.name, event.args)
            self._next_block = head + 1

    def _apply(self, name: str, args: dict[str, Any]) -> None:
        code = hospital_code_str(args["hospital"])
        if name == "HospitalRegistered":
            self._hospitals[code] = CachedHospital(
                code,
                HospitalLevel(args["level"]),
                [CachedKey(str(args["signer"]), from_timestamp(args["valid_from"]), None)],
            )
            return
        hospital = self._hospitals[code]
        if name == "HospitalKeyRotated":
            valid_from = from_timestamp(args["valid_from"])
            current = hospital.keys[-1]
            if current.revoked_at is None or current.revoked_at > valid_from:
                current.revoked_at = valid_from
            hospital.keys.append(CachedKey(str(args["signer"]), valid_from, None))
        else:  # HospitalKeyRevoked
            key = hospital.keys[args["key_index"]]
            key.revoked_at = from_timestamp(args["revoked_at"])
            key.revoked_log_size = args["revoked_log_size"]

    def codes(self) -> list[str]:
        return list(self._hospitals)

    def hospital(self, code: str) -> CachedHospital | None:
        return self._hospitals.get(code)

    def revoked_log_size(self, code: str, signer: str) -> int | None:
        """The smallest log size at which a revocation of a key of hospital ``code`` with this
        address was recorded on chain, or None: an invoice of the key at that leaf index or
        beyond was first anchored after the revocation and is refused whatever its issue time;
        an invoice not in the log yet is refused at once (it will be anchored later still)."""
        hospital = self._hospitals.get(code)
        sizes = [
            k.revoked_log_size
            for k in (hospital.keys if hospital else ())
            if k.signer == signer and k.revoked_log_size is not None
        ]
        return min(sizes, default=None)

    def judge(self, code: str, signer: str, issued_at: datetime) -> str | None:
        """None when ``signer`` was a valid key of hospital ``code`` at ``issued_at``;
        otherwise the reason it was not (unknown hospital, unknown key, not yet valid, revoked).
        The anchoring bound is :meth:`revoked_log_size`, judged by the caller."""
        hospital = self._hospitals.get(code)
        if hospital is None:
            return f"hospital {code} is not registered on the ledger"
        keys = [k for k in hospital.keys if k.signer == signer]
        if not keys:
            return f"signer {signer} is not a registered key of hospital {code}"
        if any(k.valid_at(issued_at) for k in keys):
            return None
        key = keys[-1]
        if issued_at < key.valid_from:
            return (
                f"key {signer} of hospital {code} is valid only from {key.valid_from.isoformat()}"
            )
        assert key.revoked_at is not None
        return (
            f"key {signer} of hospital {code} was revoked at {key.revoked_at.isoformat()},"
            f" before the issue time {issued_at.isoformat()}"
        )

"""The hospital registry as the service sees it: a cache kept current from the chain's events.

Checking each invoice signature with a contract call would cost ~15 ms per invoice; instead the
cache replays HospitalRegistered / HospitalKeyRotated / HospitalKeyRevoked events once, then
reads only the events of new blocks before each batch (one ``eth_getLogs``-style call). Keys
are judged by ``chain.model.judge_key``, the judge the offline trust list uses too.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime
from typing import Any

from api.flows.ports import Ledger
from chain.model import (
    Hospital,
    HospitalKey,
    HospitalLevel,
    KeyRejection,
    from_timestamp,
    hospital_code_str,
    judge_key,
)


class RegistryCache:
    """Hospitals and their key history, replayed from the ledger's events.

    Each hospital is a frozen ``chain.model.Hospital`` replaced whole by an event, so a reader
    sees a hospital as it was before an event or after it, never half-way.
    """

    _EVENTS = ("HospitalRegistered", "HospitalKeyRotated", "HospitalKeyRevoked")

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._hospitals: dict[str, Hospital] = {}
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
            first = HospitalKey(0, str(args["signer"]), from_timestamp(args["valid_from"]), None)
            self._hospitals[code] = Hospital(code, HospitalLevel(args["level"]), (first,))
            return
        hospital = self._hospitals[code]
        keys = list(hospital.keys)
        if name == "HospitalKeyRotated":
            # The contract's rotateHospitalKey: the current key stops when the new one starts,
            # unless it was revoked earlier.
            valid_from = from_timestamp(args["valid_from"])
            current = keys[-1]
            if current.revoked_at is None or current.revoked_at > valid_from:
                keys[-1] = replace(current, revoked_at=valid_from)
            keys.append(HospitalKey(len(keys), str(args["signer"]), valid_from, None))
        else:  # HospitalKeyRevoked
            index = args["key_index"]
            keys[index] = replace(
                keys[index],
                revoked_at=from_timestamp(args["revoked_at"]),
                revoked_log_size=args["revoked_log_size"],
            )
        self._hospitals[code] = replace(hospital, keys=tuple(keys))

    def codes(self) -> list[str]:
        return list(self._hospitals)

    def hospital(self, code: str) -> Hospital | None:
        return self._hospitals.get(code)

    def revoked_log_size(self, code: str, signer: str) -> int | None:
        """The smallest log size at which a revocation of a key of hospital ``code`` with this
        address was recorded on chain, or None: an invoice of the key at that leaf index or
        beyond was first anchored after the revocation and is refused whatever its issue time;
        an invoice not in the log yet is refused at once (it will be anchored later still)."""
        hospital = self._hospitals.get(code)
        return None if hospital is None else hospital.revoked_log_size(signer)

    def judge(self, code: str, signer: str, issued_at: datetime) -> str | None:
        """None when ``signer`` was a valid key of hospital ``code`` at ``issued_at``
        (``chain.model.judge_key``); otherwise the reason it was not, in words (unknown
        hospital, unknown key, not yet valid, revoked). The anchoring bound is
        :meth:`revoked_log_size`, judged by the caller."""
        hospital = self._hospitals.get(code)
        rejection = judge_key(hospital, signer, issued_at)
        if rejection is None:
            return None
        if hospital is None:
            return f"hospital {code} is not registered on the ledger"
        keys = hospital.keys_of(signer)
        if rejection is KeyRejection.UNKNOWN_KEY:
            return f"signer {signer} is not a registered key of hospital {code}"
        if rejection is KeyRejection.KEY_NOT_YET_VALID:
            first = min(keys, key=lambda k: k.valid_from)
            return (
                f"key {signer} of hospital {code} is valid only from {first.valid_from.isoformat()}"
            )
        # key_revoked: the key of this address that started last had stopped by issued_at.
        last = max((k for k in keys if k.valid_from <= issued_at), key=lambda k: k.valid_from)
        assert last.revoked_at is not None
        return (
            f"key {signer} of hospital {code} was revoked at {last.revoked_at.isoformat()},"
            f" before the issue time {issued_at.isoformat()}"
        )

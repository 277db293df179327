"""The one judge of a hospital key (``chain.model.judge_key``), pinned to the contract's rules.

Every instant is a whole second, as on chain; the contract's ``isKeyValidAt`` and
``_requireSignedByHospital`` are the reference (tests/chain/test_contract.py checks the contract
itself). The same table is judged by the registry cache of the service
(``api.adapters.registry.RegistryCache``), replayed from events as the chain emits them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account

from api.adapters.registry import RegistryCache
from chain.abi import Event
from chain.factory import LedgerSession
from chain.model import (
    Hospital,
    HospitalKey,
    HospitalLevel,
    KeyRejection,
    hospital_code_bytes,
    judge_key,
    same_address,
    to_timestamp,
)

SECOND = timedelta(seconds=1)
T0 = datetime(2025, 1, 1, tzinfo=UTC)
ROTATED = datetime(2025, 6, 1, tzinfo=UTC)
REVOKED = datetime(2025, 9, 1, tzinfo=UTC)
OLD = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"  # EIP-55 checksummed
NEW = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
STRANGER = "0x4B20993Bc481177ec7E8f571ceCaE8A9e22C02db"

#: Key 0 from T0, rotated at ROTATED to key 1; key 1 revoked at REVOKED, recorded at log size 40.
HOSPITAL = Hospital(
    "H44010600123",
    HospitalLevel.TERTIARY,
    (
        HospitalKey(0, OLD, T0, ROTATED),
        HospitalKey(1, NEW, ROTATED, REVOKED, revoked_log_size=40),
    ),
)


def test_same_address_ignores_letter_case_only() -> None:
    assert same_address(OLD, OLD.lower())
    assert same_address(OLD.upper().replace("0X", "0x"), OLD)
    assert not same_address(OLD, NEW)


@pytest.mark.parametrize(
    ("signer", "moment", "leaf_index", "expected"),
    [
        # letter case: the contract compares 20-byte values
        (OLD, T0, None, None),
        (OLD.lower(), T0, None, None),
        ("0x" + OLD[2:].upper(), T0, None, None),
        (NEW.lower(), ROTATED, None, None),
        # valid_from is inclusive
        (OLD, T0 - SECOND, None, KeyRejection.KEY_NOT_YET_VALID),
        (OLD, T0, None, None),
        (NEW, ROTATED - SECOND, None, KeyRejection.KEY_NOT_YET_VALID),
        # a rotation ends the old key at the new key's valid_from, exclusive
        (OLD, ROTATED - SECOND, None, None),
        (OLD, ROTATED, None, KeyRejection.KEY_REVOKED),
        (NEW, ROTATED, None, None),
        # a revocation refuses from its revocation time on, exclusive bound
        (NEW, REVOKED - SECOND, None, None),
        (NEW, REVOKED, None, KeyRejection.KEY_REVOKED),
        (NEW, REVOKED + timedelta(days=400), None, KeyRejection.KEY_REVOKED),
        # a fraction of a second before the bound is the second before it, as on chain
        (NEW, REVOKED - timedelta(microseconds=1), None, None),
        # the anchoring bound: at or past the log size recorded, whatever the issue time
        (NEW, ROTATED, 39, None),
        (NEW, ROTATED, 40, KeyRejection.KEY_REVOKED_BEFORE_ANCHORING),
        (NEW.lower(), ROTATED, 41, KeyRejection.KEY_REVOKED_BEFORE_ANCHORING),
        (OLD, T0, 10_000, None),  # a rotation records no revocation
        # unknown keys
        (STRANGER, T0, None, KeyRejection.UNKNOWN_KEY),
        (STRANGER, T0, 0, KeyRejection.UNKNOWN_KEY),
    ],
)
def test_judge_key(
    signer: str, moment: datetime, leaf_index: int | None, expected: KeyRejection | None
) -> None:
    assert judge_key(HOSPITAL, signer, moment, leaf_index) == expected
    # key_for judges the moment alone, as the contract's isKeyValidAt does
    valid_then = judge_key(HOSPITAL, signer, moment) is None
    assert (HOSPITAL.key_for(signer, moment) is not None) == valid_then


def test_unknown_hospital() -> None:
    assert judge_key(None, OLD, T0) == KeyRejection.UNKNOWN_HOSPITAL


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="moment must be a timezone-aware"):
        judge_key(HOSPITAL, OLD, datetime(2025, 3, 1))
    with pytest.raises(ValueError, match="moment must be a timezone-aware"):
        HOSPITAL.keys[0].valid_at(datetime(2025, 3, 1))


def test_an_address_registered_twice_is_valid_under_either_key() -> None:
    # Rotated away and back: the contract reads every key of the address (newest first).
    again = Hospital(
        "H1",
        HospitalLevel.PRIMARY,
        (
            HospitalKey(0, OLD, T0, ROTATED),
            HospitalKey(1, NEW, ROTATED, REVOKED),
            HospitalKey(2, OLD.lower(), REVOKED, None),
        ),
    )
    assert judge_key(again, OLD, T0) is None
    assert judge_key(again, OLD, ROTATED) == KeyRejection.KEY_REVOKED  # between its two spans
    assert judge_key(again, OLD, REVOKED) is None
    assert again.key_for(OLD, REVOKED) == again.keys[2]
    assert again.keys_of(OLD) == (again.keys[0], again.keys[2])


def test_revoked_log_size_is_the_smallest_recorded_for_the_address() -> None:
    assert HOSPITAL.revoked_log_size(NEW) == 40
    assert HOSPITAL.revoked_log_size(NEW.lower()) == 40
    assert HOSPITAL.revoked_log_size(OLD) is None  # rotated, not revoked
    assert HOSPITAL.revoked_log_size(STRANGER) is None


# -- the service's registry cache judges with the same judge -------------------------------------


class _Events:
    """The two calls of the ledger gateway the registry cache makes."""

    def __init__(self, events: list[Event]) -> None:
        self._events = events

    def block_number(self) -> int:
        return len(self._events)

    def events(self, from_block: int = 0, to_block: int | None = None) -> list[Event]:
        return self._events[from_block : None if to_block is None else to_block + 1]


def _event(name: str, **args: object) -> Event:
    raw = hospital_code_bytes(HOSPITAL.code)
    return Event(
        name=name, args={"hospital": raw, **args}, block_number=0, tx_hash=b"", log_index=0
    )


@pytest.fixture
def registry() -> RegistryCache:
    events = [
        _event("HospitalRegistered", level=3, signer=OLD, valid_from=to_timestamp(T0)),
        _event("HospitalKeyRotated", key_index=1, signer=NEW, valid_from=to_timestamp(ROTATED)),
        _event(
            "HospitalKeyRevoked",
            key_index=1,
            signer=NEW,
            revoked_at=to_timestamp(REVOKED),
            revoked_log_size=40,
        ),
    ]
    cache = RegistryCache(_Events(events))  # type: ignore[arg-type]
    cache.refresh()
    return cache


def test_the_cache_replays_the_chain_s_history(registry: RegistryCache) -> None:
    assert registry.hospital(HOSPITAL.code) == HOSPITAL


@pytest.mark.parametrize(
    ("signer", "moment", "reason"),
    [
        (OLD, T0, None),
        (OLD.lower(), T0, None),  # was refused before the one judge: exact-case comparison
        (NEW.lower(), REVOKED - SECOND, None),
        (OLD, T0 - SECOND, "is valid only from 2025-01-01T00:00:00+00:00"),
        (OLD, ROTATED, "was revoked at 2025-06-01T00:00:00+00:00, before the issue time"),
        (NEW, REVOKED, "was revoked at 2025-09-01T00:00:00+00:00, before the issue time"),
        (STRANGER, T0, "is not a registered key of hospital H44010600123"),
    ],
)
def test_the_cache_judges_with_the_one_judge(
    registry: RegistryCache, signer: str, moment: datetime, reason: str | None
) -> None:
    got = registry.judge(HOSPITAL.code, signer, moment)
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got
    assert (got is None) == (judge_key(HOSPITAL, signer, moment) is None)


def test_the_cache_knows_revocations_in_any_letter_case(registry: RegistryCache) -> None:
    assert registry.revoked_log_size(HOSPITAL.code, NEW.lower()) == 40
    assert registry.revoked_log_size(HOSPITAL.code, OLD) is None
    assert registry.judge("H0", OLD, T0) == "hospital H0 is not registered on the ledger"


# -- and the contract agrees ---------------------------------------------------------------------


class _SessionEvents:
    """The registry cache's two calls, answered by a ledger session directly."""

    def __init__(self, session: LedgerSession) -> None:
        self._session = session

    def block_number(self) -> int:
        return self._session.backend.block_number()

    def events(self, from_block: int = 0, to_block: int | None = None) -> list[Event]:
        return self._session.ledger.events(from_block, to_block)


def test_the_judge_agrees_with_the_contract_at_every_boundary(session: LedgerSession) -> None:
    ledger, admin = session.ledger, session.authority
    old, new = Account.create().address, Account.create().address
    code = HOSPITAL.code
    ledger.register_hospital(admin, code, HospitalLevel.TERTIARY, old, T0)
    ledger.rotate_hospital_key(admin, code, new, ROTATED)
    ledger.revoke_hospital_key(admin, code, 1, REVOKED)
    on_chain = ledger.hospital(code)
    assert on_chain is not None
    cache = RegistryCache(_SessionEvents(session))  # type: ignore[arg-type]
    cache.refresh()
    assert cache.hospital(code) == on_chain
    moments = [t + d for t in (T0, ROTATED, REVOKED) for d in (-SECOND, 0 * SECOND, SECOND)]
    for signer in (old, old.lower(), new, new.lower(), STRANGER):
        for moment in moments:
            contract = ledger.is_key_valid_at(code, signer, moment)
            assert (judge_key(on_chain, signer, moment) is None) == contract, (signer, moment)
            assert (cache.judge(code, signer, moment) is None) == contract, (signer, moment)

"""The authority-signed trust list (verifier/trust_list.py) and its spec in docs/trust-list.md."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.model import Hospital, HospitalKey, HospitalLevel, KeyRejection
from verifier.canonical import Domain, sign_digest
from verifier.trust_list import (
    SIGNING_TAG,
    TrustedHospital,
    TrustList,
    TrustListError,
    TrustListExpired,
    TrustListMalformed,
    TrustListSignatureInvalid,
    build_trust_list,
    canonical_body,
    dump_trust_list,
    load_trust_list,
    sign_trust_list,
    signing_digest,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "trust-list.md"
CST = timezone(timedelta(hours=8))
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CONTRACT = "0x4BEDBd2Bce0a6537C8E2c9e056FBa52Fa991d01F"


def key(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def address(label: str) -> str:
    return str(Account.from_key(key(label)).address)


AUTHORITY_KEY = key("zeroclaim test authority key")
AUTHORITY = address("zeroclaim test authority key")
OLD_SIGNER = address("zeroclaim test old hospital key")
NEW_SIGNER = address("zeroclaim test hospital key")
OTHER_SIGNER = address("zeroclaim test other hospital key")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
ROTATED = datetime(2025, 2, 1, tzinfo=UTC)
ISSUED = datetime(2025, 3, 1, tzinfo=UTC)
EXPIRES = datetime(2025, 3, 31, tzinfo=UTC)
NOW = datetime(2025, 3, 15, tzinfo=UTC)

HOSPITALS = (
    TrustedHospital(
        "H44010600123",
        HospitalLevel.TERTIARY,
        "广州市第一人民医院",
        (
            HospitalKey(0, OLD_SIGNER, T0, ROTATED),
            HospitalKey(1, NEW_SIGNER, ROTATED, None),
        ),
    ),
    TrustedHospital(
        "H33080300017",
        HospitalLevel.TOWNSHIP,
        "樟潭街道社区卫生服务中心",
        (HospitalKey(0, OTHER_SIGNER, T0, None),),
    ),
)


@pytest.fixture
def body() -> dict[str, Any]:
    return build_trust_list(HOSPITALS, 5700, CONTRACT, 7, ISSUED, EXPIRES)


@pytest.fixture
def document(body: dict[str, Any]) -> dict[str, Any]:
    return sign_trust_list(body, AUTHORITY_KEY)


@pytest.fixture
def trust(document: dict[str, Any]) -> TrustList:
    return load_trust_list(document, AUTHORITY, NOW)


def resign(body: dict[str, Any], private_key: bytes = AUTHORITY_KEY) -> dict[str, Any]:
    """Sign any body, even a malformed one (sign_trust_list refuses those)."""
    signature = sign_digest(private_key, signing_digest(body))
    return {"body": body, "signature": "0x" + signature.hex(), "signer": address_of(private_key)}


def address_of(private_key: bytes) -> str:
    return str(Account.from_key(private_key).address)


# -- round trip ----------------------------------------------------------------------------------


def test_round_trip(trust: TrustList) -> None:
    assert trust.sequence == 7
    assert (trust.issued_at, trust.expires_at) == (ISSUED, EXPIRES)
    assert trust.domain == Domain(5700, CONTRACT)
    assert trust.hospitals == tuple(sorted(HOSPITALS, key=lambda h: h.code))
    assert trust.hospital("H44010600123") == HOSPITALS[0]
    assert trust.hospital("H0") is None


def test_loads_text_bytes_and_dict_alike(document: dict[str, Any], trust: TrustList) -> None:
    text = dump_trust_list(document)
    assert load_trust_list(text, AUTHORITY, NOW) == trust
    assert load_trust_list(text.encode("utf-8"), AUTHORITY, NOW) == trust
    assert load_trust_list(json.dumps(document), AUTHORITY, NOW) == trust  # \u escapes too
    assert load_trust_list(document, AUTHORITY.lower(), NOW) == trust


def test_document_shape(document: dict[str, Any], body: dict[str, Any]) -> None:
    assert set(document) == {"body", "signature", "signer"}
    assert document["body"] == body and document["body"] is not body
    assert document["signer"] == AUTHORITY
    assert re.fullmatch(r"0x[0-9a-f]{130}", document["signature"])
    assert [h["code"] for h in body["hospitals"]] == ["H33080300017", "H44010600123"]
    assert body["hospitals"][1]["keys"][0] == {
        "index": 0,
        "signer": OLD_SIGNER,
        "valid_from": "2024-01-01T00:00:00Z",
        "revoked_at": "2025-02-01T00:00:00Z",
    }


def test_signature_is_eip191_personal_sign(document: dict[str, Any], body: dict[str, Any]) -> None:
    """Any Ethereum wallet signing the tagged canonical body makes the same document."""
    message = encode_defunct(SIGNING_TAG + canonical_body(body))
    signature = bytes.fromhex(document["signature"][2:])
    assert Account.recover_message(message, signature=signature) == AUTHORITY
    assert Account.sign_message(message, AUTHORITY_KEY).signature == signature


def test_canonical_body_is_sorted_compact_utf8(body: dict[str, Any]) -> None:
    canonical = canonical_body(body)
    assert canonical == json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert b" " not in canonical.replace("社区".encode(), b"")
    assert "广州市第一人民医院".encode() in canonical
    assert canonical.startswith(b'{"domain":{"chain_id":5700,')


def test_build_writes_utc_seconds_and_converts_levels() -> None:
    moment = datetime(2025, 3, 1, 8, 30, 15, 999_999, tzinfo=CST)
    hospital = TrustedHospital(
        "H1",
        HospitalLevel.PRIMARY,
        "一级医院",
        (HospitalKey(0, NEW_SIGNER.lower(), moment, None),),
    )
    body = build_trust_list([hospital], 1, CONTRACT.lower(), 0, moment, moment + timedelta(1))
    assert body["issued_at"] == "2025-03-01T00:30:15Z"  # fraction dropped, in UTC
    assert body["domain"]["contract"] == CONTRACT
    assert body["hospitals"][0]["level"] == "PRIMARY"
    assert body["hospitals"][0]["keys"][0]["signer"] == NEW_SIGNER


def test_trusted_hospital_of_a_ledger_hospital() -> None:
    ledger = Hospital("H44010600123", HospitalLevel.TERTIARY, HOSPITALS[0].keys)
    assert TrustedHospital.of(ledger, "广州市第一人民医院") == HOSPITALS[0]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"issued_at": datetime(2025, 3, 1)}, "timezone-aware"),
        ({"expires_at": ISSUED}, "expires_at must be after issued_at"),
        ({"contract": "0x1234"}, "contract must be an address"),
        ({"sequence": -1}, r"sequence must be in \[0"),
        ({"chain_id": 0}, r"chain_id must be in \[1"),
        ({"hospitals": [*HOSPITALS, HOSPITALS[0]]}, "hospital codes must be unique"),
        ({"hospitals": [TrustedHospital("H-1", HospitalLevel.PRIMARY, "x", ())]}, "hospital code"),
        ({"hospitals": [TrustedHospital("H1", HospitalLevel.PRIMARY, " ", ())]}, "name of H1"),
    ],
)
def test_build_refuses_bad_input(change: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {
        "hospitals": HOSPITALS,
        "chain_id": 5700,
        "contract": CONTRACT,
        "sequence": 7,
        "issued_at": ISSUED,
        "expires_at": EXPIRES,
    }
    arguments.update(change)
    with pytest.raises(ValueError, match=match):
        build_trust_list(**arguments)


def test_sign_refuses_a_malformed_body(body: dict[str, Any]) -> None:
    body["version"] = 2
    with pytest.raises(ValueError, match="version must be 1"):
        sign_trust_list(body, AUTHORITY_KEY)


# -- signature -----------------------------------------------------------------------------------


def _revoked_at_removed(body: dict[str, Any]) -> None:
    del body["hospitals"][1]["keys"][0]["revoked_at"]


def _revoked_at_nulled(body: dict[str, Any]) -> None:
    body["hospitals"][1]["keys"][0]["revoked_at"] = None


def _signer_changed(body: dict[str, Any]) -> None:
    body["hospitals"][1]["keys"][1]["signer"] = OTHER_SIGNER


def _expires_at_extended(body: dict[str, Any]) -> None:
    body["expires_at"] = "2026-03-31T00:00:00Z"


def _name_changed(body: dict[str, Any]) -> None:
    body["hospitals"][1]["name"] = "广州市第二人民医院"


def _hospital_added(body: dict[str, Any]) -> None:
    body["hospitals"].append({"code": "H9", "level": "PRIMARY", "name": "假医院", "keys": []})


def _sequence_raised(body: dict[str, Any]) -> None:
    body["sequence"] = 8


@pytest.mark.parametrize(
    "tamper",
    [
        _revoked_at_removed,
        _revoked_at_nulled,
        _signer_changed,
        _expires_at_extended,
        _name_changed,
        _hospital_added,
        _sequence_raised,
    ],
)
def test_tampered_body_is_refused(
    document: dict[str, Any], tamper: Callable[[dict[str, Any]], None]
) -> None:
    tampered = copy.deepcopy(document)
    tamper(tampered["body"])
    with pytest.raises(TrustListSignatureInvalid) as caught:
        load_trust_list(tampered, AUTHORITY, NOW)
    assert caught.value.expected == AUTHORITY
    assert caught.value.actual is not None and caught.value.actual != AUTHORITY


def test_signed_by_another_key_is_refused(body: dict[str, Any]) -> None:
    impostor = key("zeroclaim test impostor key")
    forged = sign_trust_list(body, impostor)
    assert forged["signer"] == address_of(impostor)  # it says so, and it does not matter
    with pytest.raises(TrustListSignatureInvalid, match=f"signed by {AUTHORITY}") as caught:
        load_trust_list(forged, AUTHORITY, NOW)
    assert (caught.value.expected, caught.value.actual) == (AUTHORITY, address_of(impostor))


def test_a_genuine_list_against_another_expected_authority(document: dict[str, Any]) -> None:
    with pytest.raises(TrustListSignatureInvalid) as caught:
        load_trust_list(document, OTHER_SIGNER, NOW)
    assert (caught.value.expected, caught.value.actual) == (OTHER_SIGNER, AUTHORITY)


def test_signer_field_claiming_the_authority_does_not_help(body: dict[str, Any]) -> None:
    forged = sign_trust_list(body, key("zeroclaim test impostor key"))
    forged["signer"] = AUTHORITY
    with pytest.raises(TrustListSignatureInvalid):
        load_trust_list(forged, AUTHORITY, NOW)


def test_signer_field_must_agree_with_the_signature(document: dict[str, Any]) -> None:
    document["signer"] = OTHER_SIGNER
    with pytest.raises(TrustListMalformed, match="the signature is by"):
        load_trust_list(document, AUTHORITY, NOW)


def test_malleated_signature_recovers_no_key(document: dict[str, Any]) -> None:
    signature = bytes.fromhex(document["signature"][2:])
    s = int.from_bytes(signature[32:64], "big")
    high = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    document["signature"] = "0x" + high.hex()
    with pytest.raises(TrustListSignatureInvalid, match="recovers no key") as caught:
        load_trust_list(document, AUTHORITY, NOW)
    assert (caught.value.expected, caught.value.actual) == (AUTHORITY, None)


# -- expiry --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [EXPIRES, EXPIRES + timedelta(seconds=1), datetime(2025, 3, 31, 8, tzinfo=CST)],
)
def test_expired_list_is_refused(document: dict[str, Any], now: datetime) -> None:
    with pytest.raises(TrustListExpired) as caught:
        load_trust_list(document, AUTHORITY, now)
    assert (caught.value.expires_at, caught.value.now) == (EXPIRES, now)


def test_valid_until_the_last_second(document: dict[str, Any]) -> None:
    load_trust_list(document, AUTHORITY, EXPIRES - timedelta(seconds=1))
    load_trust_list(document, AUTHORITY, ISSUED)


def test_caller_errors_are_value_errors(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        load_trust_list(document, AUTHORITY, datetime(2025, 3, 15))
    with pytest.raises(ValueError, match="authority must be an address"):
        load_trust_list(document, "authority", NOW)


# -- malformed -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not JSON"),
        ("[]", "the document must be an object"),
        ('{"body": {}, "signature": "0x", "signer": "0x", "extra": 1}', "unknown fields extra"),
        ('{"body": {}, "body": {}, "signature": "0x", "signer": "0x"}', "duplicate key"),
        ('{"body": NaN, "signature": "0x", "signer": "0x"}', "NaN is not JSON"),
        ('{"body": [], "signature": "0x", "signer": "0x"}', "body must be an object"),
        ('{"body": {}, "signature": "0x00", "signer": "0x"}', "signature must be 0x and 65"),
        ("[" * 100_000 + "]" * 100_000, "nested more than 16 levels"),
        ('{"body": "[[[[[[[[[[[[[[[[[[[[", "signature": "0x", "signer": "0x"}', "body must be"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_malformed_documents(text: str, match: str) -> None:
    with pytest.raises(TrustListMalformed, match=match):
        load_trust_list(text, AUTHORITY, NOW)


def test_not_utf8_is_malformed() -> None:
    with pytest.raises(TrustListMalformed, match="not UTF-8"):
        load_trust_list(b"\xff{}", AUTHORITY, NOW)


def test_float_in_body_is_malformed(document: dict[str, Any]) -> None:
    document["body"]["sequence"] = 7.0
    with pytest.raises(TrustListMalformed, match="numbers must be integers"):
        load_trust_list(document, AUTHORITY, NOW)


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        target: Any = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def _drop(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        target: Any = body
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return change


KEY0 = ("hospitals", 1, "keys", 0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_set(("version",), 2), "version must be 1"),
        (_set(("version",), True), "version must be an integer"),
        (_set(("extra",), 1), "unknown fields extra"),
        (_drop(("domain",)), "missing fields domain"),
        (_set(("sequence",), 2**53), "sequence must be in"),
        (_set(("issued_at",), "2025-03-01T00:00:00+08:00"), "issued_at must be"),
        (_set(("issued_at",), "2025-02-30T00:00:00Z"), "not a valid time"),
        (_set(("expires_at",), "2025-03-01T00:00:00Z"), "expires_at must be after"),
        (_set(("domain", "contract"), CONTRACT.lower()), "contract must be a checksummed"),
        (_set(("hospitals",), {}), "hospitals must be a list"),
        (_set(("hospitals", 1, "code"), "H33080300017"), "hospital codes must be unique"),
        (_set(("hospitals", 1, "level"), 3), "level of H44010600123 must be one of"),
        (_set(("hospitals", 1, "name"), ""), "name of H44010600123"),
        (_set(("hospitals", 1, "keys", 1, "index"), 0), "key indexes of H44010600123"),
        (_set((*KEY0, "signer"), OLD_SIGNER.lower()), "signer must be a checksummed"),
        (_set((*KEY0, "revoked_at"), "2023-01-01T00:00:00Z"), "revoked before it is valid"),
        (_set((*KEY0, "valid_from"), 1704067200), "valid_from must be"),
        (_drop((*KEY0, "revoked_at")), "missing fields revoked_at"),
        (_set((*KEY0, "revoked_log_size"), -1), "revoked_log_size must be in"),
        (_set((*KEY0, "revoked_log_size"), True), "revoked_log_size must be an integer"),
        (_set((*KEY0, "revoked_log_size"), None), "revoked_log_size must be an integer"),
        (
            _set(("hospitals", 1, "keys", 1, "revoked_log_size"), 5),
            "has a revoked_log_size, no revoked_at",
        ),
        (_set((*KEY0, "revoked_log_sizes"), 5), "unknown fields revoked_log_sizes"),
    ],
)
def test_signed_but_malformed_body(
    body: dict[str, Any], change: Callable[[dict[str, Any]], None], match: str
) -> None:
    change(body)
    with pytest.raises(TrustListMalformed, match=match):
        load_trust_list(resign(body), AUTHORITY, NOW)


def test_every_error_is_a_trust_list_error() -> None:
    for error in (TrustListMalformed, TrustListSignatureInvalid, TrustListExpired):
        assert issubclass(error, TrustListError)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=100),
        st.binary(max_size=100),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.text(max_size=8), children, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda body: {"body": body, "signature": "0x" + "11" * 65, "signer": AUTHORITY}),
    )
)
def test_load_raises_only_trust_list_errors(document: Any) -> None:
    with pytest.raises(TrustListError):
        load_trust_list(document, AUTHORITY, NOW)


# -- key validity --------------------------------------------------------------------------------

SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("hospital", "signer", "moment", "expected"),
    [
        ("H44010600123", OLD_SIGNER, T0 - SECOND, KeyRejection.KEY_NOT_YET_VALID),
        ("H44010600123", OLD_SIGNER, T0, None),  # at valid_from: valid
        ("H44010600123", OLD_SIGNER, ROTATED - SECOND, None),  # just before revoked_at
        ("H44010600123", OLD_SIGNER, ROTATED, KeyRejection.KEY_REVOKED),  # at revoked_at
        ("H44010600123", OLD_SIGNER, NOW, KeyRejection.KEY_REVOKED),
        ("H44010600123", NEW_SIGNER, ROTATED - SECOND, KeyRejection.KEY_NOT_YET_VALID),
        ("H44010600123", NEW_SIGNER, ROTATED, None),
        ("H44010600123", NEW_SIGNER, datetime(2099, 1, 1, tzinfo=UTC), None),  # never revoked
        ("H44010600123", NEW_SIGNER.lower(), NOW, None),  # addresses compare case-insensitively
        ("H44010600123", OTHER_SIGNER, NOW, KeyRejection.UNKNOWN_KEY),  # another hospital's key
        ("H44010600123", AUTHORITY, NOW, KeyRejection.UNKNOWN_KEY),
        ("H44010600124", NEW_SIGNER, NOW, KeyRejection.UNKNOWN_HOSPITAL),
        ("H33080300017", OTHER_SIGNER, NOW.astimezone(CST), None),
    ],
)
def test_judge(
    trust: TrustList,
    hospital: str,
    signer: str,
    moment: datetime,
    expected: KeyRejection | None,
) -> None:
    assert trust.judge(hospital, signer, moment) == expected
    assert trust.key_valid_at(hospital, signer, moment) is (expected is None)


def test_judge_agrees_with_the_ledger_rule(trust: TrustList) -> None:
    hospital = trust.hospital("H44010600123")
    assert hospital is not None
    for moment in (T0 - SECOND, T0, ROTATED - SECOND, ROTATED, NOW):
        for ledger_key in hospital.keys:
            valid = trust.key_valid_at("H44010600123", ledger_key.signer, moment)
            assert valid is ledger_key.valid_at(moment)


def test_judge_codes_are_stable_strings(trust: TrustList) -> None:
    assert trust.judge("H0", NEW_SIGNER, NOW) == "unknown_hospital"
    assert [r.value for r in KeyRejection] == [
        "unknown_hospital",
        "unknown_key",
        "key_not_yet_valid",
        "key_revoked",
        "key_revoked_before_anchoring",
    ]


def test_a_key_revoked_as_compromised_carries_the_log_size_recorded_on_chain() -> None:
    stolen = HospitalKey(0, OLD_SIGNER, T0, ROTATED, revoked_log_size=1_000)
    hospital = TrustedHospital(
        "H1", HospitalLevel.PRIMARY, "一级医院", (stolen, HospitalKey(1, NEW_SIGNER, ROTATED, None))
    )
    body = build_trust_list([hospital], 5700, CONTRACT, 1, ISSUED, EXPIRES)
    keys = body["hospitals"][0]["keys"]
    assert keys[0]["revoked_log_size"] == 1_000
    assert "revoked_log_size" not in keys[1]  # present only where a revocation was recorded
    trust = load_trust_list(sign_trust_list(body, AUTHORITY_KEY), AUTHORITY, NOW)
    assert trust.hospital("H1").keys[0] == stolen  # type: ignore[union-attr]
    assert trust.revoked_log_size("H1", OLD_SIGNER.lower()) == 1_000
    assert trust.revoked_log_size("H1", NEW_SIGNER) is None
    assert trust.revoked_log_size("H0", OLD_SIGNER) is None
    before = ROTATED - timedelta(seconds=1)
    # Issued before the revocation: valid when anchored before it was recorded, or unknown.
    assert trust.judge("H1", OLD_SIGNER, before) is None
    assert trust.judge("H1", OLD_SIGNER, before, leaf_index=999) is None
    # First anchored after the revocation was recorded: refused whatever the issue time.
    for index in (1_000, 1_001):
        assert (
            trust.judge("H1", OLD_SIGNER, before, leaf_index=index)
            == KeyRejection.KEY_REVOKED_BEFORE_ANCHORING
        )
    # The other key of the hospital is not concerned.
    assert trust.judge("H1", NEW_SIGNER, ISSUED, leaf_index=5_000) is None


def test_a_list_without_recorded_revocations_is_the_format_it_was(body: dict[str, Any]) -> None:
    # No key was revoked as compromised: no key object has the optional field, so the bytes
    # signed are those of a list made before the field existed.
    assert all(
        set(key) == {"index", "signer", "valid_from", "revoked_at"}
        for hospital in body["hospitals"]
        for key in hospital["keys"]
    )


def test_a_key_registered_twice_is_valid_in_either_interval() -> None:
    signer = NEW_SIGNER
    hospital = TrustedHospital(
        "H1",
        HospitalLevel.PRIMARY,
        "一级医院",
        (HospitalKey(0, signer, T0, ROTATED), HospitalKey(1, signer, ISSUED, None)),
    )
    body = build_trust_list([hospital], 5700, CONTRACT, 1, ISSUED, EXPIRES)
    trust = load_trust_list(sign_trust_list(body, AUTHORITY_KEY), AUTHORITY, NOW)
    assert trust.judge("H1", signer, T0) is None
    assert trust.judge("H1", signer, ROTATED) == KeyRejection.KEY_REVOKED
    assert trust.judge("H1", signer, ISSUED) is None


def test_judge_refuses_a_naive_moment(trust: TrustList) -> None:
    with pytest.raises(ValueError, match="moment must be a timezone-aware"):
        trust.judge("H44010600123", NEW_SIGNER, datetime(2025, 3, 1))


# -- docs/trust-list.md --------------------------------------------------------------------------


def block(doc: str, name: str) -> str:
    match = re.search(rf"<!-- example:{name} -->\s*```[a-z]*\n(.*?)```", doc, re.S)
    assert match, f"example {name} missing"
    return match.group(1)


def test_docs_example_loads_and_is_reproducible() -> None:
    doc = DOC.read_text(encoding="utf-8")
    authority = block(doc, "trust-list-authority").strip()
    text = block(doc, "trust-list")
    trust = load_trust_list(text, authority, datetime(2025, 3, 15, 12, tzinfo=CST))
    assert authority == address("zeroclaim docs authority key")
    assert trust.sequence == 42
    assert trust.domain == Domain(5700, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    # Rebuilt from the inputs the page states, the document is the same, byte for byte.
    local = datetime.fromisoformat
    hospitals = [
        TrustedHospital(
            "H33080200001",
            HospitalLevel.TERTIARY,
            "衢州市人民医院",
            (
                HospitalKey(
                    0,
                    address("zeroclaim docs retired hospital key"),
                    local("2024-01-01T00:00:00+08:00"),
                    local("2025-02-01T00:00:00+08:00"),
                ),
                HospitalKey(
                    1,
                    address("zeroclaim docs hospital key"),
                    local("2025-02-01T00:00:00+08:00"),
                    None,
                ),
            ),
        ),
        TrustedHospital(
            "H33080300017",
            HospitalLevel.TOWNSHIP,
            "衢江区樟潭街道社区卫生服务中心",
            (
                HospitalKey(
                    0,
                    address("zeroclaim docs township key"),
                    local("2024-06-01T00:00:00+08:00"),
                    None,
                ),
            ),
        ),
    ]
    body = build_trust_list(
        hospitals,
        5700,
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        42,
        local("2025-03-01T00:00:00+08:00"),
        local("2025-03-31T00:00:00+08:00"),
    )
    signed = sign_trust_list(body, key("zeroclaim docs authority key"))
    assert dump_trust_list(signed) == text
    assert canonical_body(body).decode("utf-8") == block(doc, "trust-list-canonical").strip()
    assert "0x" + signing_digest(body).hex() == block(doc, "trust-list-digest").strip()
    stated_length = re.search(r"canonical BODY \((\d+) bytes", doc)
    assert stated_length and int(stated_length.group(1)) == len(canonical_body(body))


def test_docs_example_admits_the_invoice_format_example() -> None:
    """The key that signs docs/invoice-format.md's invoice is valid at its issue time."""
    trust_doc = DOC.read_text(encoding="utf-8")
    trust = load_trust_list(
        block(trust_doc, "trust-list"),
        block(trust_doc, "trust-list-authority").strip(),
        datetime(2025, 3, 15, tzinfo=UTC),
    )
    invoice_doc = (ROOT / "docs" / "invoice-format.md").read_text(encoding="utf-8")
    invoice = json.loads(block(invoice_doc, "item"))["invoice"]
    stated = dict(line.split() for line in block(invoice_doc, "hashes").strip().splitlines())
    issued_at = datetime.fromisoformat(invoice["issued_at"])
    assert trust.judge(invoice["hospital"], stated["signer"], issued_at) is None
    retired = address("zeroclaim docs retired hospital key")
    assert trust.judge(invoice["hospital"], retired, issued_at) == KeyRejection.KEY_REVOKED
    with pytest.raises(TrustListExpired):
        load_trust_list(
            block(trust_doc, "trust-list"),
            block(trust_doc, "trust-list-authority").strip(),
            datetime(2025, 3, 31, tzinfo=CST),
        )

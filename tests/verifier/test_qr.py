"""The QR payload codec (verifier/qr.py) against its vectors, its spec and a fuzzer."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import base45
import cbor2
import pytest
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from verifier import qr
from verifier.canonical import Domain, SignatureInvalid, SignedFields, signing_digest
from verifier.qr import (
    MAX_PAYLOAD_CHARS,
    PREFIX,
    QrError,
    QrImageUnreadable,
    QrMalformed,
    QrPayload,
    QrTooLong,
    QrUnsupportedVersion,
    QrWrongPrefix,
    decode_payload,
    decode_qr_image,
    encode_payload,
    qr_png,
    qr_svg,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = Path(__file__).resolve().parent / "vectors"
QR_VECTORS = VECTORS / "qr"
DOC = ROOT / "docs" / "qr-format.md"
VECTOR_NAMES = sorted(p.stem for p in QR_VECTORS.glob("*.json"))
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((QR_VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_qr_vectors", VECTORS / "make_qr_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def valid() -> dict[str, Any]:
    return load("valid")


@pytest.fixture(scope="module")
def valid_payload(valid: dict[str, Any]) -> QrPayload:
    return decode_payload(valid["payload"])


@pytest.fixture(scope="module")
def trusted_domain(valid: dict[str, Any]) -> Domain:
    return Domain(valid["domain"]["chain_id"], valid["domain"]["contract"])


# -- the valid vector ----------------------------------------------------------------------------


def test_valid_vector_decodes_to_its_fields(
    valid: dict[str, Any], valid_payload: QrPayload
) -> None:
    fields = valid["fields"]
    p = valid_payload
    assert (p.version, p.chain_id, p.contract) == (1, fields["chain_id"], fields["contract"])
    assert (p.bill_code, p.bill_number, p.check_code, p.hospital) == (
        fields["bill_code"],
        fields["bill_number"],
        fields["check_code"],
        fields["hospital"],
    )
    assert (p.issued_at, p.total) == (fields["issued_at"], fields["total"])
    assert "0x" + p.detail_root.hex() == fields["detail_root"]
    assert "0x" + p.patient_commitment.hex() == fields["patient_commitment"]
    assert "0x" + p.signature.hex() == fields["signature"]
    assert qr.cbor_payload(p).hex() == valid["cbor_hex"]
    assert len(valid["payload"]) == valid["length"]


def test_valid_vector_hashes_and_signer(valid: dict[str, Any], valid_payload: QrPayload) -> None:
    signed = valid_payload.signed_fields()
    assert "0x" + signed.invoice_id.hex() == valid["invoice_id"]
    assert "0x" + signed.record_hash().hex() == valid["record_hash"]
    assert "0x" + valid_payload.domain().separator.hex() == valid["domain"]["separator"]
    assert "0x" + valid_payload.digest().hex() == valid["digest"]
    assert valid_payload.signer() == valid["signer"]


def test_digest_equals_eth_account_typed_data(valid_payload: QrPayload) -> None:
    from eth_account.messages import encode_typed_data

    signed = valid_payload.signed_fields()
    message = encode_typed_data(full_message=signed.typed_data(valid_payload.domain()))
    assert b"\x19" + message.version + message.header + message.body == (
        b"\x19\x01" + valid_payload.domain().separator + signed.record_hash()
    )


# -- round trip ----------------------------------------------------------------------------------


def test_round_trip(valid_payload: QrPayload) -> None:
    text = encode_payload(valid_payload)
    assert text.startswith(PREFIX)
    assert decode_payload(text) == valid_payload


def test_payload_for_builds_the_signed_payload(
    generator: ModuleType, valid: dict[str, Any], trusted_domain: Domain
) -> None:
    invoice = generator.sample_invoice()
    root = bytes.fromhex(valid["fields"]["detail_root"][2:])
    signature = bytes.fromhex(valid["fields"]["signature"][2:])
    lower = Domain(trusted_domain.chain_id, trusted_domain.contract.lower())
    p = qr.payload_for(invoice, lower, signature, detail_root=root)
    assert encode_payload(p) == valid["payload"]
    assert p.signed_fields() == SignedFields.of(invoice, root)


payloads = st.builds(
    QrPayload,
    version=st.just(1),
    chain_id=st.integers(1, 2**64 - 1),
    contract=st.binary(min_size=20, max_size=20).map(to_checksum_address),
    bill_code=st.from_regex(r"[0-9]{8}", fullmatch=True),
    bill_number=st.from_regex(r"[0-9]{10}", fullmatch=True),
    check_code=st.from_regex(r"[0-9A-Za-z]{6}", fullmatch=True),
    hospital=st.from_regex(r"[0-9A-Za-z]{1,32}", fullmatch=True),
    issued_at=st.integers(0, 2**64 - 1),
    total=st.integers(0, 2**64 - 1),
    detail_root=st.binary(min_size=32, max_size=32),
    patient_commitment=st.binary(min_size=32, max_size=32),
    signature=st.binary(min_size=65, max_size=65),
)


@settings(max_examples=150, deadline=None)
@given(payloads)
def test_round_trip_any_payload(p: QrPayload) -> None:
    text = encode_payload(p)
    assert len(text) <= MAX_PAYLOAD_CHARS
    assert qr.is_alphanumeric(text)
    assert decode_payload(text) == p


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", 2),
        ("chain_id", 0),
        ("contract", "0x4bedbd2bce0a6537c8e2c9e056fba52fa991d01f"),  # not checksummed
        ("bill_code", "4401012"),
        ("bill_number", "001234567X"),
        ("bill_number", "0012345678\n"),
        ("check_code", "A3F29"),
        ("hospital", "H-44010600123"),
        ("issued_at", -1),
        ("total", 2**64),
        ("total", True),
        ("detail_root", b"\x00" * 31),
        ("signature", b"\x00" * 64),
    ],
)
def test_payload_refuses_bad_fields(valid_payload: QrPayload, field: str, value: Any) -> None:
    with pytest.raises(QrError):
        dataclasses.replace(valid_payload, **{field: value})


# -- the vectors ---------------------------------------------------------------------------------


def test_vector_files_present() -> None:
    assert "valid" in VECTOR_NAMES
    assert len(VECTOR_NAMES) >= 18


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector(
    name: str, valid: dict[str, Any], valid_payload: QrPayload, trusted_domain: Domain
) -> None:
    vector = load(name)
    assert {"description", "payload", "expected_error", "derivation"} <= vector.keys()
    expected = vector["expected_error"]
    text = vector["payload"]
    decode_errors = {cls.__name__: cls for cls in (QrTooLong, QrWrongPrefix, QrUnsupportedVersion,
                                                    QrMalformed)}  # fmt: skip
    if expected in decode_errors:
        with pytest.raises(decode_errors[expected]):
            decode_payload(text)
        return
    p = decode_payload(text)
    assert encode_payload(p) == text
    if expected is None:
        assert p.domain() == trusted_domain
        assert p.signer() == valid["signer"]
    elif expected == "signer_mismatch":
        assert p.domain() == trusted_domain
        recovered = p.signer()
        assert recovered != valid["signer"]
        assert recovered == vector["recovered_signer"]
        field = vector["tampered_field"]
        assert getattr(p, field) != getattr(valid_payload, field)
    elif expected == "domain_mismatch":
        assert p.domain() != trusted_domain
        assert p.signer() == valid["signer"]  # a genuine signature, for another ledger
        in_trusted = signing_digest(trusted_domain, p.signed_fields().record_hash())
        assert p.digest(trusted_domain) == in_trusted
        assert p.signer(trusted_domain) == vector["recovered_signer"] != valid["signer"]
    elif expected == "signature_invalid":
        with pytest.raises(SignatureInvalid, match="lower half"):
            p.signer()
    else:
        pytest.fail(f"unknown expected_error {expected!r}")


def test_vectors_equal_generator_output(generator: ModuleType) -> None:
    files = generator.build()
    committed = {p.name: p.read_text(encoding="utf-8") for p in QR_VECTORS.iterdir()}
    assert committed.keys() == files.keys()
    for name, text in files.items():
        assert committed[name] == text, f"{name} is stale: run {generator.GENERATED_BY}"


# -- signature malleability ----------------------------------------------------------------------


def test_high_s_signature_refused(valid_payload: QrPayload) -> None:
    sig = valid_payload.signature
    s = int.from_bytes(sig[32:64], "big")
    high = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    p = dataclasses.replace(valid_payload, signature=high)
    assert decode_payload(encode_payload(p)) == p  # structure is fine; the signature is not
    with pytest.raises(SignatureInvalid, match="lower half"):
        p.signer()


@pytest.mark.parametrize("v", [0, 1, 26, 29])
def test_bad_v_refused(valid_payload: QrPayload, v: int) -> None:
    p = dataclasses.replace(valid_payload, signature=valid_payload.signature[:64] + bytes([v]))
    with pytest.raises(SignatureInvalid, match="v must be"):
        p.signer()


# -- strict decoding -----------------------------------------------------------------------------


def _items(p: QrPayload) -> list[Any]:
    return [p.version, p.chain_id, bytes.fromhex(p.contract[2:]), int(p.bill_code),
            int(p.bill_number), p.check_code, p.hospital, p.issued_at, p.total, p.detail_root,
            p.patient_commitment, p.signature]  # fmt: skip


def _text(raw: bytes) -> str:
    return PREFIX + bytes(base45.b45encode(raw)).decode("ascii")


def _cbor_text(items: Any) -> str:
    return _text(cbor2.dumps(items, canonical=True))


_CANONICAL = bytes.fromhex(load("valid")["cbor_hex"])
_ROOT_AT = 64  # offset of detail_root in the valid vector's CBOR (docs/qr-format.md, section 7)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_CANONICAL + b"\x00", id="trailing byte"),
        pytest.param(b"\x9f" + _CANONICAL[1:] + b"\xff", id="indefinite array"),
        pytest.param(b"\x8c\x18\x01" + _CANONICAL[2:], id="version in a 1-byte head"),
        pytest.param(b"\x8c\x01\xc2\x42\x16\x44" + _CANONICAL[5:], id="chain id as bignum"),
        pytest.param(
            _CANONICAL[:_ROOT_AT] + b"\x5f\x50" + _CANONICAL[_ROOT_AT + 2 : _ROOT_AT + 18]
            + b"\x50" + _CANONICAL[_ROOT_AT + 18 : _ROOT_AT + 34] + b"\xff"
            + _CANONICAL[_ROOT_AT + 34 :],
            id="detail root as indefinite byte string",
        ),
    ],
)  # fmt: skip
def test_non_canonical_cbor_refused(valid_payload: QrPayload, raw: bytes) -> None:
    assert cbor2.loads(raw) == cbor2.loads(_CANONICAL)  # the same data, another encoding
    with pytest.raises(QrMalformed, match="not in canonical form"):
        decode_payload(_text(raw))


def test_canonical_cbor_accepted(valid_payload: QrPayload) -> None:
    assert cbor2.dumps(_items(valid_payload), canonical=True) == _CANONICAL
    assert decode_payload(_text(_CANONICAL)) == valid_payload


def test_non_canonical_base45_refused(valid: dict[str, Any]) -> None:
    with pytest.raises(QrMalformed, match="base45"):
        decode_payload(valid["payload"] + "\n")
    with pytest.raises(QrMalformed, match="base45"):
        decode_payload(PREFIX + valid["payload"][len(PREFIX) :].lower())


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda items: items[:11], "12 fields"),
        (lambda items: [*items, 0], "12 fields"),
        (lambda items: {"version": 1}, "array"),
        (lambda items: [], "array"),
        (lambda items: ["1", *items[1:]], "version must be an integer"),
        (lambda items: [1, True, *items[2:]], "chain_id must be an integer"),
        (lambda items: [*items[:2], items[2][:19], *items[3:]], "contract must be 20 bytes"),
        (lambda items: [*items[:3], 100_000_000, *items[4:]], "bill_code must be in"),
        (lambda items: [*items[:4], 10_000_000_000, *items[5:]], "bill_number must be in"),
        (lambda items: [*items[:3], "44010125", *items[4:]], "bill_code must be an integer"),
        (lambda items: [*items[:5], b"A3F29C", *items[6:]], "check_code must be a text"),
        (lambda items: [*items[:6], "H4401 0600123", *items[7:]], "hospital must be"),
        (lambda items: [*items[:7], -1, *items[8:]], "issued_at must be in"),
        (lambda items: [*items[:8], 1.5, *items[9:]], "total must be an integer"),
        (lambda items: [*items[:9], items[9] + b"\x00", *items[10:]], "detail_root must be 32"),
        (lambda items: [*items[:11], items[11][:64]], "signature must be 65"),
    ],
)
def test_malformed_fields_refused(valid_payload: QrPayload, change: Any, match: str) -> None:
    with pytest.raises(QrMalformed, match=match):
        decode_payload(_cbor_text(change(_items(valid_payload))))


@pytest.mark.parametrize(
    ("text", "error", "attrs"),
    [
        ("ZC2:ABC", QrUnsupportedVersion, {"version": 2}),
        ("HC1:NCFOXN%TS3DH", QrWrongPrefix, {"prefix": "HC1:"}),
        ("zc1:ABC", QrWrongPrefix, {"prefix": "zc1:"}),
        ("", QrWrongPrefix, {"prefix": ""}),
        ("ZC1:", QrMalformed, {}),
        ("Z" * (MAX_PAYLOAD_CHARS + 1), QrTooLong, {"length": 1025, "limit": 1024}),
    ],
)
def test_decode_errors_carry_their_data(
    text: str, error: type[QrError], attrs: dict[str, object]
) -> None:
    with pytest.raises(error) as caught:
        decode_payload(text)
    for key, value in attrs.items():
        assert getattr(caught.value, key) == value


# -- fuzz: decode_payload raises QrError and nothing else ----------------------------------------


def _decode_or_qr_error(text: str) -> None:
    try:
        p = decode_payload(text)
    except QrError:
        return
    assert encode_payload(p) == text  # whatever decodes has exactly one text


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=40)
    | st.binary(max_size=70),
    lambda children: (
        st.lists(children, max_size=13) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=30,
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=1100) | st.text(max_size=60).map(lambda t: PREFIX + t))
def test_fuzz_text(text: str) -> None:
    _decode_or_qr_error(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1100))
def test_fuzz_latin1(data: bytes) -> None:
    _decode_or_qr_error(data.decode("latin-1"))
    _decode_or_qr_error(PREFIX + data.decode("latin-1"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_cbor_bytes(data: bytes) -> None:
    _decode_or_qr_error(_text(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cbor_values)
def test_fuzz_cbor_structures(value: Any) -> None:
    _decode_or_qr_error(_text(cbor2.dumps(value)))


cbor_leaves = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=40)
    | st.binary(max_size=70)
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_twelve_field_arrays(data: st.DataObject) -> None:
    """Each field either keeps its valid value or becomes a random leaf: near misses."""
    items = _items(decode_payload(load("valid")["payload"]))
    fuzzed = [data.draw(st.just(item) | cbor_leaves) for item in items]
    _decode_or_qr_error(_text(cbor2.dumps(fuzzed)))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_valid_payload(data: st.DataObject) -> None:
    raw = bytearray(bytes.fromhex(load("valid")["cbor_hex"]))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _decode_or_qr_error(_text(bytes(raw[:cut])))
    _decode_or_qr_error(_text(bytes(raw)))


# -- QR images -----------------------------------------------------------------------------------


def test_payload_is_alphanumeric(valid: dict[str, Any]) -> None:
    assert set(base45.BASE45_CHARSET) == qr.QR_ALPHANUMERIC
    assert qr.is_alphanumeric(valid["payload"])
    symbol = qr._make_qr(valid["payload"])
    assert symbol.mode == "alphanumeric"
    assert symbol.designator == "10-M"


def test_png_decodes_back(valid: dict[str, Any]) -> None:
    png = qr_png(valid["payload"])
    assert png.startswith(b"\x89PNG")
    assert decode_qr_image(png) == [valid["payload"]]


@pytest.mark.parametrize(
    ("factor", "resample"),
    [
        (0.7, Image.Resampling.BILINEAR),
        (0.8, Image.Resampling.LANCZOS),
        (2.5, Image.Resampling.NEAREST),
        (3.0, Image.Resampling.BICUBIC),
    ],
)
def test_png_decodes_back_after_scaling(
    valid: dict[str, Any], factor: float, resample: Image.Resampling
) -> None:
    with Image.open(io.BytesIO(qr_png(valid["payload"]))) as image:
        size = (round(image.width * factor), round(image.height * factor))
        scaled = image.convert("L").resize(size, resample)
    out = io.BytesIO()
    scaled.save(out, format="JPEG" if factor < 1 else "PNG")
    assert decode_qr_image(out.getvalue()) == [valid["payload"]]


def test_svg_renders(valid: dict[str, Any]) -> None:
    svg = qr_svg(valid["payload"], scale=2)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert 'width="130"' in svg  # (57 modules + 2 x 4 border) x 2


def test_non_alphanumeric_text_renders_in_byte_mode() -> None:
    text = "https://example.org/?d=44010125_0012345678_A3F29C_286.50_20250314"
    assert not qr.is_alphanumeric(text)
    assert decode_qr_image(qr_png(text)) == [text]


def test_image_without_qr_and_not_an_image() -> None:
    blank = io.BytesIO()
    Image.new("L", (120, 120), 255).save(blank, format="PNG")
    assert decode_qr_image(blank.getvalue()) == []
    with pytest.raises(QrImageUnreadable):
        decode_qr_image(b"not an image")


# -- the specification ---------------------------------------------------------------------------


def _doc_block(marker: str) -> str:
    found = re.search(
        rf"<!-- {re.escape(marker)} -->\s*```[a-z]*\n(.*?)```",
        DOC.read_text(encoding="utf-8"),
        re.DOTALL,
    )
    assert found, f"docs/qr-format.md has no fenced block after <!-- {marker} -->"
    return found.group(1)


def test_doc_example_is_the_valid_vector(valid: dict[str, Any]) -> None:
    assert _doc_block("example:payload").strip() == valid["payload"]
    assert "".join(_doc_block("example:cbor-hex").split()) == valid["cbor_hex"]
    doc = DOC.read_text(encoding="utf-8")
    for value in (valid["signer"], valid["record_hash"], valid["digest"], valid["invoice_id"]):
        assert value in doc

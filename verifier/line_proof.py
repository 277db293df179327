"""Proof that one detail line belongs to an anchored invoice, checkable with this package alone.

The chain of evidence, from the line up to the chain:

1. the line's canonical CBOR entry is leaf ``line_no`` of the invoice's detail tree, whose root
   is ``detail_root`` (RFC 9162 inclusion proof, tree size = lines + 1: leaf 0 is the visit);
2. ``detail_root`` is one of the signed fields carried by the invoice's QR payload, so the
   record hash follows from the payload, and the hospital's signature covers it;
3. the invoice's leaf (id, record hash, hospital, total) is in the log checkpoint whose root
   the verifier reads from the chain (``checkpointRoot(size)``).

The caller supplies the checkpoint root from the chain and judges the signer (trust list or
registry); this module does the hashing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cbor2

from chain import merkle
from chain.model import InvoiceLeaf
from verifier.errors import VerifierError
from verifier.invoice import fen_of_e4
from verifier.qr import QrPayload, decode_payload


class LineProofInvalid(VerifierError, ValueError):
    """Raised when a line proof does not hold; ``link`` names the broken link."""

    def __init__(self, link: str, reason: str) -> None:
        super().__init__(f"{link}: {reason}")
        self.link = link
        self.reason = reason


@dataclass(frozen=True)
class LineProof:
    payload: str  # the invoice's QR payload text (ZC1:...)
    line_no: int  # 1-based; the leaf index in the detail tree
    line_entry: bytes  # canonical CBOR of the line
    detail_size: int  # lines + 1
    detail_proof: tuple[bytes, ...]
    leaf_index: int
    checkpoint_size: int
    inclusion_proof: tuple[bytes, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "payload": self.payload,
            "line_no": self.line_no,
            "line_entry": "0x" + self.line_entry.hex(),
            "detail_size": self.detail_size,
            "detail_proof": ["0x" + p.hex() for p in self.detail_proof],
            "leaf_index": self.leaf_index,
            "checkpoint_size": self.checkpoint_size,
            "inclusion_proof": ["0x" + p.hex() for p in self.inclusion_proof],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LineProof:
        try:
            return cls(
                payload=str(data["payload"]),
                line_no=int(data["line_no"]),
                line_entry=bytes.fromhex(str(data["line_entry"])[2:]),
                detail_size=int(data["detail_size"]),
                detail_proof=tuple(bytes.fromhex(p[2:]) for p in data["detail_proof"]),
                leaf_index=int(data["leaf_index"]),
                checkpoint_size=int(data["checkpoint_size"]),
                inclusion_proof=tuple(bytes.fromhex(p[2:]) for p in data["inclusion_proof"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LineProofInvalid("format", str(exc)) from None


@dataclass(frozen=True)
class ProvenLine:
    """A line proven to belong to an anchored invoice, and who signed the invoice."""

    invoice: QrPayload
    signer: str
    code: str
    name: str
    item_class: str
    unit_price: int
    quantity_milli: int
    amount: int
    department: str
    time: list[int]
    #: A format-2 line's every signed field by name (form, specification, unit, unit price in
    #: yuan x 10^4, self-pay amount and share, charge category); empty for format 1.
    fields: dict[str, Any] = field(default_factory=dict)


def verify_line_proof(proof: LineProof, checkpoint_root: bytes) -> ProvenLine:
    """Checks the three links (see the module docstring) and returns the line and the
    signer. Caller: judge ``signer`` against the hospital's keys at the issue time, and take
    ``checkpoint_root`` for ``proof.checkpoint_size`` from the chain."""
    try:
        payload = decode_payload(proof.payload)
    except Exception as exc:
        raise LineProofInvalid("payload", str(exc)) from None
    if not 1 <= proof.line_no < proof.detail_size:
        raise LineProofInvalid("detail", "line_no must be within 1..lines")
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(proof.line_entry),
            proof.line_no,
            proof.detail_size,
            proof.detail_proof,
            payload.detail_root,
        )
    except merkle.MerkleError as exc:
        raise LineProofInvalid("detail", str(exc)) from None
    fields = payload.signed_fields()
    leaf = InvoiceLeaf(fields.invoice_id, fields.record_hash(), payload.hospital, payload.total)
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(leaf.entry()),
            proof.leaf_index,
            proof.checkpoint_size,
            proof.inclusion_proof,
            checkpoint_root,
        )
    except merkle.MerkleError as exc:
        raise LineProofInvalid("inclusion", str(exc)) from None
    try:
        signer = payload.signer()
        line = cbor2.loads(proof.line_entry)
        if isinstance(line, list) and len(line) == 2 and line[0] == "line/2":
            return _proven2(payload, signer, line[1])
        tag, code, name, item_class, unit_price, quantity, amount, department, when = line
    except LineProofInvalid:
        raise
    except Exception as exc:
        raise LineProofInvalid("line", str(exc)) from None
    if tag != "line":
        raise LineProofInvalid("line", "the entry is not a detail line")
    return ProvenLine(
        payload,
        signer,
        code,
        name,
        item_class,
        unit_price,
        quantity,
        amount,
        department,
        list(when),
    )


def _proven2(payload: QrPayload, signer: str, fields: Any) -> ProvenLine:
    """A format-2 line entry (``["line/2", {...}]``, see verifier.canonical)."""
    if not isinstance(fields, dict):
        raise LineProofInvalid("line", "a format-2 line entry holds a map of its fields")
    try:
        return ProvenLine(
            payload,
            signer,
            str(fields["code"]),
            str(fields["name"]),
            str(fields["class"]),
            fen_of_e4(int(fields["unit_price_e4"])),
            int(fields["quantity_milli"]),
            int(fields["amount"]),
            str(fields["department"]),
            list(fields["time"]),
            dict(fields),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LineProofInvalid("line", f"the format-2 line lacks {exc}") from None

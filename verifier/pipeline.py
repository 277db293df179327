"""Verification of an invoice fingerprint as ordered, separately callable steps.

    decode -> parse -> canonicalise -> signature -> registry -> inclusion -> record -> status

Each step checks its preconditions, computes, compares, and raises ``StepFailed`` with a stable
code and its details; ``verify`` runs them in order, stops at the first failure and returns a
``Verdict`` listing every step with its code and a sentence in Chinese and English. What each
step leaves to the caller is in its docstring.

Two sources of facts are pluggable, so that the same pipeline runs online (the service: its
registry cache and database, the chain's checkpoints and claim state) and offline (a signed
trust list, nothing else; the ledger steps then say plainly that they could not be made):
``KeyJudge`` for the registry step, ``LedgerFacts`` for inclusion, record and status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast

from chain import merkle
from chain.model import InvoiceLeaf, InvoiceLedgerState
from verifier.canonical import Domain, SignatureInvalid, invoice_id, recover_signer
from verifier.codes import same_check_code
from verifier.errors import VerifierError
from verifier.messages import sentence
from verifier.qr import PREFIX, QrError, QrPayload, decode_payload

STEPS = (
    "decode",
    "parse",
    "canonicalise",
    "signature",
    "registry",
    "inclusion",
    "record",
    "status",
)
Status = Literal["passed", "failed", "skipped", "not_run"]


class StepFailed(VerifierError):
    """Raised by a step when the invoice fails it; ``code`` is stable, ``details`` are data."""

    def __init__(self, code: str, **details: Any) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


class StepSkipped(VerifierError):
    """Raised by a step that cannot be made here (offline, or not applicable)."""

    def __init__(self, code: str, **details: Any) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class StepResult:
    step: str
    status: Status
    code: str
    message_zh: str
    message_en: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """The outcome: ``valid`` when no step failed (skipped steps are listed as such)."""

    valid: bool
    steps: tuple[StepResult, ...]
    invoice_id: bytes | None
    reference: str | None
    failed_step: str | None
    milliseconds: float

    @property
    def offline(self) -> bool:
        return any(s.status == "skipped" and s.code == "offline" for s in self.steps)

    def as_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "failed_step": self.failed_step,
            "invoice_id": "0x" + self.invoice_id.hex() if self.invoice_id else None,
            "reference": self.reference,
            "milliseconds": round(self.milliseconds, 2),
            "steps": [
                {
                    "step": s.step,
                    "status": s.status,
                    "code": s.code,
                    "message_zh": s.message_zh,
                    "message_en": s.message_en,
                    "details": _jsonable(s.details),
                }
                for s in self.steps
            ],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# -- ports --------------------------------------------------------------------------------------


class KeyJudge(Protocol):
    """Judges a hospital key at a moment: None when valid, else the reason (registry cache
    online, ``verifier.trust_list.TrustList`` offline; both by ``chain.model.judge_key``)."""

    def judge(self, hospital: str, signer: str, moment: datetime) -> str | None: ...

    def revoked_log_size(self, hospital: str, signer: str) -> int | None:
        """The smallest log size at which a revocation of a key of ``hospital`` with this
        address was recorded, or None when none was (a rotation records none)."""
        ...


@dataclass(frozen=True)
class AnchoredRecord:
    """What the service's database says of an invoice, to be checked against the chain."""

    bill_code: str
    bill_number: str
    check_code: str
    hospital: str
    issued_at: datetime
    total: int
    patient_commitment: bytes
    detail_root: bytes
    record_hash: bytes
    leaf_index: int | None
    checkpoint_size: int | None
    proof: tuple[bytes, ...]


class LedgerFacts(Protocol):
    """The ledger seen online. ``checkpoint_root`` and ``claim_state`` must come from the
    chain; the record and proof may come from an untrusted database, since the inclusion step
    checks them against the chain's root."""

    def resolve_bill(self, bill_code: str, bill_number: str, check_code: str) -> bytes | None:
        """The id of the invoice of this bill code and number whose check code is
        ``check_code``, None when there is none. Bill codes are shared by the hospitals of a
        region, so several hospitals may have issued the number; the check code (compared in
        constant time) picks one. A wrong check code is answered as an unknown bill."""
        ...

    def anchored_record(self, invoice_id: bytes) -> AnchoredRecord | None: ...

    def checkpoint_root(self, size: int) -> bytes | None: ...

    def claim_state(self, invoice_id: bytes) -> InvoiceLedgerState: ...


@dataclass(frozen=True)
class Reference:
    """A lookup by bill code and number, with the printed elements to compare when given."""

    bill_code: str
    bill_number: str
    check_code: str | None = None
    amount_fen: int | None = None
    issued_on: Any = None  # datetime.date | None


Parsed = Any  # QrPayload | verifier.pointer.PointerQr | Reference


# -- steps --------------------------------------------------------------------------------------


def decode(source: bytes | str, read_image: Callable[[bytes], Sequence[str]]) -> str:
    """Image bytes to QR text (text passes through). Caller: nothing; the text is untrusted."""
    if isinstance(source, str):
        return source.strip()
    try:
        texts = list(read_image(source))
    except QrError as exc:
        raise StepFailed("image_unreadable", reason=str(exc)) from None
    if not texts:
        raise StepFailed("no_qr_found")
    if len(set(texts)) > 1:
        raise StepFailed("several_qr_codes", count=len(set(texts)))
    return texts[0]


def parse(text: str) -> Parsed:
    """Text to a signed payload or a fiscal pointer. Caller: nothing is verified yet."""
    from verifier import pointer

    # ZC1: and any other ZCn: (refused below as an unsupported version, not as garbage)
    if text[:2].upper() == PREFIX[:2] and text[3:4] == ":":
        try:
            return decode_payload(text)
        except QrError as exc:
            code = {
                "QrTooLong": "qr_too_long",
                "QrUnsupportedVersion": "qr_unsupported_version",
                "QrWrongPrefix": "qr_wrong_prefix",
            }.get(type(exc).__name__, "qr_malformed")
            raise StepFailed(code, reason=str(exc), **_error_fields(exc)) from None
    if pointer.looks_like_pointer(text):
        try:
            return pointer.parse_pointer(text)
        except pointer.TaxInvoiceQr as exc:  # told apart: the holder scanned the wrong code
            raise StepFailed(
                "tax_invoice_qr",
                kind=exc.kind,
                invoice_zh=exc.invoice_zh,
                invoice_en=exc.invoice_en,
            ) from None
        except QrError as exc:
            raise StepFailed("qr_malformed", reason=str(exc)) from None
    raise StepFailed("qr_wrong_prefix", reason="neither a ZC1 fingerprint nor a fiscal pointer")


def _error_fields(exc: Exception) -> dict[str, Any]:
    return {k: v for k, v in vars(exc).items() if k in ("version", "length", "limit")}


@dataclass(frozen=True)
class Canonical:
    # None for a pointer or reference offline, or when no bill of the ledger matches it
    invoice_id: bytes | None
    reference: str
    record_hash: bytes | None  # None for a pointer: it carries no record
    digest: bytes | None


def canonicalise(
    parsed: Parsed, domain: Domain | None, facts: LedgerFacts | None = None
) -> Canonical:
    """Recomputes the invoice id and, for a signed payload, the record hash and the digest in
    the EXPECTED domain (``domain``: the ledger this verifier trusts). A payload signed for
    another chain or contract is refused here. Caller: the signature is not checked yet.

    The id is ``invoice_id(hospital, bill code, bill number)``. A fiscal pointer or a typed
    reference carries no hospital: online, ``facts.resolve_bill`` finds the invoice by its bill
    code, number and check code; offline, or without a check code, or when none matches, the
    id is None and the inclusion step answers ``invoice_unknown`` (or ``offline``)."""
    ref = f"{parsed.bill_code}-{parsed.bill_number}"
    if not isinstance(parsed, QrPayload):
        check_code = parsed.check_code
        found = (
            facts.resolve_bill(parsed.bill_code, parsed.bill_number, check_code)
            if facts is not None and check_code is not None
            else None
        )
        return Canonical(found, ref, None, None)
    iid = invoice_id(parsed.hospital, parsed.bill_code, parsed.bill_number)
    if domain is not None and parsed.domain() != domain:
        raise StepFailed(
            "domain_mismatch",
            chain_id=parsed.chain_id,
            contract=parsed.contract,
            expected_chain_id=domain.chain_id,
            expected_contract=domain.contract,
        )
    fields = parsed.signed_fields()
    return Canonical(iid, ref, fields.record_hash(), parsed.digest(domain or parsed.domain()))


def signature(parsed: Parsed, canonical: Canonical) -> str:
    """Recovers the signer of the digest. Caller: whose key it is is the registry step's job;
    a changed field recovers SOME key, so this step alone proves nothing."""
    if not isinstance(parsed, QrPayload) or canonical.digest is None:
        raise StepSkipped("no_signature")
    try:
        return recover_signer(canonical.digest, parsed.signature)
    except SignatureInvalid as exc:
        raise StepFailed("signature_invalid", reason=str(exc)) from None


def registry(
    parsed: Parsed, signer: str | None, judge: KeyJudge, leaf_index: int | None = None
) -> None:
    """The signer must be a key of the invoice's hospital, valid at the issue time; and when
    the invoice is in the log at ``leaf_index``, no key of the hospital with this address may
    have had its revocation recorded at a log size at or below it: the invoice was then first
    anchored after the revocation, and the issue time, the signer's own word, proves nothing
    (a stolen key backdates). Caller: ``leaf_index`` is the database's; the inclusion step
    proves it against the chain. Offline it is unknown, and a key revoked since the invoice
    was signed is judged by the issue time only."""
    if not isinstance(parsed, QrPayload) or signer is None:
        raise StepSkipped("not_applicable")
    moment = datetime.fromtimestamp(parsed.issued_at, UTC)
    reason = judge.judge(parsed.hospital, signer, moment)
    if reason is not None:
        raise StepFailed("key_not_valid", reason=reason, hospital=parsed.hospital, signer=signer)
    if leaf_index is not None:
        bound = judge.revoked_log_size(parsed.hospital, signer)
        if bound is not None and leaf_index >= bound:
            raise StepFailed(
                "key_revoked_before_anchoring",
                hospital=parsed.hospital,
                signer=signer,
                leaf_index=leaf_index,
                revoked_log_size=bound,
            )


def inclusion(canonical: Canonical, facts: LedgerFacts | None) -> AnchoredRecord:
    """The invoice's leaf is in a checkpoint whose root is on chain. Caller: the leaf is the
    database's record; the record step compares it with what was presented."""
    if facts is None:
        raise StepSkipped("offline", what="the ledger (inclusion, record, status)")
    # No id: a pointer or reference that no bill matches (a wrong check code included), told
    # apart from an unknown bill by nothing.
    record = None if canonical.invoice_id is None else facts.anchored_record(canonical.invoice_id)
    if record is None:
        raise StepFailed("invoice_unknown")
    if record.leaf_index is None or record.checkpoint_size is None:
        raise StepFailed("not_anchored")
    root = facts.checkpoint_root(record.checkpoint_size)
    if root is None:
        raise StepFailed("checkpoint_unknown", checkpoint_size=record.checkpoint_size)
    assert canonical.invoice_id is not None
    leaf = InvoiceLeaf(canonical.invoice_id, record.record_hash, record.hospital, record.total)
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(leaf.entry()),
            record.leaf_index,
            record.checkpoint_size,
            record.proof,
            root,
        )
    except merkle.MerkleError as exc:
        raise StepFailed("inclusion_failed", reason=str(exc)) from None
    return record


def check_code(parsed: Parsed, anchored: AnchoredRecord) -> AnchoredRecord:
    """A pointer's or typed reference's check code (校验码) is the anchored record's, compared
    in constant time and without regard to case; when it differs or is absent the step fails
    as ``invoice_unknown``, exactly as for a bill the ledger does not have. Bill codes and
    numbers are sequential: the check code is the secret that shows the asker saw the bill, so
    whoever lacks it learns nothing of the record, not even that it exists. Run with the
    inclusion step, before anything of the record is told. A signed fingerprint passes: its
    signature was checked, and the record step compares the whole signed record. Caller: the
    other elements are the record step's."""
    if isinstance(parsed, QrPayload):
        return anchored
    presented = parsed.check_code
    if presented is None or not same_check_code(presented, anchored.check_code):
        raise StepFailed("invoice_unknown")
    return anchored


def record(parsed: Parsed, canonical: Canonical, anchored: AnchoredRecord) -> None:
    """What was presented equals the anchored record: the record hash for a signed payload
    (it covers every field), the printed elements for a pointer or a reference. A mismatch
    names the elements that differ, never the stored values (the asker presented the check
    code, not the amount or the date). Caller: the check code was compared already
    (:func:`check_code`)."""
    if isinstance(parsed, QrPayload):
        if canonical.record_hash == anchored.record_hash:
            return
        presented = {
            "check_code": parsed.check_code,
            "hospital": parsed.hospital,
            "issued_at": parsed.issued_at,
            "total": parsed.total,
            "patient_commitment": parsed.patient_commitment,
            "detail_root": parsed.detail_root,
        }
        stored = {
            "check_code": anchored.check_code,
            "hospital": anchored.hospital,
            "issued_at": int(anchored.issued_at.timestamp()),
            "total": anchored.total,
            "patient_commitment": anchored.patient_commitment,
            "detail_root": anchored.detail_root,
        }
        differ = [k for k in presented if presented[k] != stored[k]] or ["record_hash"]
        raise StepFailed("record_mismatch", fields=", ".join(differ))
    from verifier import pointer

    bill = pointer.BillRecord(
        anchored.bill_code,
        anchored.bill_number,
        anchored.check_code,
        anchored.total,
        anchored.issued_at,
    )
    mismatches = pointer.matches(parsed, bill)
    if mismatches:
        raise StepFailed(
            "record_mismatch",
            fields=", ".join(m.field for m in mismatches),
            mismatches=[{"field": m.field} for m in mismatches],
        )


def status(
    canonical: Canonical, anchored: AnchoredRecord, facts: LedgerFacts
) -> tuple[str, dict[str, Any]]:
    """The claim state on chain: a voided invoice fails; otherwise the amount still claimable.
    Run only after the record step passed: paid, claimable, locks and the total are told only
    to whoever presented the bill (its check code, or the whole signed record). Caller: a claim
    must still check the claimable amount and locks at settlement time."""
    assert canonical.invoice_id is not None  # the inclusion step passed: the id is known
    state = facts.claim_state(canonical.invoice_id)
    if state.voided:
        raise StepFailed("voided")
    details = {
        "paid": state.paid,
        "claimable": max(anchored.total - state.paid, 0),
        "locked_by": state.locked_by,
        "total": anchored.total,
    }
    return ("status_locked" if state.locked_by else "status_ok"), details


# -- the runner ---------------------------------------------------------------------------------


class _Run:
    def __init__(self) -> None:
        self.results: list[StepResult] = []
        self.failed: str | None = None

    def record(self, step: str, status_: Status, code: str, details: dict[str, Any]) -> None:
        zh, en = sentence(code, details)
        self.results.append(StepResult(step, status_, code, zh, en, details))
        if status_ == "failed":
            self.failed = step

    def run(
        self, step: str, fn: Callable[[], Any], passed: Callable[[Any], tuple[str, dict[str, Any]]]
    ) -> Any:
        if self.failed is not None:
            self.record(step, "not_run", "not_run", {})
            return None
        try:
            value = fn()
        except StepFailed as exc:
            self.record(step, "failed", exc.code, exc.details)
            return None
        except StepSkipped as exc:
            self.record(step, "skipped", exc.code, exc.details)
            return None
        code, details = passed(value)
        self.record(step, "passed", code, details)
        return value


def verify(
    source: bytes | str | Reference,
    *,
    judge: KeyJudge | None,
    facts: LedgerFacts | None,
    domain: Domain | None,
    read_image: Callable[[bytes], Sequence[str]] | None = None,
) -> Verdict:
    """Runs every step in order and returns the verdict (never raises for bad input).

    ``source`` is image bytes, QR text, or a ``Reference`` (bill code and number typed in).
    ``judge`` None skips the registry step; ``facts`` None is offline mode.
    """
    started = time.perf_counter()
    run = _Run()
    facts = None if facts is None else cast(LedgerFacts, _RememberedRecords(facts))
    if isinstance(source, Reference):
        run.record("decode", "skipped", "not_applicable", {})
        parsed: Parsed = source
        run.record("parse", "passed", "parsed_reference", {})
    else:
        if isinstance(source, bytes) and read_image is None:
            from verifier.qr import decode_qr_image

            read_image = decode_qr_image
        text = run.run(
            "decode",
            lambda: decode(source, read_image),  # type: ignore[arg-type]
            lambda t: ("text_given" if isinstance(source, str) else "decoded", {"length": len(t)}),
        )
        parsed = run.run("parse", lambda: parse(text), _parsed_code)
    canonical: Canonical | None = run.run(
        "canonicalise",
        lambda: canonicalise(parsed, domain, facts),
        lambda c: ("canonicalised", {"invoice_id": c.invoice_id, "record_hash": c.record_hash}),
    )
    signer = run.run(
        "signature",
        lambda: signature(parsed, canonical),  # type: ignore[arg-type]
        lambda s: ("signature_recovered", {"signer": s}),
    )
    if judge is None and run.failed is None:
        run.record("registry", "skipped", "offline", {"what": "the hospital's key (no trust list)"})
    else:
        run.run(
            "registry",
            lambda: registry(parsed, signer, judge, _leaf_index(canonical, facts)),  # type: ignore[arg-type]
            lambda _: ("key_valid", {"hospital": getattr(parsed, "hospital", None)}),
        )
    anchored = run.run(
        "inclusion",
        lambda: check_code(parsed, inclusion(canonical, facts)),  # type: ignore[arg-type]
        lambda r: ("included", {"leaf_index": r.leaf_index, "checkpoint_size": r.checkpoint_size}),
    )
    if anchored is None and run.failed is None:
        for step in ("record", "status"):
            run.record(step, "skipped", "offline", {"what": "the ledger record and status"})
    else:
        run.run(
            "record",
            lambda: record(parsed, canonical, anchored),  # type: ignore[arg-type]
            lambda _: ("record_matches", {}),
        )
        run.run(
            "status",
            lambda: status(canonical, anchored, facts),  # type: ignore[arg-type]
            lambda r: r,
        )
    return Verdict(
        valid=run.failed is None,
        steps=tuple(run.results),
        invoice_id=canonical.invoice_id if canonical else None,
        reference=canonical.reference if canonical else None,
        failed_step=run.failed,
        milliseconds=(time.perf_counter() - started) * 1000,
    )


class _RememberedRecords:
    """Facts that load each anchored record once per verification: the registry step reads
    its leaf index, the inclusion step proves that same record."""

    def __init__(self, facts: LedgerFacts) -> None:
        self._facts = facts
        self._records: dict[bytes, AnchoredRecord | None] = {}

    def anchored_record(self, invoice_id: bytes) -> AnchoredRecord | None:
        if invoice_id not in self._records:
            self._records[invoice_id] = self._facts.anchored_record(invoice_id)
        return self._records[invoice_id]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._facts, name)


def _leaf_index(canonical: Canonical | None, facts: LedgerFacts | None) -> int | None:
    """Where the presented record is in the log, for the registry step: None offline, or when
    the log holds another record under this id (the record step refuses that one)."""
    if canonical is None or canonical.invoice_id is None or facts is None:
        return None
    anchored = facts.anchored_record(canonical.invoice_id)
    if anchored is None or anchored.record_hash != canonical.record_hash:
        return None
    return anchored.leaf_index


def _parsed_code(parsed: Parsed) -> tuple[str, dict[str, Any]]:
    if isinstance(parsed, QrPayload):
        return "parsed_signed", {"version": parsed.version}
    return "parsed_pointer", {"form": getattr(parsed, "form", "")}

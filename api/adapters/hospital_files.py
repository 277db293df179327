"""The hospital side: its signing key, its batch files, and its uploads to the service.

Runs at the hospital's billing office (the ``zeroclaim hospital`` commands); the service never
sees the private key. A batch file is read by the first format in ``BATCH_FORMATS`` that
recognises its content (not its name): JSON (``{"items": [...]}`` or a list, see docs/api.md)
or CSV (one row per detail line, the header fields repeated; see docs/invoice-format.md).
Every failure is a ``HospitalSideError`` whose message is one sentence a clerk can act on.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.canonical import Domain, SignedFields, sign_digest, signing_digest
from verifier.his import looks_like_export, parse_export
from verifier.invoice import InvoiceInvalid, Problem, parse_invoice

if TYPE_CHECKING:
    import httpx

# -- errors ---------------------------------------------------------------------------------


class HospitalSideError(Exception):
    """Root of the errors of the hospital side; the message is the sentence to show."""


class BatchFileInvalid(HospitalSideError, ValueError):
    """Raised when a batch file cannot be read as a batch at all (not JSON, not CSV, no item):
    ``filename``, the 1-based ``line`` where reading stopped (None when no line is to blame)
    and the ``reason``."""

    def __init__(self, filename: str, reason: str, line: int | None = None) -> None:
        where = filename if line is None else f"{filename}, line {line}"
        super().__init__(f"{where}: {reason}")
        self.filename = filename
        self.line = line
        self.reason = reason


class CsvUnreadable(ValueError):
    """Raised when a text is not CSV (a field over the csv module's limit of 131,072
    characters, say): the ``row`` (the header is row 1), its first ``line`` and the reason."""

    def __init__(self, row: int, line: int, reason: str) -> None:
        super().__init__(f"row {row} (the header is row 1): {reason}")
        self.row = row
        self.line = line
        self.reason = reason


class KeystoreError(HospitalSideError):
    """Root of the errors of the hospital's keystore file; ``path`` names it."""

    def __init__(self, path: Path, sentence: str) -> None:
        super().__init__(sentence)
        self.path = path


class KeystoreExists(KeystoreError):
    """Raised when ``keygen`` would overwrite a keystore (a key is never replaced silently)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, f"{path} exists; refusing to overwrite a key")


class KeystoreMissing(KeystoreError):
    """Raised when the keystore file does not exist."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path, f"no keystore at {path} (create one with: zeroclaim hospital keygen --keystore)"
        )


class KeystoreUnreadable(KeystoreError):
    """Raised when the keystore file cannot be read or written, or is not a Web3 Secret
    Storage keystore (cut short, edited, another kind of file)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, f"{path} is not a usable keystore: {reason}")
        self.reason = reason


class WrongPassword(KeystoreError):
    """Raised when the password does not open the keystore (its MAC does not match)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path, f"the password does not open the keystore {path} (or the file was altered)"
        )


class CredentialMalformed(HospitalSideError):
    """Raised when an API key or token holds characters no HTTP header carries (a key pasted
    with a stray character, say); the value itself is not repeated, it is a secret."""

    def __init__(self, credential: str) -> None:
        super().__init__(f"{credential} holds characters other than printable ASCII; copy it again")
        self.credential = credential


class ServiceError(HospitalSideError):
    """Root of the failures of a request to the service at ``url``. When a multi-chunk upload
    stops, ``uploaded`` of ``total`` invoices had already been sent and answered."""

    def __init__(self, url: str, sentence: str) -> None:
        super().__init__(sentence)
        self.url = url
        self.sentence = sentence
        self.uploaded = 0
        self.total = 0

    def __str__(self) -> str:
        if not self.uploaded:
            return self.sentence
        return (
            f"{self.sentence}; {self.uploaded} of {self.total} invoices were uploaded before "
            "that: upload the same file again, those come back as already there"
        )


class ServiceUnreachable(ServiceError):
    """Raised when no connection to the service can be made (refused, no route, bad URL)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, f"cannot reach the service at {url}: {reason}")


class ServiceTimedOut(ServiceError):
    """Raised when the service does not answer within ``seconds``."""

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(
            url,
            f"the service at {url} did not answer within {seconds:g} s; try again later "
            "(or with a longer --timeout)",
        )
        self.seconds = seconds


class ServiceAnswered(ServiceError):
    """Root of the answers that are not a success: the HTTP ``status`` and the error body's
    ``code`` and ``message`` (``{"error": {"code", "message"}}``)."""

    def __init__(self, url: str, sentence: str, status: int, code: str, message: str) -> None:
        shown = " ".join(part for part in (f"HTTP {status}", code) if part)
        super().__init__(
            url, f"{sentence} ({shown}: {message})" if message else f"{sentence} ({shown})"
        )
        self.status = status
        self.code = code
        self.message = message


class CredentialsRefused(ServiceAnswered):
    """Raised on a 401 or 403: the API key (or the admin token) is missing, wrong or revoked."""


class RequestRefused(ServiceAnswered):
    """Raised on another 4xx: the service understood and refused the request."""


class ServiceFailed(ServiceAnswered):
    """Raised on a 5xx or 429, or an answer that is not the service's JSON: try again later."""


CSV_HEADER_FIELDS = (
    "bill_code",
    "bill_number",
    "check_code",
    "hospital",
    "issued_at",
    "visit_type",
    "admitted_on",
    "discharged_on",
    "department",
    "diagnoses",
    "patient_commitment",
    "total",
    "insurance_paid",
    "patient_paid",
)
CSV_LINE_FIELDS = (
    "code",
    "name",
    "class",
    "unit_price",
    "quantity_milli",
    "amount",
    "line_department",
    "time",
)
CSV_PATIENT_FIELDS = ("patient_id_number", "patient_name", "patient_salt")
_INT_FIELDS = {"total", "insurance_paid", "patient_paid", "unit_price", "quantity_milli", "amount"}


# -- the hospital's key ---------------------------------------------------------------------


def create_keystore(path: Path, password: str) -> str:
    """Creates a new signing key, encrypted with ``password`` in a Web3 Secret Storage file
    readable by its owner only; returns the key's address (what the authority registers).

    Raises ``KeystoreExists`` rather than overwrite a key, ``KeystoreUnreadable`` when the
    file cannot be written.
    """
    from eth_account import Account

    account = Account.create()
    document = json.dumps(Account.encrypt(account.key, password)).encode()
    try:
        # O_EXCL: never overwrite; mode 0600 from the first byte, not chmod after writing.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreExists(path) from None
    except OSError as exc:
        raise KeystoreUnreadable(path, f"cannot be written ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as out:
        out.write(document)
    return str(account.address)


def unlock_keystore(path: Path, password: str) -> bytes:
    """The private key in the keystore file ``path``.

    Raises ``KeystoreMissing``, ``KeystoreUnreadable`` (not JSON, not a keystore, unreadable)
    or ``WrongPassword``.
    """
    from eth_account import Account

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeystoreMissing(path) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise KeystoreUnreadable(path, f"cannot be read ({reason})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        raise KeystoreUnreadable(path, reason) from None
    try:
        return bytes(Account.decrypt(document, password))
    except ValueError as exc:
        if str(exc) == "MAC mismatch":
            raise WrongPassword(path) from None
        raise KeystoreUnreadable(path, str(exc)) from None
    except KeyError as exc:
        raise KeystoreUnreadable(path, f"the field {exc} is missing") from None
    except (TypeError, NotImplementedError) as exc:
        # eth-keyfile's refusals of an unknown version, cipher or key derivation
        raise KeystoreUnreadable(path, str(exc) or type(exc).__name__) from None


# -- signing ----------------------------------------------------------------------------------


def sign_item(
    item: dict[str, Any], private_key: bytes, domain: Domain, hospital: str | None = None
) -> dict[str, Any]:
    """Adds the hospital's signature to one batch item (the invoice is validated first, so a
    hospital never signs what the service would refuse as malformed). A HIS export item
    (``{"his": export}``) is mapped onto format 2 first: ``hospital`` names the issuer and a
    fresh salt is drawn for the patient commitment (docs/his-export.md).

    Raises ``InvoiceInvalid`` listing the invoice's problems.
    """
    if looks_like_export(item):
        return _sign_export(item, private_key, domain, hospital)
    invoice = parse_invoice(item.get("invoice"))  # type: ignore[arg-type]  # refused if not one
    digest = signing_digest(domain, SignedFields.of(invoice).record_hash())
    return {**item, "signature": "0x" + sign_digest(private_key, digest).hex()}


def _sign_export(
    item: Mapping[str, Any], private_key: bytes, domain: Domain, hospital: str | None
) -> dict[str, Any]:
    issuer = item.get("hospital") or hospital
    if not isinstance(issuer, str) or not issuer:
        reason = "give --hospital H...: the HIS export does not name the issuing hospital"
        raise InvoiceInvalid("?", [Problem("hospital", reason)])
    salt = bytes.fromhex(item["salt"]) if isinstance(item.get("salt"), str) else os.urandom(16)
    invoice, _ = parse_export(item["his"], issuer, salt)
    digest = signing_digest(domain, SignedFields.of(invoice).record_hash())
    return {
        "his": item["his"],
        "hospital": issuer,
        "salt": salt.hex(),
        "signature": "0x" + sign_digest(private_key, digest).hex(),
    }


@dataclass(frozen=True)
class SignRefusal:
    """One item of a batch that was not signed: its index in the file, the invoice's
    reference (``?`` parts when unreadable), a code as the service would give it, and the
    problems (field paths inside the invoice)."""

    index: int
    reference: str
    code: str
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class SignedBatch:
    """The outcome of signing a batch: the good items signed, the bad ones refused."""

    signed: list[dict[str, Any]]
    refused: list[SignRefusal]


def sign_batch(
    items: Iterable[Any],
    private_key: bytes,
    domain: Domain,
    progress: Callable[[int], None] | None = None,
    hospital: str | None = None,
) -> SignedBatch:
    """Signs every valid item; a bad one is refused alone, with its problems, and the rest
    go on (one bad invoice never holds back a batch). ``hospital`` issues the HIS exports."""
    signed: list[dict[str, Any]] = []
    refused: list[SignRefusal] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            reason = "each item is an object with 'invoice' and optionally 'patient'"
            refused.append(SignRefusal(index, "?", "invalid_item", (Problem("$", reason),)))
        else:
            try:
                signed.append(sign_item(dict(item), private_key, domain, hospital))
            except InvoiceInvalid as exc:
                refused.append(SignRefusal(index, exc.reference, "invalid_invoice", exc.problems))
        if progress:
            progress(1)
    return SignedBatch(signed, refused)


# -- CSV ----------------------------------------------------------------------------------------


def _int(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        return value  # left for validation to refuse with the field's path


def read_csv_batch(text: str) -> list[dict[str, Any]]:
    """Batch items from CSV: rows with the same bill code and number form one invoice, in
    order; ``diagnoses`` are separated by ``;``; empty cells are absent values.

    Raises ``CsvUnreadable`` (a ``ValueError``) naming the row and its line when the text
    is not CSV (a field over the csv module's limit of 131,072 characters, say).
    """
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text))
    next_line = 1  # a quoted field may span lines: rows and lines differ
    try:
        for record in reader:
            records.append(record)
            next_line = reader.line_num + 1
    except csv.Error as exc:
        raise CsvUnreadable(len(records) + 1, next_line, str(exc)) from None
    if not records:
        return []
    header = records[0]
    return _items_of(dict(zip(header, record, strict=False)) for record in records[1:] if record)


def _items_of(rows: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row.get("bill_code", ""), row.get("bill_number", ""))
        item = items.get(key)
        if item is None:
            invoice: dict[str, Any] = {}
            for name in CSV_HEADER_FIELDS:
                value = row.get(name) or None
                if value is not None and name in _INT_FIELDS:
                    invoice[name] = _int(value)
                elif name == "diagnoses":
                    invoice[name] = [d for d in (value or "").split(";") if d]
                elif value is not None:
                    invoice[name] = value
            invoice["lines"] = []
            item = {"invoice": invoice}
            if row.get("patient_id_number"):
                item["patient"] = {
                    "id_number": row["patient_id_number"],
                    "name": row.get("patient_name", ""),
                    "salt": row.get("patient_salt", ""),
                }
            if row.get("signature"):
                item["signature"] = row["signature"]
            items[key] = item
        line: dict[str, Any] = {}
        for name in CSV_LINE_FIELDS:
            value = row.get(name) or None
            target = "department" if name == "line_department" else name
            if value is not None:
                line[target] = _int(value) if name in _INT_FIELDS else value
        item["invoice"]["lines"].append(line)
    return list(items.values())


def write_csv_batch(items: Sequence[dict[str, Any]]) -> str:
    """The CSV form of batch items (inverse of :func:`read_csv_batch`)."""
    out = io.StringIO()
    fields = [*CSV_HEADER_FIELDS, *CSV_LINE_FIELDS, *CSV_PATIENT_FIELDS, "signature"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for item in items:
        invoice = item["invoice"]
        header = {k: invoice.get(k, "") for k in CSV_HEADER_FIELDS}
        header["diagnoses"] = ";".join(invoice.get("diagnoses", []))
        patient = item.get("patient") or {}
        extra = {
            "patient_id_number": patient.get("id_number", ""),
            "patient_name": patient.get("name", ""),
            "patient_salt": patient.get("salt", ""),
            "signature": item.get("signature", ""),
        }
        for line in invoice["lines"]:
            row = {**header, **extra}
            for name in CSV_LINE_FIELDS:
                row[name] = line.get("department" if name == "line_department" else name, "")
            writer.writerow(row)
    return out.getvalue()


# -- batch files: one reader per format ---------------------------------------------------------


class BatchText:
    """A batch file's text and name, given to each format in turn; its JSON value is parsed
    once, when a format first asks for it."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename

    @property
    def looks_like_json(self) -> bool:
        """Whether the first character that is not blank opens a JSON object or array."""
        return self.text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[")

    @cached_property
    def json(self) -> Any:
        """The JSON value; raises ``BatchFileInvalid`` naming the line when it is not JSON."""
        try:
            return json.loads(self.text.removeprefix("\ufeff"))
        except json.JSONDecodeError as exc:
            reason = f"not valid JSON: {exc.msg} (column {exc.colno})"
            raise BatchFileInvalid(self.filename, reason, exc.lineno) from None


@dataclass(frozen=True)
class BatchFormat:
    """One kind of batch file: how to recognise it by its content, and how to read its items
    (each ``{"invoice": {...}, "patient": {...}, "signature": "0x.."}``, the last two optional).

    ``read`` raises ``BatchFileInvalid`` when the file, though recognised, cannot be read as a
    whole; a bad invoice inside it is not its concern (signing and uploading refuse it alone).
    """

    name: str
    recognises: Callable[[BatchText], bool]
    read: Callable[[BatchText], list[Any]]


def _is_items_json(batch: BatchText) -> bool:
    if not batch.looks_like_json:
        return False
    value = batch.json
    return isinstance(value, list) or (isinstance(value, dict) and "items" in value)


def _read_items_json(batch: BatchText) -> list[Any]:
    value = batch.json
    items = value["items"] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise BatchFileInvalid(batch.filename, '"items" must be a list of items')
    return items


def _read_csv_rows(batch: BatchText) -> list[Any]:
    try:
        items = read_csv_batch(batch.text)
    except CsvUnreadable as exc:
        reason = f"not valid CSV: {exc.reason} (row {exc.row}, the header is row 1)"
        raise BatchFileInvalid(batch.filename, reason, exc.line) from None
    header = next(csv.reader(io.StringIO(batch.text.removeprefix("\ufeff"))), [])
    if items and not {"bill_code", "bill_number"} <= set(header):
        # Without them no row can be told to its invoice: this is some other CSV file.
        reason = "not a CSV batch: the header has no bill_code and bill_number columns"
        raise BatchFileInvalid(batch.filename, reason, 1)
    return items


def _is_his(value: Any) -> bool:
    return isinstance(value, Mapping) and "request" in value and "response" in value


def _his_exports(batch: BatchText) -> list[Any] | None:
    """The exports of a file of HIS exports (one, a list, or ``{"items": [...]}``), or None
    when the file is not one."""
    if not batch.looks_like_json:
        return None
    value = batch.json
    if _is_his(value):
        return [value]
    items = value.get("items") if isinstance(value, Mapping) else value
    if isinstance(items, list) and items and _is_his(items[0]):
        return items
    return None


def _read_his_exports(batch: BatchText) -> list[Any]:
    exports = _his_exports(batch)
    assert exports is not None  # recognised
    # An element that is not an export stays as it is, to be refused alone by its index.
    return [{"his": export} if _is_his(export) else export for export in exports]


HIS_EXPORTS = BatchFormat(
    "the HIS's e-bill exports ({request, response}, docs/his-export.md)",
    lambda batch: _his_exports(batch) is not None,
    _read_his_exports,
)
JSON_ITEMS = BatchFormat(
    'JSON {"items": [...]} or a list of items', _is_items_json, _read_items_json
)
CSV_ROWS = BatchFormat(
    "CSV, one row per detail line", lambda batch: not batch.looks_like_json, _read_csv_rows
)
#: Tried in order; the first that recognises a file reads it, by its content (a key only that
#: format has), never by its name. A new input format is one more ``BatchFormat``, placed before
#: any format that would claim its files.
BATCH_FORMATS: tuple[BatchFormat, ...] = (HIS_EXPORTS, JSON_ITEMS, CSV_ROWS)


def read_batch_file(text: str, filename: str) -> list[Any]:
    """The items of a batch file's text, read by the first of ``BATCH_FORMATS`` that
    recognises it (``filename`` only names the file in errors).

    Raises ``BatchFileInvalid`` when no format recognises it, the format cannot read it, or
    it holds no item.
    """
    batch = BatchText(text, filename)
    for batch_format in BATCH_FORMATS:
        if batch_format.recognises(batch):
            items = batch_format.read(batch)
            if not items:
                raise BatchFileInvalid(filename, "holds no invoice")
            return items
    known = "; ".join(f.name for f in BATCH_FORMATS)
    raise BatchFileInvalid(filename, f"is of no batch format known here ({known})")


def read_batch_path(path: Path) -> list[Any]:
    """The items of the batch file at ``path``: UTF-8, a byte-order mark allowed; bytes that
    are not UTF-8 are kept (as surrogates) so that only the invoice holding them is refused,
    with its field path, as the service does. Raises ``BatchFileInvalid``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BatchFileInvalid(str(path), f"cannot be read ({exc.strerror})") from None
    return read_batch_file(data.decode("utf-8-sig", errors="surrogateescape"), str(path))


def batch_json_bytes(items: Sequence[Any]) -> bytes:
    """``{"items": [...]}`` as UTF-8 JSON (Chinese kept readable). A lone surrogate (a byte
    of the input that was not UTF-8) is written as its JSON escape ``\\udcXX``, which reads
    back as the same string, so the service refuses that invoice by its field path."""
    text = json.dumps({"items": list(items)}, ensure_ascii=False)
    return text.encode("utf-8", errors="backslashreplace")


# -- the service --------------------------------------------------------------------------------


class HospitalClient:
    """Talks to the service's API at ``base_url``: as a hospital with its API key, or as the
    authority registering one. Every failure is a ``ServiceError`` (none of httpx's exceptions
    leaves this class)."""

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        timeout: float = 120,
        client: httpx.Client | None = None,
    ) -> None:
        import httpx

        self.url = base_url
        self._timeout = timeout
        try:
            self._http = client or httpx.Client(base_url=base_url, timeout=timeout)
        except httpx.InvalidURL as exc:
            raise ServiceUnreachable(base_url, f"not a usable URL ({exc})") from None
        self._headers = {"X-API-Key": _header_value("the API key", api_key)} if api_key else {}

    def upload(
        self,
        items: Sequence[Any],
        chunk: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Uploads in chunks; returns every item's result (``status`` ``accepted``,
        ``duplicate`` or ``refused``), indexes relative to ``items``.

        Raises a ``ServiceError`` whose ``uploaded`` counts the invoices of the chunks that
        were answered before it.
        """
        results: list[dict[str, Any]] = []
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            try:
                body = self._post(
                    "/api/v1/invoices/batches",
                    content=batch_json_bytes(part),
                    headers={**self._headers, "Content-Type": "application/json"},
                    credential="the API key",
                )
                answered = [{**r, "index": r["index"] + start} for r in body["items"]]
            except ServiceError as exc:
                exc.uploaded, exc.total = start, len(items)
                raise
            except (KeyError, TypeError):
                failed = ServiceFailed(self.url, self._odd, 200, "", "no per-invoice results")
                failed.uploaded, failed.total = start, len(items)
                raise failed from None
            results += answered
            if progress:
                progress(len(part))
        return results

    def register_hospital(self, body: Mapping[str, Any], admin_token: str) -> dict[str, Any]:
        """(The authority) registers a hospital's key; returns the service's answer, with the
        hospital's API key shown this once. Raises a ``ServiceError``."""
        answer = self._post(
            "/api/v1/admin/hospitals",
            json=dict(body),
            headers={"Authorization": f"Bearer {_header_value('the admin token', admin_token)}"},
            credential="the admin token",
        )
        if not isinstance(answer, dict):
            raise ServiceFailed(self.url, self._odd, 201, "", "not a JSON object")
        return answer

    @property
    def _odd(self) -> str:
        return f"the service at {self.url} answered with something other than expected"

    def _post(self, path: str, credential: str, **request: Any) -> Any:
        """The JSON answer of a successful POST; translates every failure (no connection,
        no answer in time, an error status, an answer that is not JSON) into a
        ``ServiceError``."""
        import httpx

        try:
            response = self._http.post(path, **request)
        except httpx.TimeoutException:
            raise ServiceTimedOut(self.url, self._timeout) from None
        except httpx.RequestError as exc:  # no connection, bad protocol, redirect loop...
            raise ServiceUnreachable(self.url, str(exc) or type(exc).__name__) from None
        except httpx.InvalidURL as exc:
            raise ServiceUnreachable(self.url, f"not a usable URL ({exc})") from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise ServiceFailed(
                    self.url, self._odd, response.status_code, "", "not JSON"
                ) from None
        raise _refusal(self.url, response, credential)


def _header_value(credential: str, value: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise CredentialMalformed(credential)
    return value


def _refusal(url: str, response: httpx.Response, credential: str) -> ServiceAnswered:
    """The error answer as a ``ServiceAnswered`` of its kind, with the body's code and
    message (``{"error": {"code", "message"}}``) or the start of its text."""
    status = response.status_code
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "", " ".join(response.text.split())[:200]
    if 300 <= status < 400:
        where = response.headers.get("location", "elsewhere")
        return RequestRefused(
            url,
            f"the service at {url} sends the request to {where}; use that URL",
            status,
            code,
            message,
        )
    if status in (401, 403):
        return CredentialsRefused(
            url, f"the service at {url} refused {credential}", status, code, message
        )
    if 400 <= status < 500 and status != 429:
        return RequestRefused(
            url, f"the service at {url} refused the request", status, code, message
        )
    return ServiceFailed(
        url, f"the service at {url} failed; try again later", status, code, message
    )

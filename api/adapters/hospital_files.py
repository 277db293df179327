"""The hospital side: sign invoices with the hospital's own key, upload batches.

Runs at the hospital's billing office (the ``zeroclaim hospital`` commands); the service never
sees the private key. Batches are JSON (``{"items": [...]}``, see docs/api.md) or CSV (one row
per detail line, the header fields repeated; see docs/invoice-format.md).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

from verifier.canonical import Domain, SignedFields, sign_digest, signing_digest
from verifier.invoice import invoice_to_json, parse_invoice

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


def sign_item(item: dict[str, Any], private_key: bytes, domain: Domain) -> dict[str, Any]:
    """Adds the hospital's signature to one batch item (the invoice is validated first, so a
    hospital never signs what the service would refuse as malformed)."""
    invoice = parse_invoice(item["invoice"])
    digest = signing_digest(domain, SignedFields.of(invoice).record_hash())
    return {**item, "signature": "0x" + sign_digest(private_key, digest).hex()}


def sign_items(
    items: Iterable[dict[str, Any]],
    private_key: bytes,
    domain: Domain,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out.append(sign_item(item, private_key, domain))
        if progress:
            progress(1)
    return out


def _int(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        return value  # left for validation to refuse with the field's path


def read_csv_batch(text: str) -> list[dict[str, Any]]:
    """Batch items from CSV: rows with the same bill code and number form one invoice, in
    order; ``diagnoses`` are separated by ``;``; empty cells are absent values.

    Raises ``ValueError`` naming the row when the file is not CSV (a field over the csv
    module's limit of 131,072 characters, say).
    """
    records: list[list[str]] = []
    try:
        for record in csv.reader(io.StringIO(text)):
            records.append(record)
    except csv.Error as exc:
        raise ValueError(f"row {len(records) + 1} (the header is row 1): {exc}") from None
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


def read_batch_file(text: str, filename: str) -> list[dict[str, Any]]:
    """Items from a JSON (``{"items": [...]}`` or a list) or CSV batch file."""
    if filename.lower().endswith(".csv"):
        return read_csv_batch(text)
    data = json.loads(text)
    return list(data["items"] if isinstance(data, dict) else data)


def item_for(invoice_json: dict[str, Any], patient: dict[str, str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"invoice": invoice_json}
    if patient is not None:
        item["patient"] = patient
    return item


class HospitalClient:
    """Talks to the service's API with the hospital's API key."""

    def __init__(self, base_url: str, api_key: str, client: httpx.Client | None = None) -> None:
        self._http = client or httpx.Client(base_url=base_url, timeout=120)
        self._headers = {"X-API-Key": api_key}

    def domain(self) -> Domain:
        info = self._http.get("/api/v1/ledger").raise_for_status().json()
        return Domain(info["chain_id"], info["contract"])

    def upload(
        self,
        items: Sequence[dict[str, Any]],
        chunk: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Uploads in chunks; returns every item's result, indexes relative to ``items``."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(items), chunk):
            response = self._http.post(
                "/api/v1/invoices/batches",
                headers=self._headers,
                json={"items": list(items[start : start + chunk])},
            )
            response.raise_for_status()
            for result in response.json()["items"]:
                results.append({**result, "index": result["index"] + start})
            if progress:
                progress(len(items[start : start + chunk]))
        return results


__all__ = ["HospitalClient", "invoice_to_json", "read_batch_file", "sign_items"]

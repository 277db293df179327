"""Every endpoint against every role, with the status each must get: no cross-tenant reads or
writes (another citizen's or hospital's invoice does not exist for them; a payer's staff see
their payer's claims only), staff roles kept apart, and the audit log append-only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DatabaseError

from api.db import models
from api.demo.seed import API_KEYS_FILE, DEMO_CITIZEN_PASSWORD
from tests.api.conftest import World
from tests.api.test_claims import BIG_INPATIENT, DATASET, Demo, demo_world

ROLES = (
    "anonymous",
    "citizen",
    "other_citizen",
    "hospital",
    "other_hospital",
    "payer",
    "auditor",
    "admin",
)


def _other_than(index: int) -> int:
    """An invoice of another citizen at another hospital."""
    me = DATASET.citizen_of(index).id_number
    hospital = DATASET.invoices[index].hospital
    return next(
        i
        for i, inv in enumerate(DATASET.invoices)
        if DATASET.citizen_of(i).id_number != me and inv.hospital != hospital
    )


class Table:
    """The demo world with one paid basic claim, and the headers of each role."""

    def __init__(self, demo: Demo, data_dir: Path) -> None:
        self.demo = demo
        invoice = DATASET.invoices[BIG_INPATIENT]
        self.ref = f"{invoice.bill_code}-{invoice.bill_number}"
        self.id_number = DATASET.citizen_of(BIG_INPATIENT).id_number
        claim = demo.claim(BIG_INPATIENT)
        assert claim.status_code == 201, claim.text
        self.claim_id = claim.json()["claim_id"]
        assert demo.services.settle.run() == 1
        keys = json.loads((data_dir / API_KEYS_FILE).read_text())
        other = _other_than(BIG_INPATIENT)
        services = demo.services
        self.headers: dict[str, dict[str, str]] = {
            "anonymous": {},
            "citizen": demo.sign_in(BIG_INPATIENT),
            "other_citizen": demo.sign_in(other),
            "hospital": {"X-API-Key": keys[invoice.hospital]},
            "other_hospital": {"X-API-Key": keys[DATASET.invoices[other].hospital]},
            "payer": _bearer(services.staff_tokens.issue("basic-desk", "payer", "basic")),
            "auditor": _bearer(services.staff_tokens.issue("audit-1", "auditor", None)),
            "admin": _bearer("dev-admin-token"),
        }
        self.size = services.ledger.anchored().size  # type: ignore[union-attr]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def table(tmp_path: Path, database_url: str | None) -> Iterator[Table]:
    with demo_world(tmp_path, database_url) as demo:
        yield Table(demo, tmp_path)


def _row(
    anonymous: int,
    citizen: int,
    other_citizen: int,
    hospital: int,
    other_hospital: int,
    payer: int,
    auditor: int,
    admin: int,
) -> dict[str, int]:
    return dict(
        zip(
            ROLES,
            (anonymous, citizen, other_citizen, hospital, other_hospital, payer, auditor, admin),
            strict=True,
        )
    )


EVERYONE = _row(200, 200, 200, 200, 200, 200, 200, 200)
INVOICE_READ = _row(401, 200, 404, 200, 404, 200, 200, 200)
HOSPITAL_ONLY = _row(401, 401, 401, 200, 404, 401, 401, 401)
CITIZENS = _row(401, 200, 200, 401, 401, 401, 401, 401)
STAFF_READ = _row(401, 401, 401, 401, 401, 200, 200, 200)
AUDIT = _row(401, 401, 401, 401, 401, 403, 200, 200)


def _cases(t: Table) -> list[tuple[str, str, dict[str, Any], dict[str, int]]]:
    ref, claim = t.ref, t.claim_id
    office = {"id_number": t.id_number, "payer": "basic", "invoice": ref}
    return [
        ("GET", "/health", {}, EVERYONE),
        ("GET", "/healthz", {}, EVERYONE),
        ("GET", "/readyz", {}, EVERYONE),
        ("GET", "/metrics", {}, EVERYONE),
        (
            "POST",
            "/api/v1/invoices/batches",
            {"json": {"items": [{}]}},
            _row(401, 401, 401, 200, 200, 401, 401, 401),
        ),
        ("GET", f"/api/v1/invoices/{ref}", {}, INVOICE_READ),
        ("GET", f"/api/v1/invoices/{ref}/proof", {}, INVOICE_READ),
        (
            "POST",
            f"/api/v1/invoices/{ref}/void",
            {"json": {"red_invoice_id": "0x" + "05" * 32, "signature": "0x" + "11" * 65}},
            _row(401, 401, 401, 409, 404, 401, 401, 401),  # 409: paid invoices are never voided
        ),
        (
            "POST",
            "/api/v1/invoices/batches.csv",
            {"content": b""},
            _row(401, 401, 401, 422, 422, 401, 401, 401),
        ),
        ("GET", "/api/v1/invoices", {}, _row(401, 401, 401, 200, 200, 401, 401, 401)),
        ("GET", f"/api/v1/invoices/{ref}/qr", {}, INVOICE_READ),
        ("GET", f"/api/v1/invoices/{ref}/qr.png", {}, INVOICE_READ),
        ("GET", f"/api/v1/invoices/{ref}/qr.svg", {}, INVOICE_READ),
        ("GET", f"/api/v1/invoices/{ref}/print.pdf", {}, HOSPITAL_ONLY),
        ("GET", f"/api/v1/invoices/{ref}/lines/1/proof", {}, HOSPITAL_ONLY),
        ("POST", "/api/v1/verify", {"json": {"qr_text": "ZC1:nothing"}}, EVERYONE),
        ("POST", "/api/v1/verify/image", {"content": b"not an image"}, EVERYONE),
        ("GET", "/api/v1/trust-list", {}, EVERYONE),
        (
            "POST",
            "/api/v1/citizens/session",
            {"json": {"id_number": t.id_number, "password": DEMO_CITIZEN_PASSWORD + "x"}},
            _row(401, 401, 401, 401, 401, 401, 401, 401),  # public, and the password is wrong
        ),
        ("GET", "/api/v1/citizens/me/invoices", {}, CITIZENS),
        (
            "POST",
            "/api/v1/claims",
            {"json": {"invoice": ref, "payer": "basic"}},
            _row(401, 409, 404, 401, 401, 401, 401, 401),  # 409: claimed already; 404: not theirs
        ),
        (
            "POST",
            "/api/v1/claims/photo",
            {"content": b"not an image"},
            _row(401, 422, 422, 401, 401, 401, 401, 401),
        ),
        ("GET", "/api/v1/claims/mine", {}, CITIZENS),
        ("GET", f"/api/v1/claims/{claim}", {}, _row(401, 200, 404, 401, 401, 401, 401, 401)),
        ("GET", "/api/v1/review/queue", {}, STAFF_READ),
        (
            "POST",
            f"/api/v1/review/{claim}",
            {"json": {"approve": True}},
            _row(401, 401, 401, 401, 401, 409, 403, 409),  # 409: the claim is paid, not in review
        ),
        ("GET", "/api/v1/review/claims", {}, STAFF_READ),
        (
            "POST",
            "/api/v1/office/claims",
            {"json": office},
            _row(401, 401, 401, 401, 401, 409, 403, 409),
        ),
        (
            "POST",
            "/api/v1/office/claims/batch",
            {"json": {"claims": [office]}},
            _row(401, 401, 401, 401, 401, 200, 403, 200),
        ),
        ("GET", "/api/v1/audit/reconciliation", {}, AUDIT),
        ("GET", "/api/v1/audit/stats", {}, AUDIT),
        ("GET", "/api/v1/checkpoints", {}, EVERYONE),
        (
            "GET",
            "/api/v1/checkpoints/consistency",
            {"params": {"old": t.size, "new": t.size}},
            EVERYONE,
        ),
        ("GET", "/api/v1/ledger", {}, EVERYONE),
        (
            "POST",
            "/api/v1/admin/hospitals",
            {
                "json": {
                    "code": DATASET.invoices[BIG_INPATIENT].hospital,  # registered already
                    "name": "x",
                    "level": "primary",
                    "signer": "0x" + "11" * 20,
                    "valid_from": "2024-01-01T00:00:00Z",
                }
            },
            _row(401, 401, 401, 401, 401, 403, 403, 409),
        ),
        (
            "POST",
            "/api/v1/admin/staff",
            {"json": {"name": "audit-2", "role": "auditor"}},
            _row(401, 401, 401, 401, 401, 403, 403, 201),
        ),
        (
            "DELETE",
            "/api/v1/admin/staff/nobody",  # no such token: the authority gets 404, no one else
            {},
            _row(401, 401, 401, 401, 401, 403, 403, 404),
        ),
        # A hospital the service does not have: the authority gets 404, no one else, and no
        # key of the table's hospitals changes.
        (
            "POST",
            "/api/v1/admin/hospitals/NOPE/keys",
            {"json": {"signer": "0x" + "11" * 20, "valid_from": "2026-01-01T00:00:00Z"}},
            _row(401, 401, 401, 401, 401, 403, 403, 404),
        ),
        (
            "POST",
            "/api/v1/admin/hospitals/NOPE/keys/0/revocation",
            {"json": {"revoked_at": "2025-01-01T00:00:00Z"}},
            _row(401, 401, 401, 401, 401, 403, 403, 404),
        ),
        (
            "POST",
            "/api/v1/admin/hospitals/NOPE/api-key",
            {},
            _row(401, 401, 401, 401, 401, 403, 403, 404),
        ),
        (
            "DELETE",
            "/api/v1/admin/hospitals/NOPE/api-key",
            {},
            _row(401, 401, 401, 401, 401, 403, 403, 404),
        ),
    ]


def _template(path: str, t: Table) -> str:
    return (
        path.replace(t.ref, "{key}")
        .replace(t.claim_id, "{claim_id}")
        .replace("print.pdf", "print.{fmt}")
        .replace("lines/1/", "lines/{line_no}/")
        .replace("staff/nobody", "staff/{name}")
        .replace("hospitals/NOPE", "hospitals/{code}")
        .replace("keys/0/", "keys/{key_index}/")
    )


def test_every_endpoint_against_every_role(table: Table) -> None:
    cases = _cases(table)
    schema = table.demo.client.get("/openapi.json").json()
    operations = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    assert {(m, _template(p, table)) for m, p, _, _ in cases} == operations  # none forgotten
    wrong = []
    for method, path, kwargs, expected in cases:
        for role in ROLES:
            response = table.demo.client.request(
                method, path, headers=table.headers[role], **kwargs
            )
            if response.status_code != expected[role]:
                wrong.append(
                    f"{method} {path} as {role}: {response.status_code} {response.text[:120]}"
                )
    assert wrong == []


def test_a_payer_sees_and_decides_only_its_own_claims(table: Table) -> None:
    client, services = table.demo.client, table.demo.services
    commercial = _bearer(services.staff_tokens.issue("commercial-desk", "payer", "commercial"))
    basic = table.headers["payer"]
    found = client.get("/api/v1/review/claims", headers=commercial).json()
    assert found == []  # the only claim is basic insurance's
    assert [c["claim_id"] for c in client.get("/api/v1/review/claims", headers=basic).json()] == [
        table.claim_id
    ]
    asked = client.get("/api/v1/review/claims", params={"payer": "basic"}, headers=commercial)
    assert asked.status_code == 403 and asked.json()["error"]["code"] == "not_your_payer"
    decide = client.post(
        f"/api/v1/review/{table.claim_id}", json={"approve": True}, headers=commercial
    )
    assert decide.status_code == 404  # another payer's claim does not exist for it
    office = {"id_number": table.id_number, "payer": "basic", "invoice": table.ref}
    entered = client.post("/api/v1/office/claims", json=office, headers=commercial)
    assert entered.status_code == 403


def test_changes_are_in_an_append_only_audit_log(table: Table) -> None:
    services = table.demo.services
    with services.sessions() as db:
        entries = {(e.actor, e.action, e.subject) for e in db.query(models.AuditEntry)}
    assert ("admin:authority", "staff_token_issued", "basic-desk") in entries
    assert any(a.startswith("hospital:") and act == "invoices_stored" for a, act, _ in entries)
    for table_model in (models.AuditEntry, models.ClaimEvent):
        with services.sessions() as db, pytest.raises(DatabaseError, match="append-only"):
            db.execute(update(table_model).values(actor="someone else"))
            db.commit()
        with services.sessions() as db, pytest.raises(DatabaseError, match="append-only"):
            db.query(table_model).delete()
            db.commit()


def test_the_audit_log_is_append_only_on_both_databases(world: World) -> None:
    world.services.audit.log_change("admin:authority", "test", "subject", n=1)
    for attempt in (
        update(models.AuditEntry).values(actor="someone else"),
        delete(models.AuditEntry),
    ):
        with world.services.sessions() as db, pytest.raises(DatabaseError, match="append-only"):
            db.execute(attempt)
            db.commit()
    with world.services.sessions() as db:
        assert [(e.actor, e.detail) for e in db.query(models.AuditEntry)] == [
            ("admin:authority", {"n": 1})
        ]


def test_a_revoked_staff_token_stops_working_at_once(table: Table) -> None:
    client, services = table.demo.client, table.demo.services
    token = services.staff_tokens.issue("leaked-desk", "payer", "basic")
    assert client.get("/api/v1/review/queue", headers=_bearer(token)).status_code == 200
    admin = table.headers["admin"]
    assert client.delete("/api/v1/admin/staff/leaked-desk", headers=admin).status_code == 204
    refused = client.get("/api/v1/review/queue", headers=_bearer(token))
    assert refused.status_code == 401
    assert client.delete("/api/v1/admin/staff/leaked-desk", headers=admin).status_code == 404
    with services.sessions() as db:
        actions = [(e.actor, e.action, e.subject) for e in db.query(models.AuditEntry)]
    assert ("admin:authority", "staff_token_revoked", "leaked-desk") in actions


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [
        ("admin", "GET", "/api/v1/audit/stats"),
        ("payer", "GET", "/api/v1/review/queue"),
        ("citizen", "GET", "/api/v1/citizens/me/invoices"),
        ("citizen", "GET", "/api/v1/invoices/{ref}"),
        ("admin", "GET", "/api/v1/invoices/{ref}"),
    ],
)
def test_only_a_bearer_authorization_is_a_token(
    table: Table, role: str, method: str, path: str
) -> None:
    """``Authorization: Bearer <token>``, the scheme in any case (RFC 7235), one space; a bare
    token, another scheme or stray spaces are refused with 401 and a code that says so."""
    token = table.headers[role]["Authorization"].removeprefix("Bearer ")
    url = path.format(ref=table.ref)
    for scheme in ("Bearer", "bearer", "BEARER"):
        answer = table.demo.client.request(
            method, url, headers={"Authorization": f"{scheme} {token}"}
        )
        assert answer.status_code == 200, (scheme, answer.text)
    for header in (token, f"Token {token}", f"Bearer  {token}", f"Bearer{token}", "Bearer "):
        refused = table.demo.client.request(method, url, headers={"Authorization": header})
        assert refused.status_code == 401, (header, refused.text)
        assert refused.json()["error"]["code"] == "authorization_not_bearer", header

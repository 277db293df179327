"""Hostile input (issue 11): every value is checked to a range that every later step handles,
codes match whole strings, and a batch answers per item, storing its good items and nothing
of a bad one, whatever is wrong with it. The bad items are signed as sent (a hospital system
signs whatever it builds), so that only validation stands in their way."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from api.adapters.hospital_files import write_csv_batch
from api.db import models
from claims.errors import ClaimsError
from tests.api.conftest import World, patient
from verifier.canonical import SignedFields, sign_digest, signing_digest
from verifier.invoice import DetailLine, Invoice, ItemClass, VisitType

OFFICE = {"Authorization": "Bearer dev-admin-token"}
GOOD = (1, 3)  # the good items of each batch, around the bad item 2


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def signed_as_sent(world: World, item: dict[str, Any]) -> dict[str, Any]:
    """The item with the hospital's signature over its invoice exactly as it stands, built
    without the service's validation; the item unchanged when the invoice has no canonical
    form at all (then its signature does not matter: the service must refuse it anyway)."""
    inv = item["invoice"]
    try:
        invoice = Invoice(
            inv["bill_code"],
            inv["bill_number"],
            inv["check_code"],
            inv["hospital"],
            datetime.fromisoformat(inv["issued_at"]),
            VisitType(inv["visit_type"]),
            _day(inv.get("admitted_on")),
            _day(inv.get("discharged_on")),
            inv["department"],
            tuple(inv["diagnoses"]),
            bytes.fromhex(inv["patient_commitment"][2:]),
            inv["total"],
            inv["insurance_paid"],
            inv["patient_paid"],
            tuple(
                DetailLine(
                    ln["code"],
                    ln["name"],
                    ItemClass(ln["class"]),
                    ln["unit_price"],
                    ln["quantity_milli"],
                    ln["amount"],
                    ln["department"],
                    datetime.fromisoformat(ln["time"]),
                )
                for ln in inv["lines"]
            ),
        )
        digest = signing_digest(world.services.domain, SignedFields.of(invoice).record_hash())
    except Exception:  # no canonical form (eth-abi, cbor2 and the id each raise their own)
        return item
    return {**item, "signature": "0x" + sign_digest(world.hospital.key.key, digest).hex()}


def upload(world: World, items: list[Any]) -> dict[str, Any]:
    """A JSON upload with every non-ASCII character escaped, so that a lone surrogate
    (``\\ud800``) travels as JSON allows."""
    response = world.client.post(
        "/api/v1/invoices/batches",
        headers={"X-API-Key": world.hospital.api_key, "Content-Type": "application/json"},
        content=json.dumps({"items": items}).encode("ascii"),
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def count(world: World, model: Any) -> int:
    with world.services.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def reference(n: int) -> str:
    return f"33082025-{n:010d}"


def assert_only_the_good_were_stored(world: World, result: dict[str, Any]) -> None:
    """The good items were accepted, stored (with their lines and outbox rows, and nothing
    else), anchored, and read back whole: status, QR, line proof."""
    good = [item for item in result["items"] if item["index"] != 1]
    assert [item["status"] for item in good] == ["accepted", "accepted"], good
    assert count(world, models.Invoice) == 2
    assert count(world, models.InvoiceLine) == 6
    assert count(world, models.Outbox) == 2
    world.services.anchoring.run_once(force=True)
    for item in good:
        key = item["invoice_id"]
        status = world.read(f"/api/v1/invoices/{key}")
        assert status.status_code == 200 and status.json()["status"] == "anchored"
        assert world.read(f"/api/v1/invoices/{key}/qr.svg").status_code == 200
        assert world.read(f"/api/v1/invoices/{key}/lines/3/proof").status_code == 200


def _line(key: str, value: Any, line: int = 0) -> Callable[[dict[str, Any]], None]:
    def change(item: dict[str, Any]) -> None:
        item["invoice"]["lines"][line][key] = value

    return change


def _invoice(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(item: dict[str, Any]) -> None:
        item["invoice"].update(changes)

    return change


def _patient(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(item: dict[str, Any]) -> None:
        item["patient"].update(changes)

    return change


def _huge_quantity(item: dict[str, Any]) -> None:
    # Free items add up whatever their quantity: only the range refuses 2**63 thousandths.
    line = item["invoice"]["lines"][0]
    line.update(unit_price=0, quantity_milli=2**63, amount=0)
    item["invoice"].update(total=3950, patient_paid=3950)


def _huge_price(item: dict[str, Any]) -> None:
    line = item["invoice"]["lines"][0]
    price = 2**62  # fits a BIGINT, but a few such amounts added up would not
    line.update(unit_price=price, quantity_milli=1000, amount=price)
    item["invoice"].update(total=price + 3950, patient_paid=price + 3950)


def _in_2099(item: dict[str, Any]) -> None:
    item["invoice"]["issued_at"] = "2099-03-01T10:00:00+08:00"
    for line in item["invoice"]["lines"]:
        line["time"] = "2099-03-01T09:00:00+08:00"


def _inpatient(admitted: str, discharged: str) -> Callable[[dict[str, Any]], None]:
    return _invoice(visit_type="inpatient", admitted_on=admitted, discharged_on=discharged)


def _soon(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat(timespec="seconds")


def _not_an_object(item: dict[str, Any]) -> None:
    item.clear()


BAD_ITEMS = [
    # (what, change, code, path, reason)
    (
        "line time in year 1 at +14:00",
        _line("time", "0001-01-01T00:00:00+14:00"),
        "invalid_invoice",
        "lines[0].time",
        "in the years 2000 to 2100",
    ),
    (
        "line time in year 9999 at -23:59",
        _line("time", "9999-12-31T23:59:59-23:59"),
        "invalid_invoice",
        "lines[0].time",
        "offsets are whole minutes within ±14:00",
    ),
    (
        "offset with seconds",
        _line("time", "2025-03-01T09:30:00+08:00:30"),
        "invalid_invoice",
        "lines[0].time",
        "offsets are whole minutes",
    ),
    (
        "fraction of a second",
        _line("time", "2025-03-01T09:30:00.5+08:00"),
        "invalid_invoice",
        "lines[0].time",
        "whole seconds",
    ),
    (
        "issued before 1970",
        _invoice(issued_at="1969-12-31T23:59:59+08:00"),
        "invalid_invoice",
        "issued_at",
        "in the years 2000 to 2100",
    ),
    (
        "issued in year 9999",
        _invoice(issued_at="9999-12-31T23:59:59+00:00"),
        "invalid_invoice",
        "issued_at",
        "in the years 2000 to 2100",
    ),
    (
        "admitted before 1970",
        _inpatient("1969-12-31", "2025-03-01"),
        "invalid_invoice",
        "admitted_on",
        "in the years 2000 to 2100",
    ),
    (
        "discharged in year 9999",
        _inpatient("2025-02-25", "9999-12-31"),
        "invalid_invoice",
        "discharged_on",
        "in the years 2000 to 2100",
    ),
    ("issued in 2099", _in_2099, "invalid_invoice", "issued_at", "is in the future"),
    (
        "a line an hour ahead of arrival",
        _line("time", _soon(60)),
        "invalid_invoice",
        "lines[0].time",
        "is in the future",
    ),
    (
        "quantity 2**63",
        _huge_quantity,
        "invalid_invoice",
        "lines[0].quantity_milli",
        "must be at most",
    ),
    ("price 2**62 fen", _huge_price, "invalid_invoice", "lines[0].unit_price", "must be at most"),
    (
        "lone surrogate in a line name",
        _line("name", "阿莫西林\ud800"),
        "invalid_invoice",
        "lines[0].name",
        "not valid Unicode",
    ),
    (
        "lone surrogate in the department",
        _invoice(department="\udcff内科"),
        "invalid_invoice",
        "department",
        "not valid Unicode",
    ),
    (
        "control character in a line name",
        _line("name", "阿莫西林\x00胶囊"),
        "invalid_invoice",
        "lines[0].name",
        "control character U+0000",
    ),
    (
        "lone surrogate in the patient name",
        _patient(name="患者\ud800"),
        "invalid_patient",
        "patient.name",
        "not valid Unicode",
    ),
    (
        "lone surrogate in the patient ID number",
        _patient(id_number="33080219900101002\udcff"),
        "invalid_patient",
        "patient.id_number",
        "not valid Unicode",
    ),
    (
        "an ID number in the patient name",
        _patient(name="患者330802199001010022"),
        "invalid_patient",
        "patient.name",
        "contains an ID number",
    ),
    (
        "bill number with a trailing newline",
        _invoice(bill_number="0000000002\n"),
        "invalid_invoice",
        "bill_number",
        "control character U+000A",
    ),
    (
        "check code with a trailing newline",
        _invoice(check_code="c00002\n"),
        "invalid_invoice",
        "check_code",
        "control character U+000A",
    ),
    (
        "catalogue code with a trailing newline",
        _line("code", "XJ01CAA040A001\n"),
        "invalid_invoice",
        "lines[0].code",
        "control character U+000A",
    ),
    (
        "diagnosis with a trailing newline",
        _invoice(diagnoses=["J06.9\n"]),
        "invalid_invoice",
        "diagnoses[0]",
        "is not an ICD-10 code",
    ),
    (
        "too many diagnoses",
        _invoice(diagnoses=["J06.9"] * 51),
        "invalid_invoice",
        "diagnoses",
        "at most 50",
    ),
    ("an item that is not an object", _not_an_object, "invalid_item", "$", "each item is"),
]


@pytest.mark.parametrize(
    ("change", "code", "path", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_ITEMS],
)
def test_a_bad_item_is_refused_alone_and_the_good_are_stored(
    world: World,
    change: Callable[[dict[str, Any]], None],
    code: str,
    path: str,
    reason: str,
) -> None:
    bad: Any = world.item(2)
    change(bad)
    bad = signed_as_sent(world, bad) if bad else "not an item"
    result = upload(world, [world.item(1), bad, world.item(3)])
    refused = result["items"][1]
    assert (refused["status"], refused["code"]) == ("refused", code), refused
    assert any(p["path"] == path and reason in p["reason"] for p in refused["problems"]), refused
    assert (result["accepted"], result["refused"]) == (2, 1)
    assert_only_the_good_were_stored(world, result)


def test_worker_processes_check_the_same_ranges(world: World, monkeypatch: Any) -> None:
    """Large batches are validated in worker processes: the time of arrival goes with them."""
    from api.flows import upload as ingest

    monkeypatch.setattr(ingest, "PARALLEL_THRESHOLD", 2)
    monkeypatch.setattr(ingest, "CHUNK", 2)
    if world.services.ingest._pool.size < 2:
        pytest.skip("one core: batches are validated in this process")
    late, odd = world.item(2), world.item(4)
    _in_2099(late)
    odd["invoice"]["department"] = "\ud800"
    items = [world.item(1), signed_as_sent(world, late), world.item(3), signed_as_sent(world, odd)]
    result = upload(world, items)
    assert [i["status"] for i in result["items"]] == ["accepted", "refused", "accepted", "refused"]
    assert "is in the future" in result["items"][1]["problems"][0]["reason"]
    assert result["items"][3]["problems"][0]["path"] == "department"


def test_the_arrival_allows_a_small_clock_skew(world: World) -> None:
    """A hospital clock a little ahead is not refused; the window is MAX_CLOCK_SKEW (5 min)."""
    ahead = world.item(1, issued_at=_soon(4))
    result = upload(world, [ahead])
    assert result["items"][0]["status"] == "accepted", result


def test_a_refusal_shows_a_malformed_identity_safely(world: World) -> None:
    """A bill number that is not text names its invoice escaped (the answer is valid JSON and
    UTF-8), and a very long one is cut short."""
    surrogate, long = world.item(2), world.item(4)
    surrogate["invoice"]["bill_number"] = "00000\udcff0002"
    long["invoice"]["bill_number"] = "9" * 100_000
    result = upload(world, [world.item(1), surrogate, long])
    assert [i["status"] for i in result["items"]] == ["accepted", "refused", "refused"]
    assert "\\udcff" in result["items"][1]["reference"]
    assert len(result["items"][2]["reference"]) < 80
    assert result["items"][2]["problems"][0]["path"] == "bill_number"


def test_values_at_the_edges_are_stored_and_read_back_as_signed(world: World) -> None:
    """The largest amount and quantity and the extreme UTC offsets: accepted, stored, read back
    equal to what was parsed, printed, and each line proven."""
    from api.read.invoices import load_invoice
    from verifier.invoice import MAX_FEN, MAX_QUANTITY_MILLI, parse_invoice

    item = world.item(1)
    invoice = item["invoice"]
    price = MAX_FEN // (MAX_QUANTITY_MILLI // 1000)
    invoice["lines"][0].update(unit_price=price, quantity_milli=MAX_QUANTITY_MILLI, amount=MAX_FEN)
    invoice["lines"] = invoice["lines"][:1] + [
        {**invoice["lines"][1], "unit_price": 0, "amount": 0, "time": when}
        for when in ("2025-03-01T15:00:00+14:00", "2025-02-28T11:00:00-14:00")
    ]
    invoice.update(total=MAX_FEN, insurance_paid=MAX_FEN - 1, patient_paid=1)
    invoice["issued_at"] = "2025-03-01T07:45:00+05:45"
    result = upload(world, [signed_as_sent(world, item)])
    assert result["items"][0]["status"] == "accepted", result
    world.services.anchoring.run_once(force=True)
    key = result["items"][0]["invoice_id"]
    with world.services.sessions() as db:
        row = db.get(models.Invoice, bytes.fromhex(key[2:]))
        assert row is not None
        assert load_invoice(db, row) == parse_invoice(invoice)
    assert world.read(f"/api/v1/invoices/{key}/print.png").status_code == 200
    for line_no in (1, 2, 3):
        assert world.read(f"/api/v1/invoices/{key}/lines/{line_no}/proof").status_code == 200


# -- CSV ----------------------------------------------------------------------------------------


def csv_upload(world: World, body: bytes) -> Any:
    return world.client.post(
        "/api/v1/invoices/batches.csv",
        headers={"X-API-Key": world.hospital.api_key, "Content-Type": "text/csv"},
        content=body,
    )


@pytest.mark.parametrize(
    ("marked", "code", "path"),
    [
        (("invoice", "lines", 0, "name"), "invalid_invoice", "lines[0].name"),
        (("invoice", "department"), "invalid_invoice", "department"),
        (("patient", "name"), "invalid_patient", "patient.name"),
    ],
    ids=["line name", "department", "patient name"],
)
def test_invalid_utf8_in_a_csv_refuses_its_invoice_only(
    world: World, marked: tuple[Any, ...], code: str, path: str
) -> None:
    items = [world.item(n) for n in (1, 2, 3)]
    target: Any = items[1]
    for key in marked[:-1]:
        target = target[key]
    target[marked[-1]] = "MARK"
    body = write_csv_batch(items).encode("utf-8").replace(b"MARK", b"MA\xff\xfeRK")
    response = csv_upload(world, body)
    assert response.status_code == 200, response.text
    result = response.json()
    refused = result["items"][1]
    assert (refused["status"], refused["code"]) == ("refused", code), refused
    assert refused["problems"][0]["path"] == path
    assert "not valid Unicode" in refused["problems"][0]["reason"]
    assert_only_the_good_were_stored(world, result)


def test_a_csv_field_over_the_csv_limit_is_a_clear_error(world: World) -> None:
    items = [world.item(n) for n in (1, 2, 3)]
    items[1]["invoice"]["lines"][0]["name"] = "x" * 140_000  # the limit is 131,072 characters
    response = csv_upload(world, write_csv_batch(items).encode("utf-8"))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_csv"
    assert "row 5" in error["message"] and "field larger than field limit" in error["message"]
    assert count(world, models.Invoice) == count(world, models.InvoiceLine) == 0


# -- claims -------------------------------------------------------------------------------------


def test_an_office_batch_answers_each_claim_even_an_unprocessable_one(world: World) -> None:
    """An invoice stored unreadable (by the code before these checks: a line time in year 1)
    fails its own claim only; a malformed claim is refused alone with its field; the other
    citizens' claims of the batch are stored."""
    result = upload(world, [world.item(n) for n in (1, 2, 3)])
    assert result["accepted"] == 3
    world.services.anchoring.run_once(force=True)
    for n in (1, 2, 3):
        world.services.citizens.enrol(
            patient(n)["id_number"], f"患者{n}", "F", date(1990, 1, 1), "pw"
        )
    unreadable = result["items"][1]["invoice_id"]
    with world.services.sessions() as db:
        db.execute(
            update(models.InvoiceLine)
            .where(models.InvoiceLine.invoice_id == bytes.fromhex(unreadable[2:]))
            .values(at_epoch=-62135596800 - 14 * 3600)  # 0001-01-01T00:00:00+14:00
        )
        db.commit()
    claims: list[Any] = [
        {"id_number": patient(n)["id_number"], "invoice": result["items"][n - 1]["invoice_id"]}
        for n in (1, 2, 3)
    ]
    claims.append({"id_number": patient(1)["id_number"] + "\n", "invoice": reference(1)})
    claims.append("not a claim")
    response = world.client.post(
        "/api/v1/office/claims/batch", headers=OFFICE, json={"claims": claims}
    )
    assert response.status_code == 200, response.text
    out = response.json()
    assert [o["status"] for o in out] == [201, 500, 201, 422, 422]
    assert out[1]["error"]["code"] == "claim_failed"
    assert out[3]["error"]["code"] == "invalid_request"
    assert [p["path"] for p in out[3]["error"]["problems"]] == ["id_number"]
    assert patient(1)["id_number"] not in json.dumps(out[3])  # personal data not echoed
    with world.services.sessions() as db:
        stored = {c.id for c in db.scalars(select(models.Claim))}
        assert stored == {out[0]["claim_id"], out[2]["claim_id"]}
        assert not list(
            db.scalars(select(models.ClaimEvent).where(models.ClaimEvent.claim_id.not_in(stored)))
        )


def test_a_stored_name_holding_an_id_number_is_a_clear_refusal_at_print(world: World) -> None:
    """Such a name is refused at upload now; one stored before is refused when printed, with a
    code, not a 500 (and the number is not in the answer)."""
    result = upload(world, [world.item(1)])
    invoice_id = bytes.fromhex(result["items"][0]["invoice_id"][2:])
    personal = world.services.ingest.personal
    with world.services.sessions() as db:
        db.execute(
            update(models.Invoice)
            .where(models.Invoice.invoice_id == invoice_id)
            .values(
                patient_name_enc=personal.encrypt_text("患者330802199001010011", "patient_name")
            )
        )
        db.commit()
    response = world.read(f"/api/v1/invoices/0x{invoice_id.hex()}/print.png")
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "patient_name_unprintable"
    assert "330802199001010011" not in response.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/office/claims",
            {"id_number": "33080219900101001X\n", "invoice": "x"},
            "id_number",
        ),
        (
            "/api/v1/citizens/session",
            {"id_number": "33080219900101001X\n", "password": "p"},
            "id_number",
        ),
        (
            "/api/v1/office/claims",
            {"id_number": "33080219900101001X", "invoice": "x", "payer": "basic\n"},
            "payer",
        ),
    ],
)
def test_pydantic_patterns_refuse_a_trailing_newline(
    world: World, path: str, body: dict[str, Any], field: str
) -> None:
    """pydantic-core's regex engine (Rust's) anchors ``$`` at the very end, unlike ``re``: the
    ``^...$`` patterns of the request models refuse a trailing newline."""
    headers = {**OFFICE} if path.startswith("/api/v1/office") else {}
    response = world.client.post(path, headers=headers, json=copy.deepcopy(body))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [p["path"] for p in error["problems"]] == [f"body.{field}"]


# -- whole-string checks elsewhere ------------------------------------------------------------


def _policy_with_payer(payer: str) -> Any:
    from claims.policy import POLICY_DIR, policy_from_toml

    text = (POLICY_DIR / "basic.toml").read_text(encoding="utf-8")
    return policy_from_toml(text.replace('payer = "basic"', f"payer = {json.dumps(payer)}"))


def _key_path(name: str) -> Any:
    from pathlib import Path

    from chain.keys import KeyStore

    return KeyStore(Path("/nonexistent"), "password").path(name)


def _hospital_code(code: str) -> Any:
    from chain.model import hospital_code_bytes

    return hospital_code_bytes(code)


@pytest.mark.parametrize(
    ("check", "good"),
    [(_policy_with_payer, "basic"), (_key_path, "sequencer"), (_hospital_code, "H33080200001")],
    ids=["policy payer", "key name", "hospital code"],
)
def test_whole_string_checks_refuse_a_trailing_newline(check: Any, good: str) -> None:
    check(good)
    with pytest.raises((ValueError, ClaimsError), match=r"payer|key name|hospital code"):
        check(good + "\n")


def test_an_id_number_with_a_trailing_newline_is_not_well_formed() -> None:
    from api.demo.data import valid_id_number

    good = "11010519491231002X"
    assert valid_id_number(good) and not valid_id_number(good + "\n")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # More digits than Python turns into an int (4,300): the framework cannot parse it.
        ("/api/v1/verify", b'{"qr_text": "x", "amount_fen": ' + b"9" * 5000 + b"}"),
        ("/api/v1/invoices/batches", b'{"items": [{"total": ' + b"9" * 5000 + b"}]}"),
        ("/api/v1/verify", b'{"qr_text": '),  # cut short
    ],
    ids=["huge_integer_verify", "huge_integer_upload", "truncated"],
)
def test_a_body_the_framework_cannot_parse_is_refused_in_the_house_format(
    world: World, path: str, body: bytes
) -> None:
    response = world.client.post(
        path,
        headers={"X-API-Key": world.hospital.api_key, "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code in (400, 422), response.text
    error = response.json()["error"]
    assert error["code"] in ("malformed_body", "invalid_request") and error["message"]
    assert count(world, models.Invoice) == 0

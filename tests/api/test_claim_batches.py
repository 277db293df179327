"""Claims in batches (the counter's batch endpoint, ``ClaimFlow.submit_many``): each claim is
checked exactly as one by one, in order, and the batch is stored in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.db import models
from api.flows import claim as claim_flow
from api.flows.claim import ClaimRequest
from api.refusals import Refused
from tests.api.test_claims import BIG_INPATIENT, DATASET, OUTPATIENT, Demo, demo, demo_world

__all__ = ["demo"]  # the fixture, shared with test_claims

OFFICE = {"Authorization": "Bearer dev-admin-token"}


def _reference(index: int) -> str:
    invoice = DATASET.invoices[index]
    return f"{invoice.bill_code}-{invoice.bill_number}"


def _item(index: int, payer: str = "basic", **source: str) -> dict[str, Any]:
    return {
        "id_number": DATASET.citizen_of(index).id_number,
        "payer": payer,
        **(source or {"invoice": _reference(index)}),
    }


def _someone_else(index: int) -> int:
    mine = DATASET.citizen_of(index).id_number
    return next(i for i in range(len(DATASET.invoices)) if DATASET.citizen_of(i).id_number != mine)


def test_a_batch_answers_each_claim_as_one_by_one(demo: Demo) -> None:
    text = demo.qr_text(OUTPATIENT)
    tampered = text[:-6] + ("A" if text[-6] != "A" else "B") + text[-5:]
    other = _someone_else(BIG_INPATIENT)
    items = [
        _item(BIG_INPATIENT),
        _item(BIG_INPATIENT),  # the same claim again, in the same batch
        _item(BIG_INPATIENT, "commercial"),  # basic has not paid yet
        {**_item(other), "invoice": _reference(BIG_INPATIENT)},  # not theirs
        {**_item(BIG_INPATIENT), "id_number": "110101199001010000"},  # nobody enrolled
        _item(OUTPATIENT, qr_text=tampered),
        _item(OUTPATIENT, qr_text=text),
        _item(BIG_INPATIENT, "nobody"),
    ]
    response = demo.client.post(
        "/api/v1/office/claims/batch", headers=OFFICE, json={"claims": items}
    )
    assert response.status_code == 200, response.text
    out = response.json()
    assert [o["index"] for o in out] == list(range(len(items)))
    assert [o["status"] for o in out] == [201, 409, 409, 404, 404, 422, 201, 422]
    codes = [o["error"]["code"] if o["error"] else o["state"] for o in out]
    assert codes == [
        "approved",
        "duplicate_claim",
        "basic_first",
        "invoice_not_found",
        "citizen_not_found",
        "verification_failed",
        codes[6],  # adjudicated on its own merits
        "unknown_payer",
    ]
    assert out[1]["error"]["first_claim"] == out[0]["claim_id"]
    assert out[2]["error"]["basic_claim"] == out[0]["claim_id"]
    # Exactly the accepted claims are stored, with their history; a claim seen again by
    # itself is a duplicate of the batch's.
    with demo.services.sessions() as db:
        stored = {c.id for c in db.query(models.Claim)}
        assert stored == {out[0]["claim_id"], out[6]["claim_id"]}
        assert db.query(models.ClaimEvent).filter_by(claim_id=out[0]["claim_id"]).count() == 4
    again = demo.claim(BIG_INPATIENT)
    assert again.status_code == 409 and again.json()["error"]["first_claim"] == out[0]["claim_id"]


def test_a_batch_is_refused_whole_when_malformed(demo: Demo) -> None:
    too_many = {"claims": [_item(OUTPATIENT)] * 1001}
    empty: dict[str, Any] = {"claims": []}
    for body in (too_many, empty):
        response = demo.client.post("/api/v1/office/claims/batch", headers=OFFICE, json=body)
        assert response.status_code == 422
    anonymous = demo.client.post("/api/v1/office/claims/batch", json={"claims": [_item(0)]})
    assert anonymous.status_code == 401
    with demo.services.sessions() as db:
        assert db.query(models.Claim).count() == 0


def _outcome(result: models.Claim | Refused) -> tuple[Any, ...]:
    if isinstance(result, Refused):
        return ("refused", result.code)
    return (
        result.state,
        result.reason_code,
        result.amount_fen,
        [h["code"] for h in result.audit_hits],
    )


def test_batches_decide_as_claims_one_by_one(tmp_path: Path, monkeypatch: Any) -> None:
    """Every invoice of the demo from basic insurance, then from the commercial insurer (after
    basic has paid), then again: the same decisions, amounts, audit hits and yearly totals
    whether claimed one by one, in batches of seven, or in batches of 40 decided half in a
    worker process (a real one: the threshold is lowered so that small batches use it)."""
    rounds = [
        [(i, "basic") for i in range(len(DATASET.invoices))],
        [(i, "commercial") for i in range(len(DATASET.invoices))],
        [(i, "basic") for i in range(0, len(DATASET.invoices), 3)],
    ]
    outcomes: dict[str, list[tuple[Any, ...]]] = {}
    totals: dict[str, dict[tuple[int, str, int], Any]] = {}
    for mode, size in (("one by one", 1), ("in batches", 7), ("on two cores", 40)):
        monkeypatch.setattr(claim_flow, "PARALLEL_THRESHOLD", 2 if mode == "on two cores" else 256)
        with demo_world(tmp_path / mode.replace(" ", "-")) as world:
            service = world.services.claim
            with world.services.sessions() as db:
                citizens = {c.id_number_hash: c for c in db.query(models.Citizen)}
                patients = {r.invoice_id: r.patient_id_hash for r in db.query(models.Invoice)}
            results: list[tuple[Any, ...]] = []
            for claims in rounds:
                requests = [
                    ClaimRequest(
                        citizens[patients[world.invoice_id(i)]], _reference(i), payer, "office"
                    )
                    for i, payer in claims
                ]
                for lo in range(0, len(requests), size):
                    if size == 1:
                        r = requests[lo]
                        try:
                            claim = service.submit(r.citizen, r.source, r.payer, r.channel)
                        except Refused as exc:
                            results.append(_outcome(exc))
                        else:
                            results.append(_outcome(claim))
                    else:
                        results.extend(map(_outcome, service.submit_many(requests[lo : lo + size])))
                world.services.settle.run()
            assert service._pool.started == (mode == "on two cores")
            outcomes[mode] = results
            with world.services.sessions() as db:
                totals[mode] = {
                    (a.citizen_id, a.payer, a.year): a.pools
                    for a in db.query(models.PayerAccumulator)
                }
    assert outcomes["in batches"] == outcomes["one by one"]
    assert outcomes["on two cores"] == outcomes["one by one"]
    assert totals["in batches"] == totals["one by one"] == totals["on two cores"]
    states = {o[0] for o in outcomes["one by one"]}
    assert {"approved", "rejected", "refused"} <= states  # the comparison covers each outcome
    assert ("refused", "duplicate_claim") in outcomes["one by one"]

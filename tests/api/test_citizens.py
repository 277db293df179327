"""Citizens sign in and see exactly the invoices issued to them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from api.db import models
from tests.api.conftest import World, patient


def sign_in(world: World, id_number: str, password: str) -> tuple[int, dict[str, object]]:
    response = world.client.post(
        "/api/v1/citizens/session", json={"id_number": id_number, "password": password}
    )
    return response.status_code, response.json()


def test_sign_in_and_my_invoices(world: World) -> None:
    mine, theirs = patient(1), patient(2)
    world.services.citizens.enrol(mine["id_number"], mine["name"], "F", date(1990, 1, 1), "pw-1")
    world.services.citizens.enrol(
        theirs["id_number"], theirs["name"], "M", date(1980, 1, 1), "pw-2"
    )
    world.upload([world.item(1), world.item(2), world.item(3)])
    status, session = sign_in(world, mine["id_number"], "pw-1")
    assert status == 200 and session["name"] == mine["name"]
    headers = {"Authorization": f"Bearer {session['token']}"}
    invoices = world.client.get("/api/v1/citizens/me/invoices", headers=headers).json()
    assert [i["reference"] for i in invoices] == ["33082025-0000000001"]
    assert invoices[0]["hospital_name"] == "衢州市人民医院" and invoices[0]["total"] == 6450
    # The ID number matches whatever its case (the check character X).
    lower = mine["id_number"].lower()
    assert sign_in(world, lower, "pw-1")[0] == 200


def test_wrong_password_and_unknown_citizen_get_the_same_answer(world: World) -> None:
    mine = patient(1)
    world.services.citizens.enrol(mine["id_number"], mine["name"], "F", date(1990, 1, 1), "pw-1")
    wrong = sign_in(world, mine["id_number"], "nope")
    unknown = sign_in(world, "110101199003074578", "pw-1")
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1]


def test_my_invoices_needs_a_live_token(world: World) -> None:
    assert world.client.get("/api/v1/citizens/me/invoices").status_code == 401
    bad = world.client.get(
        "/api/v1/citizens/me/invoices", headers={"Authorization": "Bearer zcc_forged"}
    )
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "not_signed_in"
    mine = patient(1)
    world.services.citizens.enrol(mine["id_number"], mine["name"], "F", date(1990, 1, 1), "pw-1")
    token = sign_in(world, mine["id_number"], "pw-1")[1]["token"]
    with world.services.sessions() as db:
        db.execute(
            update(models.CitizenToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.commit()
    expired = world.client.get(
        "/api/v1/citizens/me/invoices", headers={"Authorization": f"Bearer {token}"}
    )
    assert expired.status_code == 401


def test_citizen_data_is_stored_only_hashed_and_encrypted(world: World) -> None:
    from sqlalchemy import text

    mine = patient(1)
    world.services.citizens.enrol(mine["id_number"], mine["name"], "F", date(1990, 1, 1), "pw-1")
    with world.services.engine.connect() as connection:
        dump = repr([tuple(r) for r in connection.execute(text("SELECT * FROM citizens"))])
    assert mine["id_number"] not in dump and mine["name"] not in dump and "pw-1" not in dump

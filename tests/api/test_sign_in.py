"""Sign-in tells nobody who is enrolled and cannot be used to guess passwords at speed: limited
per client and per ID number (429 ``sign_in_rate_limited`` with ``Retry-After``), and the same
work (one scrypt) whether or not the ID number is enrolled."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import Services, open_services
from api.settings import Settings
from tests.api.conftest import patient

SESSION = "/api/v1/citizens/session"
UNKNOWN = "110101199003074578"


@dataclass
class Desk:
    services: Services
    client: Callable[[str], TestClient]  # a client at this address

    def sign_in(self, id_number: str, password: str, address: str = "10.0.0.1") -> Any:
        return self.client(address).post(
            SESSION, json={"id_number": id_number, "password": password}
        )


@contextmanager
def _desk(tmp_path: Path, database_url: str | None, **limits: int) -> Iterator[Desk]:
    settings = Settings(
        data_dir=tmp_path, anchor_interval_ms=0, database_url=database_url, **limits
    )
    services = open_services(settings)
    app = create_app(settings, services, background=False)
    clients: dict[str, TestClient] = {}

    def client(address: str) -> TestClient:
        if address not in clients:
            clients[address] = TestClient(app, client=(address, 50000)).__enter__()
        return clients[address]

    try:
        yield Desk(services, client)
    finally:
        for c in clients.values():
            c.__exit__(None, None, None)


@pytest.fixture
def enrolled() -> dict[str, str]:
    return patient(1)


def _enrol(desk: Desk, who: dict[str, str]) -> None:
    desk.services.citizens.enrol(who["id_number"], who["name"], "F", date(1990, 1, 1), "pw-1")


def test_sign_in_is_limited_per_id_number(
    tmp_path: Path, database_url: str | None, enrolled: dict[str, str]
) -> None:
    with _desk(tmp_path, database_url, sign_in_account_per_hour=3) as desk:
        _enrol(desk, enrolled)
        for id_number in (enrolled["id_number"], UNKNOWN):  # enrolled or not, the same limit
            # From three addresses: the ID number's limit holds whoever guesses.
            answers = [desk.sign_in(id_number, "guess", f"10.0.0.{n}") for n in (1, 2, 3, 4)]
            assert [a.status_code for a in answers] == [401, 401, 401, 429], id_number
            refused = answers[-1]
            assert refused.json()["error"]["code"] == "sign_in_rate_limited"
            assert int(refused.headers["Retry-After"]) >= 1
            assert refused.json()["error"]["retry_after_seconds"] > 0
        # Even the right password waits; another citizen does not.
        assert desk.sign_in(enrolled["id_number"], "pw-1").status_code == 429
        other = patient(2)
        _enrol(desk, other)
        assert desk.sign_in(other["id_number"], "pw-1").status_code == 200


def test_sign_in_is_limited_per_client(
    tmp_path: Path, database_url: str | None, enrolled: dict[str, str]
) -> None:
    limits = {"sign_in_per_minute": 1, "sign_in_burst": 5, "sign_in_account_per_hour": 1}
    with _desk(tmp_path, database_url, **limits) as desk:
        _enrol(desk, enrolled)
        # Spraying: one guess at each of many ID numbers, from one address.
        numbers = [patient(n)["id_number"] for n in range(2, 8)]
        statuses = [desk.sign_in(number, "guess").status_code for number in numbers]
        assert statuses == [401] * 5 + [429]
        assert desk.sign_in(enrolled["id_number"], "pw-1").status_code == 429
        # Another address is not held back, and the throttled attempt took nothing from the ID
        # number's single attempt.
        assert desk.sign_in(enrolled["id_number"], "pw-1", "10.0.0.9").status_code == 200


def test_enrolled_and_unknown_id_numbers_take_the_same_path(
    tmp_path: Path,
    database_url: str | None,
    enrolled: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The password KDF runs once for a wrong password and once for an unknown ID number (a
    lookup that skipped it answered in 4 ms where the real check took 36 ms), and not at all
    for a throttled attempt."""
    runs: list[int] = []
    real_scrypt = hashlib.scrypt

    def counted(password: bytes, **kwargs: Any) -> bytes:
        runs.append(1)
        return real_scrypt(password, **kwargs)

    with _desk(tmp_path, database_url, sign_in_account_per_hour=2) as desk:
        _enrol(desk, enrolled)
        monkeypatch.setattr(hashlib, "scrypt", counted)
        wrong = desk.sign_in(enrolled["id_number"], "nope")
        assert len(runs) == 1
        unknown = desk.sign_in(UNKNOWN, "nope")
        assert len(runs) == 2
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        right = desk.sign_in(enrolled["id_number"], "pw-1")
        assert right.status_code == 200 and len(runs) == 3
        throttled = desk.sign_in(enrolled["id_number"], "pw-1")
        assert throttled.status_code == 429 and len(runs) == 3

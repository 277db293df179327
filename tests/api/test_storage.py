"""Storage guarantees: migrations build exactly the models' schema; personal data is never
stored in clear; the registry cache judges keys as the chain does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from api.adapters.personal_data import PersonalData, PersonalDataError
from api.db import models
from api.db.models import Base
from tests.api.conftest import World, patient


def test_migrations_build_the_models_schema(world: World) -> None:
    with world.services.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_personal_data_is_not_stored_in_clear(world: World) -> None:
    pat = patient(7)
    item = world.item(7)
    assert item["patient"] == pat
    world.upload([item])
    with world.services.engine.connect() as connection:
        dump = repr([tuple(r) for r in connection.execute(text("SELECT * FROM invoices"))])
    assert pat["id_number"] not in dump
    assert pat["name"] not in dump and pat["name"].encode().hex() not in dump
    assert pat["salt"] not in dump and bytes.fromhex(pat["salt"]).hex() not in dump
    personal = world.services.ingest.personal
    with world.services.sessions() as db:
        row = db.scalars(select(models.Invoice)).one()
    assert row.patient_id_hash == personal.id_number_hash(pat["id_number"].lower())
    assert row.patient_name_enc is not None
    assert personal.decrypt_text(row.patient_name_enc, "patient_name") == pat["name"]


def test_ciphertexts_are_bound_to_their_column_and_key() -> None:
    personal = PersonalData(b"k" * 32, b"\x01" * 32)
    blob = personal.encrypt_text("张三", "patient_name")
    assert personal.decrypt_text(blob, "patient_name") == "张三"
    with pytest.raises(PersonalDataError, match="patient_salt"):
        personal.decrypt_text(blob, "patient_salt")
    with pytest.raises(PersonalDataError):
        PersonalData(b"k" * 32, b"\x02" * 32).decrypt_text(blob, "patient_name")
    with pytest.raises(PersonalDataError):
        personal.decrypt_text(blob[:-1] + bytes([blob[-1] ^ 1]), "patient_name")


def test_registry_cache_names_why_a_key_is_not_valid(world: World) -> None:
    registry = world.services.registry
    at = datetime(2025, 3, 1, tzinfo=UTC)
    assert registry.judge(world.hospital.code, world.hospital.key.address, at) is None
    assert "not registered on the ledger" in (
        registry.judge("H404", world.hospital.key.address, at) or ""
    )
    assert "not a registered key" in (
        registry.judge(world.hospital.code, world.other.key.address, at) or ""
    )

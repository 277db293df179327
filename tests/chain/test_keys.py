"""Encrypted keystores of the service's accounts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from chain.errors import LedgerConfigError
from chain.keys import KeyStore


def test_keystore_round_trip_is_encrypted_and_private(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, "s3cret", kdf_iterations=2)
    account = store.create("sequencer")
    text = (tmp_path / "sequencer.json").read_text()
    assert account.key.hex().removeprefix("0x") not in text
    assert stat.S_IMODE((tmp_path / "sequencer.json").stat().st_mode) == 0o600
    assert KeyStore(tmp_path, "s3cret").load("sequencer").address == account.address


def test_wrong_password_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    KeyStore(tmp_path, "right", kdf_iterations=2).create("authority")
    with pytest.raises(LedgerConfigError, match="cannot unlock"):
        KeyStore(tmp_path, "wrong").load("authority")
    with pytest.raises(LedgerConfigError, match="no keystore"):
        KeyStore(tmp_path, "right").load("payer-basic")


def test_refuses_to_overwrite_empty_password_and_bad_names(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, "pw", kdf_iterations=2)
    store.create("authority")
    with pytest.raises(LedgerConfigError, match="exists"):
        store.create("authority")
    with pytest.raises(LedgerConfigError, match="empty"):
        KeyStore(tmp_path, "")
    with pytest.raises(ValueError, match="bad key name"):
        store.path("../escape")

"""Backend behaviour beyond the contract: block packing, lookups, transport failures, PoA."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from eth_account import Account

from chain import errors
from chain.factory import LedgerSession, open_ledger
from chain.ledger import Call, role_id
from chain.model import Role
from chain.rpc import RpcBackend
from tests.conftest import CHAIN_ID, make_config


def test_many_transactions_share_one_embedded_block(tmp_path: Path) -> None:
    session = open_ledger(make_config("embedded", tmp_path))
    try:
        before = session.backend.block_number()
        accounts = [Account.create().address for _ in range(50)]
        receipts = session.ledger.transact_many(
            [Call(session.authority, "grantRole", (role_id(Role.AUDITOR), a)) for a in accounts]
        )
        assert {r.block_number for r in receipts} == {before + 1}
        assert session.backend.block_number() == before + 1
        assert all(session.ledger.has_role(Role.AUDITOR, a) for a in accounts)
        # Receipts and logs are found by hash and by event through the index.
        for r in receipts[::10]:
            assert session.backend.receipt(r.tx_hash) == r
        assert len(session.ledger.events(before + 1, name="RoleGranted")) == 50
        assert session.backend.receipt(b"\x00" * 32) is None
    finally:
        session.close()


def test_calls_sent_together_are_checked_first_and_none_lands_if_one_reverts(
    session: LedgerSession,
) -> None:
    stranger = Account.create()
    good = Account.create().address
    with pytest.raises(errors.Unauthorized):
        session.ledger.transact_many(
            [
                Call(session.authority, "grantRole", (role_id(Role.AUDITOR), good)),
                Call(stranger, "grantRole", (role_id(Role.AUDITOR), stranger.address)),
            ]
        )
    assert not session.ledger.has_role(Role.AUDITOR, good)
    assert not session.ledger.has_role(Role.AUDITOR, stranger.address)
    # The nonce handed out to the unsent grant is reused: the next transaction goes through.
    session.ledger.grant_role(session.authority, Role.AUDITOR, good)
    assert session.ledger.has_role(Role.AUDITOR, good)


def test_renouncing_a_role_for_someone_else_is_refused(session: LedgerSession) -> None:
    with pytest.raises(errors.BadConfirmation):
        session.ledger.transact(
            session.sequencer, "renounceRole", role_id(Role.SEQUENCER), session.authority.address
        )
    assert session.ledger.has_role(Role.SEQUENCER, session.sequencer.address)


def test_unreachable_node_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(errors.LedgerUnavailable, match="cannot reach"):
            RpcBackend(f"http://127.0.0.1:{port}", timeout_seconds=2)


def test_chain_id_mismatch_is_refused(anvil_url: str) -> None:
    with pytest.raises(errors.LedgerUnavailable, match=f"chain {CHAIN_ID}, configuration says 1"):
        RpcBackend(anvil_url, expected_chain_id=1)


def test_poa_middleware_path_works_against_the_node(anvil_url: str, tmp_path: Path) -> None:
    # anvil's headers have short extra-data; the PoA middleware must leave them readable, as
    # it makes Besu QBFT's long extra-data readable.
    from dataclasses import replace

    config = replace(make_config("rpc", tmp_path, anvil_url), rpc_poa=True)
    session = open_ledger(config)
    try:
        assert session.backend.block_timestamp() > 0
        assert session.ledger.has_role(Role.SEQUENCER, session.sequencer.address)
    finally:
        session.close()


def test_attaching_to_an_address_without_our_contract_is_refused(
    anvil_url: str, tmp_path: Path
) -> None:
    from dataclasses import replace

    config = replace(make_config("rpc", tmp_path, anvil_url), contract_address="0x" + "42" * 20)
    with pytest.raises(errors.LedgerConfigError, match="no ZeroclaimLedger"):
        open_ledger(config)

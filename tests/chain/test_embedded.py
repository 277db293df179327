"""The embedded ledger survives a hard kill: same contract, checkpoints, claims and receipts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from chain.factory import open_ledger
from chain.model import Checkpoint
from tests.conftest import ROOT, make_config

WORKER = textwrap.dedent("""
    import hashlib, json, sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from eth_account import Account
    from chain import merkle
    from chain.model import Checkpoint, HospitalLevel, InvoiceLeaf, Settlement
    from chain.factory import open_ledger
    from tests.conftest import make_config

    s = open_ledger(make_config("embedded", Path(sys.argv[1])))
    key = Account.from_key(hashlib.sha256(b"hospital").digest())
    s.ledger.register_hospital(s.authority, "H1", HospitalLevel.SECONDARY, key.address,
                               datetime(2025, 1, 1, tzinfo=UTC))
    leaves = [InvoiceLeaf(hashlib.sha256(bytes([i])).digest(), b"\\x01" * 32, "H1", 500)
              for i in range(5)]
    entries = [leaf.entry() for leaf in leaves]
    s.ledger.anchor_checkpoint(s.sequencer, Checkpoint(5, merkle.root_hash(entries)))
    receipt = s.ledger.settle_batch(s.payers["basic"], 5, [
        Settlement(leaves[2], 2, tuple(merkle.inclusion_proof(entries, 2)), 120,
                   s.ledger.sign_record(key, leaves[2].record_hash))])
    print(json.dumps({"contract": s.ledger.address, "tx": receipt.tx_hash.hex(),
                      "root": merkle.root_hash(entries).hex(),
                      "block": s.backend.block_number(),
                      "invoice": leaves[2].invoice_id.hex()}), flush=True)
    time.sleep(60)  # the parent kills us here, without any chance to clean up
""")


def test_state_survives_sigkill_and_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(data)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "worker died"
        seen = json.loads(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    session = open_ledger(make_config("embedded", data))
    try:
        ledger = session.ledger
        assert ledger.address == seen["contract"]
        assert session.backend.block_number() == seen["block"]
        assert ledger.latest_checkpoint() == Checkpoint(5, bytes.fromhex(seen["root"]))
        assert ledger.claim_state(bytes.fromhex(seen["invoice"])).paid == 120
        hospital = ledger.hospital("H1")
        assert hospital is not None and hospital.level.name == "SECONDARY"
        receipt = session.backend.receipt(bytes.fromhex(seen["tx"]))
        assert receipt is not None and receipt.status
        decoded = [ledger.codec.decode_log(lg) for lg in receipt.logs]
        assert [e.name if e else None for e in decoded] == ["InvoiceSettled"]
        settled = ledger.events(name="InvoiceSettled")
        assert [e.args["amount"] for e in settled] == [120]
        # The restarted ledger keeps working: a new block on top of the old ones.
        ledger.anchor_checkpoint(session.sequencer, Checkpoint(6, b"\x03" * 32))
        assert session.backend.block_number() == seen["block"] + 1
    finally:
        session.close()


def test_reopen_reads_the_deployment_record_and_does_not_redeploy(tmp_path: Path) -> None:
    first = open_ledger(make_config("embedded", tmp_path))
    address = first.ledger.address
    first.close()
    record = json.loads((tmp_path / "deployment.json").read_text())
    assert record["contract"] == address and record["chain_id"] == 5700
    second = open_ledger(make_config("embedded", tmp_path))
    try:
        assert second.ledger.address == address
        assert second.authority.address == record["authority"]
    finally:
        second.close()

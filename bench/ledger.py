"""Ledger benchmark: a log of a million invoice leaves anchored on the embedded ledger.

Appends ``leaves`` synthetic invoice leaves through the sequencer at the default checkpoint
batch size (1,024) on the embedded py-evm ledger, then measures proof generation on the full
log and the gas of checkpoints and of settlement batches of 1, 100 and 500 invoices.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_account import Account

from chain import merkle
from chain.factory import LedgerConfig, open_ledger
from chain.log import MerkleLog
from chain.model import HospitalLevel, InvoiceLeaf
from chain.sequencer import Sequencer, SettlementRequest

DEFAULT_BATCH = 1024
HOSPITAL = "H33080200001"
HOSPITAL_KEY = Account.from_key(hashlib.sha256(b"bench hospital key").digest())


def _leaf(n: int) -> InvoiceLeaf:
    digest = hashlib.sha256(n.to_bytes(8, "big")).digest()
    return InvoiceLeaf(digest, hashlib.sha256(digest).digest(), HOSPITAL, 10_000 + n % 5000)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(leaves: int = 1_000_000) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = LedgerConfig(
            data_dir=Path(tmp), keystore_password="bench", kdf_iterations=2, payers=("basic",)
        )
        session = open_ledger(config)
        log = MerkleLog(Path(tmp) / "log.sqlite")
        sequencer = Sequencer(log, session.ledger, session.sequencer, batch_size=DEFAULT_BATCH)
        all_leaves = [_leaf(n) for n in range(leaves)]  # made beforehand, not timed

        start = time.perf_counter()
        checkpoints = sequencer.ingest(all_leaves)
        if sequencer.anchor() is not None:
            checkpoints.append(sequencer.anchored())  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        out["anchor_leaves"] = leaves
        out["anchor_seconds"] = round(elapsed, 2)
        out["anchor_leaves_per_second"] = round(leaves / elapsed)
        out["anchor_checkpoints"] = len(checkpoints)

        events = session.ledger.events(name="CheckpointAnchored")
        gas = [session.backend.receipt(e.tx_hash).gas_used for e in events[-50:]]  # type: ignore[union-attr]
        out["gas_per_checkpoint"] = round(statistics.median(gas))
        out["gas_per_anchored_invoice"] = round(statistics.median(gas) / DEFAULT_BATCH, 1)

        rng = random.Random(7)
        size = log.size
        incl, cons = [], []
        for _ in range(1000):
            i = rng.randrange(size)
            t = time.perf_counter()
            proof = log.inclusion_proof(i, size)
            incl.append(time.perf_counter() - t)
            merkle.verify_inclusion(
                merkle.leaf_hash(all_leaves[i].entry()), i, size, proof, log.root(size)
            )
            old = rng.randrange(1, size)
            t = time.perf_counter()
            log.consistency_proof(old, size)
            cons.append(time.perf_counter() - t)
        out["inclusion_proof_ms_median"] = round(statistics.median(incl) * 1000, 3)
        out["inclusion_proof_ms_p99"] = round(_percentile(incl, 0.99) * 1000, 3)
        out["consistency_proof_ms_median"] = round(statistics.median(cons) * 1000, 3)
        out["consistency_proof_ms_p99"] = round(_percentile(cons, 0.99) * 1000, 3)

        payer = session.payers["basic"]
        session.ledger.register_hospital(
            session.authority,
            HOSPITAL,
            HospitalLevel.TERTIARY,
            HOSPITAL_KEY.address,
            datetime(2025, 1, 1, tzinfo=UTC),
        )
        anchored = sequencer.anchored()
        assert anchored is not None
        chosen = rng.sample(range(size), 601)
        offset = 0
        for batch in (1, 100, 500):
            settlements = []
            for i in chosen[offset : offset + batch]:
                leaf = all_leaves[i]
                signature = session.ledger.sign_record(HOSPITAL_KEY, leaf.record_hash)
                settlements.append(
                    sequencer.prove(SettlementRequest("bench", leaf, 1, signature), anchored)
                )
            offset += batch
            t = time.perf_counter()
            receipt = session.ledger.settle_batch(payer, size, settlements)
            seconds = time.perf_counter() - t
            out[f"gas_settlement_tx_batch_{batch}"] = receipt.gas_used
            out[f"gas_per_settlement_batch_{batch}"] = round(receipt.gas_used / batch)
            out[f"settle_ms_per_invoice_batch_{batch}"] = round(seconds * 1000 / batch, 2)
        out["log_proof_depth"] = len(log.inclusion_proof(0, size))
        log.close()
        session.close()
    return out

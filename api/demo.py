"""Demo data for ``make run``: a registered demo hospital and a few anchored invoice leaves.

The invoice model and the Quzhou-shaped generator come with the invoice issue; until then the
demo log holds synthetic leaves so that checkpoints and proofs can be explored.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from api.services import Services
from chain.keys import KeyStore
from chain.model import HospitalLevel, InvoiceLeaf

DEMO_HOSPITAL = "H33080200001"


def seed_demo(services: Services, invoices: int = 200) -> int:
    """Registers the demo hospital and appends demo leaves on a fresh ledger; returns how many
    leaves were added (0 when the log already holds data)."""
    ledger = services.session.ledger
    session = services.session
    if ledger.hospital(DEMO_HOSPITAL) is None:
        # Demo mode keeps the demo hospital's key; a real hospital keeps its own.
        keys = KeyStore(
            session.config.data_dir / "demo-hospital-keys",
            session.config.keystore_password,
            session.config.kdf_iterations,
        )
        key = keys.load_or_create("h33080200001")
        ledger.register_hospital(
            session.authority,
            DEMO_HOSPITAL,
            HospitalLevel.TERTIARY,
            key.address,
            datetime(2024, 1, 1, tzinfo=UTC),
        )
    if services.log.size:
        return 0
    leaves = [
        InvoiceLeaf(
            invoice_id=hashlib.sha256(b"demo-invoice-%d" % n).digest(),
            record_hash=hashlib.sha256(b"demo-record-%d" % n).digest(),
            hospital=DEMO_HOSPITAL,
            total=1_000 + 37 * n,
        )
        for n in range(invoices)
    ]
    services.sequencer.ingest(leaves)
    services.sequencer.anchor()
    return len(leaves)

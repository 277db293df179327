"""Partial refunds on chain (issue 13, item 6): a red-letter reversal that names its
replacement bill carries what was paid over to it, so a reversal and a reissue never reset
what may still be paid. On both backends, with the events and the refusals."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from eth_account import Account

from chain import errors, merkle
from chain.factory import LedgerSession
from chain.model import Checkpoint, InvoiceLeaf, Replacement, carried_into
from tests.chain.test_contract import HOSPITAL, World, expect_revert
from verifier.canonical import invoice_id

CODE = "33082025"
RED = b"\x0e" * 32


def number(n: int) -> str:
    return f"{n:010d}"


def bill(n: int, total: int, hospital: str = HOSPITAL) -> InvoiceLeaf:
    """The leaf of bill CODE-n of ``hospital``, under its real invoice id."""
    return InvoiceLeaf(
        invoice_id=invoice_id(hospital, CODE, number(n)),
        record_hash=hashlib.sha256(f"record-{hospital}-{n}".encode()).digest(),
        hospital=hospital,
        total=total,
    )


class Bills(World):
    """A world of real bill ids whose log can grow after the reversal."""

    def issue(self, leaf: InvoiceLeaf) -> int:
        """Appends a bill to the log and anchors the new size; returns its leaf index."""
        self.leaves.append(leaf)
        self.entries.append(leaf.entry())
        self.size = len(self.leaves)
        self.ledger.anchor_checkpoint(
            self.seq, Checkpoint(self.size, merkle.root_hash(self.entries))
        )
        return self.size - 1

    def replace(
        self,
        i: int,
        replacement: int,
        signature: bytes | None = None,
        relayer: Any = None,
        hospital: str = HOSPITAL,
    ) -> Any:
        """Voids leaf ``i`` naming bill CODE-``replacement`` of its hospital, signed by the
        hospital's key for that replacement unless ``signature`` is given."""
        leaf = self.leaves[i]
        target = invoice_id(hospital, CODE, number(replacement))
        signature = signature or self.ledger.sign_replace(
            self.hospital_key, leaf.invoice_id, RED, target
        )
        return self.ledger.replace_invoice(
            relayer or self.seq,
            self.size,
            leaf,
            i,
            merkle.inclusion_proof(self.entries, i),
            RED,
            (CODE, number(replacement)),
            signature,
        )

    def pay(self, payer: Any, i: int, amount: int) -> None:
        self.ledger.settle_batch(payer, self.size, [self.settlement(i, amount)])

    def paid(self, n: int) -> int:
        return self.ledger.claim_state(invoice_id(HOSPITAL, CODE, number(n))).paid


@pytest.fixture
def bills(session: LedgerSession) -> Bills:
    # Bill 1: 100.00 yuan, bill 2: 50.00 yuan; the replacements are issued by the tests.
    return Bills(session, [bill(1, 10_000), bill(2, 5_000)])


def test_the_contract_derives_the_invoice_id_of_a_bill_as_the_verifier_does(
    bills: Bills,
) -> None:
    for hospital, code, num in (
        (HOSPITAL, CODE, "0000000001"),
        ("H2", "11060125", "9999999999"),
        ("A" * 32, "00000000", "0000000000"),
    ):
        assert bills.ledger.invoice_id_of(hospital, code, num) == invoice_id(hospital, code, num)
    for code, num in (("3308202X", "0000000001"), (CODE, "00000000 1"), ("3308202", "00001")):
        expect_revert(
            errors.InvalidBillReference,
            lambda c=code, n=num: bills.ledger.invoice_id_of(HOSPITAL, c, n),
            bill_code=code.encode().ljust(8, b"\0"),
        )


def test_reissue_and_claim_for_the_full_amount_is_refused(bills: Bills) -> None:
    """Bill 1 (100.00) was paid 60.00; the patient returns drugs worth 20.00: the hospital
    reverses bill 1 naming bill 3 (80.00), not yet issued. Bill 3 starts with the 60.00 paid,
    so only 20.00 more is payable on it, by any payer."""
    bills.pay(bills.basic, 0, 6_000)
    bills.block = bills.s.backend.block_number()
    bills.replace(0, 3)
    original, replacement = bills.leaves[0].invoice_id, invoice_id(HOSPITAL, CODE, number(3))
    voided, replaced = bills.new_events()
    assert voided.name == "InvoiceVoided" and voided.args["invoice_id"] == original
    assert (replaced.name, replaced.args) == (
        "InvoiceReplaced",
        {
            "invoice_id": original,
            "replacement_id": replacement,
            "carried": 6_000,
            "replacement_paid": 6_000,
        },
    )
    assert bills.ledger.replacements(bills.block + 1) == [
        Replacement(original, replacement, 6_000, 6_000, replaced.block_number, replaced.tx_hash)
    ]
    assert carried_into(bills.ledger.replacements()) == {replacement: 6_000}
    # The original keeps its payments and is voided; the replacement's record is not bound.
    assert bills.ledger.claim_state(original).paid == 6_000
    assert bills.ledger.claim_state(original).voided
    state = bills.ledger.claim_state(replacement)
    assert (state.paid, state.voided, state.record_tag) == (6_000, False, b"\0" * 19)
    assert state == bills.ledger.claim_state_by_call(replacement)
    expect_revert(errors.InvoiceVoided, lambda: bills.pay(bills.commercial, 0, 1))

    index = bills.issue(bill(3, 8_000))
    for payer in (bills.basic, bills.commercial):
        expect_revert(
            errors.PaidAboveTotal,
            lambda p=payer: bills.pay(p, index, 8_000),
            invoice_id=replacement,
            paid=6_000,
            amount=8_000,
            total=8_000,
        )
    expect_revert(errors.PaidAboveTotal, lambda: bills.pay(bills.commercial, index, 2_001))
    bills.pay(bills.commercial, index, 2_000)
    assert bills.paid(3) == 8_000
    expect_revert(errors.PaidAboveTotal, lambda: bills.pay(bills.basic, index, 1), paid=8_000)
    # Its first settlement bound its record: another leaf under its id is never paid.
    forged = InvoiceLeaf(replacement, b"\x66" * 32, HOSPITAL, 100_000)
    index = bills.issue(forged)
    expect_revert(errors.RecordMismatch, lambda: bills.pay(bills.basic, index, 1))


def test_a_replacement_anchored_and_paid_before_the_reversal_adds_both(bills: Bills) -> None:
    index = bills.issue(bill(3, 8_000))
    bills.pay(bills.basic, 0, 6_000)
    bills.pay(bills.commercial, index, 1_000)
    bills.block = bills.s.backend.block_number()
    bills.replace(0, 3)
    (replaced,) = bills.new_events("InvoiceReplaced")
    assert (replaced.args["carried"], replaced.args["replacement_paid"]) == (6_000, 7_000)
    expect_revert(errors.PaidAboveTotal, lambda: bills.pay(bills.basic, index, 1_001))
    bills.pay(bills.basic, index, 1_000)
    assert bills.paid(3) == 8_000


def test_reversals_chain_and_carry_everything_through(bills: Bills) -> None:
    """1 -> 3 -> 4: bill 4 starts with what bill 1 and bill 3 were paid; bill 3, holding a
    carried amount, is never voided without naming its own replacement."""
    bills.pay(bills.basic, 0, 3_000)
    bills.replace(0, 3)
    three = bills.issue(bill(3, 9_000))
    expect_revert(
        errors.InvoiceAlreadyPaid,
        lambda: bills.void(three),
        invoice_id=bills.leaves[three].invoice_id,
        paid=3_000,
    )
    bills.pay(bills.commercial, three, 2_000)
    bills.block = bills.s.backend.block_number()
    bills.replace(three, 4)
    (replaced,) = bills.new_events("InvoiceReplaced")
    assert (replaced.args["carried"], replaced.args["replacement_paid"]) == (5_000, 5_000)
    assert (bills.paid(1), bills.paid(3), bills.paid(4)) == (3_000, 5_000, 5_000)
    four = bills.issue(bill(4, 7_000))
    expect_revert(errors.PaidAboveTotal, lambda: bills.pay(bills.basic, four, 2_001))
    bills.pay(bills.basic, four, 2_000)
    # Reconciliation's arithmetic: each bill's paid is its own settlements plus what was
    # carried into it.
    settled: dict[bytes, int] = {}
    for event in bills.ledger.events(name="InvoiceSettled"):
        key = event.args["invoice_id"]
        settled[key] = settled.get(key, 0) + event.args["amount"]
    carried = carried_into(bills.ledger.replacements())
    for leaf in bills.leaves:
        expected = settled.get(leaf.invoice_id, 0) + carried.get(leaf.invoice_id, 0)
        assert bills.ledger.claim_state(leaf.invoice_id).paid == expected


def test_more_carried_than_the_replacement_total_leaves_nothing_payable(bills: Bills) -> None:
    bills.pay(bills.basic, 0, 9_000)
    bills.replace(0, 3)
    index = bills.issue(bill(3, 5_000))
    expect_revert(
        errors.PaidAboveTotal,
        lambda: bills.pay(bills.commercial, index, 1),
        paid=9_000,
        amount=1,
        total=5_000,
    )
    assert bills.paid(3) == 9_000  # the overpayment shows on chain
    # A bill with nothing paid names its replacement too: nothing carried, the link recorded.
    bills.block = bills.s.backend.block_number()
    bills.replace(1, 5)
    (replaced,) = bills.new_events("InvoiceReplaced")
    assert (replaced.args["carried"], replaced.args["replacement_paid"]) == (0, 0)


def test_a_lock_on_the_original_ends_and_one_on_the_replacement_stays(bills: Bills) -> None:
    index = bills.issue(bill(3, 8_000))
    bills.pay(bills.basic, 0, 4_000)
    bills.ledger.lock_invoice(bills.commercial, bills.leaves[0].invoice_id)
    bills.ledger.lock_invoice(bills.basic, bills.leaves[index].invoice_id)
    bills.replace(0, 3)
    assert bills.ledger.claim_state(bills.leaves[0].invoice_id).locked_by is None
    # The reviewing payer's claim on the voided bill is never paid; what was paid carried.
    expect_revert(errors.InvoiceVoided, lambda: bills.pay(bills.commercial, 0, 1))
    state = bills.ledger.claim_state(bills.leaves[index].invoice_id)
    assert (state.locked_by, state.paid) == (bills.basic.address, 4_000)
    expect_revert(errors.InvoiceLocked, lambda: bills.pay(bills.commercial, index, 1))
    bills.pay(bills.basic, index, 4_000)
    assert bills.paid(3) == 8_000


def test_replacement_refusals(bills: Bills) -> None:
    bills.pay(bills.basic, 0, 1_000)
    original = bills.leaves[0].invoice_id
    expect_revert(errors.ReplacementIsInvoice, lambda: bills.replace(0, 1), invoice_id=original)
    bills.void(1)  # bill 2: nothing paid, voided plainly
    expect_revert(
        errors.ReplacementVoided,
        lambda: bills.replace(0, 2),
        invoice_id=original,
        replacement_id=bills.leaves[1].invoice_id,
    )
    expect_revert(errors.UnauthorizedRelayer, lambda: bills.replace(0, 3, relayer=bills.stranger))
    with pytest.raises(ValueError, match="a code of 8 digits"):
        bills.ledger.replace_invoice(
            bills.seq, bills.size, bills.leaves[0], 0, [], RED, ("3308202", "1"), b"\1" * 65
        )
    assert bills.new_events("InvoiceReplaced") == []
    assert bills.paid(1) == 1_000 and bills.paid(3) == 0


def test_a_malformed_bill_reference_is_refused_by_the_contract(bills: Bills) -> None:
    leaf = bills.leaves[0]
    signature = bills.ledger.sign_replace(bills.hospital_key, leaf.invoice_id, RED, b"\1" * 32)
    expect_revert(
        errors.InvalidBillReference,
        lambda: bills.ledger.transact(
            bills.seq,
            "replaceInvoice",
            bills.size,
            leaf.as_abi(),
            0,
            merkle.inclusion_proof(bills.entries, 0),
            RED,
            b"3308202X",
            b"0000000003",
            signature,
        ),
        bill_code=b"3308202X",
        bill_number=b"0000000003",
    )


def test_the_replacement_signature_covers_the_replacement_and_its_type(bills: Bills) -> None:
    bills.pay(bills.basic, 0, 1_000)
    leaf = bills.leaves[0]
    three, four = (invoice_id(HOSPITAL, CODE, number(n)) for n in (3, 4))
    for signature in (
        # A plain reversal's signature, refused as a replacement's, with any replacement.
        bills.ledger.sign_void(bills.hospital_key, leaf.invoice_id, RED),
        # Signed for bill 4, relayed naming bill 3.
        bills.ledger.sign_replace(bills.hospital_key, leaf.invoice_id, RED, four),
        # Another red invoice, another key.
        bills.ledger.sign_replace(bills.hospital_key, leaf.invoice_id, b"\1" * 32, three),
        bills.ledger.sign_replace(Account.create(), leaf.invoice_id, RED, three),
    ):
        expect_revert(
            errors.InvalidVoidSignature,
            lambda s=signature: bills.replace(0, 3, signature=s),
            invoice_id=leaf.invoice_id,
        )
    # Nor does a replacement's signature void the bill plainly (and keep it from carrying).
    unpaid = bills.leaves[1]
    replacing = bills.ledger.sign_replace(bills.hospital_key, unpaid.invoice_id, RED, three)
    expect_revert(errors.InvalidVoidSignature, lambda: bills.void(1, red=RED, signature=replacing))
    assert bills.new_events("InvoiceVoided") == []
    bills.replace(0, 3, relayer=bills.hospital_key)  # the hospital may send its own
    assert bills.paid(3) == 1_000


def test_a_hospital_carries_only_into_its_own_bills(bills: Bills) -> None:
    """Bill codes are shared by a region's hospitals: hospital H2's bill CODE-3 is another
    invoice than this hospital's CODE-3, and a reversal here never touches it."""
    theirs = bill(3, 8_000, hospital="H2")
    assert theirs.invoice_id != invoice_id(HOSPITAL, CODE, number(3))
    bills.pay(bills.basic, 0, 6_000)
    bills.replace(0, 3)
    assert bills.ledger.claim_state(theirs.invoice_id).paid == 0
    assert bills.paid(3) == 6_000


def test_the_deployed_code_is_the_committed_build(session: LedgerSession) -> None:
    # What each backend runs is the artifact's runtime code (immutables aside), the one with
    # replaceInvoice: a stale build would deploy a contract without it.
    session.ledger.check_deployed()
    assert "replaceInvoice" in {e.get("name") for e in session.ledger.codec.abi}

"""The ZeroclaimLedger contract on both backends: every role check and custom error, with the
events a change emits and their absence when it is refused."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain import errors, merkle
from chain.factory import LedgerSession
from chain.ledger import Ledger, role_id
from chain.model import Checkpoint, HospitalLevel, InvoiceLeaf, Role, Settlement

T0 = datetime(2025, 1, 1, tzinfo=UTC)
HOSPITAL = "H33080200001"


def invoice(n: int, total: int = 10_000, hospital: str = HOSPITAL) -> InvoiceLeaf:
    """A synthetic invoice leaf; ids and record hashes derived from n."""
    return InvoiceLeaf(
        invoice_id=hashlib.sha256(f"invoice-{n}".encode()).digest(),
        record_hash=hashlib.sha256(f"record-{n}".encode()).digest(),
        hospital=hospital,
        total=total,
    )


class World:
    """A deployed ledger with a registered hospital and an anchored log of invoices."""

    def __init__(self, session: LedgerSession, leaves: list[InvoiceLeaf]) -> None:
        self.s = session
        self.ledger: Ledger = session.ledger
        self.admin = session.authority
        self.seq = session.sequencer
        self.basic = session.payers["basic"]
        self.commercial = session.payers["commercial"]
        self.hospital_key: LocalAccount = Account.create()
        self.stranger: LocalAccount = Account.create()
        self.ledger.register_hospital(
            self.admin, HOSPITAL, HospitalLevel.TERTIARY, self.hospital_key.address, T0
        )
        self.leaves = leaves
        self.entries = [leaf.entry() for leaf in leaves]
        self.size = len(leaves)
        self.ledger.anchor_checkpoint(
            self.seq, Checkpoint(self.size, merkle.root_hash(self.entries))
        )
        self.block = session.backend.block_number()

    def settlement(
        self,
        i: int,
        amount: int,
        leaf: InvoiceLeaf | None = None,
        proof: list[bytes] | None = None,
        index: int | None = None,
        signer: LocalAccount | None = None,
    ) -> Settlement:
        leaf = leaf or self.leaves[i]
        return Settlement(
            leaf,
            i if index is None else index,
            tuple(merkle.inclusion_proof(self.entries, i) if proof is None else proof),
            amount,
            self.sign(leaf, signer),
        )

    def sign(self, leaf: InvoiceLeaf, signer: LocalAccount | None = None) -> bytes:
        """The hospital's invoice signature of a leaf (by its first key unless told)."""
        return self.ledger.sign_record(signer or self.hospital_key, leaf.record_hash)

    def new_events(self, name: str | None = None) -> list[Any]:
        return self.ledger.events(self.block + 1, name=name)

    def void(
        self,
        i: int,
        signer: LocalAccount | None = None,
        relayer: LocalAccount | None = None,
        red: bytes = b"\x07" * 32,
        signature: bytes | None = None,
    ) -> Any:
        leaf = self.leaves[i]
        sig = signature or self.ledger.sign_void(signer or self.hospital_key, leaf.invoice_id, red)
        return self.ledger.void_invoice(
            relayer or self.seq,
            self.size,
            leaf,
            i,
            merkle.inclusion_proof(self.entries, i),
            red,
            sig,
        )


@pytest.fixture
def world(session: LedgerSession) -> World:
    return World(session, [invoice(n, total=10_000 + n) for n in range(7)])


def expect_revert(
    error: type[errors.ContractRevert], fn: Callable[[], Any], **fields: Any
) -> errors.ContractRevert:
    with pytest.raises(error) as info:
        fn()
    for name, value in fields.items():
        assert getattr(info.value, name) == value, name
    return info.value


# -- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "role", "args"),
    [
        ("registerHospital", Role.ADMIN, (b"X".ljust(32, b"\0"), 1, "0x" + "11" * 20, 0)),
        ("rotateHospitalKey", Role.ADMIN, (b"X".ljust(32, b"\0"), "0x" + "11" * 20, 5)),
        ("revokeHospitalKey", Role.ADMIN, (b"X".ljust(32, b"\0"), 0, 5)),
        ("grantRole", Role.ADMIN, (role_id(Role.PAYER), "0x" + "11" * 20)),
        ("anchorCheckpoint", Role.SEQUENCER, (99, b"\x01" * 32)),
        ("lockInvoice", Role.PAYER, (b"\x01" * 32,)),
        ("releaseInvoice", Role.PAYER, (b"\x01" * 32,)),
        ("settleBatch", Role.PAYER, (7, [])),
    ],
)
def test_functions_refuse_accounts_without_their_role(
    world: World, function: str, role: Role, args: tuple[Any, ...]
) -> None:
    # The sequencer holds SEQUENCER only and a payer PAYER only: each is a stranger elsewhere.
    for sender in (world.stranger, world.basic if role is not Role.PAYER else world.seq):
        expect_revert(
            errors.Unauthorized,
            lambda s=sender: world.ledger.transact(s, function, *args),
            account=sender.address,
            role=role_id(role),
        )
    assert world.new_events() == []


def test_void_relay_needs_sequencer_or_the_hospital_key(world: World) -> None:
    expect_revert(
        errors.UnauthorizedRelayer,
        lambda: world.void(0, relayer=world.stranger),
        caller=world.stranger.address,
    )
    assert world.new_events() == []
    world.void(0, relayer=world.hospital_key)  # the hospital may send its own reversal
    assert [e.name for e in world.new_events()] == ["InvoiceVoided"]


def test_bootstrap_granted_roles(world: World) -> None:
    ledger = world.ledger
    assert ledger.has_role(Role.ADMIN, world.admin.address)
    assert ledger.has_role(Role.SEQUENCER, world.seq.address)
    assert ledger.has_role(Role.PAYER, world.basic.address)
    assert ledger.has_role(Role.HOSPITAL, world.hospital_key.address)
    assert not ledger.has_role(Role.ADMIN, world.seq.address)
    assert ledger.read("payerNumber", world.basic.address)[0] > 0


def test_admin_grants_and_revokes_auditor(world: World) -> None:
    auditor = Account.create()
    world.ledger.grant_role(world.admin, Role.AUDITOR, auditor.address)
    assert world.ledger.has_role(Role.AUDITOR, auditor.address)
    world.ledger.revoke_role(world.admin, Role.AUDITOR, auditor.address)
    assert not world.ledger.has_role(Role.AUDITOR, auditor.address)
    events = world.new_events()
    assert [e.name for e in events] == ["RoleGranted", "RoleRevoked"]
    assert events[0].args == {
        "role": role_id(Role.AUDITOR),
        "account": auditor.address,
        "sender": world.admin.address,
    }


# -- hospital registry ------------------------------------------------------------------------


def test_register_hospital_emits_and_reads_back(world: World) -> None:
    key = Account.create()
    world.ledger.register_hospital(world.admin, "H2", HospitalLevel.TOWNSHIP, key.address, T0)
    (event,) = world.new_events("HospitalRegistered")
    assert event.args == {
        "hospital": b"H2".ljust(32, b"\0"),
        "level": 0,
        "signer": key.address,
        "valid_from": int(T0.timestamp()),
    }
    hospital = world.ledger.hospital("H2")
    assert hospital is not None
    assert hospital.level is HospitalLevel.TOWNSHIP
    assert [k.signer for k in hospital.keys] == [key.address]
    assert world.ledger.hospital("NOPE") is None


@pytest.mark.parametrize(
    ("code", "level", "signer", "error", "fields"),
    [
        (
            HOSPITAL,
            1,
            "0x" + "22" * 20,
            errors.HospitalAlreadyRegistered,
            {"hospital": HOSPITAL.encode().ljust(32, b"\0")},
        ),
        ("H9", 4, "0x" + "22" * 20, errors.InvalidLevel, {"level": 4}),
        ("H9", 1, "0x" + "00" * 20, errors.InvalidSigner, {"signer": "0x" + "00" * 20}),
    ],
)
def test_register_hospital_refusals(
    world: World,
    code: str,
    level: int,
    signer: str,
    error: type[errors.ContractRevert],
    fields: dict[str, Any],
) -> None:
    expect_revert(
        error,
        lambda: world.ledger.transact(
            world.admin, "registerHospital", code.encode().ljust(32, b"\0"), level, signer, 0
        ),
        **fields,
    )
    assert world.new_events() == []


def test_rotation_closes_the_old_key_at_the_new_valid_from(world: World) -> None:
    new_key = Account.create()
    t1 = T0 + timedelta(days=30)
    world.ledger.rotate_hospital_key(world.admin, HOSPITAL, new_key.address, t1)
    (event,) = world.new_events("HospitalKeyRotated")
    assert event.args["key_index"] == 1 and event.args["signer"] == new_key.address
    old = world.hospital_key.address
    valid = world.ledger.is_key_valid_at
    assert valid(HOSPITAL, old, t1 - timedelta(seconds=1))
    assert not valid(HOSPITAL, old, t1)
    assert valid(HOSPITAL, new_key.address, t1)
    assert not valid(HOSPITAL, new_key.address, t1 - timedelta(seconds=1))
    assert not valid(HOSPITAL, old, T0 - timedelta(seconds=1))
    hospital = world.ledger.hospital(HOSPITAL)
    assert hospital is not None and hospital.keys[0].revoked_at == t1


def test_rotation_refusals(world: World) -> None:
    expect_revert(
        errors.KeyNotNewer,
        lambda: world.ledger.rotate_hospital_key(
            world.admin, HOSPITAL, Account.create().address, T0
        ),
        valid_from=int(T0.timestamp()),
    )
    expect_revert(
        errors.UnknownHospital,
        lambda: world.ledger.rotate_hospital_key(world.admin, "H404", Account.create().address, T0),
        hospital=b"H404".ljust(32, b"\0"),
    )
    expect_revert(
        errors.InvalidSigner,
        lambda: world.ledger.rotate_hospital_key(
            world.admin, HOSPITAL, "0x" + "00" * 20, T0 + timedelta(days=1)
        ),
    )
    assert world.new_events() == []


def test_revocation_is_backdatable_but_not_before_valid_from(world: World) -> None:
    t_compromise = T0 + timedelta(days=3)
    world.ledger.revoke_hospital_key(world.admin, HOSPITAL, 0, t_compromise)
    (event,) = world.new_events("HospitalKeyRevoked")
    assert event.args["revoked_at"] == int(t_compromise.timestamp())
    key = world.hospital_key.address
    assert world.ledger.is_key_valid_at(HOSPITAL, key, t_compromise - timedelta(seconds=1))
    assert not world.ledger.is_key_valid_at(HOSPITAL, key, t_compromise)
    assert not world.ledger.has_role(Role.HOSPITAL, key)
    expect_revert(
        errors.InvalidRevocationTime,
        lambda: world.ledger.revoke_hospital_key(
            world.admin, HOSPITAL, 0, T0 - timedelta(seconds=1)
        ),
        key_index=0,
    )
    expect_revert(
        errors.UnknownKey,
        lambda: world.ledger.revoke_hospital_key(world.admin, HOSPITAL, 5, T0),
        key_index=5,
    )
    expect_revert(
        errors.UnknownHospital, lambda: world.ledger.revoke_hospital_key(world.admin, "H404", 0, T0)
    )


# -- checkpoints ------------------------------------------------------------------------------


def test_checkpoints_only_grow_and_stay_readable(world: World) -> None:
    first = Checkpoint(world.size, merkle.root_hash(world.entries))
    assert world.ledger.latest_checkpoint() == first
    more = [*world.entries, invoice(100).entry()]
    second = Checkpoint(len(more), merkle.root_hash(more))
    world.ledger.anchor_checkpoint(world.seq, second)
    (event,) = world.new_events("CheckpointAnchored")
    assert event.args == {"size": second.size, "root": second.root}
    assert world.ledger.checkpoint(first.size) == first
    assert world.ledger.checkpoint(second.size) == second
    assert world.ledger.latest_checkpoint() == second
    assert world.ledger.checkpoint(3) is None
    for size in (second.size, first.size, 1):
        expect_revert(
            errors.CheckpointNotGrowing,
            lambda s=size: world.ledger.anchor_checkpoint(world.seq, Checkpoint(s, b"\x02" * 32)),
            size=size,
            latest_size=second.size,
        )
    assert len(world.new_events()) == 1


# -- settlement -------------------------------------------------------------------------------


def test_settle_batch_pays_and_emits(world: World) -> None:
    receipt = world.ledger.settle_batch(
        world.basic, world.size, [world.settlement(0, 4_000), world.settlement(3, 10_003)]
    )
    assert receipt.status
    events = world.new_events("InvoiceSettled")
    assert [(e.args["invoice_id"], e.args["amount"], e.args["paid_total"]) for e in events] == [
        (world.leaves[0].invoice_id, 4_000, 4_000),
        (world.leaves[3].invoice_id, 10_003, 10_003),
    ]
    assert all(e.args["payer"] == world.basic.address for e in events)
    state = world.ledger.claim_state(world.leaves[0].invoice_id)
    assert (state.paid, state.voided, state.locked_by) == (4_000, False, None)
    assert state.record_tag == world.leaves[0].record_hash[:19]


def test_cumulative_cap_across_payers_stops_double_dipping(world: World) -> None:
    leaf = world.leaves[2]  # total 10_002
    world.ledger.settle_batch(world.basic, world.size, [world.settlement(2, 7_000)])
    world.ledger.settle_batch(world.commercial, world.size, [world.settlement(2, 3_002)])
    expect_revert(
        errors.PaidAboveTotal,
        lambda: world.ledger.settle_batch(world.commercial, world.size, [world.settlement(2, 1)]),
        invoice_id=leaf.invoice_id,
        paid=10_002,
        amount=1,
        total=10_002,
    )
    expect_revert(
        errors.PaidAboveTotal,
        lambda: world.ledger.settle_batch(world.basic, world.size, [world.settlement(2, 1)]),
    )
    assert world.ledger.claim_state(leaf.invoice_id).paid == 10_002


def test_batch_is_all_or_nothing(world: World) -> None:
    good = [world.settlement(i, 100) for i in range(3)]
    bad = world.settlement(4, 10**6)
    expect_revert(
        errors.PaidAboveTotal,
        lambda: world.ledger.settle_batch(world.basic, world.size, [*good, bad]),
        invoice_id=world.leaves[4].invoice_id,
    )
    assert all(world.ledger.claim_state(leaf.invoice_id).paid == 0 for leaf in world.leaves)
    assert world.new_events() == []


def _tampered_settlements(world: World) -> dict[str, Settlement]:
    proof = merkle.inclusion_proof(world.entries, 1)
    flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    leaf = world.leaves[1]
    return {
        "flipped proof bit": world.settlement(1, 10, proof=flipped),
        "dropped proof element": world.settlement(1, 10, proof=proof[:-1]),
        "extra proof element": world.settlement(1, 10, proof=[*proof, b"\x00" * 32]),
        "wrong leaf index": world.settlement(1, 10, index=2),
        "index beyond size": world.settlement(1, 10, index=world.size),
        "inflated total": world.settlement(
            1,
            10,
            leaf=InvoiceLeaf(leaf.invoice_id, leaf.record_hash, leaf.hospital, leaf.total * 10),
        ),
        "other hospital": world.settlement(
            1, 10, leaf=InvoiceLeaf(leaf.invoice_id, leaf.record_hash, "H9", leaf.total)
        ),
        "other record hash": world.settlement(
            1, 10, leaf=InvoiceLeaf(leaf.invoice_id, b"\x05" * 32, leaf.hospital, leaf.total)
        ),
    }


@pytest.mark.parametrize(
    "tampering",
    [
        "flipped proof bit",
        "dropped proof element",
        "extra proof element",
        "wrong leaf index",
        "index beyond size",
        "inflated total",
        "other hospital",
        "other record hash",
    ],
)
def test_settlement_with_tampered_proof_or_leaf_is_refused(world: World, tampering: str) -> None:
    settlement = _tampered_settlements(world)[tampering]
    expect_revert(
        errors.InvalidInclusionProof,
        lambda: world.ledger.settle_batch(world.basic, world.size, [settlement]),
        invoice_id=world.leaves[1].invoice_id,
        checkpoint_size=world.size,
    )
    assert world.new_events() == []


def _cut_batch(world: World, indexes: list[int], amount: int = 10) -> list[Settlement]:
    whole = [world.settlement(i, amount) for i in indexes]
    cut = merkle.cut_shared_proofs(world.size, [(s.leaf_index, s.proof) for s in whole])
    return [
        Settlement(s.leaf, s.leaf_index, tuple(p), s.amount, s.signature)
        for s, p in zip(whole, cut, strict=True)
    ]


def test_batch_proofs_cut_where_they_meet_an_earlier_path(world: World) -> None:
    batch = _cut_batch(world, list(range(world.size)))
    whole = sum(len(merkle.inclusion_proof(world.entries, i)) for i in range(world.size))
    # Each path stops at the node where it meets an earlier one (the root at the latest).
    assert [len(s.proof) for s in batch] == [3, 1, 2, 1, 3, 1, 1] and whole == 20
    assert len(batch[0].proof) == len(merkle.inclusion_proof(world.entries, 0))
    world.ledger.settle_batch(world.basic, world.size, batch)
    assert [e.args["invoice_id"] for e in world.new_events("InvoiceSettled")] == [
        leaf.invoice_id for leaf in world.leaves
    ]


def test_a_cut_proof_proves_nothing_on_its_own(world: World) -> None:
    # Alone, or after a batch in an earlier transaction: the memo lasts one transaction.
    first, second = _cut_batch(world, [0, 1])
    assert len(second.proof) < len(merkle.inclusion_proof(world.entries, 1))
    for attempt in ([second], [world.settlement(2, 10), second]):
        expect_revert(
            errors.InvalidInclusionProof,
            lambda a=attempt: world.ledger.settle_batch(world.basic, world.size, a),
            invoice_id=world.leaves[1].invoice_id,
        )
    world.ledger.settle_batch(world.basic, world.size, [first])
    expect_revert(
        errors.InvalidInclusionProof,
        lambda: world.ledger.settle_batch(world.basic, world.size, [second]),
        invoice_id=world.leaves[1].invoice_id,
    )


@pytest.mark.parametrize("tampering", ["forged sibling", "other leaf", "inflated total"])
def test_a_cut_proof_that_meets_a_proven_node_must_agree_with_it(
    world: World, tampering: str
) -> None:
    first, second = _cut_batch(world, [2, 3])
    assert second.proof  # 3 meets 2 one level up: its sibling (leaf 2) is still sent
    leaf = world.leaves[3]
    forged = {
        "forged sibling": Settlement(
            leaf, 3, (b"\x09" * 32, *second.proof[1:]), 10, world.sign(leaf)
        ),
        "other leaf": Settlement(world.leaves[4], 3, second.proof, 10, world.sign(world.leaves[4])),
        "inflated total": Settlement(
            InvoiceLeaf(leaf.invoice_id, leaf.record_hash, leaf.hospital, leaf.total * 10),
            3,
            second.proof,
            10,
            world.sign(leaf),
        ),
    }[tampering]
    expect_revert(
        errors.InvalidInclusionProof,
        lambda: world.ledger.settle_batch(world.basic, world.size, [first, forged]),
        invoice_id=forged.leaf.invoice_id,
    )
    assert world.new_events() == []


def test_settlement_refusals(world: World) -> None:
    settle = world.ledger.settle_batch
    expect_revert(
        errors.UnknownCheckpoint, lambda: settle(world.basic, 3, [world.settlement(0, 1)]), size=3
    )
    expect_revert(
        errors.UnknownCheckpoint, lambda: settle(world.basic, 0, [world.settlement(0, 1)]), size=0
    )
    expect_revert(errors.EmptyBatch, lambda: settle(world.basic, world.size, []))
    expect_revert(
        errors.ZeroAmount,
        lambda: settle(world.basic, world.size, [world.settlement(0, 0)]),
        invoice_id=world.leaves[0].invoice_id,
    )
    assert world.new_events() == []


def test_same_invoice_id_with_another_record_cannot_be_paid_twice(world: World) -> None:
    # A log holding two leaves for one invoice id (a faulty or malicious sequencer): the first
    # payment binds the record hash; the other leaf is refused, so its total cannot be used.
    original = world.leaves[0]
    twin = InvoiceLeaf(original.invoice_id, b"\x09" * 32, original.hospital, original.total * 5)
    entries = [*world.entries, twin.entry()]
    world.ledger.anchor_checkpoint(world.seq, Checkpoint(len(entries), merkle.root_hash(entries)))
    size = len(entries)
    world.ledger.settle_batch(
        world.basic,
        size,
        [
            Settlement(
                original,
                0,
                tuple(merkle.inclusion_proof(entries, 0)),
                original.total,
                world.sign(original),
            )
        ],
    )
    expect_revert(
        errors.RecordMismatch,
        lambda: world.ledger.settle_batch(
            world.commercial,
            size,
            [
                Settlement(
                    twin,
                    size - 1,
                    tuple(merkle.inclusion_proof(entries, size - 1)),
                    1,
                    world.sign(twin),
                )
            ],
        ),
        invoice_id=original.invoice_id,
        bound_tag=original.record_hash[:19],
        given_tag=twin.record_hash[:19],
    )


# -- the invoice signature and stolen keys -----------------------------------------------------


def _extend(world: World, leaves: list[InvoiceLeaf]) -> None:
    """Appends leaves to the world's log and anchors the longer log."""
    world.leaves = [*world.leaves, *leaves]
    world.entries = [leaf.entry() for leaf in world.leaves]
    world.size = len(world.leaves)
    world.ledger.anchor_checkpoint(
        world.seq, Checkpoint(world.size, merkle.root_hash(world.entries))
    )


def test_revocation_records_the_anchored_log_size(world: World) -> None:
    world.ledger.revoke_hospital_key(world.admin, HOSPITAL, 0, T0 + timedelta(days=3))
    (event,) = world.new_events("HospitalKeyRevoked")
    assert event.args["revoked_log_size"] == world.size == 7
    hospital = world.ledger.hospital(HOSPITAL)
    assert hospital is not None and hospital.keys[0].revoked_log_size == 7
    # A second revocation (moved earlier) keeps the size recorded first.
    _extend(world, [invoice(50)])
    world.ledger.revoke_hospital_key(world.admin, HOSPITAL, 0, T0 + timedelta(days=1))
    event = world.new_events("HospitalKeyRevoked")[-1]
    assert event.args["revoked_log_size"] == 7
    assert event.args["revoked_at"] == int((T0 + timedelta(days=1)).timestamp())


def test_a_stolen_key_is_not_paid_for_an_invoice_anchored_after_its_revocation(
    world: World,
) -> None:
    # The thief signs a new invoice; the authority revokes the key, backdated; the invoice,
    # whatever issue time it claims, is first anchored after the revocation was recorded.
    world.ledger.revoke_hospital_key(world.admin, HOSPITAL, 0, T0 + timedelta(days=3))
    stolen = invoice(60, total=42_000)
    _extend(world, [stolen])
    expect_revert(
        errors.KeyRevokedBeforeAnchoring,
        lambda: world.ledger.settle_batch(
            world.basic, world.size, [world.settlement(world.size - 1, 42_000)]
        ),
        invoice_id=stolen.invoice_id,
        hospital=HOSPITAL.encode().ljust(32, b"\0"),
        signer=world.hospital_key.address,
    )
    assert world.ledger.claim_state(stolen.invoice_id).paid == 0
    # An invoice of the same key anchored before the revocation is still paid.
    world.ledger.settle_batch(world.basic, world.size, [world.settlement(0, 1_000)])
    assert world.ledger.claim_state(world.leaves[0].invoice_id).paid == 1_000
    assert [e.args["invoice_id"] for e in world.new_events("InvoiceSettled")] == [
        world.leaves[0].invoice_id
    ]


def test_the_leaf_at_the_recorded_size_is_refused_and_the_one_before_is_paid(
    world: World,
) -> None:
    # Leaves 0..6 were anchored; size 7 is recorded: index 6 is before, index 7 is at it.
    world.ledger.revoke_hospital_key(world.admin, HOSPITAL, 0, T0 + timedelta(days=3))
    _extend(world, [invoice(70), invoice(71)])
    world.ledger.settle_batch(world.basic, world.size, [world.settlement(6, 1)])
    for index in (7, 8):
        expect_revert(
            errors.KeyRevokedBeforeAnchoring,
            lambda i=index: world.ledger.settle_batch(
                world.basic, world.size, [world.settlement(i, 1)]
            ),
            invoice_id=world.leaves[index].invoice_id,
        )


def test_a_rotated_key_is_still_paid_for_invoices_anchored_after_the_rotation(
    world: World,
) -> None:
    new_key = Account.create()
    world.ledger.rotate_hospital_key(
        world.admin, HOSPITAL, new_key.address, T0 + timedelta(days=30)
    )
    hospital = world.ledger.hospital(HOSPITAL)
    assert hospital is not None and [k.revoked_log_size for k in hospital.keys] == [None, None]
    # An invoice issued before the rotation, uploaded late, and one of the new key.
    _extend(world, [invoice(80), invoice(81)])
    world.ledger.settle_batch(
        world.basic,
        world.size,
        [world.settlement(7, 5), world.settlement(8, 5, signer=new_key)],
    )
    assert len(world.new_events("InvoiceSettled")) == 2
    # A compromise found after the rotation: revoking the rotated key records the size.
    world.ledger.revoke_hospital_key(world.admin, HOSPITAL, 0, T0 + timedelta(days=10))
    _extend(world, [invoice(82)])
    expect_revert(
        errors.KeyRevokedBeforeAnchoring,
        lambda: world.ledger.settle_batch(world.basic, world.size, [world.settlement(9, 5)]),
        signer=world.hospital_key.address,
    )
    world.ledger.settle_batch(world.basic, world.size, [world.settlement(7, 5)])


def test_settlement_needs_the_invoice_signature_of_a_key_of_its_hospital(
    world: World,
) -> None:
    other_key = Account.create()
    world.ledger.register_hospital(world.admin, "H2", HospitalLevel.PRIMARY, other_key.address, T0)
    leaf = world.leaves[0]
    hospital = HOSPITAL.encode().ljust(32, b"\0")
    cases = {
        "a stranger's key": (world.sign(leaf, world.stranger), world.stranger.address),
        "another hospital's key": (world.sign(leaf, other_key), other_key.address),
        "another invoice's signature": (world.sign(world.leaves[1]), None),
        "malformed signature": (b"\x01" * 64, "0x" + "00" * 20),
    }
    for name, (signature, signer) in cases.items():
        bad = Settlement(leaf, 0, tuple(merkle.inclusion_proof(world.entries, 0)), 10, signature)
        error = expect_revert(
            errors.InvalidInvoiceSignature,
            lambda b=bad: world.ledger.settle_batch(world.basic, world.size, [b]),
            invoice_id=leaf.invoice_id,
            hospital=hospital,
        )
        assert signer is None or error.signer == signer, name  # type: ignore[attr-defined]
        assert error.signer != world.hospital_key.address, name  # type: ignore[attr-defined]
    assert world.new_events("InvoiceSettled") == []


def test_a_high_s_copy_of_the_invoice_signature_is_refused(world: World) -> None:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    good = world.settlement(0, 10)
    r, s_value, v = (
        good.signature[:32],
        int.from_bytes(good.signature[32:64], "big"),
        good.signature[64],
    )
    malleated = r + (n - s_value).to_bytes(32, "big") + bytes([55 - v])
    bad = Settlement(good.leaf, 0, good.proof, 10, malleated)
    expect_revert(
        errors.InvalidInvoiceSignature,
        lambda: world.ledger.settle_batch(world.basic, world.size, [bad]),
        invoice_id=good.leaf.invoice_id,
    )
    world.ledger.settle_batch(world.basic, world.size, [good])


# -- locks ------------------------------------------------------------------------------------


def test_lock_blocks_other_payers_until_released(world: World) -> None:
    invoice_id = world.leaves[5].invoice_id
    world.ledger.lock_invoice(world.basic, invoice_id)
    assert world.ledger.claim_state(invoice_id).locked_by == world.basic.address
    (event,) = world.new_events("InvoiceLocked")
    assert event.args == {"invoice_id": invoice_id, "payer": world.basic.address}
    expect_revert(
        errors.InvoiceLocked,
        lambda: world.ledger.settle_batch(world.commercial, world.size, [world.settlement(5, 1)]),
        invoice_id=invoice_id,
        locked_by=world.basic.address,
    )
    expect_revert(
        errors.InvoiceLocked,
        lambda: world.ledger.lock_invoice(world.commercial, invoice_id),
        locked_by=world.basic.address,
    )
    expect_revert(
        errors.InvoiceNotLocked,
        lambda: world.ledger.release_invoice(world.commercial, invoice_id),
        invoice_id=invoice_id,
        caller=world.commercial.address,
    )
    world.ledger.release_invoice(world.basic, invoice_id)
    assert [e.name for e in world.new_events()] == ["InvoiceLocked", "InvoiceReleased"]
    world.ledger.settle_batch(world.commercial, world.size, [world.settlement(5, 1)])


def test_settlement_by_the_lock_holder_releases_the_lock(world: World) -> None:
    invoice_id = world.leaves[5].invoice_id
    world.ledger.lock_invoice(world.basic, invoice_id)
    world.ledger.settle_batch(world.basic, world.size, [world.settlement(5, 5)])
    assert world.ledger.claim_state(invoice_id).locked_by is None
    expect_revert(
        errors.InvoiceNotLocked, lambda: world.ledger.release_invoice(world.basic, invoice_id)
    )


# -- red-letter reversal ----------------------------------------------------------------------


def test_void_by_the_hospital_signature(world: World) -> None:
    red = b"\x0a" * 32
    world.void(1, red=red)
    (event,) = world.new_events("InvoiceVoided")
    assert event.args == {
        "invoice_id": world.leaves[1].invoice_id,
        "red_invoice_id": red,
        "hospital": HOSPITAL.encode().ljust(32, b"\0"),
    }
    assert world.ledger.claim_state(world.leaves[1].invoice_id).voided
    expect_revert(
        errors.InvoiceVoided,
        lambda: world.ledger.settle_batch(world.basic, world.size, [world.settlement(1, 1)]),
        invoice_id=world.leaves[1].invoice_id,
    )
    expect_revert(
        errors.InvoiceVoided,
        lambda: world.ledger.lock_invoice(world.basic, world.leaves[1].invoice_id),
    )
    expect_revert(errors.InvoiceVoided, lambda: world.void(1))


def test_void_refused_once_anything_was_paid(world: World) -> None:
    world.ledger.settle_batch(world.basic, world.size, [world.settlement(2, 1)])
    expect_revert(
        errors.InvoiceAlreadyPaid,
        lambda: world.void(2),
        invoice_id=world.leaves[2].invoice_id,
        paid=1,
    )
    assert not world.ledger.claim_state(world.leaves[2].invoice_id).voided


def test_void_signature_must_be_a_current_key_of_the_issuing_hospital(world: World) -> None:
    leaf = world.leaves[3]
    hospital_b32 = HOSPITAL.encode().ljust(32, b"\0")
    impostor = Account.create()
    expect_revert(
        errors.InvalidVoidSignature,
        lambda: world.void(3, signer=impostor),
        invoice_id=leaf.invoice_id,
        hospital=hospital_b32,
        signer=impostor.address,
    )
    # Another registered hospital's key does not void this hospital's invoice.
    other = Account.create()
    world.ledger.register_hospital(world.admin, "H2", HospitalLevel.PRIMARY, other.address, T0)
    expect_revert(errors.InvalidVoidSignature, lambda: world.void(3, signer=other))
    # Garbage signature.
    expect_revert(errors.InvalidVoidSignature, lambda: world.void(3, signature=b"\x01" * 65))
    # A revoked key no longer voids.
    world.ledger.revoke_hospital_key(world.admin, HOSPITAL, 0, T0 + timedelta(days=1))
    expect_revert(
        errors.InvalidVoidSignature, lambda: world.void(3), signer=world.hospital_key.address
    )
    assert world.new_events("InvoiceVoided") == []


def test_void_signature_is_bound_to_invoice_chain_and_contract(world: World) -> None:
    leaf = world.leaves[4]
    ledger = world.ledger
    red = b"\x0b" * 32

    def sign(domain_change: dict[str, Any], invoice_id: bytes = leaf.invoice_id) -> bytes:
        from eth_account.messages import encode_typed_data

        data = ledger.void_typed_data(invoice_id, red)
        data["domain"] = {**data["domain"], **domain_change}
        return bytes(
            Account.sign_message(
                encode_typed_data(full_message=data), world.hospital_key.key
            ).signature
        )

    for replayed in (
        sign({"chainId": 1}),
        sign({"verifyingContract": "0x" + "12" * 20}),
        sign({}, invoice_id=world.leaves[5].invoice_id),
        sign({"version": "2"}),
    ):
        expect_revert(
            errors.InvalidVoidSignature, lambda s=replayed: world.void(4, red=red, signature=s)
        )
    world.void(4, red=red, signature=sign({}))
    assert ledger.claim_state(leaf.invoice_id).voided


def test_void_needs_a_proven_leaf(world: World) -> None:
    leaf = world.leaves[0]
    sig = world.ledger.sign_void(world.hospital_key, leaf.invoice_id, b"\x01" * 32)
    bad_proof = merkle.inclusion_proof(world.entries, 1)
    expect_revert(
        errors.InvalidInclusionProof,
        lambda: world.ledger.void_invoice(
            world.seq, world.size, leaf, 0, bad_proof, b"\x01" * 32, sig
        ),
    )
    expect_revert(
        errors.UnknownCheckpoint,
        lambda: world.ledger.void_invoice(
            world.seq, 99, leaf, 0, merkle.inclusion_proof(world.entries, 0), b"\x01" * 32, sig
        ),
    )


def test_claim_state_read_from_storage_equals_the_view(world: World) -> None:
    world.ledger.settle_batch(world.basic, world.size, [world.settlement(0, 1_234)])
    world.ledger.lock_invoice(world.commercial, world.leaves[1].invoice_id)
    world.void(2)
    world.ledger.lock_invoice(world.basic, world.leaves[3].invoice_id)
    world.ledger.settle_batch(world.basic, world.size, [world.settlement(3, 10)])
    states = [world.ledger.claim_state(leaf.invoice_id) for leaf in world.leaves]
    assert states == [world.ledger.claim_state_by_call(leaf.invoice_id) for leaf in world.leaves]
    assert states[0].paid == 1_234 and states[0].record_tag == world.leaves[0].record_hash[:19]
    assert states[1].locked_by == world.commercial.address
    assert states[2].voided and states[3].locked_by is None and states[3].paid == 10
    assert world.ledger.claim_state(b"\x42" * 32) == world.ledger.claim_state_by_call(b"\x42" * 32)

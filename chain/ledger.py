"""The ledger contract seen from Python: typed methods over any backend.

Transactions are signed here with eth-account, so a backend never holds a key; a revert
becomes the typed error of ``chain.errors`` that names the invoice, checkpoint or hospital.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain.abi import ContractCodec, Event
from chain.backend import Backend, CallReverted, TxReceipt
from chain.errors import LedgerConfigError, TransactionFailed
from chain.model import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    EIP712_DOMAIN_TYPE,
    ZERO_ADDRESS,
    Checkpoint,
    Hospital,
    HospitalKey,
    HospitalLevel,
    InvoiceLeaf,
    InvoiceLedgerState,
    Replacement,
    Role,
    Settlement,
    from_timestamp,
    hospital_code_bytes,
    to_timestamp,
)

_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"


@dataclass(frozen=True)
class Call:
    """One contract call to send as a transaction."""

    sender: LocalAccount
    function: str
    args: tuple[Any, ...] = ()


def void_typed_data(
    domain: dict[str, Any], invoice_id: bytes, red_invoice_id: bytes
) -> dict[str, Any]:
    """EIP-712 ``VoidInvoice(invoiceId, redInvoiceId)`` in a ledger's domain: what the issuing
    hospital signs for a red-letter reversal (at its office, with its own key)."""
    return {
        "types": {
            "EIP712Domain": EIP712_DOMAIN_TYPE,
            "VoidInvoice": [
                {"name": "invoiceId", "type": "bytes32"},
                {"name": "redInvoiceId", "type": "bytes32"},
            ],
        },
        "primaryType": "VoidInvoice",
        "domain": domain,
        "message": {"invoiceId": invoice_id, "redInvoiceId": red_invoice_id},
    }


def replace_typed_data(
    domain: dict[str, Any], invoice_id: bytes, red_invoice_id: bytes, replacement_id: bytes
) -> dict[str, Any]:
    """EIP-712 ``ReplaceInvoice(invoiceId, redInvoiceId, replacementId)`` in a ledger's domain:
    what the issuing hospital signs for a reversal that names the bill replacing the voided one
    (a partial refund), so that what was paid is carried over to it. Another type than
    :func:`void_typed_data`, so neither signature passes for the other."""
    return {
        "types": {
            "EIP712Domain": EIP712_DOMAIN_TYPE,
            "ReplaceInvoice": [
                {"name": "invoiceId", "type": "bytes32"},
                {"name": "redInvoiceId", "type": "bytes32"},
                {"name": "replacementId", "type": "bytes32"},
            ],
        },
        "primaryType": "ReplaceInvoice",
        "domain": domain,
        "message": {
            "invoiceId": invoice_id,
            "redInvoiceId": red_invoice_id,
            "replacementId": replacement_id,
        },
    }


def bill_reference_abi(bill_code: str, bill_number: str) -> tuple[bytes, bytes]:
    """A bill code and number as the contract takes them (``bytes8``, ``bytes10`` of ASCII).
    Raises ``ValueError`` unless they are 8 and 10 ASCII digits."""
    if not (
        len(bill_code) == 8
        and len(bill_number) == 10
        and (bill_code + bill_number).isascii()
        and (bill_code + bill_number).isdigit()
    ):
        raise ValueError(
            f"a bill is named by a code of 8 digits and a number of 10, got {bill_code!r}-"
            f"{bill_number!r}"
        )
    return bill_code.encode("ascii"), bill_number.encode("ascii")


def role_id(role: Role) -> bytes:
    """bytes32 of a role as the contract computes it."""
    return b"\x00" * 32 if role is Role.ADMIN else keccak(text=role.value)


class Ledger:
    """Typed access to a deployed ZeroclaimLedger contract."""

    def __init__(self, backend: Backend, address: str, codec: ContractCodec | None = None) -> None:
        self.backend = backend
        self.address = address
        self.codec = codec or ContractCodec.load()
        self._nonces: dict[str, int] = {}
        self._lock = threading.RLock()

    @classmethod
    def deploy(
        cls, backend: Backend, authority: LocalAccount, codec: ContractCodec | None = None
    ) -> Ledger:
        """Deploys the contract with ``authority`` as ADMIN."""
        codec = codec or ContractCodec.load()
        ledger = cls(backend, ZERO_ADDRESS, codec)
        receipt = ledger._send([(authority, None, codec.deploy_data(authority.address))])[0]
        if not receipt.status or receipt.contract_address is None:
            raise TransactionFailed("0x" + receipt.tx_hash.hex(), "contract deployment failed")
        ledger.address = receipt.contract_address
        return ledger

    def check_deployed(self) -> None:
        """Raises ``LedgerConfigError`` unless the configured address holds our contract."""
        code = bytearray(self.backend.code_at(self.address))
        expected = bytearray.fromhex(self.codec.artifact["deployedBytecode"].removeprefix("0x"))
        if len(code) == len(expected):
            # Immutables (the EIP-712 domain cache) are written by the constructor.
            for start, length in self.codec.artifact["immutableRanges"]:
                code[start : start + length] = expected[start : start + length]
        if code != expected:
            raise LedgerConfigError(
                f"no ZeroclaimLedger of this build at {self.address}"
                f" on chain {self.backend.chain_id}"
            )

    # -- plumbing -----------------------------------------------------------------------------

    def read(self, function: str, *args: Any) -> tuple[Any, ...]:
        """Calls a view function and returns its outputs."""
        data = self.codec.encode_call(function, *args)
        try:
            out = self.backend.call(ZERO_ADDRESS, self.address, data)
        except CallReverted as exc:
            raise self.codec.decode_revert(exc.data) from None
        return self.codec.decode_result(function, out)

    def transact(self, sender: LocalAccount, function: str, *args: Any) -> TxReceipt:
        """Sends one call and returns its receipt; a revert raises its typed error."""
        return self.transact_many([Call(sender, function, args)])[0]

    def transact_many(self, calls: Sequence[Call]) -> list[TxReceipt]:
        """Sends independent calls together (one block on the embedded ledger).

        Each call is first executed against the current state; if one would revert, nothing is
        sent and its typed error is raised. The calls must not depend on each other, since each
        is checked without the others' effects. A call that still reverts once mined (the state
        moved in between) raises its error after the rest landed.
        """
        items = [
            (c.sender, self.address, self.codec.encode_call(c.function, *c.args)) for c in calls
        ]
        receipts = self._send(items)
        for receipt in receipts:
            if not receipt.status:
                if receipt.revert_data:
                    raise self.codec.decode_revert(receipt.revert_data)
                raise TransactionFailed("0x" + receipt.tx_hash.hex(), "reverted without data")
        return receipts

    def _send(self, items: Sequence[tuple[LocalAccount, str | None, bytes]]) -> list[TxReceipt]:
        with self._lock:
            try:
                return self.backend.send_raw_transactions(self._sign_all(items))
            except BaseException:
                # Nonces handed out for transactions that were never mined must be reused:
                # ask the node again next time.
                self._nonces.clear()
                raise

    def _sign_all(self, items: Sequence[tuple[LocalAccount, str | None, bytes]]) -> list[bytes]:
        fees = self.backend.fee_params()
        raw = []
        for sender, to, data in items:
            estimate = None
            if self.backend.needs_gas_estimate or len(items) > 1:
                try:
                    estimate = self.backend.estimate_gas(sender.address, to, data)
                except CallReverted as exc:
                    raise self.codec.decode_revert(exc.data) from None
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": self.backend.chain_id,
                "nonce": self._next_nonce(sender.address),
                "gas": self.backend.gas_limit_for(estimate),
                "maxFeePerGas": fees.max_fee_per_gas,
                "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
                "value": 0,
                "data": data,
            }
            if to is not None:
                tx["to"] = to
            raw.append(bytes(sender.sign_transaction(tx).raw_transaction))
        return raw

    def _next_nonce(self, address: str) -> int:
        nonce = self._nonces.get(address)
        if nonce is None:
            nonce = self.backend.nonce(address)
        self._nonces[address] = nonce + 1
        return nonce

    def events(
        self, from_block: int = 0, to_block: int | None = None, name: str | None = None
    ) -> list[Event]:
        """Decoded events of the contract in a block range (inclusive)."""
        topic = self.codec.event_topic(name) if name else None
        logs = self.backend.get_logs(self.address, from_block, to_block, topic)
        return [e for e in (self.codec.decode_log(lg) for lg in logs) if e is not None]

    # -- roles --------------------------------------------------------------------------------

    def grant_role(self, admin: LocalAccount, role: Role, account: str) -> TxReceipt:
        return self.transact(admin, "grantRole", role_id(role), account)

    def revoke_role(self, admin: LocalAccount, role: Role, account: str) -> TxReceipt:
        return self.transact(admin, "revokeRole", role_id(role), account)

    def has_role(self, role: Role, account: str) -> bool:
        return bool(self.read("hasRole", role_id(role), account)[0])

    # -- hospital registry --------------------------------------------------------------------

    def register_hospital(
        self,
        admin: LocalAccount,
        code: str,
        level: HospitalLevel,
        signer: str,
        valid_from: datetime,
    ) -> TxReceipt:
        """Registers a hospital with its first key; raises ``HospitalAlreadyRegistered``."""
        return self.transact(
            admin,
            "registerHospital",
            hospital_code_bytes(code),
            int(level),
            signer,
            to_timestamp(valid_from),
        )

    def rotate_hospital_key(
        self, admin: LocalAccount, code: str, signer: str, valid_from: datetime
    ) -> TxReceipt:
        """Adds a key valid from ``valid_from``; the previous key stops then."""
        return self.transact(
            admin, "rotateHospitalKey", hospital_code_bytes(code), signer, to_timestamp(valid_from)
        )

    def revoke_hospital_key(
        self, admin: LocalAccount, code: str, key_index: int, revoked_at: datetime
    ) -> TxReceipt:
        """Revokes a key from ``revoked_at`` on (may be backdated to a compromise); the
        contract records the anchored log size, after which no invoice of the key is paid."""
        return self.transact(
            admin,
            "revokeHospitalKey",
            hospital_code_bytes(code),
            key_index,
            to_timestamp(revoked_at),
        )

    def hospital(self, code: str) -> Hospital | None:
        """The registered hospital with all its keys, or None."""
        raw = hospital_code_bytes(code)
        registered, level, key_count = self.read("hospitalOf", raw)
        if not registered:
            return None
        keys = []
        for index in range(key_count):
            signer, valid_from, revoked_at, recorded, log_size = self.read(
                "hospitalKey", raw, index
            )
            keys.append(
                HospitalKey(
                    index,
                    signer,
                    from_timestamp(valid_from),
                    from_timestamp(revoked_at) if revoked_at else None,
                    log_size if recorded else None,
                )
            )
        return Hospital(code, HospitalLevel(level), tuple(keys))

    def is_key_valid_at(self, code: str, signer: str, moment: datetime) -> bool:
        return bool(
            self.read("isKeyValidAt", hospital_code_bytes(code), signer, to_timestamp(moment))[0]
        )

    # -- checkpoints --------------------------------------------------------------------------

    def anchor_checkpoint(self, sequencer: LocalAccount, checkpoint: Checkpoint) -> TxReceipt:
        """Anchors a checkpoint; raises ``CheckpointNotGrowing``."""
        return self.transact(sequencer, "anchorCheckpoint", checkpoint.size, checkpoint.root)

    def checkpoint(self, size: int) -> Checkpoint | None:
        """The anchored checkpoint of that size, or None."""
        (root,) = self.read("checkpointRoot", size)
        return None if size == 0 or root == b"\x00" * 32 else Checkpoint(size, bytes(root))

    def latest_checkpoint(self) -> Checkpoint | None:
        size, root = self.read("latestCheckpoint")
        return None if size == 0 else Checkpoint(size, bytes(root))

    # -- claims -------------------------------------------------------------------------------

    def claim_state(self, invoice_id: bytes) -> InvoiceLedgerState:
        """The claim state of an invoice, read from the contract's storage (one word: the
        state is packed in one slot; a second read only when a payer holds a lock), which
        costs microseconds where the view call costs milliseconds on py-evm."""
        word = self.backend.storage_at(self.address, self._mapping_slot("_claims", invoice_id))
        voided = bool(word & 0xFF)
        payer_number = (word >> 8) & 0xFFFFFFFF
        paid = (word >> 40) & 0xFFFFFFFFFFFFFFFF
        tag = (word >> 104).to_bytes(19, "big")
        locked_by = None
        if payer_number:
            account = self.backend.storage_at(
                self.address, self._mapping_slot("_payerAccounts", payer_number.to_bytes(32, "big"))
            )
            locked_by = to_checksum_address(account.to_bytes(32, "big")[12:])
        return InvoiceLedgerState(invoice_id, voided, locked_by, paid, tag)

    def claim_state_by_call(self, invoice_id: bytes) -> InvoiceLedgerState:
        """The same through the contract's ``claimOf`` view (what the storage read must equal)."""
        voided, locked_by, paid, tag = self.read("claimOf", invoice_id)
        return InvoiceLedgerState(
            invoice_id, voided, None if locked_by == ZERO_ADDRESS else locked_by, paid, bytes(tag)
        )

    def _mapping_slot(self, variable: str, key: bytes) -> int:
        base = self.codec.artifact["storage"][variable]["slot"]
        return int.from_bytes(keccak(key.rjust(32, b"\x00") + base.to_bytes(32, "big")), "big")

    def lock_invoice(self, payer: LocalAccount, invoice_id: bytes) -> TxReceipt:
        return self.transact(payer, "lockInvoice", invoice_id)

    def release_invoice(self, payer: LocalAccount, invoice_id: bytes) -> TxReceipt:
        return self.transact(payer, "releaseInvoice", invoice_id)

    def settle_batch(
        self, payer: LocalAccount, checkpoint_size: int, settlements: Sequence[Settlement]
    ) -> TxReceipt:
        """Settles payments all-or-nothing; the first refused payment raises its error
        (``KeyRevokedBeforeAnchoring`` and ``InvalidInvoiceSignature`` among them)."""
        return self.transact(
            payer, "settleBatch", checkpoint_size, [s.as_abi() for s in settlements]
        )

    def void_invoice(
        self,
        relayer: LocalAccount,
        checkpoint_size: int,
        leaf: InvoiceLeaf,
        leaf_index: int,
        proof: Sequence[bytes],
        red_invoice_id: bytes,
        signature: bytes,
    ) -> TxReceipt:
        """Relays a hospital-signed red-letter reversal (see :meth:`void_typed_data`); raises
        ``InvoiceAlreadyPaid`` once anything was paid (then the replacement must be named,
        :meth:`replace_invoice`)."""
        return self.transact(
            relayer,
            "voidInvoice",
            checkpoint_size,
            leaf.as_abi(),
            leaf_index,
            list(proof),
            red_invoice_id,
            signature,
        )

    def replace_invoice(
        self,
        relayer: LocalAccount,
        checkpoint_size: int,
        leaf: InvoiceLeaf,
        leaf_index: int,
        proof: Sequence[bytes],
        red_invoice_id: bytes,
        replacement: tuple[str, str],
        signature: bytes,
    ) -> TxReceipt:
        """Relays a hospital-signed reversal that names its replacement, bill ``replacement``
        (bill code, bill number) of the same hospital (see :meth:`replace_typed_data`): what
        was paid on ``leaf`` is carried over to it. Raises ``ValueError`` for a malformed bill
        reference, and the contract's ``ReplacementIsInvoice``, ``ReplacementVoided``,
        ``InvoiceVoided``, ``InvalidVoidSignature``..."""
        bill_code, bill_number = bill_reference_abi(*replacement)
        return self.transact(
            relayer,
            "replaceInvoice",
            checkpoint_size,
            leaf.as_abi(),
            leaf_index,
            list(proof),
            red_invoice_id,
            bill_code,
            bill_number,
            signature,
        )

    def invoice_id_of(self, hospital: str, bill_code: str, bill_number: str) -> bytes:
        """The invoice id the contract derives for a hospital's bill (``invoiceIdOf``: the
        rule of ``verifier.canonical.invoice_id``); raises ``InvalidBillReference``."""
        code, number = bill_code.encode("ascii"), bill_number.encode("ascii")
        (found,) = self.read("invoiceIdOf", hospital_code_bytes(hospital), code, number)
        return bytes(found)

    def replacements(self, from_block: int = 0, to_block: int | None = None) -> list[Replacement]:
        """The reversals that named a replacement, in chain order (``InvoiceReplaced``): what
        reconciliation and an auditor's monitor add to a replacement's own payments to explain
        its ``paid`` (:func:`chain.model.carried_into`)."""
        return [
            Replacement(
                e.args["invoice_id"],
                e.args["replacement_id"],
                e.args["carried"],
                e.args["replacement_paid"],
                e.block_number,
                e.tx_hash,
            )
            for e in self.events(from_block, to_block, name="InvoiceReplaced")
        ]

    # -- EIP-712 ------------------------------------------------------------------------------

    def domain(self) -> dict[str, Any]:
        """The EIP-712 domain of this deployment (chain id and contract bind every signature)."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.backend.chain_id,
            "verifyingContract": self.address,
        }

    def void_typed_data(self, invoice_id: bytes, red_invoice_id: bytes) -> dict[str, Any]:
        """The typed data a hospital signs to void ``invoice_id`` by ``red_invoice_id``."""
        return void_typed_data(self.domain(), invoice_id, red_invoice_id)

    def replace_typed_data(
        self, invoice_id: bytes, red_invoice_id: bytes, replacement_id: bytes
    ) -> dict[str, Any]:
        """The typed data a hospital signs to void ``invoice_id`` by ``red_invoice_id`` and
        carry what was paid on it over to ``replacement_id``."""
        return replace_typed_data(self.domain(), invoice_id, red_invoice_id, replacement_id)

    def record_digest(self, record_hash: bytes) -> bytes:
        """keccak256(0x1901 ‖ domainSeparator ‖ recordHash): the digest a hospital signs for
        an invoice (``verifier.canonical.signing_digest``) and ``settleBatch`` recovers."""
        separator = keccak(
            encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    keccak(text=_DOMAIN_TYPE),
                    keccak(text=DOMAIN_NAME),
                    keccak(text=DOMAIN_VERSION),
                    self.backend.chain_id,
                    self.address,
                ],
            )
        )
        return keccak(b"\x19\x01" + separator + record_hash)

    def sign_record(self, hospital_key: LocalAccount, record_hash: bytes) -> bytes:
        """Signs an invoice record hash with a hospital key (in tests and benchmarks; a real
        hospital signs at its office, see ``api.adapters.hospital_files``)."""
        signed = Account.unsafe_sign_hash(self.record_digest(record_hash), hospital_key.key)
        return bytes(signed.signature)

    def sign_void(
        self, hospital_key: LocalAccount, invoice_id: bytes, red_invoice_id: bytes
    ) -> bytes:
        """Signs a reversal with a hospital key (done by the hospital, never by the service)."""
        message = encode_typed_data(full_message=self.void_typed_data(invoice_id, red_invoice_id))
        return bytes(Account.sign_message(message, hospital_key.key).signature)

    def sign_replace(
        self,
        hospital_key: LocalAccount,
        invoice_id: bytes,
        red_invoice_id: bytes,
        replacement_id: bytes,
    ) -> bytes:
        """Signs a reversal naming its replacement (done by the hospital, never the service)."""
        data = self.replace_typed_data(invoice_id, red_invoice_id, replacement_id)
        message = encode_typed_data(full_message=data)
        return bytes(Account.sign_message(message, hospital_key.key).signature)

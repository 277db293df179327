"""Errors of the ledger package: one root, one class per contract error, named for the domain.

A contract revert is translated here, at the boundary, into a Python error that names the
invoice, checkpoint or hospital concerned. Each contract error class lists its ABI arguments in
``abi_fields`` (snake_case, in ABI order); ``tests/chain/test_artifacts.py`` proves that every
custom error of the contract ABI has its class.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LedgerError(Exception):
    """Root of every error raised by the ledger package."""


class LedgerUnavailable(LedgerError):
    """Raised when the ledger backend cannot be reached or answered with a transport error."""


class LedgerConfigError(LedgerError):
    """Raised when the ledger configuration or the data directory is unusable."""


class TransactionFailed(LedgerError):
    """Raised when a transaction failed without revert data we can decode (e.g. out of gas)."""

    def __init__(self, tx_hash: str, reason: str) -> None:
        super().__init__(f"transaction {tx_hash} failed: {reason}")
        self.tx_hash = tx_hash
        self.reason = reason


class ContractRevert(LedgerError):
    """Raised when the contract reverted; subclasses carry the custom error's arguments."""

    abi_name: ClassVar[str] = ""
    abi_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any) -> None:
        self.args_by_name = dict(zip(self.abi_fields, args, strict=True))
        for name, value in self.args_by_name.items():
            setattr(self, name, value)
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.args_by_name.items())
        super().__init__(f"{self.abi_name or type(self).__name__}({shown})")


class UnknownRevert(ContractRevert):
    """Raised when the revert data matches no known custom error."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        LedgerError.__init__(self, f"contract reverted with undecoded data 0x{data.hex()}")


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


class Unauthorized(ContractRevert):
    """Raised when the sender lacks the role a function needs (OpenZeppelin AccessControl)."""

    abi_name = "AccessControlUnauthorizedAccount"
    abi_fields = ("account", "role")


class BadConfirmation(ContractRevert):
    """Raised when an account renounces a role for another account (OpenZeppelin AccessControl)."""

    abi_name = "AccessControlBadConfirmation"
    abi_fields = ()


class HospitalAlreadyRegistered(ContractRevert):
    """Raised when registering a hospital code that is already registered."""

    abi_name = "LedgerHospitalAlreadyRegistered"
    abi_fields = ("hospital",)


class UnknownHospital(ContractRevert):
    """Raised when a hospital code is not registered."""

    abi_name = "LedgerUnknownHospital"
    abi_fields = ("hospital",)


class InvalidLevel(ContractRevert):
    """Raised when a hospital level is not one of township, primary, secondary, tertiary."""

    abi_name = "LedgerInvalidLevel"
    abi_fields = ("level",)


class InvalidSigner(ContractRevert):
    """Raised when a hospital signing key is the zero address."""

    abi_name = "LedgerInvalidSigner"
    abi_fields = ("signer",)


class KeyNotNewer(ContractRevert):
    """Raised when a rotated key would not start after the current key."""

    abi_name = "LedgerKeyNotNewer"
    abi_fields = ("hospital", "valid_from", "current_valid_from")


class UnknownKey(ContractRevert):
    """Raised when revoking a key index the hospital does not have."""

    abi_name = "LedgerUnknownKey"
    abi_fields = ("hospital", "key_index")


class InvalidRevocationTime(ContractRevert):
    """Raised when a revocation time lies before the key's valid-from time."""

    abi_name = "LedgerInvalidRevocationTime"
    abi_fields = ("hospital", "key_index", "revoked_at")


class CheckpointNotGrowing(ContractRevert):
    """Raised when a checkpoint's size is not above the latest anchored size."""

    abi_name = "LedgerCheckpointNotGrowing"
    abi_fields = ("size", "latest_size")


class UnknownCheckpoint(ContractRevert):
    """Raised when a proof names a checkpoint size that was never anchored."""

    abi_name = "LedgerUnknownCheckpoint"
    abi_fields = ("size",)


class InvalidInclusionProof(ContractRevert):
    """Raised when an invoice leaf's inclusion proof does not lead to the checkpoint root."""

    abi_name = "LedgerInvalidInclusionProof"
    abi_fields = ("invoice_id", "leaf_index", "checkpoint_size")


class RecordMismatch(ContractRevert):
    """Raised when an invoice id comes with another record hash than the one bound earlier."""

    abi_name = "LedgerRecordMismatch"
    abi_fields = ("invoice_id", "bound_tag", "given_tag")


class InvoiceVoided(ContractRevert):
    """Raised when locking, settling or voiding an invoice that was voided (红冲)."""

    abi_name = "LedgerInvoiceVoided"
    abi_fields = ("invoice_id",)


class InvoiceLocked(ContractRevert):
    """Raised when an invoice is locked for review by another payer."""

    abi_name = "LedgerInvoiceLocked"
    abi_fields = ("invoice_id", "locked_by")


class InvoiceNotLocked(ContractRevert):
    """Raised when a payer releases a lock it does not hold."""

    abi_name = "LedgerInvoiceNotLocked"
    abi_fields = ("invoice_id", "caller")


class PaidAboveTotal(ContractRevert):
    """Raised when a payment would bring the cumulative paid amount above the invoice total."""

    abi_name = "LedgerPaidAboveTotal"
    abi_fields = ("invoice_id", "paid", "amount", "total")


class ZeroAmount(ContractRevert):
    """Raised when a settlement pays nothing."""

    abi_name = "LedgerZeroAmount"
    abi_fields = ("invoice_id",)


class EmptyBatch(ContractRevert):
    """Raised when a settlement batch holds no payment."""

    abi_name = "LedgerEmptyBatch"
    abi_fields = ()


class InvoiceAlreadyPaid(ContractRevert):
    """Raised when voiding an invoice on which something was paid (or carried over) without
    naming its replacement."""

    abi_name = "LedgerInvoiceAlreadyPaid"
    abi_fields = ("invoice_id", "paid")


class InvalidVoidSignature(ContractRevert):
    """Raised when a reversal is not signed by a currently valid key of the issuing hospital."""

    abi_name = "LedgerInvalidVoidSignature"
    abi_fields = ("invoice_id", "hospital", "signer")


class UnauthorizedRelayer(ContractRevert):
    """Raised when a reversal is sent by an account that is neither sequencer nor hospital."""

    abi_name = "LedgerUnauthorizedRelayer"
    abi_fields = ("caller",)


class InvalidInvoiceSignature(ContractRevert):
    """Raised when a settlement's invoice signature recovers no key, or one that is no key of
    the leaf's hospital."""

    abi_name = "LedgerInvalidInvoiceSignature"
    abi_fields = ("invoice_id", "hospital", "signer")


class KeyRevokedBeforeAnchoring(ContractRevert):
    """Raised when settling an invoice signed by a key whose revocation was recorded before
    the invoice was first anchored (its leaf index is at or past the recorded log size)."""

    abi_name = "LedgerKeyRevokedBeforeAnchoring"
    abi_fields = ("invoice_id", "hospital", "signer")


class InvalidBillReference(ContractRevert):
    """Raised when a replacement bill is not named by a bill code of 8 ASCII digits and a bill
    number of 10."""

    abi_name = "LedgerInvalidBillReference"
    abi_fields = ("bill_code", "bill_number")


class ReplacementIsInvoice(ContractRevert):
    """Raised when a reversal names the invoice it voids as its own replacement."""

    abi_name = "LedgerReplacementIsInvoice"
    abi_fields = ("invoice_id",)


class ReplacementVoided(ContractRevert):
    """Raised when a reversal names a replacement that was voided (what it carried would be
    stranded on a bill that is never paid)."""

    abi_name = "LedgerReplacementVoided"
    abi_fields = ("invoice_id", "replacement_id")


REVERT_CLASSES: dict[str, type[ContractRevert]] = {
    cls.abi_name: cls
    for cls in ContractRevert.__subclasses__()
    if cls is not UnknownRevert and cls.abi_name
}

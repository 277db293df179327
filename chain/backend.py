"""The port every ledger backend implements: raw signed transactions in, receipts and logs out.

Transactions are always signed locally (eth-account) by the caller, so a backend never holds a
key. The embedded backend (py-evm in process) and the RPC backend (web3.py against any JSON-RPC
node) implement this interface; ``chain.factory.open_backend`` picks one from the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chain.abi import Log


@dataclass(frozen=True)
class TxReceipt:
    """The outcome of one mined transaction.

    ``revert_data`` holds the revert payload of a failed transaction when the backend knows it
    (the embedded backend always does; the RPC backend replays the call to find it).
    """

    tx_hash: bytes
    block_number: int
    status: bool
    gas_used: int
    logs: tuple[Log, ...]
    contract_address: str | None = None
    revert_data: bytes | None = None


@dataclass(frozen=True)
class FeeParams:
    """EIP-1559 fee fields to put in a transaction."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int


class CallReverted(Exception):
    """Raised by ``Backend.call`` and ``Backend.estimate_gas`` when execution reverts."""

    def __init__(self, data: bytes) -> None:
        super().__init__(f"reverted: 0x{data.hex()}")
        self.data = data


class Backend(Protocol):
    """A ledger node seen from the service. Methods raise ``LedgerUnavailable`` on transport
    failure and ``CallReverted`` where documented."""

    chain_id: int
    #: True when the backend can execute without a gas estimate (it sets a generous limit).
    needs_gas_estimate: bool

    def send_raw_transactions(self, raw: list[bytes]) -> list[TxReceipt]:
        """Sends signed transactions in order and returns their receipts once mined.

        The embedded backend packs them all into one block.
        """
        ...

    def call(self, sender: str, to: str, data: bytes) -> bytes:
        """Executes a read-only call at the latest block; raises ``CallReverted``."""
        ...

    def estimate_gas(self, sender: str, to: str | None, data: bytes) -> int:
        """Gas a transaction would use; raises ``CallReverted``."""
        ...

    def nonce(self, address: str) -> int:
        """The next nonce of an account, counting pending transactions."""
        ...

    def fee_params(self) -> FeeParams:
        """Fees that get a transaction into the next block."""
        ...

    def gas_limit_for(self, estimate: int | None) -> int:
        """The gas limit to set on a transaction, from an estimate when one was made."""
        ...

    def block_number(self) -> int:
        """Number of the latest block."""
        ...

    def block_timestamp(self, block_number: int | None = None) -> int:
        """Timestamp (seconds) of a block, the latest by default."""
        ...

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt of a mined transaction, or None."""
        ...

    def get_logs(
        self,
        address: str,
        from_block: int,
        to_block: int | None = None,
        topic0: bytes | None = None,
    ) -> list[Log]:
        """Logs of a contract in a block range (inclusive), optionally of one event."""
        ...

    def storage_at(self, address: str, slot: int) -> int:
        """One storage word of a contract at the latest block."""
        ...

    def code_at(self, address: str) -> bytes:
        """The runtime code deployed at an address (empty when none)."""
        ...

    def close(self) -> None:
        """Releases files and connections."""
        ...

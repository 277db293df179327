"""The RPC ledger: any Ethereum JSON-RPC node (Besu QBFT/IBFT, FISCO BCOS web3 RPC, anvil).

web3.py is imported only here, so the embedded default does not pay for it. Transactions
arrive signed (see ``chain.ledger``); this backend sends them, waits for their receipts, and
replays a failed one as a call to recover its revert data, so that reverts read the same as on
the embedded ledger.
"""

from __future__ import annotations

from typing import Any, cast

from eth_utils.address import to_checksum_address

from chain.abi import Log
from chain.backend import CallReverted, FeeParams, TxReceipt
from chain.errors import LedgerUnavailable

#: Head-room over the node's gas estimate: state may move between estimate and inclusion.
GAS_MARGIN_NUMERATOR = 5
GAS_MARGIN_DENOMINATOR = 4


def _revert_bytes(exc: Exception) -> bytes | None:
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, bytes):
        return data
    return None


class RpcBackend:
    """A JSON-RPC node through web3.py. ``poa`` handles the long extra-data of QBFT/IBFT/Clique
    block headers."""

    needs_gas_estimate = True

    def __init__(
        self,
        url: str,
        poa: bool = False,
        timeout_seconds: float = 30.0,
        expected_chain_id: int | None = None,
    ) -> None:
        from web3 import HTTPProvider, Web3
        from web3.middleware import ExtraDataToPOAMiddleware

        self.url = url
        self._timeout = timeout_seconds
        self.w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout_seconds}))
        if poa:
            self.w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        try:
            self.chain_id = int(self.w3.eth.chain_id)
        except Exception as exc:
            raise LedgerUnavailable(f"cannot reach JSON-RPC node at {url}: {exc}") from exc
        if expected_chain_id is not None and expected_chain_id != self.chain_id:
            raise LedgerUnavailable(
                f"node at {url} is chain {self.chain_id}, configuration says {expected_chain_id}"
            )

    def _guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from web3.exceptions import ContractLogicError

        try:
            return fn(*args, **kwargs)
        except ContractLogicError as exc:
            data = _revert_bytes(exc)
            raise CallReverted(data or b"") from exc
        except (ConnectionError, OSError, TimeoutError) as exc:
            raise LedgerUnavailable(f"{what} failed at {self.url}: {exc}") from exc

    def send_raw_transactions(self, raw: list[bytes]) -> list[TxReceipt]:
        hashes = [
            self._guard("eth_sendRawTransaction", self.w3.eth.send_raw_transaction, r) for r in raw
        ]
        receipts = []
        for tx_hash in hashes:
            evm_receipt = self._guard(
                "waiting for a receipt",
                self.w3.eth.wait_for_transaction_receipt,
                tx_hash,
                timeout=self._timeout,
                poll_latency=0.02,
            )
            receipts.append(self._receipt(evm_receipt))
        return receipts

    def _receipt(self, r: Any) -> TxReceipt:
        status = bool(r["status"])
        revert = None if status else self._replay(r)
        return TxReceipt(
            tx_hash=bytes(r["transactionHash"]),
            block_number=int(r["blockNumber"]),
            status=status,
            gas_used=int(r["gasUsed"]),
            logs=tuple(self._log(lg) for lg in r["logs"]),
            contract_address=r.get("contractAddress"),
            revert_data=revert,
        )

    def _replay(self, r: Any) -> bytes | None:
        tx = self.w3.eth.get_transaction(r["transactionHash"])
        call: dict[str, Any] = {
            "from": tx["from"],
            "to": tx["to"],
            "data": tx["input"],
            "gas": tx["gas"],
        }
        try:
            self.w3.eth.call(cast(Any, call), block_identifier=int(r["blockNumber"]) - 1)
        except Exception as exc:
            return _revert_bytes(exc)
        return None

    @staticmethod
    def _log(lg: Any) -> Log:
        return Log(
            address=to_checksum_address(lg["address"]),
            topics=tuple(bytes(t) for t in lg["topics"]),
            data=bytes(lg["data"]),
            block_number=int(lg["blockNumber"]),
            tx_hash=bytes(lg["transactionHash"]),
            log_index=int(lg["logIndex"]),
        )

    def call(self, sender: str, to: str, data: bytes) -> bytes:
        tx = {"from": sender, "to": to, "data": data}
        return bytes(self._guard("eth_call", self.w3.eth.call, tx))

    def estimate_gas(self, sender: str, to: str | None, data: bytes) -> int:
        tx: dict[str, Any] = {"from": sender, "data": data}
        if to is not None:
            tx["to"] = to
        return int(self._guard("eth_estimateGas", self.w3.eth.estimate_gas, tx))

    def nonce(self, address: str) -> int:
        return int(
            self._guard(
                "eth_getTransactionCount", self.w3.eth.get_transaction_count, address, "pending"
            )
        )

    def fee_params(self) -> FeeParams:
        block = self._guard("eth_getBlockByNumber", self.w3.eth.get_block, "latest")
        base_fee = int(block.get("baseFeePerGas", 0) or 0)
        # Twice the base fee survives six full blocks of EIP-1559 increases; zero-fee
        # permissioned networks (Besu zeroBaseFee) report 0 and get 0.
        return FeeParams(max_fee_per_gas=2 * base_fee, max_priority_fee_per_gas=0)

    def gas_limit_for(self, estimate: int | None) -> int:
        if estimate is None:
            raise ValueError("the RPC backend needs a gas estimate")
        return estimate * GAS_MARGIN_NUMERATOR // GAS_MARGIN_DENOMINATOR + 20_000

    def block_number(self) -> int:
        return int(self._guard("eth_blockNumber", lambda: self.w3.eth.block_number))

    def block_timestamp(self, block_number: int | None = None) -> int:
        ident = "latest" if block_number is None else block_number
        return int(self._guard("eth_getBlockByNumber", self.w3.eth.get_block, ident)["timestamp"])

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        from web3.exceptions import TransactionNotFound

        try:
            r = self.w3.eth.get_transaction_receipt(cast(Any, tx_hash))
        except TransactionNotFound:
            return None
        return self._receipt(r)

    def get_logs(
        self,
        address: str,
        from_block: int,
        to_block: int | None = None,
        topic0: bytes | None = None,
    ) -> list[Log]:
        latest = self.block_number() if to_block is None else to_block
        if from_block > latest:  # nodes answer an error for a range past the head
            return []
        params: dict[str, Any] = {
            "address": to_checksum_address(address),
            "fromBlock": from_block,
            "toBlock": latest,
        }
        if topic0 is not None:
            params["topics"] = ["0x" + topic0.hex()]
        return [self._log(lg) for lg in self._guard("eth_getLogs", self.w3.eth.get_logs, params)]

    def storage_at(self, address: str, slot: int) -> int:
        word = self._guard(
            "eth_getStorageAt", self.w3.eth.get_storage_at, to_checksum_address(address), slot
        )
        return int.from_bytes(bytes(word), "big")

    def code_at(self, address: str) -> bytes:
        return bytes(self._guard("eth_getCode", self.w3.eth.get_code, to_checksum_address(address)))

    def close(self) -> None:
        pass

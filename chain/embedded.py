"""The embedded ledger: py-evm in process, one sealer, instant finality, durable on disk.

Everything lives in one SQLite file: py-evm's key-value store (state trie, blocks), plus our own
indexes of receipts by transaction hash and of logs by (address, topic0, block), so that
receipt and event lookups cost the same at block 10 and at block 10 million (eth-tester scans
blocks backwards instead). A block is sealed per ``send_raw_transactions`` call, holding all of
its transactions, and one SQLite transaction commits the block, its state and the indexes: a
crash loses the block being built and nothing else.

Fees are zero, as on a permissioned Besu network with ``zeroBaseFee``: the genesis base fee is
0 and blocks never pass the gas target, so the base fee stays 0 and accounts need no balance.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, cast

import rlp
from eth import constants
from eth.abc import ComputationAPI, SignedTransactionAPI, StateAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.exceptions import CanonicalHeadNotFound
from eth.vm.forks.cancun import CancunVM
from eth.vm.spoof import SpoofTransaction
from eth_typing import BlockNumber
from eth_utils.address import to_canonical_address, to_checksum_address

from chain.abi import Log
from chain.backend import CallReverted, FeeParams, TxReceipt
from chain.errors import LedgerError

#: Block gas limit: large enough that a settlement batch of thousands fits in one block.
BLOCK_GAS_LIMIT = 100_000_000_000
#: Gas limit given to each transaction; the unused part costs nothing (fees are zero).
TX_GAS_LIMIT = 1_000_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS receipts (
    tx_hash BLOB PRIMARY KEY, block_number INTEGER NOT NULL, body BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
    block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, address BLOB NOT NULL,
    topic0 BLOB, topics BLOB NOT NULL, data BLOB NOT NULL, tx_hash BLOB NOT NULL,
    PRIMARY KEY (block_number, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_by_topic ON logs (address, topic0, block_number);
"""


class _SqliteKV(BaseDB):
    """py-evm's key-value store on a SQLite connection; writes wait for the block commit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __getitem__(self, key: bytes) -> bytes:
        row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def __delitem__(self, key: bytes) -> None:
        if self._conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        return self._conn.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone() is not None


def _log_from_evm(
    address: bytes, topics: tuple[int, ...], data: bytes, block: int, tx_hash: bytes, index: int
) -> Log:
    return Log(
        address=to_checksum_address(address),
        topics=tuple(t.to_bytes(32, "big") for t in topics),
        data=bytes(data),
        block_number=block,
        tx_hash=tx_hash,
        log_index=index,
    )


def _encode_receipt(r: TxReceipt) -> bytes:
    logs = [[lg.address.encode(), list(lg.topics), lg.data, lg.log_index] for lg in r.logs]
    return bytes(
        rlp.encode(
            [
                r.block_number,
                int(r.status),
                r.gas_used,
                logs,
                (r.contract_address or "").encode(),
                r.revert_data if r.revert_data is not None else b"",
                int(r.revert_data is not None),
            ]
        )
    )


def _decode_receipt(tx_hash: bytes, body: bytes) -> TxReceipt:
    block, status, gas, logs, contract, revert, has_revert = rlp.decode(body)
    block_number = int.from_bytes(block, "big")
    return TxReceipt(
        tx_hash=tx_hash,
        block_number=block_number,
        status=bool(int.from_bytes(status, "big")),
        gas_used=int.from_bytes(gas, "big"),
        logs=tuple(
            Log(
                a.decode(),
                tuple(bytes(t) for t in topics),
                bytes(d),
                block_number,
                tx_hash,
                int.from_bytes(i, "big"),
            )
            for a, topics, d, i in logs
        ),
        contract_address=contract.decode() or None,
        revert_data=bytes(revert) if int.from_bytes(has_revert, "big") else None,
    )


class EmbeddedBackend:
    """py-evm ledger in one SQLite file. Single writer: one process opens a data file."""

    needs_gas_estimate = False

    def __init__(self, path: Path, chain_id: int) -> None:
        self.path = path
        self.chain_id = chain_id
        self._state: StateAPI | None = None
        self._state_at: bytes | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a sealed block is on disk when send_raw_transactions returns (instant finality).
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._conn.commit()
        chain_class = MiningChain.configure(
            __name__="ZeroclaimChain", vm_configuration=((0, CancunVM),), chain_id=chain_id
        )
        # AtomicDB applies each batch to the KV store; the SQLite commit per block makes it durable.
        self._db = AtomicDB(_SqliteKV(self._conn))
        try:
            self._chain = chain_class(self._db)
        except CanonicalHeadNotFound:
            genesis = chain_class.from_genesis(self._db, self._genesis_params(), {})
            self._chain = cast(MiningChain, genesis)
            self._conn.commit()

    @staticmethod
    def _genesis_params() -> dict[str, Any]:
        return {
            "difficulty": 0,
            "gas_limit": BLOCK_GAS_LIMIT,
            "timestamp": int(time.time()),
            "coinbase": constants.ZERO_ADDRESS,
            "extra_data": b"zeroclaim embedded ledger",
            "nonce": b"\x00" * 8,
            "mix_hash": constants.ZERO_HASH32,
            "base_fee_per_gas": 0,
        }

    # -- writes -------------------------------------------------------------------------------

    def send_raw_transactions(self, raw: list[bytes]) -> list[TxReceipt]:
        """Seals one block holding all of ``raw`` and returns their receipts."""
        if not raw:
            return []
        chain = self._chain
        builder = chain.get_vm().get_transaction_builder()
        try:
            txs: list[SignedTransactionAPI] = [builder.decode(bytes(r)) for r in raw]
            parent = chain.get_canonical_head()
            chain.set_header_timestamp(max(int(time.time()), parent.timestamp + 1))
            result, evm_receipts, computations = chain.mine_all(txs)
        except (ValueError, rlp.DecodingError, KeyError) as exc:
            self._conn.rollback()
            chain.header = chain.create_header_from_parent(chain.get_canonical_head())
            raise LedgerError(f"transaction rejected by the embedded ledger: {exc}") from exc
        except BaseException:
            self._conn.rollback()
            raise
        block_number = result.imported_block.header.block_number
        receipts = []
        log_index = 0
        previous_gas = 0
        for tx, evm_receipt, computation in zip(txs, evm_receipts, computations, strict=True):
            logs = []
            for address, topics, data in computation.get_log_entries():
                logs.append(_log_from_evm(address, topics, data, block_number, tx.hash, log_index))
                log_index += 1
            receipt = TxReceipt(
                tx_hash=tx.hash,
                block_number=block_number,
                status=not computation.is_error,
                gas_used=evm_receipt.gas_used - previous_gas,
                logs=tuple(logs),
                contract_address=self._created(tx, computation),
                revert_data=bytes(computation.output) if computation.is_error else None,
            )
            previous_gas = evm_receipt.gas_used
            receipts.append(receipt)
        self._index(receipts)
        self._conn.commit()
        return receipts

    @staticmethod
    def _created(tx: SignedTransactionAPI, computation: ComputationAPI) -> str | None:
        if tx.to != b"" or computation.is_error:
            return None
        return to_checksum_address(computation.msg.storage_address)

    def _index(self, receipts: list[TxReceipt]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO receipts (tx_hash, block_number, body) VALUES (?, ?, ?)",
            [(r.tx_hash, r.block_number, _encode_receipt(r)) for r in receipts],
        )
        self._conn.executemany(
            "INSERT OR REPLACE INTO logs (block_number, log_index, address, topic0, topics, data,"
            " tx_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    lg.block_number,
                    lg.log_index,
                    to_canonical_address(lg.address),
                    lg.topics[0] if lg.topics else None,
                    b"".join(lg.topics),
                    lg.data,
                    lg.tx_hash,
                )
                for r in receipts
                for lg in r.logs
            ],
        )

    # -- reads --------------------------------------------------------------------------------

    def call(self, sender: str, to: str, data: bytes) -> bytes:
        computation = self._execute(sender, to, data)
        if computation.is_error:
            raise CallReverted(bytes(computation.output))
        return bytes(computation.output)

    def estimate_gas(self, sender: str, to: str | None, data: bytes) -> int:
        computation = self._execute(sender, to, data)
        if computation.is_error:
            raise CallReverted(bytes(computation.output))
        return TX_GAS_LIMIT - computation.get_gas_remaining()

    def _execute(self, sender: str, to: str | None, data: bytes) -> ComputationAPI:
        vm = self._chain.get_vm(self._chain.get_canonical_head())
        unsigned = vm.create_unsigned_transaction(
            nonce=vm.state.get_nonce(to_canonical_address(sender)),
            gas_price=0,
            gas=TX_GAS_LIMIT,
            to=to_canonical_address(to) if to else constants.CREATE_CONTRACT_ADDRESS,
            value=0,
            data=data,
        )
        spoofed = SpoofTransaction(unsigned, from_=to_canonical_address(sender))
        with vm.in_costless_state() as state:
            return state.costless_execute_transaction(spoofed)  # type: ignore[arg-type]

    def _head_state(self) -> StateAPI:
        """The state at the head block, built once per block: building it costs a
        millisecond, and reads through it hit its caches."""
        head = self._chain.get_canonical_head()
        if self._state is None or self._state_at != head.hash:
            self._state = self._chain.get_vm(head).state
            self._state_at = head.hash
        return self._state

    def nonce(self, address: str) -> int:
        state = self._head_state()
        return int(state.get_nonce(to_canonical_address(address)))

    def fee_params(self) -> FeeParams:
        return FeeParams(max_fee_per_gas=0, max_priority_fee_per_gas=0)

    def gas_limit_for(self, estimate: int | None) -> int:
        return TX_GAS_LIMIT

    def block_number(self) -> int:
        return int(self._chain.get_canonical_head().block_number)

    def block_timestamp(self, block_number: int | None = None) -> int:
        if block_number is None:
            return int(self._chain.get_canonical_head().timestamp)
        header = self._chain.get_canonical_block_header_by_number(BlockNumber(block_number))
        return int(header.timestamp)

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        row = self._conn.execute(
            "SELECT body FROM receipts WHERE tx_hash = ?", (bytes(tx_hash),)
        ).fetchone()
        return None if row is None else _decode_receipt(bytes(tx_hash), bytes(row[0]))

    def get_logs(
        self,
        address: str,
        from_block: int,
        to_block: int | None = None,
        topic0: bytes | None = None,
    ) -> list[Log]:
        sql = (
            "SELECT block_number, log_index, topics, data, tx_hash FROM logs"
            " WHERE address = ? AND block_number >= ? AND block_number <= ?"
        )
        params: list[Any] = [
            to_canonical_address(address),
            from_block,
            self.block_number() if to_block is None else to_block,
        ]
        if topic0 is not None:
            sql += " AND topic0 = ?"
            params.append(topic0)
        sql += " ORDER BY block_number, log_index"
        checksum = to_checksum_address(address)
        return [
            Log(
                checksum,
                tuple(bytes(t[i : i + 32]) for i in range(0, len(t), 32)),
                bytes(d),
                block,
                bytes(tx),
                index,
            )
            for block, index, t, d, tx in self._conn.execute(sql, params)
        ]

    def storage_at(self, address: str, slot: int) -> int:
        state = self._head_state()
        return int(state.get_storage(to_canonical_address(address), slot))

    def code_at(self, address: str) -> bytes:
        state = self._head_state()
        return bytes(state.get_code(to_canonical_address(address)))

    def close(self) -> None:
        self._conn.close()

"""The persistent Merkle log: durability, idempotent appends, conflicts, proofs at any size."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import merkle
from chain.invoice_log import InvoiceLog, LogConflict, LogError, LogRangeError
from chain.log import MerkleLog
from chain.merkle import (
    EMPTY_ROOT,
    IndexOutOfRange,
    InvalidSize,
    MerkleError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)


def key(i: int) -> bytes:
    """A 32-byte key, like an invoice id."""
    return hashlib.sha256(b"invoice %d" % i).digest()


def entry(i: int) -> bytes:
    return b"entry %d " % i + bytes(i % 7)


def items(lo: int, hi: int) -> list[tuple[bytes, bytes]]:
    return [(key(i), entry(i)) for i in range(lo, hi)]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "log.sqlite"


@pytest.fixture
def log(db: Path) -> Iterator[MerkleLog]:
    with MerkleLog(db) as opened:
        yield opened


def table_counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        leaves = conn.execute("SELECT count(*) FROM leaves").fetchone()[0]
        nodes = conn.execute("SELECT count(*) FROM nodes").fetchone()[0]
    finally:
        conn.close()
    return int(leaves), int(nodes)


def test_empty_log(log: MerkleLog) -> None:
    assert log.size == 0
    assert log.root() == EMPTY_ROOT == log.root(0)
    assert log.append([]) == []
    assert log.index_of(key(0)) is None
    assert log.consistency_proof(0) == []
    with pytest.raises(IndexOutOfRange):
        log.inclusion_proof(0)


def test_append_returns_indexes_and_stores_entries(log: MerkleLog) -> None:
    assert log.append(items(0, 3)) == [0, 1, 2]
    assert log.append(items(3, 5)) == [3, 4]
    assert log.size == 5
    for i in range(5):
        assert log.index_of(key(i)) == i
        assert log.entry(i) == entry(i)
        assert log.leaf_hash(i) == leaf_hash(entry(i))
    assert log.root() == root_hash([entry(i) for i in range(5)])


def test_schema_and_pragmas(log: MerkleLog, db: Path) -> None:
    log.append(items(0, 5))
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        nodes = conn.execute("SELECT level, idx FROM nodes ORDER BY level, idx").fetchall()
        leaves = conn.execute("SELECT idx, key, entry FROM leaves ORDER BY idx").fetchall()
    finally:
        conn.close()
    # 5 leaves: level 0 nodes 0..4, level 1 nodes 0..1, level 2 node 0; no incomplete subtree.
    assert nodes == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1), (2, 0)]
    assert leaves == [(i, key(i), entry(i)) for i in range(5)]


def test_survives_close_and_reopen(db: Path) -> None:
    with MerkleLog(db) as log:
        log.append(items(0, 1000))
        log.append(items(1000, 1337))
        root, size = log.root(), log.size
        proof = log.inclusion_proof(700)
        consistency = log.consistency_proof(1000)
        past_root = log.root(1000)
    with MerkleLog(db) as log:
        assert (log.size, log.root()) == (size, root)
        assert log.root(1000) == past_root
        assert log.inclusion_proof(700) == proof
        assert log.consistency_proof(1000) == consistency
        assert log.index_of(key(1336)) == 1336
        # the reloaded frontier continues the tree correctly
        log.append(items(1337, 2001))
        assert log.root() == root_hash([entry(i) for i in range(2001)])
    with MerkleLog(db) as log:
        assert log.size == 2001
        assert log.root() == root_hash([entry(i) for i in range(2001)])


def test_re_append_is_idempotent(log: MerkleLog, db: Path) -> None:
    assert log.append(items(0, 10)) == list(range(10))
    root, counts = log.root(), table_counts(db)
    assert log.append(items(0, 10)) == list(range(10))
    assert log.append(items(3, 4)) == [3]
    assert (log.size, log.root(), table_counts(db)) == (10, root, counts)
    # known and new keys mixed: known ones keep their index, new ones are appended in order
    batch = [(key(10), entry(10)), (key(2), entry(2)), (key(11), entry(11)), (key(9), entry(9))]
    assert log.append(batch) == [10, 2, 11, 9]
    assert log.size == 12
    assert log.root() == root_hash([entry(i) for i in range(12)])


def test_duplicate_key_inside_a_batch(log: MerkleLog) -> None:
    batch = [(key(0), entry(0)), (key(1), entry(1)), (key(0), entry(0))]
    assert log.append(batch) == [0, 1, 0]
    assert log.size == 2
    assert log.root() == root_hash([entry(0), entry(1)])


def test_conflict_with_a_logged_key_writes_nothing(log: MerkleLog, db: Path) -> None:
    log.append(items(0, 10))
    root, counts = log.root(), table_counts(db)
    batch = [*items(10, 20), (key(4), b"another entry"), *items(20, 30)]
    with pytest.raises(LogConflict) as caught:
        log.append(batch)
    assert (caught.value.key, caught.value.index) == (key(4), 4)
    assert isinstance(caught.value, LogError)
    assert (log.size, log.root(), table_counts(db)) == (10, root, counts)
    assert log.index_of(key(10)) is None and log.entry(4) == entry(4)
    # and the log carries on as before
    assert log.append(items(10, 12)) == [10, 11]
    assert log.root() == root_hash([entry(i) for i in range(12)])


def test_conflict_inside_a_batch_writes_nothing(log: MerkleLog, db: Path) -> None:
    log.append(items(0, 3))
    counts = table_counts(db)
    batch = [(key(3), entry(3)), (key(4), entry(4)), (key(3), b"changed")]
    with pytest.raises(LogConflict) as caught:
        log.append(batch)
    assert (caught.value.key, caught.value.index) == (key(3), 3)
    assert log.size == 3 and table_counts(db) == counts


def test_a_failure_during_append_rolls_everything_back(
    log: MerkleLog, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.append(items(0, 5))
    root, counts = log.root(), table_counts(db)

    def broken(start: int, entries: list[bytes]) -> dict[int, bytes]:
        raise OSError("disk gone")

    monkeypatch.setattr(log, "_insert_nodes", broken)
    with pytest.raises(OSError):
        log.append(items(5, 9))  # the leaves were inserted before the nodes failed
    monkeypatch.undo()
    assert (log.size, log.root(), table_counts(db)) == (5, root, counts)
    assert log.append(items(5, 9)) == [5, 6, 7, 8]
    assert log.root() == root_hash([entry(i) for i in range(9)])


def test_bad_arguments(log: MerkleLog) -> None:
    log.append(items(0, 8))
    with pytest.raises(LogRangeError):
        log.root(9)
    with pytest.raises(LogRangeError):
        log.root(-1)
    with pytest.raises(LogRangeError):
        log.entry(8)
    with pytest.raises(LogRangeError):
        log.leaf_hash(-1)
    with pytest.raises(LogRangeError):
        log.inclusion_proof(0, 9)
    with pytest.raises(LogRangeError):
        log.consistency_proof(2, 9)
    with pytest.raises(IndexOutOfRange):
        log.inclusion_proof(5, 5)
    with pytest.raises(InvalidSize):
        log.consistency_proof(6, 5)
    with pytest.raises(TypeError):
        log.append([("not bytes", b"x")])  # type: ignore[list-item]
    assert log.size == 8


def test_proofs_and_roots_equal_the_in_memory_functions(log: MerkleLog) -> None:
    """Grown in irregular batches; every size checked against chain.merkle on the prefix."""
    entries = [entry(i) for i in range(300)]
    start = 0
    for batch in (1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 57, 100):
        log.append(items(start, start + batch))
        start += batch
    assert start == 300 and log.size == 300
    for size in range(301):
        assert log.root(size) == root_hash(entries[:size])
    for size in range(1, 71):
        prefix = entries[:size]
        for index in range(size):
            assert log.inclusion_proof(index, size) == inclusion_proof(prefix, index)
        for old in range(size + 1):
            assert log.consistency_proof(old, size) == consistency_proof(prefix, old)
    for size in (128, 129, 255, 256, 257, 299, 300):
        prefix, levels = entries[:size], merkle.MerkleLevels(entries[:size])
        root = log.root(size)
        for index in range(0, size, 7):
            proof = log.inclusion_proof(index, size)
            assert proof == merkle.inclusion_path(index, size, levels.range_hash)
            verify_inclusion(log.leaf_hash(index), index, size, proof, root)
        for old in range(0, size + 1, 11):
            proof = log.consistency_proof(old, size)
            assert proof == consistency_proof(prefix, old)
            verify_consistency(old, size, proof, log.root(old), root)


def test_a_tampered_log_proof_fails_verification(log: MerkleLog) -> None:
    log.append(items(0, 100))
    proof = log.inclusion_proof(42)
    verify_inclusion(log.leaf_hash(42), 42, 100, proof, log.root())
    proof[2] = bytes([proof[2][0] ^ 1]) + proof[2][1:]
    with pytest.raises(MerkleError):
        verify_inclusion(log.leaf_hash(42), 42, 100, proof, log.root())


def test_another_writer_on_the_same_file(db: Path) -> None:
    with MerkleLog(db) as first, MerkleLog(db) as second:
        first.append(items(0, 5))
        second.append(items(5, 9))  # second's frontier was empty: reloaded under the lock
        first.append(items(9, 12))
        expected = root_hash([entry(i) for i in range(12)])
        assert first.root() == second.root() == expected
        assert second.append(items(0, 12)) == list(range(12))


def test_100k_leaves_give_the_root_of_root_hash(log: MerkleLog) -> None:
    all_items = [(hashlib.sha256(b"k%d" % i).digest(), b"e%d" % i) for i in range(100_000)]
    for lo in range(0, 100_000, 10_000):
        log.append(all_items[lo : lo + 10_000])
    entries = [e for _, e in all_items]
    assert log.size == 100_000
    assert log.root() == root_hash(entries)
    assert log.root(65_537) == root_hash(entries[:65_537])
    proof = log.inclusion_proof(77_777)
    verify_inclusion(leaf_hash(entries[77_777]), 77_777, 100_000, proof, log.root())
    old_root = log.root(31_415)
    verify_consistency(31_415, 100_000, log.consistency_proof(31_415), old_root, log.root())


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(st.integers(0, 40), min_size=1, max_size=8))
def test_any_batching_gives_the_same_tree(batches: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp, MerkleLog(Path(tmp) / "log.sqlite") as log:
        start = 0
        for batch in batches:
            assert log.append(items(start, start + batch)) == list(range(start, start + batch))
            start += batch
        entries = [entry(i) for i in range(start)]
        for size in range(start + 1):
            assert log.root(size) == root_hash(entries[:size])


def test_the_sqlite_store_is_an_invoice_log(tmp_path: Path) -> None:
    # Statically (mypy checks this assignment) and at run time: every member the port names.
    log: InvoiceLog = MerkleLog(tmp_path / "log.sqlite")
    port = {
        name
        for klass in InvoiceLog.__mro__
        if klass.__module__ == "chain.invoice_log"
        for name in vars(klass)
        if not name.startswith("_")
    }
    assert port >= {"size", "append", "root", "inclusion_proof", "consistency_proof"}
    assert all(hasattr(log, name) for name in port), port - set(dir(log))
    log.close()

"""RFC 9162 Merkle hashing and proofs: reference vectors, tampered proofs, cross-checks, properties.

The vectors in ``vectors/merkle/*.json`` are described in ``vectors/merkle/README.md``. The
``naive_*`` functions below are a direct transcription of the RFC 9162 §2.1 definitions (lists
and slices, recursion, no shared code with ``chain.merkle``); they are the independent oracle.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import merkle
from chain.merkle import (
    EMPTY_ROOT,
    IndexOutOfRange,
    InvalidHashLength,
    InvalidSize,
    MerkleError,
    MerkleLevels,
    ProofLengthMismatch,
    RootMismatch,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors" / "merkle"
VECTOR_FILES = sorted(VECTORS.glob("*.json"))

# -- the independent oracle: RFC 9162 §2.1, transcribed -----------------------------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """Largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1."""
    if len(d) == 0:
        return _sha256(b"")
    if len(d) == 1:
        return _sha256(b"\x00" + d[0])
    k = _k(len(d))
    return _sha256(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*naive_path(m, d[:k]), naive_mth(d[k:])]
    return [*naive_path(m - k, d[k:]), naive_mth(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, d[:k], b), naive_mth(d[k:])]
    return [*naive_subproof(m - k, d[k:], False), naive_mth(d[:k])]


def naive_proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 ([] for m == 0 or m == n, as in the log's API)."""
    if m == 0 or m == len(d):
        return []
    return naive_subproof(m, d, True)


# -- vector files -------------------------------------------------------------------------------


def _hx(value: str) -> bytes:
    return bytes.fromhex(value)


def _hexes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


@cache
def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return doc


def _cases(kind: str) -> list[Any]:
    params = []
    for path in VECTOR_FILES:
        doc = _load(path.name)
        if doc["kind"] == kind:
            for case in doc["cases"]:
                params.append(pytest.param(doc, case, id=f"{path.stem}::{case['name']}"))
    return params


REQUIRED_FILES = [
    "roots.json",
    "leaf_hashes.json",
    "inclusion_valid.json",
    "consistency_valid.json",
    "inclusion_tampered_flipped_bit.json",
    "inclusion_tampered_dropped_element.json",
    "inclusion_tampered_extra_element.json",
    "inclusion_tampered_wrong_index.json",
    "inclusion_tampered_wrong_size.json",
    "inclusion_tampered_swapped_elements.json",
    "inclusion_tampered_wrong_root.json",
    "inclusion_tampered_raw_entry.json",
    "inclusion_tampered_raw_entry_32_bytes.json",
    "inclusion_tampered_index_out_of_range.json",
    "consistency_tampered_flipped_bit.json",
    "consistency_tampered_dropped_element.json",
    "consistency_tampered_extra_element.json",
    "consistency_tampered_wrong_size.json",
    "consistency_tampered_swapped_elements.json",
    "consistency_tampered_wrong_root.json",
    "consistency_tampered_old_greater_than_new.json",
]

ERROR_CLASSES: dict[str, type[MerkleError]] = {
    cls.__name__: cls
    for cls in (IndexOutOfRange, InvalidHashLength, InvalidSize, ProofLengthMismatch, RootMismatch)
}


def test_every_vector_file_is_present_and_well_formed() -> None:
    assert sorted(p.name for p in VECTOR_FILES) == sorted(REQUIRED_FILES)
    for path in VECTOR_FILES:
        doc = _load(path.name)
        assert doc["description"] and doc["kind"] and doc["cases"], path.name
        names = [case["name"] for case in doc["cases"]]
        assert len(names) == len(set(names)), path.name
        for case in doc["cases"]:
            if doc["kind"].endswith("_tampered"):
                assert case["expected_error"] in ERROR_CLASSES, (path.name, case["name"])
            else:
                assert "expected_error" not in case


@pytest.mark.parametrize("doc, case", _cases("root"))
def test_root_vectors(doc: dict[str, Any], case: dict[str, Any]) -> None:
    entries = _hexes(doc["leaf_inputs"])[: case["size"]]
    expected = _hx(case["root"])
    assert root_hash(entries) == expected
    assert naive_mth(entries) == expected
    assert MerkleLevels(entries).root() == expected


@pytest.mark.parametrize("doc, case", _cases("leaf_hash"))
def test_leaf_hash_vectors(doc: dict[str, Any], case: dict[str, Any]) -> None:
    assert leaf_hash(_hx(case["entry"])) == _hx(case["leaf_hash"])


@pytest.mark.parametrize("doc, case", _cases("inclusion"))
def test_inclusion_vectors(doc: dict[str, Any], case: dict[str, Any]) -> None:
    entries = _hexes(doc["leaf_inputs"])[: case["size"]]
    index, size, proof = case["index"], case["size"], _hexes(case["proof"])
    leaf, root = _hx(case["leaf_hash"]), _hx(case["root"])
    assert leaf == leaf_hash(entries[index])
    assert root == root_hash(entries)
    assert inclusion_proof(entries, index) == proof
    assert naive_path(index, entries) == proof
    verify_inclusion(leaf, index, size, proof, root)
    assert merkle.root_from_inclusion_proof(leaf, index, size, proof) == root


@pytest.mark.parametrize("doc, case", _cases("consistency"))
def test_consistency_vectors(doc: dict[str, Any], case: dict[str, Any]) -> None:
    old, new = case["old_size"], case["new_size"]
    entries = _hexes(doc["leaf_inputs"])[:new]
    proof = _hexes(case["proof"])
    old_root, new_root = _hx(case["old_root"]), _hx(case["new_root"])
    assert old_root == root_hash(entries[:old]) and new_root == root_hash(entries)
    assert consistency_proof(entries, old) == proof
    assert naive_proof(old, entries) == proof
    verify_consistency(old, new, proof, old_root, new_root)


@pytest.mark.parametrize("doc, case", _cases("inclusion_tampered"))
def test_inclusion_tampered_vectors(doc: dict[str, Any], case: dict[str, Any]) -> None:
    leaf, root, proof = _hx(case["leaf_hash"]), _hx(case["root"]), _hexes(case["proof"])
    with pytest.raises(MerkleError) as caught:
        verify_inclusion(leaf, case["index"], case["size"], proof, root)
    error = caught.value
    assert type(error).__name__ == case["expected_error"], error
    if isinstance(error, RootMismatch):
        assert error.expected == root and error.actual != root
    elif isinstance(error, ProofLengthMismatch):
        assert error.actual == len(proof)
        assert error.expected == len(naive_path(case["index"], [b""] * case["size"]))
    elif isinstance(error, IndexOutOfRange):
        assert (error.index, error.size) == (case["index"], case["size"])
    if "true_leaf_hash" in case:  # the same proof verifies with the real leaf hash
        verify_inclusion(_hx(case["true_leaf_hash"]), case["index"], case["size"], proof, root)


@pytest.mark.parametrize("doc, case", _cases("consistency_tampered"))
def test_consistency_tampered_vectors(doc: dict[str, Any], case: dict[str, Any]) -> None:
    old, new, proof = case["old_size"], case["new_size"], _hexes(case["proof"])
    old_root, new_root = _hx(case["old_root"]), _hx(case["new_root"])
    with pytest.raises(MerkleError) as caught:
        verify_consistency(old, new, proof, old_root, new_root)
    error = caught.value
    assert type(error).__name__ == case["expected_error"], error
    if isinstance(error, RootMismatch):
        assert error.expected in (old_root, new_root) and error.actual != error.expected
    elif isinstance(error, ProofLengthMismatch):
        assert error.actual == len(proof)
        assert error.expected == len(naive_proof(old, [b""] * new))
    elif isinstance(error, InvalidSize):
        assert (error.old_size, error.new_size) == (old, new)


def test_inclusion_proof_binds_the_tree_size_only_through_the_shape_of_the_path() -> None:
    """Known RFC 9162 property (left out of the tampered vectors, see the README): where two
    sizes give the leaf's path the same shape, a proof for one verifies under the other with
    the same root. Size and root must come together from one signed checkpoint."""
    entries = _hexes(_load("roots.json")["leaf_inputs"])
    proof = inclusion_proof(entries, 5)
    verify_inclusion(leaf_hash(entries[5]), 5, 7, proof, root_hash(entries))  # size 8's root
    with pytest.raises(RootMismatch):  # ... but not against the real root of size 7
        verify_inclusion(leaf_hash(entries[5]), 5, 7, proof, root_hash(entries[:7]))


# -- cross-check against the oracle, every size 1..70 -------------------------------------------


def _entries(n: int) -> list[bytes]:
    return [b"zeroclaim leaf %d" % i + bytes(i % 5) for i in range(n)]


@pytest.mark.parametrize("size", range(1, 71))
def test_generic_proofs_verify_and_match_the_rfc_definition(size: int) -> None:
    entries = _entries(size)
    root = root_hash(entries)
    assert root == naive_mth(entries)
    levels = MerkleLevels(entries)
    assert levels.root() == root
    for index in range(size):
        proof = merkle.inclusion_path(index, size, levels.range_hash)
        assert proof == naive_path(index, entries)
        assert len(proof) == merkle.inclusion_proof_size(index, size)
        verify_inclusion(leaf_hash(entries[index]), index, size, proof, root)
    for old in range(size + 1):
        proof = merkle.consistency_path(old, size, levels.range_hash)
        assert proof == naive_proof(old, entries)
        assert len(proof) == merkle.consistency_proof_size(old, size)
        verify_consistency(old, size, proof, root_hash(entries[:old]), root)


def test_in_memory_functions_equal_the_generic_ones() -> None:
    entries = _entries(37)
    for index in (0, 17, 36):
        assert inclusion_proof(entries, index) == naive_path(index, entries)
    for old in (0, 1, 20, 37):
        assert consistency_proof(entries, old) == naive_proof(old, entries)


def test_root_hash_of_a_million_entries() -> None:
    entries = [i.to_bytes(4, "big") for i in range(1_000_000)]
    root = root_hash(entries)
    # Independently: the root folded from the complete subtrees of the size's bits.
    levels = MerkleLevels(entries)
    assert root == levels.root()
    assert len(levels.levels) == 20  # 2**19 <= 1e6 < 2**20: complete subtrees up to 2**19
    index = 999_999
    proof = merkle.inclusion_path(index, len(entries), levels.range_hash)
    verify_inclusion(leaf_hash(entries[index]), index, len(entries), proof, root)


# -- edge cases and argument checks -------------------------------------------------------------


def test_hash_primitives() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == root_hash([])
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert root_hash([b"x"]) == leaf_hash(b"x")


def test_generation_argument_checks() -> None:
    entries = _entries(5)
    for index in (-1, 5, 6):
        with pytest.raises(IndexOutOfRange):
            inclusion_proof(entries, index)
    with pytest.raises(IndexOutOfRange):
        inclusion_proof([], 0)
    for old in (-1, 6):
        with pytest.raises(InvalidSize):
            consistency_proof(entries, old)
    assert consistency_proof(entries, 0) == [] == consistency_proof(entries, 5)
    assert consistency_proof([], 0) == []


def test_range_hash_refuses_a_range_that_is_not_a_subtree_of_the_tree() -> None:
    levels = MerkleLevels(_entries(8))
    assert levels.range_hash(4, 7) == naive_mth(_entries(8)[4:7])
    assert levels.range_hash(3, 3) == EMPTY_ROOT
    with pytest.raises(ValueError):
        levels.range_hash(1, 3)  # [1, 3) is no node of the RFC 9162 tree


def test_verify_consistency_trivial_cases() -> None:
    entries = _entries(8)
    root = root_hash(entries)
    verify_consistency(8, 8, [], root, root)
    verify_consistency(0, 8, [], EMPTY_ROOT, root)
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(RootMismatch):
        verify_consistency(0, 0, [], EMPTY_ROOT, root)


def test_verify_inclusion_single_leaf_tree() -> None:
    leaf = leaf_hash(b"data")
    verify_inclusion(leaf, 0, 1, [], leaf)  # root of a one-leaf tree is its leaf hash
    with pytest.raises(InvalidHashLength):
        verify_inclusion(b"", 0, 1, [], leaf)
    with pytest.raises(InvalidHashLength):
        verify_inclusion(leaf, 0, 1, [], b"")
    with pytest.raises(RootMismatch):
        verify_inclusion(leaf, 0, 1, [], EMPTY_ROOT)


def test_errors_carry_their_data() -> None:
    error = RootMismatch(b"\x01" * 32, b"\x02" * 32)
    assert (error.expected, error.actual, error.which) == (b"\x01" * 32, b"\x02" * 32, "root")
    assert isinstance(IndexOutOfRange(3, 2), IndexError)
    assert ProofLengthMismatch(3, 4).expected == 3
    assert InvalidHashLength("leaf", 2).actual == 2
    for cls in ERROR_CLASSES.values():
        assert issubclass(cls, MerkleError)
        assert cls.__doc__ and cls.__doc__.startswith("Raised when")


# -- properties ---------------------------------------------------------------------------------

entry_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=150)


@settings(max_examples=60, deadline=None)
@given(entries=entry_lists, data=st.data())
def test_any_single_byte_mutation_breaks_an_inclusion_proof(
    entries: list[bytes], data: st.DataObject
) -> None:
    size = len(entries)
    index = data.draw(st.integers(0, size - 1), label="index")
    root = root_hash(entries)
    proof = inclusion_proof(entries, index)
    leaf = leaf_hash(entries[index])
    verify_inclusion(leaf, index, size, proof, root)
    for position in range(len(proof)):
        byte = data.draw(st.integers(0, 31), label="byte")
        xor = data.draw(st.integers(1, 255), label="xor")
        mutated = list(proof)
        element = bytearray(mutated[position])
        element[byte] ^= xor
        mutated[position] = bytes(element)
        with pytest.raises(MerkleError):
            verify_inclusion(leaf, index, size, mutated, root)


@settings(max_examples=60, deadline=None)
@given(entries=entry_lists, data=st.data())
def test_any_single_byte_mutation_breaks_a_consistency_proof(
    entries: list[bytes], data: st.DataObject
) -> None:
    size = len(entries)
    old = data.draw(st.integers(0, size), label="old_size")
    old_root, new_root = root_hash(entries[:old]), root_hash(entries)
    proof = consistency_proof(entries, old)
    verify_consistency(old, size, proof, old_root, new_root)
    for position in range(len(proof)):
        byte = data.draw(st.integers(0, 31), label="byte")
        xor = data.draw(st.integers(1, 255), label="xor")
        mutated = list(proof)
        element = bytearray(mutated[position])
        element[byte] ^= xor
        mutated[position] = bytes(element)
        with pytest.raises(MerkleError):
            verify_consistency(old, size, mutated, old_root, new_root)


@settings(max_examples=40, deadline=None)
@given(
    entries=st.lists(st.binary(max_size=40), min_size=2, max_size=150, unique=True), data=st.data()
)
def test_a_proof_verifies_only_for_its_own_index(entries: list[bytes], data: st.DataObject) -> None:
    size = len(entries)
    index = data.draw(st.integers(0, size - 1), label="index")
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
    root = root_hash(entries)
    proof = inclusion_proof(entries, index)
    with pytest.raises(MerkleError):
        verify_inclusion(leaf_hash(entries[index]), other, size, proof, root)


def _memo_verify(
    size: int,
    root: bytes,
    leaf: bytes,
    index: int,
    proof: list[bytes],
    memo: dict[tuple[int, int], bytes],
) -> bool:
    """The contract's settleBatch check in Python: a path stops where it meets a proven node."""
    rounds = merkle.inclusion_rounds(index, size)
    r, fn, sn = leaf, index, size - 1
    for i, node in enumerate(rounds):
        if node in memo:
            return memo[node] == r
        memo[node] = r
        if i == len(proof):
            break
        if fn & 1 or fn == sn:
            r = merkle.node_hash(proof[i], r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = merkle.node_hash(r, proof[i])
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 31, 100])
def test_cut_shared_proofs_verify_in_any_order(size: int) -> None:
    entries = [b"e%d" % i for i in range(size)]
    root = merkle.root_hash(entries)
    for index in range(size):
        assert (
            len(merkle.inclusion_rounds(index, size))
            == merkle.inclusion_proof_size(index, size) + 1
        )
    order = sorted(range(size), key=lambda i: hashlib.sha256(b"%d" % i).digest())
    cut = merkle.cut_shared_proofs(size, [(i, merkle.inclusion_proof(entries, i)) for i in order])
    memo: dict[tuple[int, int], bytes] = {}
    for i, proof in zip(order, cut, strict=True):
        assert _memo_verify(size, root, merkle.leaf_hash(entries[i]), i, proof, memo)
    # About two hashes per leaf for the whole tree, against log2(size) each uncut.
    assert sum(map(len, cut)) <= 2 * size

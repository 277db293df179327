"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and their verification.

Hashing (RFC 9162 §2.1.1), SHA-256 throughout::

    MTH({})       = SHA-256()                             the empty tree
    leaf hash     = SHA-256(0x00 || entry)
    node hash     = SHA-256(0x01 || left || right)
    MTH(D[n])     = node(MTH(D[0:k]), MTH(D[k:n]))        k: largest power of two < n

Proof generation is written once, over a *range hash* function ``range_hash(lo, hi)`` that
returns MTH(D[lo:hi]) (see :func:`inclusion_path` and :func:`consistency_path`). Every range the
RFC recursion asks for starts at a multiple of the largest power of two not above its length, so
it splits into complete, aligned power-of-two subtrees; the left subtrees of the recursion are
such subtrees themselves. The in-memory functions answer range hashes from levels built once
(:class:`MerkleLevels`); the persistent log (``chain.log``) answers them from its table of
complete aligned subtree hashes, O(log n) look-ups a proof.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2, in the manner of transparency-dev/merkle
``proof/verify.go``: check the preconditions (sizes, hash lengths, proof length) first, then
compute, then compare, raising a typed :class:`MerkleError` that carries both values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "IndexOutOfRange",
    "InvalidHashLength",
    "InvalidSize",
    "MerkleError",
    "MerkleLevels",
    "ProofLengthMismatch",
    "RangeHash",
    "RootMismatch",
    "consistency_path",
    "consistency_proof",
    "consistency_proof_size",
    "cut_shared_proofs",
    "inclusion_path",
    "inclusion_proof",
    "inclusion_proof_size",
    "inclusion_rounds",
    "leaf_hash",
    "node_hash",
    "range_hash_from_subtrees",
    "root_from_inclusion_proof",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

RangeHash = Callable[[int, int], bytes]
"""``range_hash(lo, hi)``: MTH of the leaves ``lo .. hi-1`` (only asked for RFC-shaped ranges)."""


# -- errors -------------------------------------------------------------------------------------


class MerkleError(Exception):
    """Root of every error raised by the Merkle tree functions."""


class IndexOutOfRange(MerkleError, IndexError):
    """Raised when a leaf index is not in ``[0, size)`` of the tree it should belong to."""

    def __init__(self, index: int, size: int) -> None:
        super().__init__(f"leaf index {index} is out of range for a tree of size {size}")
        self.index = index
        self.size = size


class InvalidSize(MerkleError, ValueError):
    """Raised when tree sizes are negative, or ``old_size`` exceeds ``new_size``."""

    def __init__(self, old_size: int, new_size: int) -> None:
        super().__init__(f"invalid tree sizes: old_size={old_size}, new_size={new_size}")
        self.old_size = old_size
        self.new_size = new_size


class InvalidHashLength(MerkleError, ValueError):
    """Raised when a leaf hash, root or proof element is not a 32-byte SHA-256 digest.

    ``what`` names the value (``"leaf"``, ``"root"``, ``"old_root"``, ``"new_root"`` or
    ``"proof[i]"``); a raw entry passed where a leaf hash belongs usually ends here.
    """

    def __init__(self, what: str, actual: int, expected: int = HASH_SIZE) -> None:
        super().__init__(f"{what} has {actual} bytes, expected a {expected}-byte hash")
        self.what = what
        self.expected = expected
        self.actual = actual


class ProofLengthMismatch(MerkleError, ValueError):
    """Raised when a proof does not have the number of hashes its sizes and index require."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"proof has {actual} hashes, expected {expected}")
        self.expected = expected
        self.actual = actual


class RootMismatch(MerkleError):
    """Raised when the root computed from a proof differs from the root given to check against.

    ``expected`` is the root given by the caller (trusted), ``actual`` the root computed from the
    leaf hash and the proof; ``which`` names the root compared (``"root"``, ``"old_root"``
    or ``"new_root"``).
    """

    def __init__(self, expected: bytes, actual: bytes, which: str = "root") -> None:
        super().__init__(f"{which} mismatch: computed {actual.hex()}, expected {expected.hex()}")
        self.expected = expected
        self.actual = actual
        self.which = which


# -- hashing ------------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one leaf entry."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _leaf_hashes(entries: Sequence[bytes]) -> list[bytes]:
    sha = _sha256
    return [sha(b"\x00" + e).digest() for e in entries]


def _pair_level(level: Sequence[bytes]) -> list[bytes]:
    """The complete parents of ``level`` (an odd last node has none)."""
    sha = _sha256
    return [sha(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]


def root_hash(entries: Sequence[bytes]) -> bytes:
    """MTH of the raw ``entries`` (RFC 9162 §2.1.1); SHA-256 of b"" for no entries.

    Bottom-up: pair the nodes of each level, promote an odd last node unchanged to the next
    level. This equals the RFC's recursive split at the largest power of two below ``n``.
    """
    if not entries:
        return EMPTY_ROOT
    level = _leaf_hashes(entries)
    while len(level) > 1:
        parents = _pair_level(level)
        if len(level) & 1:
            parents.append(level[-1])
        level = parents
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash_from_subtrees(lo: int, hi: int, subtree: Callable[[int, int], bytes]) -> bytes:
    """MTH(D[lo:hi]) from complete aligned subtree hashes.

    ``subtree(level, idx)`` returns the hash of the complete subtree of ``2**level`` leaves
    ``[idx * 2**level, (idx + 1) * 2**level)``. The range must be RFC-shaped: ``lo`` a multiple
    of the largest power of two not above ``hi - lo`` (every range the RFC recursion needs is).
    It splits into aligned subtrees of decreasing size (the bits of ``hi - lo``), folded from
    the right: O(log n) look-ups.
    """
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n < 0 or lo < 0 or lo % (1 << (n.bit_length() - 1)):
        raise ValueError(f"range [{lo}, {hi}) is not aligned to a subtree of the RFC 9162 tree")
    parts: list[bytes] = []
    pos = lo
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            parts.append(subtree(level, pos >> level))
            pos += 1 << level
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = node_hash(part, result)
    return result


# -- proof generation, once, over a range hash --------------------------------------------------


def inclusion_path(index: int, size: int, range_hash: RangeHash) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf-side hash first.

    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])      if m < k
                  = PATH(m - k, D[k:n]) : MTH(D[0:k])  if m >= k
    """
    if not 0 <= index < size:
        raise IndexOutOfRange(index, size)
    top_down: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            top_down.append(range_hash(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(range_hash(lo, lo + k))
            lo += k
    top_down.reverse()
    return top_down


def consistency_path(old_size: int, new_size: int, range_hash: RangeHash) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 §2.1.4.1; [] for old_size 0 or == new_size.

    SUBPROOF(m, D[m], true) = []; SUBPROOF(m, D[m], false) = [MTH(D[m])]
    SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])          if m <= k
                         = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])  if m > k
    """
    if not 0 <= old_size <= new_size:
        raise InvalidSize(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return []
    top_down: list[bytes] = []
    lo, hi = 0, new_size
    whole = True  # b: the old tree is the whole subtree considered so far
    while old_size != hi:
        k = _largest_power_of_two_below(hi - lo)
        if old_size - lo <= k:
            top_down.append(range_hash(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(range_hash(lo, lo + k))
            lo += k
            whole = False
    if not whole:
        top_down.append(range_hash(lo, hi))
    top_down.reverse()
    return top_down


class MerkleLevels:
    """Complete aligned subtree hashes of an in-memory list of entries, built once in O(n).

    ``levels[k][i]`` is the hash of leaves ``[i * 2**k, (i + 1) * 2**k)``; :meth:`range_hash`
    answers the range hashes the proof generators ask for in O(log n).
    """

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.size = len(entries)
        self.levels: list[list[bytes]] = [_leaf_hashes(entries)]
        while len(self.levels[-1]) > 1:
            self.levels.append(_pair_level(self.levels[-1]))

    def subtree(self, level: int, idx: int) -> bytes:
        """Hash of the complete subtree ``idx`` at ``level``."""
        return self.levels[level][idx]

    def range_hash(self, lo: int, hi: int) -> bytes:
        """MTH of the leaves ``lo .. hi-1`` (an RFC-shaped range, see range_hash_from_subtrees)."""
        return range_hash_from_subtrees(lo, hi, self.subtree)

    def root(self) -> bytes:
        """MTH of all entries."""
        return self.range_hash(0, self.size)


def inclusion_proof(entries: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 inclusion proof (PATH) of leaf ``index`` in the tree of all ``entries``."""
    if not 0 <= index < len(entries):
        raise IndexOutOfRange(index, len(entries))
    return inclusion_path(index, len(entries), MerkleLevels(entries).range_hash)


def consistency_proof(entries: Sequence[bytes], old_size: int) -> list[bytes]:
    """RFC 9162 consistency proof from the first ``old_size`` entries to all ``entries``."""
    new_size = len(entries)
    if not 0 <= old_size <= new_size:
        raise InvalidSize(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return []
    return consistency_path(old_size, new_size, MerkleLevels(entries).range_hash)


# -- verification ---------------------------------------------------------------------------------


def inclusion_proof_size(index: int, size: int) -> int:
    """Number of hashes in the inclusion proof of leaf ``index`` in a tree of ``size``.

    ``inner`` hashes below the point where the paths to ``index`` and ``size - 1`` diverge,
    plus one ``border`` hash for every left subtree above it.
    """
    if not 0 <= index < size:
        raise IndexOutOfRange(index, size)
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def consistency_proof_size(old_size: int, new_size: int) -> int:
    """Number of hashes in the consistency proof from ``old_size`` to ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise InvalidSize(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return 0
    shift = (old_size & -old_size).bit_length() - 1  # trailing zeros of old_size
    # The proof is the inclusion proof of leaf old_size - 1 from level ``shift`` up, plus the
    # old tree's last complete subtree unless the old tree is that very subtree.
    seed = 0 if old_size == 1 << shift else 1
    return seed + inclusion_proof_size(old_size - 1, new_size) - shift


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise InvalidHashLength(what, len(value))


def _check_proof(proof: Sequence[bytes], expected_len: int) -> None:
    """Every element a 32-byte hash, then exactly ``expected_len`` of them."""
    for i, element in enumerate(proof):
        _check_hash(f"proof[{i}]", element)
    if len(proof) != expected_len:
        raise ProofLengthMismatch(expected_len, len(proof))


def _check_inclusion_args(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes | None = None
) -> None:
    """Preconditions in order: index in range, hash lengths (leaf, root, proof), proof length."""
    if not 0 <= index < size:
        raise IndexOutOfRange(index, size)
    _check_hash("leaf", leaf)
    if root is not None:
        _check_hash("root", root)
    _check_proof(proof, inclusion_proof_size(index, size))


def _chain_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 steps 2-4, on arguments already checked."""
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:  # unreachable after the length check; kept from the RFC
            raise ProofLengthMismatch(inclusion_proof_size(index, size), len(proof))
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept from the RFC
        raise ProofLengthMismatch(inclusion_proof_size(index, size), len(proof))
    return r


def inclusion_rounds(index: int, size: int) -> list[tuple[int, int]]:
    """The node (level, index at that level) whose hash the RFC 9162 inclusion check holds at
    the top of each round for the leaf at ``index`` of a tree of ``size``: the leaf first,
    one node per proof hash, the root last. The node (level, k) covers the leaves
    ``k << level .. (k + 1) << level`` cut at ``size``; a right-edge node promoted past a
    level is the same node one level up."""
    if not 0 <= index < size:
        raise IndexOutOfRange(index, size)
    fn, sn, level = index, size - 1, 0
    rounds = [(level, fn)]
    while sn:
        if fn & 1 or fn == sn:
            while fn and not fn & 1:
                fn, sn, level = fn >> 1, sn >> 1, level + 1
        fn, sn, level = fn >> 1, sn >> 1, level + 1
        rounds.append((level, fn))
    return rounds


def cut_shared_proofs(size: int, paths: Sequence[tuple[int, Sequence[bytes]]]) -> list[list[bytes]]:
    """Inclusion proofs of several leaves of one tree, each cut where its path meets a node
    an earlier path in the sequence already reached, for a verifier that remembers proven
    nodes (the ledger's ``settleBatch``). ``paths`` are (leaf index, full proof) pairs, in the
    order they will be verified; the first proof is always whole."""
    reached: set[tuple[int, int]] = set()
    cut: list[list[bytes]] = []
    for index, proof in paths:
        rounds = inclusion_rounds(index, size)
        meets = next((i for i, node in enumerate(rounds) if node in reached), len(rounds))
        reached.update(rounds[:meets])
        cut.append(list(proof[: min(meets, len(proof))]))
    return cut


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` yields for leaf hash ``leaf`` at ``index`` in a tree of ``size``.

    Checks the preconditions (index in range, 32-byte hashes, exact proof length) and raises
    on failure; then runs the algorithm of RFC 9162 §2.1.3.2.
    """
    _check_inclusion_args(leaf, index, size, proof)
    return _chain_inclusion(leaf, index, size, proof)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` is at ``index`` of the tree of ``size`` with ``root``.

    ``leaf`` is a LEAF HASH (see :func:`leaf_hash`), not the raw entry. ``proof`` is an
    RFC 9162 inclusion proof, from :func:`inclusion_proof` or the persistent log
    (``MerkleLog.inclusion_proof``); any sequence of 32-byte hashes is accepted. Preconditions
    first, then the computation, then the comparison: raises :class:`IndexOutOfRange`,
    :class:`InvalidHashLength`, :class:`ProofLengthMismatch` or :class:`RootMismatch`;
    returns None when the proof holds.
    """
    _check_inclusion_args(leaf, index, size, proof, root)
    computed = _chain_inclusion(leaf, index, size, proof)
    if computed != root:
        raise RootMismatch(root, computed, "root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree (``old_size``, ``old_root``) is a prefix of (``new_size``, ``new_root``).

    RFC 9162 §2.1.4.2. ``old_size == new_size`` requires an empty proof and equal roots;
    ``old_size == 0`` requires an empty proof (and ``old_root`` to be the empty tree's hash).
    Raises :class:`InvalidSize`, :class:`InvalidHashLength`, :class:`ProofLengthMismatch` or
    :class:`RootMismatch`; returns None when the proof holds.
    """
    if not 0 <= old_size <= new_size:
        raise InvalidSize(old_size, new_size)
    _check_hash("old_root", old_root)
    _check_hash("new_root", new_root)
    _check_proof(proof, consistency_proof_size(old_size, new_size))
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise RootMismatch(old_root, EMPTY_ROOT, "old_root")
    if old_size == new_size:
        if new_root != old_root:
            raise RootMismatch(new_root, old_root, "new_root")
        return
    if old_size == 0:  # the empty tree is a prefix of every tree
        return

    path = list(proof)
    if old_size & (old_size - 1) == 0:  # old_size is a power of two: its root is the seed
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable after the length check; kept from the RFC
            raise ProofLengthMismatch(consistency_proof_size(old_size, new_size), len(proof))
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept from the RFC
        raise ProofLengthMismatch(consistency_proof_size(old_size, new_size), len(proof))
    if fr != old_root:
        raise RootMismatch(old_root, fr, "old_root")
    if sr != new_root:
        raise RootMismatch(new_root, sr, "new_root")

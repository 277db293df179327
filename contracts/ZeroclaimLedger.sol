// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/**
 * @title ZeroclaimLedger
 * @notice The shared ledger of medical e-invoices (电子票据) and their reimbursement.
 *
 * It keeps four things and nothing personal:
 * - the hospital registry: each hospital's level and the history of its signing keys, so that an
 *   invoice signature can be judged against the key that was valid when the invoice was issued,
 *   and, for a key revoked as compromised, the log size anchored when that was recorded: an
 *   invoice first anchored after it is never paid, whatever issue time its signer wrote;
 * - the checkpoints of the invoice log: (tree size, RFC 9162 root) pairs anchored by the
 *   sequencer, sizes only growing, every root readable by its size;
 * - per invoice, keyed by invoice id: voided or not, the payer holding a review lock, the
 *   cumulative amount paid by all payers (fen), counting what was carried over from the bills it
 *   replaces, and a tag of the record hash it was paid against;
 * - events for every change, so that an indexer can rebuild all of the above.
 *
 * A settlement proves its invoice with an inclusion proof against an anchored checkpoint, so the
 * contract knows the invoice total without trusting the caller, and refuses any payment that
 * would bring the cumulative paid amount above it: double dipping across payers is impossible.
 * It carries the hospital's EIP-712 signature of the invoice too (the leaf's record hash is the
 * signed struct hash), so a leaf signed by a stolen key and anchored after its revocation was
 * recorded is refused even when the service's own checks were bypassed.
 */
contract ZeroclaimLedger is AccessControl, EIP712 {
    // ----------------------------------------------------------------------------------------
    // Roles. DEFAULT_ADMIN_ROLE is the authority (医保局).
    // ----------------------------------------------------------------------------------------

    /// @notice Signing keys of registered hospitals; may relay their own reversals.
    bytes32 public constant HOSPITAL_ROLE = keccak256("HOSPITAL_ROLE");
    /// @notice Anchors checkpoints of the invoice log and relays hospital-signed reversals.
    bytes32 public constant SEQUENCER_ROLE = keccak256("SEQUENCER_ROLE");
    /// @notice Payers (insurance funds, insurers): lock, release and settle claims for themselves.
    bytes32 public constant PAYER_ROLE = keccak256("PAYER_ROLE");
    /// @notice Auditors and regulators: read-only; the role marks their accounts.
    bytes32 public constant AUDITOR_ROLE = keccak256("AUDITOR_ROLE");

    /// @notice EIP-712 type of a red-letter reversal (红冲) signed by the issuing hospital.
    bytes32 public constant VOID_TYPEHASH =
        keccak256("VoidInvoice(bytes32 invoiceId,bytes32 redInvoiceId)");

    /// @notice EIP-712 type of a red-letter reversal that names the bill replacing the voided one
    /// (a partial refund: the whole bill reversed, a new one issued for the rest). A separate
    /// type, so that no VoidInvoice signature can be replayed with a replacement added.
    bytes32 public constant REPLACE_TYPEHASH =
        keccak256("ReplaceInvoice(bytes32 invoiceId,bytes32 redInvoiceId,bytes32 replacementId)");

    uint8 public constant LEVEL_TOWNSHIP = 0;
    uint8 public constant LEVEL_PRIMARY = 1;
    uint8 public constant LEVEL_SECONDARY = 2;
    uint8 public constant LEVEL_TERTIARY = 3;

    /// @dev Transient-storage keys of the proven-node memo of {_proveIncluded}: this tag in the
    /// top 120 bits, then the tree size (bits 72-135), the level (64-71) and the index (0-63).
    uint256 private constant _NODE_MEMO = uint256(keccak256("zeroclaim.settlement.node-memo")) >> 136 << 136;

    // ----------------------------------------------------------------------------------------
    // Types
    // ----------------------------------------------------------------------------------------

    /// @dev One signing key of a hospital in two slots: the first is what signature checks read
    /// (revokedAt 0 means not revoked), the second is read only for a key with a revokedAt.
    /// revocationRecorded is set by {revokeHospitalKey} (a compromise), never by a rotation;
    /// revokedLogSize is then the checkpoint size anchored when the revocation was recorded:
    /// leaves at that index and beyond were first anchored after it.
    struct HospitalKey {
        address signer;
        uint48 validFrom;
        uint48 revokedAt;
        uint64 revokedLogSize;
        bool revocationRecorded;
    }

    struct Hospital {
        bool registered;
        uint8 level;
        uint32 keyCount;
    }

    /// @dev Claim state of one invoice, packed into one slot so that a settlement writes once.
    /// lockedBy is a payer number (see payerNumber), 0 when unlocked. paid counts what was
    /// carried over from replaced bills ({replaceInvoice}). recordTag is the first 19 bytes of
    /// the record hash, bound at the first settlement or reversal.
    struct ClaimState {
        bool voided;
        uint32 lockedBy;
        uint64 paid;
        bytes19 recordTag;
    }

    /// @notice The fields of an invoice leaf in the log. The leaf entry is
    /// abi.encodePacked(invoiceId, recordHash, hospital, total): 104 bytes.
    struct InvoiceLeaf {
        bytes32 invoiceId;
        bytes32 recordHash;
        bytes32 hospital;
        uint64 total;
    }

    /// @notice One payment of a settlement batch: the invoice leaf, its position and proof in
    /// the checkpoint named by the batch, the amount this payer pays (fen), and the hospital's
    /// 65-byte EIP-712 signature of the invoice (r, s, v over _hashTypedDataV4(recordHash)).
    struct Settlement {
        InvoiceLeaf leaf;
        uint64 leafIndex;
        bytes32[] proof;
        uint64 amount;
        bytes signature;
    }

    // ----------------------------------------------------------------------------------------
    // Errors
    // ----------------------------------------------------------------------------------------

    error LedgerHospitalAlreadyRegistered(bytes32 hospital);
    error LedgerUnknownHospital(bytes32 hospital);
    error LedgerInvalidLevel(uint8 level);
    error LedgerInvalidSigner(address signer);
    error LedgerKeyNotNewer(bytes32 hospital, uint48 validFrom, uint48 currentValidFrom);
    error LedgerUnknownKey(bytes32 hospital, uint256 keyIndex);
    error LedgerInvalidRevocationTime(bytes32 hospital, uint256 keyIndex, uint48 revokedAt);
    error LedgerCheckpointNotGrowing(uint64 size, uint64 latestSize);
    error LedgerUnknownCheckpoint(uint64 size);
    error LedgerInvalidInclusionProof(bytes32 invoiceId, uint64 leafIndex, uint64 checkpointSize);
    error LedgerRecordMismatch(bytes32 invoiceId, bytes19 boundTag, bytes19 givenTag);
    error LedgerInvoiceVoided(bytes32 invoiceId);
    error LedgerInvoiceLocked(bytes32 invoiceId, address lockedBy);
    error LedgerInvoiceNotLocked(bytes32 invoiceId, address caller);
    error LedgerPaidAboveTotal(bytes32 invoiceId, uint64 paid, uint64 amount, uint64 total);
    error LedgerZeroAmount(bytes32 invoiceId);
    error LedgerEmptyBatch();
    error LedgerInvoiceAlreadyPaid(bytes32 invoiceId, uint64 paid);
    error LedgerInvalidVoidSignature(bytes32 invoiceId, bytes32 hospital, address signer);
    error LedgerUnauthorizedRelayer(address caller);
    error LedgerInvalidInvoiceSignature(bytes32 invoiceId, bytes32 hospital, address signer);
    error LedgerKeyRevokedBeforeAnchoring(bytes32 invoiceId, bytes32 hospital, address signer);
    error LedgerInvalidBillReference(bytes8 billCode, bytes10 billNumber);
    error LedgerReplacementIsInvoice(bytes32 invoiceId);
    error LedgerReplacementVoided(bytes32 invoiceId, bytes32 replacementId);

    // ----------------------------------------------------------------------------------------
    // Events
    // ----------------------------------------------------------------------------------------

    event HospitalRegistered(bytes32 indexed hospital, uint8 level, address signer, uint48 validFrom);
    event HospitalKeyRotated(
        bytes32 indexed hospital, uint256 keyIndex, address signer, uint48 validFrom
    );
    event HospitalKeyRevoked(
        bytes32 indexed hospital, uint256 keyIndex, address signer, uint48 revokedAt, uint64 revokedLogSize
    );
    event PayerNumbered(address indexed payer, uint32 payerNumber);
    event CheckpointAnchored(uint64 indexed size, bytes32 root);
    event InvoiceLocked(bytes32 indexed invoiceId, address indexed payer);
    event InvoiceReleased(bytes32 indexed invoiceId, address indexed payer);
    event InvoiceSettled(
        bytes32 indexed invoiceId, address indexed payer, uint64 amount, uint64 paidTotal, uint64 checkpointSize
    );
    event InvoiceVoided(bytes32 indexed invoiceId, bytes32 indexed redInvoiceId, bytes32 indexed hospital);
    event InvoiceReplaced(
        bytes32 indexed invoiceId, bytes32 indexed replacementId, uint64 carried, uint64 replacementPaid
    );

    // ----------------------------------------------------------------------------------------
    // State
    // ----------------------------------------------------------------------------------------

    mapping(bytes32 hospital => Hospital) private _hospitals;
    mapping(bytes32 hospital => mapping(uint256 keyIndex => HospitalKey)) private _hospitalKeys;
    mapping(uint64 size => bytes32 root) private _checkpoints;
    uint64 private _latestCheckpointSize;
    uint32 private _payerCount;
    mapping(address payer => uint32 payerNumber) private _payerNumbers;
    mapping(uint32 payerNumber => address payer) private _payerAccounts;
    mapping(bytes32 invoiceId => ClaimState) private _claims;

    constructor(address authority) EIP712("zeroclaim", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, authority);
    }

    // ----------------------------------------------------------------------------------------
    // Hospital registry
    // ----------------------------------------------------------------------------------------

    /**
     * @notice Registers a hospital with its level and first signing key.
     * Requirements: caller is ADMIN; the hospital is new; level is 0..3; signer is not zero.
     * Emits {HospitalRegistered}; grants HOSPITAL_ROLE to the signer.
     */
    function registerHospital(bytes32 hospital, uint8 level, address signer, uint48 validFrom)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        Hospital storage h = _hospitals[hospital];
        if (h.registered) revert LedgerHospitalAlreadyRegistered(hospital);
        if (level > LEVEL_TERTIARY) revert LedgerInvalidLevel(level);
        if (signer == address(0)) revert LedgerInvalidSigner(signer);
        h.registered = true;
        h.level = level;
        h.keyCount = 1;
        _hospitalKeys[hospital][0] = HospitalKey(signer, validFrom, 0, 0, false);
        _grantRole(HOSPITAL_ROLE, signer);
        emit HospitalRegistered(hospital, level, signer, validFrom);
    }

    /**
     * @notice Rotates a hospital's key: the new key is valid from `validFrom`, the current key
     * stops being valid at that moment (its revokedAt becomes validFrom unless already earlier).
     * Requirements: caller is ADMIN; hospital registered; signer not zero; validFrom after the
     * current key's validFrom.
     * Emits {HospitalKeyRotated}.
     */
    function rotateHospitalKey(bytes32 hospital, address signer, uint48 validFrom)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        Hospital storage h = _requireHospital(hospital);
        if (signer == address(0)) revert LedgerInvalidSigner(signer);
        uint256 current = h.keyCount - 1;
        HospitalKey storage old = _hospitalKeys[hospital][current];
        if (validFrom <= old.validFrom) revert LedgerKeyNotNewer(hospital, validFrom, old.validFrom);
        if (old.revokedAt == 0 || old.revokedAt > validFrom) old.revokedAt = validFrom;
        _hospitalKeys[hospital][current + 1] = HospitalKey(signer, validFrom, 0, 0, false);
        h.keyCount = uint32(current + 2);
        _grantRole(HOSPITAL_ROLE, signer);
        emit HospitalKeyRotated(hospital, current + 1, signer, validFrom);
    }

    /**
     * @notice Revokes a key from `revokedAt` on (a compromise may be backdated, not before the
     * key's validFrom): signatures on invoices issued at or after that moment are invalid.
     * The revocation is recorded with the latest anchored checkpoint size: an invoice signed by
     * this key whose leaf index is at or past it (first anchored after now) is refused by
     * {settleBatch} whatever its issue time, since a thief chooses the issue time. A second
     * revocation of the same key keeps the first recorded size.
     * Requirements: caller is ADMIN; hospital and key exist; validFrom <= revokedAt.
     * Emits {HospitalKeyRevoked} with the recorded log size; revokes HOSPITAL_ROLE from the
     * signer.
     */
    function revokeHospitalKey(bytes32 hospital, uint256 keyIndex, uint48 revokedAt)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        Hospital storage h = _requireHospital(hospital);
        if (keyIndex >= h.keyCount) revert LedgerUnknownKey(hospital, keyIndex);
        HospitalKey storage key = _hospitalKeys[hospital][keyIndex];
        if (revokedAt < key.validFrom) revert LedgerInvalidRevocationTime(hospital, keyIndex, revokedAt);
        key.revokedAt = revokedAt;
        if (!key.revocationRecorded) {
            key.revocationRecorded = true;
            key.revokedLogSize = _latestCheckpointSize;
        }
        _revokeRole(HOSPITAL_ROLE, key.signer);
        emit HospitalKeyRevoked(hospital, keyIndex, key.signer, revokedAt, key.revokedLogSize);
    }

    /// @notice The hospital's registration: registered, level and number of keys.
    function hospitalOf(bytes32 hospital) external view returns (bool registered, uint8 level, uint32 keyCount) {
        Hospital storage h = _hospitals[hospital];
        return (h.registered, h.level, h.keyCount);
    }

    /// @notice One key of a hospital by index (0 is the first registered). revocationRecorded
    /// and revokedLogSize: whether {revokeHospitalKey} revoked it, and the anchored log size then.
    function hospitalKey(bytes32 hospital, uint256 keyIndex)
        external
        view
        returns (address signer, uint48 validFrom, uint48 revokedAt, bool revocationRecorded, uint64 revokedLogSize)
    {
        HospitalKey storage key = _hospitalKeys[hospital][keyIndex];
        return (key.signer, key.validFrom, key.revokedAt, key.revocationRecorded, key.revokedLogSize);
    }

    /// @notice Whether `signer` was a valid key of `hospital` at `time` (seconds since the epoch).
    function isKeyValidAt(bytes32 hospital, address signer, uint48 time) public view returns (bool) {
        uint256 count = _hospitals[hospital].keyCount;
        for (uint256 i = count; i > 0; --i) {
            HospitalKey storage key = _hospitalKeys[hospital][i - 1];
            if (key.signer == signer && key.validFrom <= time && (key.revokedAt == 0 || time < key.revokedAt)) {
                return true;
            }
        }
        return false;
    }

    // ----------------------------------------------------------------------------------------
    // Checkpoints
    // ----------------------------------------------------------------------------------------

    /**
     * @notice Anchors a checkpoint (tree size, root) of the invoice log.
     * Requirements: caller is SEQUENCER; size greater than the latest anchored size.
     * Emits {CheckpointAnchored}.
     */
    function anchorCheckpoint(uint64 size, bytes32 root) external onlyRole(SEQUENCER_ROLE) {
        uint64 latest = _latestCheckpointSize;
        if (size <= latest) revert LedgerCheckpointNotGrowing(size, latest);
        _checkpoints[size] = root;
        _latestCheckpointSize = size;
        emit CheckpointAnchored(size, root);
    }

    /// @notice The root anchored for `size`, or zero when no checkpoint has that size.
    function checkpointRoot(uint64 size) external view returns (bytes32) {
        return _checkpoints[size];
    }

    /// @notice The latest anchored checkpoint (0 and zero root before the first).
    function latestCheckpoint() external view returns (uint64 size, bytes32 root) {
        size = _latestCheckpointSize;
        root = _checkpoints[size];
    }

    // ----------------------------------------------------------------------------------------
    // Payers
    // ----------------------------------------------------------------------------------------

    /// @notice The small number under which a payer's locks are stored (0: not a payer yet).
    function payerNumber(address payer) external view returns (uint32) {
        return _payerNumbers[payer];
    }

    /// @dev Numbers a payer the first time PAYER_ROLE is granted, so that a lock fits in the
    /// claim slot. Numbers are never reused.
    function _grantRole(bytes32 role, address account) internal override returns (bool granted) {
        granted = super._grantRole(role, account);
        if (granted && role == PAYER_ROLE && _payerNumbers[account] == 0) {
            uint32 number = ++_payerCount;
            _payerNumbers[account] = number;
            _payerAccounts[number] = account;
            emit PayerNumbered(account, number);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Claim state
    // ----------------------------------------------------------------------------------------

    /**
     * @notice The claim state of an invoice: voided, the payer holding the review lock (zero
     * when none), the cumulative amount paid (fen) and the bound record tag (zero until bound).
     */
    function claimOf(bytes32 invoiceId)
        external
        view
        returns (bool voided, address lockedBy, uint64 paid, bytes19 recordTag)
    {
        ClaimState storage c = _claims[invoiceId];
        return (c.voided, _payerAccounts[c.lockedBy], c.paid, c.recordTag);
    }

    /**
     * @notice Locks an invoice for the caller's manual review: other payers cannot settle it
     * until it is released or settled by the caller.
     * Requirements: caller is PAYER; invoice not voided; not locked by another payer.
     * Emits {InvoiceLocked}.
     */
    function lockInvoice(bytes32 invoiceId) external onlyRole(PAYER_ROLE) {
        ClaimState storage c = _claims[invoiceId];
        uint32 me = _payerNumbers[msg.sender];
        if (c.voided) revert LedgerInvoiceVoided(invoiceId);
        if (c.lockedBy != 0 && c.lockedBy != me) revert LedgerInvoiceLocked(invoiceId, _payerAccounts[c.lockedBy]);
        c.lockedBy = me;
        emit InvoiceLocked(invoiceId, msg.sender);
    }

    /**
     * @notice Releases the caller's review lock.
     * Requirements: caller is PAYER and holds the lock.
     * Emits {InvoiceReleased}.
     */
    function releaseInvoice(bytes32 invoiceId) external onlyRole(PAYER_ROLE) {
        ClaimState storage c = _claims[invoiceId];
        if (c.lockedBy == 0 || c.lockedBy != _payerNumbers[msg.sender]) {
            revert LedgerInvoiceNotLocked(invoiceId, msg.sender);
        }
        c.lockedBy = 0;
        emit InvoiceReleased(invoiceId, msg.sender);
    }

    /**
     * @notice Settles a batch of payments by the caller, all or nothing, each proven against
     * the checkpoint of size `checkpointSize`. A payment releases the caller's own lock.
     * Requirements: caller is PAYER; batch not empty; checkpoint anchored; for each payment a
     * valid inclusion proof, a signature of the record by a key of the leaf's hospital (see
     * {_requireSignedByHospital}), a record hash equal to the one bound earlier, the invoice not
     * voided, not locked by another payer, amount not zero, and the cumulative paid amount not
     * above the invoice total.
     * Emits {InvoiceSettled} per payment.
     */
    function settleBatch(uint64 checkpointSize, Settlement[] calldata settlements) external onlyRole(PAYER_ROLE) {
        if (settlements.length == 0) revert LedgerEmptyBatch();
        bytes32 root = _checkpointRootOrRevert(checkpointSize);
        uint32 me = _payerNumbers[msg.sender];
        for (uint256 i = 0; i < settlements.length; ++i) {
            Settlement calldata s = settlements[i];
            bytes32 invoiceId = s.leaf.invoiceId;
            _requireIncluded(s.leaf, s.leafIndex, s.proof, checkpointSize, root);
            _requireSignedByHospital(s.leaf, s.leafIndex, s.signature);
            ClaimState memory c = _claims[invoiceId];
            _bindRecord(c, invoiceId, s.leaf.recordHash);
            if (c.voided) revert LedgerInvoiceVoided(invoiceId);
            if (c.lockedBy != 0 && c.lockedBy != me) revert LedgerInvoiceLocked(invoiceId, _payerAccounts[c.lockedBy]);
            if (s.amount == 0) revert LedgerZeroAmount(invoiceId);
            uint256 paid = uint256(c.paid) + s.amount;
            if (paid > s.leaf.total) revert LedgerPaidAboveTotal(invoiceId, c.paid, s.amount, s.leaf.total);
            c.paid = uint64(paid);
            c.lockedBy = 0;
            _claims[invoiceId] = c;
            emit InvoiceSettled(invoiceId, msg.sender, s.amount, c.paid, checkpointSize);
        }
    }

    /**
     * @notice Voids an invoice (red-letter reversal, 红冲) on the issuing hospital's EIP-712
     * signature of VoidInvoice(invoiceId, redInvoiceId), relayed by the sequencer or sent by
     * the hospital's own key. The invoice is proven against an anchored checkpoint, which names
     * its hospital; the signer must be a key of that hospital valid now. A payer's review lock
     * on it ends with it.
     * Requirements: caller is SEQUENCER or HOSPITAL; checkpoint anchored; valid inclusion
     * proof; record hash equal to the one bound earlier; not voided; nothing paid (a paid bill
     * is reversed only with its replacement named, {replaceInvoice}); signature by a currently
     * valid key of the issuing hospital.
     * Emits {InvoiceVoided}.
     */
    function voidInvoice(
        uint64 checkpointSize,
        InvoiceLeaf calldata leaf,
        uint64 leafIndex,
        bytes32[] calldata proof,
        bytes32 redInvoiceId,
        bytes calldata signature
    ) external {
        ClaimState memory c = _provenForReversal(checkpointSize, leaf, leafIndex, proof);
        if (c.paid != 0) revert LedgerInvoiceAlreadyPaid(leaf.invoiceId, c.paid);
        _requireReversalSigned(leaf, keccak256(abi.encode(VOID_TYPEHASH, leaf.invoiceId, redInvoiceId)), signature);
        _void(c, leaf, redInvoiceId);
    }

    /**
     * @notice Voids an invoice and names the bill that replaces it: a partial refund on a real
     * e-bill reverses the whole bill (红冲) and issues a new one for the rest. What was paid on
     * the voided invoice is carried over, added to the replacement's `paid`, so that the cap on
     * the replacement counts it: a reversal and a reissue never reset what may still be paid.
     * The voided invoice keeps its own `paid` (its payments stay as they were made).
     *
     * The replacement is named by its bill code and number and its id derived with the voided
     * invoice's hospital ({invoiceIdOf}), so a hospital carries only into its own bills; the
     * replacement need not be uploaded or anchored yet (its claim state is keyed by its id; its
     * record is bound, as any, at its first settlement or reversal). The hospital signs
     * ReplaceInvoice(invoiceId, redInvoiceId, replacementId). Reversals chain: a replacement
     * holding a carried amount is itself voided only by naming its own replacement, which gets
     * everything. More carried than the replacement's total leaves nothing payable on it, and
     * the excess shows on chain (`paid` above the total). A payer's review lock on the voided
     * invoice ends with it; one on the replacement stays.
     * Requirements: those of {voidInvoice} except that something may have been paid; a bill
     * reference of 8 and 10 ASCII digits; the replacement is not the invoice itself and is not
     * voided.
     * Emits {InvoiceVoided}, then {InvoiceReplaced} with the amount carried (zero when nothing
     * was paid) and the replacement's paid amount after it.
     */
    function replaceInvoice(
        uint64 checkpointSize,
        InvoiceLeaf calldata leaf,
        uint64 leafIndex,
        bytes32[] calldata proof,
        bytes32 redInvoiceId,
        bytes8 replacementBillCode,
        bytes10 replacementBillNumber,
        bytes calldata signature
    ) external {
        ClaimState memory c = _provenForReversal(checkpointSize, leaf, leafIndex, proof);
        bytes32 replacementId = invoiceIdOf(leaf.hospital, replacementBillCode, replacementBillNumber);
        if (replacementId == leaf.invoiceId) revert LedgerReplacementIsInvoice(leaf.invoiceId);
        ClaimState storage replacement = _claims[replacementId];
        if (replacement.voided) revert LedgerReplacementVoided(leaf.invoiceId, replacementId);
        _requireReversalSigned(
            leaf, keccak256(abi.encode(REPLACE_TYPEHASH, leaf.invoiceId, redInvoiceId, replacementId)), signature
        );
        _void(c, leaf, redInvoiceId);
        // Checked arithmetic: every fen of `paid` came through a settlement capped by a uint64
        // total, so an overflow would need more than 2^64 fen paid in all; it reverts.
        replacement.paid += c.paid;
        emit InvoiceReplaced(leaf.invoiceId, replacementId, c.paid, replacement.paid);
    }

    /**
     * @notice The invoice id of bill `billCode`-`billNumber` of `hospital`: SHA-256 of the ASCII
     * text `HOSPITAL:BILLCODE-BILLNUMBER`, the hospital code without its zero padding (the rule
     * of `verifier.canonical.invoice_id`).
     * Requirements: the bill code is 8 ASCII digits, the bill number 10.
     */
    function invoiceIdOf(bytes32 hospital, bytes8 billCode, bytes10 billNumber) public pure returns (bytes32) {
        if (!_digits(billCode, 8) || !_digits(billNumber, 10)) {
            revert LedgerInvalidBillReference(billCode, billNumber);
        }
        uint256 length = 0;
        while (length < 32 && hospital[length] != 0) ++length;
        bytes memory code = new bytes(length);
        for (uint256 i = 0; i < length; ++i) {
            code[i] = hospital[i];
        }
        return sha256(abi.encodePacked(code, ":", billCode, "-", billNumber));
    }

    // ----------------------------------------------------------------------------------------
    // Internal
    // ----------------------------------------------------------------------------------------

    function _requireHospital(bytes32 hospital) private view returns (Hospital storage h) {
        h = _hospitals[hospital];
        if (!h.registered) revert LedgerUnknownHospital(hospital);
    }

    /// @dev Reverts unless `signature` over the invoice digest _hashTypedDataV4(recordHash) was
    /// made by a key of the leaf's hospital, none of whose keys with that signer had its
    /// revocation recorded at a log size at or below `leafIndex`: a leaf at index >=
    /// revokedLogSize was first anchored after the revocation, so its issue time, chosen by
    /// whoever held the key, proves nothing. Keys are read newest first, the second slot only
    /// for a key of this signer with a revokedAt. The issue time itself is judged off chain
    /// (upload, verification), as the leaf carries only its hash.
    function _requireSignedByHospital(InvoiceLeaf calldata leaf, uint64 leafIndex, bytes calldata signature)
        private
        view
    {
        bytes32 hospital = leaf.hospital;
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(_hashTypedDataV4(leaf.recordHash), signature);
        if (err != ECDSA.RecoverError.NoError) revert LedgerInvalidInvoiceSignature(leaf.invoiceId, hospital, signer);
        mapping(uint256 keyIndex => HospitalKey) storage keys = _hospitalKeys[hospital];
        bool found = false;
        for (uint256 i = _hospitals[hospital].keyCount; i > 0; --i) {
            HospitalKey storage key = keys[i - 1];
            if (key.signer != signer) continue;
            found = true;
            if (key.revokedAt != 0 && key.revocationRecorded && leafIndex >= key.revokedLogSize) {
                revert LedgerKeyRevokedBeforeAnchoring(leaf.invoiceId, hospital, signer);
            }
        }
        if (!found) revert LedgerInvalidInvoiceSignature(leaf.invoiceId, hospital, signer);
    }

    /// @dev What every reversal checks first: the relayer, the leaf proven against an anchored
    /// checkpoint, its record bound, not voided. Returns the invoice's claim state, to write.
    function _provenForReversal(
        uint64 checkpointSize,
        InvoiceLeaf calldata leaf,
        uint64 leafIndex,
        bytes32[] calldata proof
    ) private returns (ClaimState memory c) {
        if (!hasRole(SEQUENCER_ROLE, msg.sender) && !hasRole(HOSPITAL_ROLE, msg.sender)) {
            revert LedgerUnauthorizedRelayer(msg.sender);
        }
        bytes32 root = _checkpointRootOrRevert(checkpointSize);
        _requireIncluded(leaf, leafIndex, proof, checkpointSize, root);
        c = _claims[leaf.invoiceId];
        _bindRecord(c, leaf.invoiceId, leaf.recordHash);
        if (c.voided) revert LedgerInvoiceVoided(leaf.invoiceId);
    }

    /// @dev Reverts unless `signature` over the EIP-712 struct `structHash` was made by a key of
    /// the leaf's hospital valid at this block's time.
    function _requireReversalSigned(InvoiceLeaf calldata leaf, bytes32 structHash, bytes calldata signature)
        private
        view
    {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(_hashTypedDataV4(structHash), signature);
        if (err != ECDSA.RecoverError.NoError || !isKeyValidAt(leaf.hospital, signer, uint48(block.timestamp))) {
            revert LedgerInvalidVoidSignature(leaf.invoiceId, leaf.hospital, signer);
        }
    }

    /// @dev Marks the invoice voided, ends any review lock on it, and emits {InvoiceVoided}.
    function _void(ClaimState memory c, InvoiceLeaf calldata leaf, bytes32 redInvoiceId) private {
        c.voided = true;
        c.lockedBy = 0;
        _claims[leaf.invoiceId] = c;
        emit InvoiceVoided(leaf.invoiceId, redInvoiceId, leaf.hospital);
    }

    /// @dev Whether the first `length` bytes of `text` are ASCII digits.
    function _digits(bytes32 text, uint256 length) private pure returns (bool) {
        for (uint256 i = 0; i < length; ++i) {
            if (text[i] < "0" || text[i] > "9") return false;
        }
        return true;
    }

    function _checkpointRootOrRevert(uint64 size) private view returns (bytes32 root) {
        root = _checkpoints[size];
        if (size == 0 || root == bytes32(0)) revert LedgerUnknownCheckpoint(size);
    }

    /// @dev Binds the record tag on first use; afterwards the same invoice id must come with
    /// the same record hash, so two leaves for one id can never both be paid against.
    function _bindRecord(ClaimState memory c, bytes32 invoiceId, bytes32 recordHash) private pure {
        bytes19 tag = bytes19(recordHash);
        if (c.recordTag == bytes19(0)) {
            c.recordTag = tag;
        } else if (c.recordTag != tag) {
            revert LedgerRecordMismatch(invoiceId, c.recordTag, tag);
        }
    }

    /// @dev Reverts unless the leaf is in the tree of `size` with `root`. Proofs may be cut
    /// short where an earlier payment in the same transaction proved a node of the path (see
    /// {_proveIncluded}).
    function _requireIncluded(
        InvoiceLeaf calldata leaf,
        uint64 leafIndex,
        bytes32[] calldata proof,
        uint64 size,
        bytes32 root
    ) private {
        if (!_proveIncluded(_leafHash(leaf), leafIndex, size, proof, root)) {
            revert LedgerInvalidInclusionProof(leaf.invoiceId, leafIndex, size);
        }
    }

    /// @dev RFC 9162 leaf hash SHA-256(0x00 || invoiceId || recordHash || hospital || total)
    /// through the precompile, in memory past the free pointer: abi.encodePacked would grow
    /// memory on every call, and memory cost is quadratic over a batch.
    function _leafHash(InvoiceLeaf calldata leaf) private view returns (bytes32 h) {
        bytes32 invoiceId = leaf.invoiceId;
        bytes32 recordHash = leaf.recordHash;
        bytes32 hospital = leaf.hospital;
        uint64 total = leaf.total;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x00)
            mstore(add(ptr, 1), invoiceId)
            mstore(add(ptr, 33), recordHash)
            mstore(add(ptr, 65), hospital)
            mstore(add(ptr, 97), shl(192, total))
            if iszero(staticcall(gas(), 0x02, ptr, 105, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @dev RFC 9162 node hash SHA-256(0x01 || left || right), as {_leafHash}.
    function _nodeHash(bytes32 left, bytes32 right) private view returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            mstore(add(ptr, 1), left)
            mstore(add(ptr, 33), right)
            if iszero(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @dev RFC 9162 section 2.1.3.2, with the SHA-256 precompile, and a memo of the nodes
    /// proven in this transaction: at the top of each round `r` is the hash of the node at
    /// (`level`, `fn`) of the tree of `size`, the one covering leaves [fn << level, (fn + 1) <<
    /// level) cut at `size`. Every such node is written to transient storage as it is computed,
    /// and a path that reaches a node already written stops there: equal hashes prove the rest
    /// of the path (that node's own path reached the root), a different hash is a false proof.
    /// Nodes are written before the root is compared, which is sound only because a false
    /// proof reverts the whole transaction ({_requireIncluded}), memo included; so a batch of
    /// payments proves each shared node once, and its proofs may stop where they meet an
    /// earlier one (`chain.merkle.cut_shared_proofs`). The memo outlives the call (the compiler
    /// warns of it) and that is sound: it is keyed by tree size, and the root of a size never
    /// changes once anchored, so a node proven earlier in the transaction stays proven.
    function _proveIncluded(bytes32 leafHash, uint256 index, uint256 size, bytes32[] calldata proof, bytes32 root)
        private
        returns (bool)
    {
        if (index >= size) return false;
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leafHash;
        uint256 node = _NODE_MEMO | (size << 72); // | level << 64 | fn
        for (uint256 i = 0; ; ++i) {
            bytes32 known;
            uint256 slot = node | fn;
            assembly ("memory-safe") {
                known := tload(slot)
            }
            if (known != bytes32(0)) return known == r;
            assembly ("memory-safe") {
                tstore(slot, r)
            }
            if (i == proof.length) break;
            if (sn == 0) return false;
            if (fn & 1 == 1 || fn == sn) {
                r = _nodeHash(proof[i], r);
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                        node += 1 << 64;
                    }
                }
            } else {
                r = _nodeHash(r, proof[i]);
            }
            fn >>= 1;
            sn >>= 1;
            node += 1 << 64;
        }
        return sn == 0 && r == root;
    }
}

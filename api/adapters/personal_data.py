"""Personal data at rest: keyed hashes for lookup, AES-GCM for what must be read back.

The patient's ID number is never stored: only HMAC-SHA256(key, normalised ID number), enough
to find "my invoices" for a signed-in citizen. Names and commitment salts are encrypted with
AES-256-GCM under a key from the settings; each value gets a random 96-bit nonce and the
column name as associated data, so a ciphertext moved to another column does not decrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class PersonalDataError(ValueError):
    """Raised when a ciphertext does not decrypt (wrong key, tampered, or wrong column)."""


class PersonalData:
    """Hashing and encryption of personal fields with the service's secret keys."""

    def __init__(self, hmac_key: bytes, encryption_key: bytes) -> None:
        if len(hmac_key) < 32 or len(encryption_key) != 32:
            raise ValueError("the HMAC key needs 32+ bytes, the AES key exactly 32")
        self._hmac_key = hmac_key
        self._aead = AESGCM(encryption_key)

    def id_number_hash(self, id_number: str) -> bytes:
        """Keyed hash of a resident ID number (upper-cased, stripped) for lookup."""
        return hmac.new(self._hmac_key, id_number.strip().upper().encode(), hashlib.sha256).digest()

    def encrypt(self, plaintext: bytes, column: str) -> bytes:
        """nonce ‖ ciphertext ‖ tag."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, column.encode())

    def decrypt(self, blob: bytes, column: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], column.encode())
        except Exception:
            raise PersonalDataError(f"cannot decrypt {column}") from None

    def encrypt_text(self, text: str, column: str) -> bytes:
        return self.encrypt(text.encode(), column)

    def decrypt_text(self, blob: bytes, column: str) -> str:
        return self.decrypt(blob, column).decode()

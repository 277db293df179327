"""Encrypted keystores (Web3 Secret Storage, via eth-account) for the service's own accounts.

The service holds the keys of the authority, the sequencer and the payers it settles for; it
never holds a hospital's key outside demo mode. Each key is one JSON keystore file named after
its role (``authority.json``, ``sequencer.json``, ``payer-basic.json``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.errors import LedgerConfigError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class KeyStore:
    """A directory of encrypted keystore files sharing one password.

    ``kdf_iterations`` sets the pbkdf2 work factor of new files: eth-account's default scrypt
    takes about a second per unlock, fine for a server, too slow for a test suite that creates
    hundreds; tests pass a small number, production keeps the default (None: scrypt).
    """

    def __init__(self, directory: Path, password: str, kdf_iterations: int | None = None) -> None:
        if not password:
            raise LedgerConfigError("keystore password is empty")
        self.directory = directory
        self._password = password
        self._kdf_iterations = kdf_iterations
        self._unlocked: dict[str, LocalAccount] = {}

    def path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise ValueError(f"bad key name {name!r}")
        return self.directory / f"{name}.json"

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def load(self, name: str) -> LocalAccount:
        """Unlocks a keystore file; raises ``LedgerConfigError`` if missing or wrong password."""
        if name in self._unlocked:
            return self._unlocked[name]
        path = self.path(name)
        try:
            keyfile = json.loads(path.read_text())
            account: LocalAccount = Account.from_key(Account.decrypt(keyfile, self._password))
        except FileNotFoundError:
            raise LedgerConfigError(f"no keystore {path}") from None
        except ValueError as exc:
            raise LedgerConfigError(f"cannot unlock keystore {path}: {exc}") from None
        self._unlocked[name] = account
        return account

    def create(self, name: str, private_key: bytes | None = None) -> LocalAccount:
        """Writes a new keystore (random key unless given); refuses to overwrite one."""
        path = self.path(name)
        if path.exists():
            raise LedgerConfigError(f"keystore {path} exists already")
        account: LocalAccount = Account.from_key(private_key) if private_key else Account.create()
        if self._kdf_iterations is None:
            keyfile = Account.encrypt(account.key, self._password)
        else:
            keyfile = Account.encrypt(
                account.key, self._password, kdf="pbkdf2", iterations=self._kdf_iterations
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(keyfile, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        self._unlocked[name] = account
        return account

    def load_or_create(self, name: str) -> LocalAccount:
        return self.load(name) if self.exists(name) else self.create(name)

"""The contract's ABI: encoding calls, decoding results, reverts and events.

Both ledger backends share this codec, so a revert or an event reads the same whichever node
produced it. The artifact is the committed ``contracts/build/ZeroclaimLedger.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from eth_abi.abi import decode, encode
from eth_utils.abi import (
    collapse_if_tuple,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
)
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain.errors import REVERT_CLASSES, ContractRevert, UnknownRevert

ARTIFACT_PATH = (
    Path(__file__).resolve().parent.parent / "contracts" / "build" / "ZeroclaimLedger.json"
)


@dataclass(frozen=True)
class Log:
    """A raw log as a node returns it."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class Event:
    """A decoded contract event: its name and arguments by name (snake_case)."""

    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: bytes
    log_index: int


def _types(params: list[dict[str, Any]]) -> list[str]:
    return [collapse_if_tuple(p) for p in params]


def snake(name: str) -> str:
    """Solidity camelCase to Python snake_case (``invoiceId`` -> ``invoice_id``)."""
    out = []
    for ch in name:
        if ch.isupper():
            out.append("_" + ch.lower())
        else:
            out.append(ch)
    return "".join(out).lstrip("_")


def _checksummed(types: list[str], values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Addresses as EIP-55 checksummed strings, whatever case the decoder produced."""
    return tuple(
        to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
    )


class ContractCodec:
    """Encodes and decodes the calls, errors and events of one contract ABI."""

    def __init__(self, artifact: dict[str, Any]) -> None:
        self.artifact = artifact
        self.abi: list[dict[str, Any]] = artifact["abi"]
        self.bytecode = bytes.fromhex(artifact["bytecode"].removeprefix("0x"))

    @classmethod
    def load(cls, path: Path = ARTIFACT_PATH) -> ContractCodec:
        """Reads a committed artifact file."""
        return cls(json.loads(path.read_text()))

    @cached_property
    def _functions(self) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in self.abi if e["type"] == "function"}

    @cached_property
    def _errors(self) -> dict[bytes, dict[str, Any]]:
        out = {}
        for e in self.abi:
            if e["type"] == "error":
                signature = f"{e['name']}({','.join(_types(e['inputs']))})"
                out[keccak(text=signature)[:4]] = e
        return out

    @cached_property
    def _events(self) -> dict[bytes, dict[str, Any]]:
        return {event_abi_to_log_topic(cast(Any, e)): e for e in self.abi if e["type"] == "event"}

    def error_names(self) -> set[str]:
        """Names of every custom error the ABI declares."""
        return {e["name"] for e in self._errors.values()}

    def event_topic(self, name: str) -> bytes:
        """topic0 of the named event."""
        for topic, e in self._events.items():
            if e["name"] == name:
                return topic
        raise KeyError(name)

    def deploy_data(self, *args: Any) -> bytes:
        """Creation code with the constructor arguments appended."""
        ctor = next((e for e in self.abi if e["type"] == "constructor"), None)
        if ctor is None:
            return self.bytecode
        return self.bytecode + encode(_types(ctor["inputs"]), list(args))

    def encode_call(self, function: str, *args: Any) -> bytes:
        """Calldata of ``function(args)``."""
        fn = self._functions[function]
        selector = function_abi_to_4byte_selector(cast(Any, fn))
        return selector + encode(_types(fn["inputs"]), list(args))

    def decode_result(self, function: str, data: bytes) -> tuple[Any, ...]:
        """The outputs of ``function`` as a tuple."""
        fn = self._functions[function]
        types = _types(fn["outputs"])
        return _checksummed(types, tuple(decode(types, data)))

    def decode_revert(self, data: bytes) -> ContractRevert:
        """The typed error for revert data (``UnknownRevert`` when it matches no error)."""
        spec = self._errors.get(bytes(data[:4]))
        if spec is None:
            return UnknownRevert(bytes(data))
        types = _types(spec["inputs"])
        values = _checksummed(types, tuple(decode(types, bytes(data[4:]))))
        cls = REVERT_CLASSES.get(spec["name"])
        if cls is None:
            return UnknownRevert(bytes(data))
        return cls(*values)

    def decode_log(self, log: Log) -> Event | None:
        """The decoded event of a log, or None for a log this ABI does not declare."""
        if not log.topics:
            return None
        spec = self._events.get(bytes(log.topics[0]))
        if spec is None:
            return None
        indexed = [p for p in spec["inputs"] if p["indexed"]]
        plain = [p for p in spec["inputs"] if not p["indexed"]]
        values: dict[str, Any] = {}
        for param, topic in zip(indexed, log.topics[1:], strict=True):
            types = [collapse_if_tuple(param)]
            (values[snake(param["name"])],) = _checksummed(types, decode(types, bytes(topic)))
        plain_types = _types(plain)
        decoded = _checksummed(plain_types, tuple(decode(plain_types, log.data)))
        for param, value in zip(plain, decoded, strict=True):
            values[snake(param["name"])] = value
        return Event(spec["name"], values, log.block_number, log.tx_hash, log.log_index)

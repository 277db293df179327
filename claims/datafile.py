"""Reading the package's TOML data files with every problem named by its key path.

The loaders of policies and rules read through ``Fields``: each accessor notes a ``Problem``
(``benefits.inpatient.ratio_bp: must be at most 10000 bp (100%), got 12000``) and returns a
harmless placeholder, so one run reports every mistake in a file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from claims.errors import DataFileInvalid, Problem

ROOT = "$"


def join(path: str, key: str) -> str:
    """The key path of ``key`` inside the table at ``path``."""
    return key if path in ("", ROOT) else f"{path}.{key}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def read_toml(path: Path, error: type[DataFileInvalid]) -> dict[str, Any]:
    """The parsed file; unreadable or malformed files raise ``error`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(path), [Problem(ROOT, f"cannot be read: {exc}")]) from exc
    return parse_toml(text, str(path), error)


def parse_toml(text: str, source: str, error: type[DataFileInvalid]) -> dict[str, Any]:
    """TOML text parsed; a syntax error raises ``error`` naming ``source`` and the line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(source, [Problem(ROOT, f"is not valid TOML: {exc}")]) from exc


class Fields:
    """Typed access to TOML tables that collects problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path, reason))

    def only(self, table: Mapping[str, Any], allowed: Collection[str], path: str) -> None:
        """Notes every key of ``table`` that is not in ``allowed`` (a typo must not pass)."""
        for key in table:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                self.bad(join(path, key), f"unknown key; expected one of {expected}")

    def table(
        self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = True
    ) -> Mapping[str, Any] | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.bad(join(path, key), "is required (a table)")
            return None
        if not isinstance(value, Mapping):
            self.bad(join(path, key), f"must be a table, got {_kind(value)} {value!r}")
            return None
        return value

    def integer(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        *,
        minimum: int | None = 0,
        maximum: int | None = None,
        unit: str = "",
        default: int | None = None,
    ) -> int:
        """An integer within bounds; ``default`` None makes the key required."""
        value = obj.get(key)
        where = join(path, key)
        if value is None:
            if default is None:
                self.bad(where, "is required (an integer)")
                return 0
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            hint = " (money is integer fen, ratios integer bp)" if isinstance(value, float) else ""
            self.bad(where, f"must be an integer{hint}, got {_kind(value)} {value!r}")
            return 0
        if minimum is not None and value < minimum:
            what = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
            self.bad(where, f"{what}, got {value}")
            return 0
        if maximum is not None and value > maximum:
            self.bad(where, f"must be at most {maximum}{unit}, got {value}")
            return 0
        return value

    def ratio_bp(
        self, obj: Mapping[str, Any], key: str, path: str, default: int | None = None
    ) -> int:
        """A ratio in basis points, 0 to 10000 (0% to 100%)."""
        value = self.integer(obj, key, path, unit=" bp (100%)", maximum=10_000, default=default)
        return value

    def text(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        *,
        choices: Collection[str] | None = None,
        default: str | None = None,
    ) -> str:
        value = obj.get(key)
        where = join(path, key)
        if value is None:
            if default is None:
                self.bad(where, "is required (a string)")
                return ""
            return default
        if not isinstance(value, str) or not value.strip():
            self.bad(where, f"must be a non-empty string, got {_kind(value)} {value!r}")
            return ""
        if choices is not None and value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            self.bad(where, f"must be one of {allowed}, got {value!r}")
            return ""
        return value

    def boolean(self, obj: Mapping[str, Any], key: str, path: str, *, default: bool) -> bool:
        value = obj.get(key, default)
        if not isinstance(value, bool):
            self.bad(join(path, key), f"must be true or false, got {_kind(value)} {value!r}")
            return default
        return value

    def strings(self, obj: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        """An optional array of non-empty strings (empty when absent)."""
        value = obj.get(key, [])
        where = join(path, key)
        if not isinstance(value, list):
            self.bad(where, f"must be an array of strings, got {_kind(value)} {value!r}")
            return ()
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.bad(f"{where}[{i}]", f"must be a non-empty string, got {item!r}")
            else:
                out.append(item)
        return tuple(out)

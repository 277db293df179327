"""The committed contract artifacts match the sources, and every contract error has its class."""

from __future__ import annotations

import json
import subprocess

from chain.abi import ARTIFACT_PATH, ContractCodec
from chain.errors import REVERT_CLASSES
from tests.conftest import ROOT


def test_committed_artifacts_are_what_the_pinned_compiler_makes() -> None:
    result = subprocess.run(
        ["node", "contracts/compile.js", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_artifact_header_names_compiler_and_settings() -> None:
    artifact = json.loads(ARTIFACT_PATH.read_text())
    assert artifact["compiler"].startswith("solc 0.8.37")
    assert artifact["settings"]["evmVersion"] == "cancun"
    assert artifact["settings"]["optimizer"] == {"enabled": True, "runs": 20000}
    assert artifact["openzeppelin"].startswith("5.")


def test_every_contract_error_has_a_typed_python_error() -> None:
    # ShortStrings errors can only happen in the constructor (EIP-712 name and version).
    constructor_only = {"InvalidShortString", "StringTooLong"}
    assert ContractCodec.load().error_names() - constructor_only == set(REVERT_CLASSES)


def test_unknown_revert_data_is_reported_not_swallowed() -> None:
    error = ContractCodec.load().decode_revert(b"\xde\xad\xbe\xef")
    assert "0xdeadbeef" in str(error)

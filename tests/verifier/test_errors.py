"""Every exception class of the verifier package descends from ``verifier.errors.VerifierError``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import verifier
from verifier.canonical import SignatureInvalid
from verifier.errors import VerifierError
from verifier.line_proof import LineProofInvalid


def _exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.iter_modules(verifier.__path__, "verifier."):
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


CLASSES = _exception_classes()


def test_the_walk_finds_every_family() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {
        "VerifierError",
        "QrError",
        "PointerMalformed",
        "ImageTooLarge",
        "InvoiceError",
        "SignatureInvalid",
        "LineProofInvalid",
        "TrustListError",
        "StepFailed",
        "StepSkipped",
    } <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_verifier_exception_descends_from_the_root(cls: type[BaseException]) -> None:
    assert issubclass(cls, VerifierError), f"{cls.__module__}.{cls.__qualname__} has another root"


@pytest.mark.parametrize("cls", [SignatureInvalid, LineProofInvalid])
def test_value_errors_stay_value_errors(cls: type[BaseException]) -> None:
    # Callers that caught them as ValueError before the root existed still do.
    assert issubclass(cls, ValueError)

"""The root of every error the verifier package raises.

Each module keeps its own family under this root: ``verifier.qr.QrError`` (payload codec and
image reading, with ``verifier.pointer.PointerMalformed`` and ``verifier.decode``'s image
limits), ``verifier.invoice.InvoiceError``, ``verifier.canonical.SignatureInvalid``,
``verifier.line_proof.LineProofInvalid``, ``verifier.trust_list.TrustListError``, and the
pipeline's step outcomes ``verifier.pipeline.StepFailed`` / ``StepSkipped``. A caller that
wants "anything the verifier refused" catches :class:`VerifierError`; the subclasses carry
the stable codes and the data. ``tests/verifier/test_errors.py`` walks the package and proves
that every exception class it defines descends from this root.
"""

from __future__ import annotations


class VerifierError(Exception):
    """Root of every error raised by the verifier package."""

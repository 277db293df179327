"""Domain errors to HTTP, in one place, with stable machine-readable codes.

Every error body is ``{"error": {"code": ..., "message": ..., ...details}}``. A refusal that
names ``retry_after_seconds`` (a rate limit's 429) also carries the ``Retry-After`` header, in
whole seconds rounded up.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api import refusals
from chain import errors as ledger_errors


class ApiError(Exception):
    """Raised by routes and their dependencies (the HTTP layer) for an answer other than
    success; flows, reads and identity checks raise a ``refusals.Refused`` instead."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


#: The table: each kind of domain refusal, and the ledger's errors, to an HTTP status. The
#: refusal's own ``code`` is kept; a ledger error gets the code named here.
_REFUSAL_STATUS: dict[type[refusals.Refused], int] = {
    refusals.NotFound: 404,
    refusals.Conflict: 409,
    refusals.Invalid: 422,
    refusals.TooLarge: 413,
    refusals.Unauthenticated: 401,
    refusals.Forbidden: 403,
    refusals.TooMany: 429,
}

_LEDGER_STATUS: dict[type[ledger_errors.LedgerError], tuple[int, str]] = {
    ledger_errors.InvoiceVoided: (409, "invoice_voided"),
    ledger_errors.InvoiceAlreadyPaid: (409, "invoice_already_paid"),
    ledger_errors.InvoiceLocked: (409, "invoice_locked"),
    ledger_errors.PaidAboveTotal: (409, "paid_above_total"),
    ledger_errors.InvalidVoidSignature: (422, "invalid_void_signature"),
    ledger_errors.UnknownCheckpoint: (404, "checkpoint_not_found"),
    ledger_errors.HospitalAlreadyRegistered: (409, "hospital_already_registered"),
    ledger_errors.LedgerUnavailable: (503, "ledger_unavailable"),
    ledger_errors.UnknownRevert: (502, "ledger_error"),
}


def status_of(refusal: refusals.Refused) -> int:
    """The HTTP status of a domain refusal, by the most specific kind it is."""
    for cls in type(refusal).__mro__:
        if cls in _REFUSAL_STATUS:
            return _REFUSAL_STATUS[cls]
    raise TypeError(f"{type(refusal).__name__} is not in the refusal table")


def as_api_error(refusal: refusals.Refused) -> ApiError:
    """The refusal as the HTTP layer answers it (for a batch that reports refusals inline)."""
    return ApiError(status_of(refusal), refusal.code, refusal.message, **refusal.details)


def too_many_requests(code: str, message: str, wait: float) -> ApiError:
    """A 429 refusal: the client may try again in ``wait`` seconds (sent as ``Retry-After``)."""
    return ApiError(429, code, message, retry_after_seconds=round(wait, 1))


#: Codes of the framework's own refusals (an unknown path, a body that is not JSON at all...).
_HTTP_CODES = {
    400: "malformed_body",
    404: "not_found",
    405: "method_not_allowed",
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        wait = exc.details.get("retry_after_seconds")
        headers = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else None
        return JSONResponse(
            _body(exc.code, exc.message, **exc.details), status_code=exc.status, headers=headers
        )

    @app.exception_handler(refusals.Refused)
    async def _refused(request: Request, exc: refusals.Refused) -> JSONResponse:
        return await _api_error(request, as_api_error(exc))

    @app.exception_handler(ledger_errors.LedgerError)
    async def _ledger_error(_: Request, exc: ledger_errors.LedgerError) -> JSONResponse:
        status, code = next(
            ((s, c) for cls, (s, c) in _LEDGER_STATUS.items() if isinstance(exc, cls)),
            (502, "ledger_error"),
        )
        if (status, code) == (502, "ledger_error") and isinstance(
            exc, ledger_errors.ContractRevert
        ):
            # The contract refused what was asked (a zero signer, a stale key...): the request's
            # fault, named by the contract's error; 502 is kept for failures of the ledger.
            status, code = 422, "ledger_" + _snake(exc.abi_name.removeprefix("Ledger"))
        return JSONResponse(_body(code, str(exc)), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"path": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse(
            _body("invalid_request", "the request is malformed", problems=problems), status_code=422
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        # The framework's own refusals in the house format too: a body FastAPI cannot parse
        # (an integer of more digits than Python converts, say) is a 400 like any other.
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else "the request was refused"
        return JSONResponse(_body(code, message), status_code=exc.status_code, headers=exc.headers)

"""Refusals cross from the worker process that decides half of a large batch: pickled with
their kind, code, message and details."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

from api.errors import status_of
from api.refusals import Conflict, NotFound, Refused, TooMany


def _refuse_in_worker() -> None:
    raise Conflict("duplicate_claim", "claimed already", first_claim="CLM1", first_state="paid")


@pytest.mark.parametrize(
    "refusal",
    [
        Conflict("duplicate_claim", "claimed already", first_claim="CLM1", first_state="paid"),
        NotFound("invoice_not_found", "no such invoice of yours"),
        TooMany("rate_limited", "too many", 2.25, asker="citizen:1"),
    ],
)
def test_a_refusal_survives_pickling(refusal: Refused) -> None:
    back = pickle.loads(pickle.dumps(refusal))
    assert type(back) is type(refusal)
    assert (back.code, back.message, back.details, str(back)) == (
        refusal.code,
        refusal.message,
        refusal.details,
        str(refusal),
    )
    assert status_of(back) == status_of(refusal)


def test_a_refusal_crosses_from_a_worker_process() -> None:
    context = multiprocessing.get_context("fork")
    with (
        ProcessPoolExecutor(1, mp_context=context) as pool,
        pytest.raises(Conflict, match="claimed already") as raised,
    ):
        pool.submit(_refuse_in_worker).result()
    assert raised.value.code == "duplicate_claim"
    assert raised.value.details == {"first_claim": "CLM1", "first_state": "paid"}
    assert status_of(raised.value) == 409

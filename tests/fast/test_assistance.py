"""Medical assistance (医疗救助) pays citizens with an eligibility flag its policy names: the
citizen's record sets ``low_income`` (its one such column, ``assistance_eligible``)."""

from __future__ import annotations

from datetime import date

from api.db import models
from api.db.models import ClaimState
from api.flows.decide import eligibility_flags
from tests.fast.conftest import World
from tests.fast.fakes import add_citizen


def test_the_record_sets_low_income() -> None:
    def citizen(eligible: bool) -> models.Citizen:
        return models.Citizen(sex="F", birth_date=date(1980, 1, 1), assistance_eligible=eligible)

    assert eligibility_flags(citizen(True)) == {"low_income"}
    assert eligibility_flags(citizen(False)) == frozenset()


def _after_basic(world: World) -> models.Claim:
    invoice_id = world.invoice()
    world.submit(invoice_id)
    assert world.settle.run() == 1  # basic has paid: the other payers may claim
    return world.submit(invoice_id, payer="assistance")


def test_assistance_pays_a_low_income_citizen(world: World) -> None:
    with world.uow() as db:
        world.citizen = add_citizen(db, n=2, low_income=True)
        db.commit()
    claim = _after_basic(world)
    assert (claim.state, claim.amount_fen > 0) == (ClaimState.APPROVED, True)


def test_assistance_refuses_a_citizen_without_a_flag(world: World) -> None:
    claim = _after_basic(world)
    assert (claim.state, claim.amount_fen) == (ClaimState.REJECTED, 0)

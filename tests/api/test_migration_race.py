"""Several processes starting at once on a fresh database (``uvicorn --workers N``) each bring
the schema to head; they take turns, so none fails on a table another has just made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from api.db.session import make_engine
from tests.conftest import ROOT

MIGRATE = (
    "import sys; from api.db.session import make_engine, upgrade; upgrade(make_engine(sys.argv[1]))"
)


def test_processes_migrating_one_fresh_database_at_once_all_succeed(
    tmp_path: Path, database_url: str | None
) -> None:
    url = database_url or f"sqlite:///{tmp_path / 'zeroclaim.sqlite'}"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    results = [(run.wait(timeout=120), run.stderr.read().decode()) for run in runs if run.stderr]
    assert [code for code, _ in results] == [0, 0, 0, 0], [err[-800:] for _, err in results]
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as connection:
            (version,) = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
    finally:
        engine.dispose()
    assert {"invoices", "claims", "payer_accumulators", "alembic_version"} <= tables
    heads = sorted(p.name.split("_")[0] for p in (ROOT / "api/migrations/versions").glob("0*.py"))
    assert version[0] == heads[-1]

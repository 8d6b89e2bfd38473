"""Fixtures of the fault suite: a `Scenario` on SQLite, on PostgreSQL, or on each.

PostgreSQL scenarios get a fresh schema (dropped afterwards) through `pg_schema`, so
that, as everywhere in the suite, they are skipped when PostgreSQL cannot be reached,
except under CI=true, where they fail.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.conftest import pg_url
from tests.faults.harness import Database, Scenario
from tests.faults.report import results_path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every scenario runs alone (some restart the database server): `serial`."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.serial)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator:
    """Keep the test's own outcome on the item: a scenario that broke before writing
    its row writes one saying why.
    """
    report = yield
    if report.when == "call":
        item.faults_call_report = report  # type: ignore[attr-defined]
    return report


@pytest.fixture(scope="session", autouse=True)
def _fresh_results() -> None:
    """A run of the suite starts a new results file."""
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


def _scenario(request: pytest.FixtureRequest, tmp_path: Path, store: str) -> Iterator[Scenario]:
    name = request.node.originalname.removeprefix("test_").replace("_", " ")
    if store == "sqlite":
        path = tmp_path / "jobs.db"
        url = f"sqlite+aiosqlite:///{path}"
        db = Database("sqlite", path=path)
    else:
        schema = request.getfixturevalue("pg_schema")
        url = pg_url(schema)
        db = Database("postgresql", schema=schema)
    sc = Scenario(store=store, url=url, tmp_path=tmp_path, db=db, name=name)
    try:
        yield sc
    finally:
        report = getattr(request.node, "faults_call_report", None)
        error = None
        if report is not None and report.failed:
            error = str(report.longrepr).strip().splitlines()[-1][:300]
        sc.close(error=error)


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scenario]:
    """A scenario on a fresh PostgreSQL schema."""
    yield from _scenario(request, tmp_path, "postgresql")


@pytest.fixture
def lite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scenario]:
    """A scenario on a fresh SQLite file."""
    yield from _scenario(request, tmp_path, "sqlite")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scenario]:
    """A scenario on each store."""
    yield from _scenario(request, tmp_path, request.param)

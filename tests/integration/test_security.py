"""What docs/security.md promises, checked on each store: rows never name code to run,
values never leak into error messages or logs, identifiers are validated, and a password
in the database URL is never printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr
from sqlalchemy import text

import brains_jobs as bj
from brains_jobs.store.postgres import PostgresStore
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus
SECRET = "hunter2-do-not-log"


class Login(BaseModel):
    user: str
    password_ref: str
    attempts: int


class Ok(BaseModel):
    ok: bool


@bj.job("login", max_attempts=1)
async def login(ctx: bj.JobContext, inp: Login) -> Ok:
    ctx.logger.info("logging in %s", inp.user)
    return Ok(ok=True)


async def test_a_type_name_read_from_a_row_is_never_imported(rt: bj.Runtime) -> None:
    """A job whose type names a module (written by hand or by another application) is
    never imported to run it: it waits for a worker that registered that type.
    """
    module = "tests.support.never_imported"
    engine = rt.store.engine  # type: ignore[attr-defined]
    handle = await rt.enqueue(jobs.add, {"a": 1})
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE jobs SET type = :type WHERE id = :id"), {"type": module, "id": handle.id}
        )
    await rt.run_worker(burst=True, maintenance=False)
    assert module not in sys.modules
    job = await rt.get(handle.id)
    assert (job.type, job.status) == (module, S.QUEUED)
    assert module in (await rt.stats()).unserved


async def test_invalid_input_errors_never_carry_the_values(
    rt: bj.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """An input that fails validation is refused naming the fields, never quoting the
    values (which may be secret or huge).
    """
    async with bj.Runtime(rt.url, jobs=[login], load_entrypoints=False) as other:
        with pytest.raises(bj.InvalidJobInput) as info:
            await other.enqueue(login, {"user": "ann", "password_ref": "x", "attempts": SECRET})
        assert info.value.fields == ["attempts"]
        assert SECRET not in str(info.value) and SECRET not in repr(info.value.errors)


def test_secret_fields_are_refused_in_job_models() -> None:
    """pydantic writes a `SecretStr` as '**********' in JSON: stored that way the handler
    would never see the secret, so a model holding one (at any depth) is refused when
    the job type is defined, naming the field.
    """

    class Credentials(BaseModel):
        token: SecretStr

    class Call(BaseModel):
        url: str
        auth: list[Credentials] = []

    async def call(ctx: bj.JobContext, inp: Call) -> Ok:
        return Ok(ok=True)

    with pytest.raises(bj.ConfigurationError, match="input field 'token' is a secret type"):
        bj.JobDefinition("call", call, Call, Ok)
    with pytest.raises(bj.ConfigurationError, match="output field 'token' is a secret type"):
        bj.JobDefinition("call", call, Ok, Credentials)  # type: ignore[arg-type]


def test_a_password_in_the_url_is_never_printed() -> None:
    store = PostgresStore(f"postgresql+asyncpg://app:{SECRET}@db.example:5432/jobs?schema=s")
    assert SECRET not in store.describe()
    assert "app" in store.describe() and "db.example" in store.describe()


@pytest.mark.parametrize("schema", ['x"; DROP TABLE jobs; --', "a b", "x" * 80, "", "public.jobs"])
def test_schema_names_are_identifiers_only(schema: str) -> None:
    with pytest.raises(bj.ConfigurationError, match="letters, digits and underscores"):
        PostgresStore(f"postgresql+asyncpg://u@h/db?schema={schema}")


def test_job_and_queue_names_are_identifiers_only(tmp_path: Path) -> None:
    for bad in ["x; drop", "../etc", "a\x00b", "é" * 3, ""]:
        with pytest.raises(bj.ConfigurationError):
            bj.JobDefinition(bad, login.handler, Login, Ok)
        with pytest.raises(bj.ConfigurationError):
            bj.JobDefinition("ok", login.handler, Login, Ok, queue=bad)

"""What callers give that could not be stored, or would not come back as given: each is
refused at the boundary, identically on both stores, with an error of the library's tree
naming the field; what is accepted comes back unchanged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.payloads import dump_models
from tests.integration.conftest import running_worker
from tests.support import jobs

pytestmark = pytest.mark.anyio


class Free(BaseModel):
    value: Any = None
    number: float = 0.0
    text: str = ""


class Echo(BaseModel):
    value: Any = None
    number: float = 0.0
    text: str = ""


@bj.job("echo", max_attempts=3)
async def echo(ctx: bj.JobContext, inp: Free) -> Echo:
    """Returns its input."""
    return Echo(value=inp.value, number=inp.number, text=inp.text)


@pytest.fixture
async def rt(database_url: str, tmp_path: Path):
    async with bj.Runtime(
        database_url,
        jobs=[*jobs.ALL, echo],
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
    ) as runtime:
        yield runtime


def _deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    "data",
    [
        {"number": math.nan},
        {"number": math.inf},
        {"value": [1.0, -math.inf]},
        {"text": "lone \ud800 surrogate"},
        {"value": _deep(5000)},
    ],
    ids=["nan", "inf", "nested-inf", "surrogate", "deep"],
)
async def test_input_that_would_not_come_back_is_refused(rt: bj.Runtime, data: dict) -> None:
    with pytest.raises(bj.InvalidJobInput, match="'echo'"):
        await rt.enqueue(echo, data)
    assert (await rt.stats()).by_type == {}


@pytest.mark.parametrize(
    "value",
    [
        "nul \x00 inside",
        "\u20ac \U0001f600 \u0627\u0644\u0639\u0631\u0628\u064a\u0629",
        {"k": [None, True, 1, 2.5]},
        10**18,
        "unit \x1f record \x1e separators \x01",
    ],
    ids=["nul", "unicode", "structure", "big-int", "separators"],
)
async def test_accepted_input_comes_back_unchanged(rt: bj.Runtime, value: Any) -> None:
    handle = await rt.enqueue(echo, {"value": value, "text": str(value)})
    assert (await handle.get()).input == {"value": value, "number": 0.0, "text": str(value)}
    async with running_worker(rt):
        out = await handle.result(timeout=10)
    assert out.value == value and out.text == str(value)


BULK = [
    {"value": "plain", "text": "a"},
    {"value": {"k": [1, 2.5]}, "text": "\u20ac \U0001f600 \u0627\u0644\u0639\u0631\u0628"},
    {"value": "nul \x00 inside", "text": "unit \x1f record \x1e separators \x01"},
    {"value": ["{", "}", ",", "}{"], "text": '"}, {"'},
]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"value": "x},{y"},  # what separates two objects in one dump of the list
        {"value": None},
    ],
    ids=["dumped-together", "separator", "null"],
)
async def test_accepted_inputs_come_back_unchanged_in_bulk(rt: bj.Runtime, extra: dict) -> None:
    inputs = [*BULK, *([extra] if extra else [])]
    together = dump_models(echo.inputs_adapter, [Free(**inp) for inp in inputs], rt.max_payload)
    assert (together is not None) == (not extra)  # the path each case is meant to take
    handles = await rt.enqueue_many(echo, inputs)
    want = [Free(**inp).model_dump(mode="json") for inp in inputs]
    assert [(await h.get()).input for h in handles] == want
    async with running_worker(rt):
        outs = [await h.result(timeout=10) for h in handles]
    assert [o.model_dump(mode="json") for o in outs] == want


# PostgreSQL keeps these in `jsonb`, which holds numbers as decimals and writes them
# back without an exponent: floats Python writes with one must still come back as floats.
NUMBERS = {
    "float_with_exponent": 5.279459010105126e16,
    "largest_float": 1.7976931348623157e308,
    "negative": -2.5e20,
    "smallest_float": 5e-324,
    "integer_alike": 52794590101051260,
    "nested": [1e16, {"x": 1.5e17, "text": "1e+16"}],
}


async def test_numbers_in_metadata_come_back_as_given(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(echo, {}, metadata=NUMBERS)
    job = await rt.get(handle.id)
    # As JSON text: an integer for a float, or a float rounded, would read differently.
    assert json.dumps(job.metadata, sort_keys=True) == json.dumps(NUMBERS, sort_keys=True)


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("delay", math.nan, "delay"),
        ("delay", 1e20, "delay"),
        ("delay", -1, "delay"),
        ("delay", "soon", "delay"),
        ("priority", "5", "priority"),
        ("priority", 5.5, "priority"),
        ("priority", 10**9, "priority"),
        ("priority", True, "priority"),
        ("max_attempts", 0, "max_attempts"),
        ("tags", "abc", "tags"),
        ("tags", ["ok", "nul\x00"], "tags"),
        ("unique_key", "nul\x00key", "unique_key"),
        ("unique_key", "", "unique_key"),
        ("owner", "lone \udc00", "owner"),
        ("owner", 42, "owner"),
        ("queue", "lone \ud800", "queue"),
        ("queue", "", "queue"),
        ("metadata", {"k": "nul\x00"}, "metadata"),
        ("metadata", {"k": math.nan}, "metadata"),
        ("metadata", {"k": object()}, "metadata"),
        ("metadata", {1: "x"}, "metadata"),
        ("metadata", ["not", "a", "mapping"], "metadata"),
        ("run_at", "tomorrow", "run_at"),
        ("bogus", 1, "bogus"),
    ],
)
async def test_bad_options_are_refused_naming_them(
    rt: bj.Runtime, option: str, value: Any, field: str
) -> None:
    with pytest.raises(bj.InvalidJobOption, match=f"'{field}'") as info:
        await rt.enqueue(jobs.add, {"a": 1}, **{option: value})
    assert info.value.option == field
    assert (await rt.stats()).by_type == {}


async def test_bad_listing_and_pruning_arguments_are_refused(rt: bj.Runtime) -> None:
    with pytest.raises(bj.InvalidJobOption, match="'status'"):
        await rt.list(status="bogus")
    with pytest.raises(bj.InvalidJobOption, match="'limit'"):
        await rt.list(limit=-1)
    with pytest.raises(bj.InvalidJobOption, match="'older_than'"):
        await rt.prune(-5)
    with pytest.raises(bj.InvalidJobOption, match="'statuses'"):
        await rt.prune(5, statuses=["done"])
    with pytest.raises(bj.InvalidJobOption, match="'kinds'"):
        rt.events(kinds=["nonsense"])


async def test_a_url_without_its_driver_says_which_to_use(tmp_path: Path) -> None:
    with pytest.raises(bj.ConfigurationError, match="use sqlite\\+aiosqlite:///"):
        async with bj.Runtime(f"sqlite:///{tmp_path / 'x.db'}", load_entrypoints=False):
            pass
    with pytest.raises(bj.ConfigurationError, match="no store for database URL"):
        async with bj.Runtime("mysql://h/db", load_entrypoints=False):
            pass


async def test_a_row_written_by_hand_fails_at_once_and_reads_well(
    database_url: str, tmp_path: Path
) -> None:
    """SQLite keeps any text: the row holds invalid JSON. PostgreSQL's json column
    refuses that on insert, so there the row holds JSON that does not fit the model.
    """
    sqlite = database_url.startswith("sqlite")
    written = '{"text": broken' if sqlite else '{"text": ["not", "text"]}'
    async with bj.Runtime(
        database_url,
        jobs=[*jobs.ALL, echo],
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
    ) as rt:
        handle = await rt.enqueue(echo, {"text": "fine"})
        engine = rt.store.engine  # type: ignore[attr-defined]
        async with engine.begin() as conn:
            if sqlite:
                await conn.exec_driver_sql(
                    "UPDATE jobs SET input = ? WHERE id = ?", (written, handle.id)
                )
            else:
                await conn.exec_driver_sql(
                    "UPDATE jobs SET input = $1::json WHERE id = $2", (written, handle.id)
                )
        job = await rt.get(handle.id)
        assert job.input == (written if sqlite else {"text": ["not", "text"]})
        assert [j.id for j in (await rt.list()).jobs] == [handle.id]
        async with running_worker(rt):
            with pytest.raises(bj.JobFailed, match="InvalidJobInput"):
                await handle.result(timeout=10)
        job = await rt.get(handle.id)
        assert job.attempts == 1 and job.errors[0].type == "InvalidJobInput"

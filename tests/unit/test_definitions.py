from __future__ import annotations

import pytest
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.exceptions import ConfigurationError


class In(BaseModel):
    x: int


class Out(BaseModel):
    y: int


def test_models_come_from_annotations() -> None:
    @bj.job("double", max_attempts=4, timeout=2.5, queue="math", priority=3)
    async def double(ctx: bj.JobContext, inp: In) -> Out:
        return Out(y=inp.x * 2)

    assert isinstance(double, bj.JobDefinition)
    assert double.input_model is In and double.output_model is Out
    assert (double.max_attempts, double.timeout, double.queue, double.priority) == (
        4,
        2.5,
        "math",
        3,
    )


def test_local_models_resolve() -> None:
    class LocalIn(BaseModel):
        a: str

    class LocalOut(BaseModel):
        b: str

    @bj.job("local")
    async def local(ctx: bj.JobContext, inp: LocalIn) -> LocalOut:
        return LocalOut(b=inp.a)

    assert local.input_model is LocalIn and local.output_model is LocalOut


def test_missing_annotation_is_named() -> None:
    with pytest.raises(ConfigurationError, match="annotate the return type"):

        @bj.job("bad")
        async def bad(ctx: bj.JobContext, inp: In):  # type: ignore[no-untyped-def]
            return Out(y=1)


def test_non_model_annotation_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="input annotation must be a pydantic BaseModel"):

        @bj.job("bad")
        async def bad(ctx: bj.JobContext, inp: int) -> Out:
            return Out(y=inp)


def test_plain_handlers_run_in_threads_and_async_ones_do_not() -> None:
    def handler(ctx: bj.JobContext, inp: In) -> Out:
        return Out(y=1)

    async def coroutine(ctx: bj.JobContext, inp: In) -> Out:
        return Out(y=1)

    assert bj.JobDefinition("sync", handler, input_model=In, output_model=Out).threaded
    assert not bj.JobDefinition("async", coroutine, input_model=In, output_model=Out).threaded
    with pytest.raises(ConfigurationError, match="must be a function"):
        bj.JobDefinition("bad", 42, input_model=In, output_model=Out)  # type: ignore[arg-type]


def test_definition_without_decorator() -> None:
    class Resizer:
        async def __call__(self, ctx: bj.JobContext, inp: In) -> Out:
            return Out(y=inp.x)

    definition = bj.JobDefinition("resize", Resizer(), input_model=In, output_model=Out)
    assert definition.name == "resize"


@pytest.mark.parametrize("name", ["", "has space", "x" * 200, "-leading"])
def test_bad_names(name: str) -> None:
    async def handler(ctx: bj.JobContext, inp: In) -> Out:
        return Out(y=1)

    with pytest.raises(ConfigurationError, match="invalid job type name"):
        bj.JobDefinition(name, handler, input_model=In, output_model=Out)


def test_validate_input_names_the_field() -> None:
    @bj.job("v")
    async def v(ctx: bj.JobContext, inp: In) -> Out:
        return Out(y=1)

    with pytest.raises(bj.InvalidJobInput) as info:
        v.validate_input({"x": "not a number"})
    assert info.value.fields == ["x"]
    assert "x:" in str(info.value) and "'v'" in str(info.value)


def test_retry_policy_grows_and_caps() -> None:
    policy = bj.RetryPolicy(base=1.0, cap=10.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    jittered = bj.RetryPolicy(base=1.0, cap=100.0)
    for attempt in range(1, 6):
        window = 2.0 ** (attempt - 1)
        for _ in range(50):
            assert window / 2 <= jittered.delay(attempt) <= window


def test_retry_policy_rejects_cap_below_base() -> None:
    with pytest.raises(ConfigurationError, match="cap"):
        bj.RetryPolicy(base=5, cap=1)

"""Generated inputs and enqueue options at the boundary, on SQLite and on PostgreSQL.

Inputs: a job type whose input model has fields of many kinds (text, whole numbers,
floats, booleans, optional fields, lists, mappings, a nested model, `Any`) gets model
instances, plain dicts (with values of the wrong type too) and bare JSON-like values, all
generated: any text (NUL and lone surrogates included), any float (NaN and infinities
included), whole numbers of up to thousands of digits, deep nesting, inputs over the size
limit. Every input `enqueue` accepts must come back unchanged from `get` and run through a
worker to the same output; every input it refuses must raise `InvalidJobInput` (or
`PayloadTooLarge`, for one over the limit) and nothing else, leaving nothing stored.

Options: `queue`, `priority`, `delay`, `run_at`, `unique_key`, `tags`, `owner`,
`metadata` and `max_attempts`, each from a broad strategy (wrong types included), must be
accepted and stored as given, or refused with `InvalidJobOption` naming one of them.

Each test opens one runtime on a portal's event loop and drives it from synchronous
Hypothesis tests; every example starts from an empty database.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import text

import brains_jobs as bj

# Hypothesis keeps caches beside the tests unless told otherwise: keep them out of the
# checkout (examples are not saved at all: `database=None`).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "brains-jobs-hypothesis")

FULL = os.environ.get("BRAINS_JOBS_FAULTS", "").lower() == "full"
MAX_PAYLOAD = 16384
SETTINGS = settings(
    max_examples=3000 if FULL else 300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Shrinking a failure through a real store takes a while: allow it to finish.
pytestmark = pytest.mark.timeout(900)


class Inner(BaseModel):
    label: str
    weight: float = 0.0
    flags: list[bool] = Field(default_factory=list)


class Payload(BaseModel):
    text: str
    count: int
    ratio: float
    flag: bool
    maybe: int | None = None
    note: str | None = None
    items: list[int] = Field(default_factory=list)
    mapping: dict[str, float] = Field(default_factory=dict)
    inner: Inner | None = None
    children: list[Inner] = Field(default_factory=list)
    anything: Any = None


@bj.job("props.echo", max_attempts=1)
async def echo(ctx: bj.JobContext, inp: Payload) -> Payload:
    """Returns its input."""
    return inp


# -- strategies ------------------------------------------------------------------------
#
# Very large values are drawn as recipes (`Huge`, `Deep`, `Repeat`, `Build`) that
# `materialize` turns into the values themselves: a failing example is then reported as
# its short recipe (Python will not even print an int of more than 4300 digits).


@dataclass(frozen=True)
class Huge:
    """sign * (10**digits + tail)"""

    digits: int
    sign: int
    tail: int


@dataclass(frozen=True)
class Deep:
    """`value` nested `levels` deep in lists (or in dicts under the key "k")."""

    value: Any
    levels: int
    as_list: bool


@dataclass(frozen=True)
class Repeat:
    """`char` repeated `times` times."""

    char: str
    times: int


@dataclass(frozen=True)
class Build:
    """A model instance, built from its (materialized) fields."""

    model: type[BaseModel]
    fields: dict[str, Any]


def materialize(recipe: Any) -> Any:
    if isinstance(recipe, Huge):
        return recipe.sign * (10**recipe.digits + recipe.tail)
    if isinstance(recipe, Deep):
        value = materialize(recipe.value)
        for _ in range(recipe.levels):
            value = [value] if recipe.as_list else {"k": value}
        return value
    if isinstance(recipe, Repeat):
        return recipe.char * recipe.times
    if isinstance(recipe, Build):
        return recipe.model(**materialize(recipe.fields))
    if isinstance(recipe, dict):
        return {materialize(k): materialize(v) for k, v in recipe.items()}
    if isinstance(recipe, list):
        return [materialize(v) for v in recipe]
    if isinstance(recipe, frozenset):
        return frozenset(materialize(v) for v in recipe)
    return recipe


# Whole numbers of any size: the usual ones, and some of up to 5000 digits (around the
# 64-bit limits, the largest float, and the 4300 digits Python converts to text).
huge_ints = st.builds(
    Huge,
    st.sampled_from((18, 19, 20, 308, 309, 4299, 4300, 4301)) | st.integers(0, 5000),
    st.sampled_from((1, -1)),
    st.integers(0, 9),
)
ints = st.integers() | huge_ints


def json_like() -> st.SearchStrategy[Any]:
    """JSON-like values: any text and float, whole numbers of any size, some deep."""
    scalars = st.none() | st.booleans() | ints | st.floats() | st.text()
    tree = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
    deep = st.builds(Deep, tree, st.integers(1, 300), st.booleans())
    return tree | deep


# Text up to twice the size limit, in characters of one to four bytes.
long_text = st.builds(Repeat, st.characters(), st.integers(0, MAX_PAYLOAD // 2))

# Floats: finite ones mostly, NaN and the infinities among the others.
floats = st.floats(allow_nan=False, allow_infinity=False) | st.floats()

inners = st.builds(
    Build,
    st.just(Inner),
    st.fixed_dictionaries(
        {"label": st.text(), "weight": floats, "flags": st.lists(st.booleans(), max_size=3)}
    ),
)
payloads = st.builds(
    Build,
    st.just(Payload),
    st.fixed_dictionaries(
        {
            "text": st.text() | long_text,
            "count": ints,
            "ratio": floats,
            "flag": st.booleans(),
            "maybe": st.none() | ints,
            "note": st.none() | st.text(),
            "items": st.lists(ints, max_size=4),
            "mapping": st.dictionaries(st.text(max_size=8), floats, max_size=4),
            "inner": st.none() | inners,
            "children": st.lists(inners, max_size=2),
            "anything": json_like(),
        }
    ),
)


def loose(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`strategy`, or a value of some other kind."""
    return strategy | json_like()


# Plain dicts for the model: the right kinds of values, values of other kinds, fields
# left out, and keys the model does not have.
raw_dicts = st.fixed_dictionaries(
    {
        "text": loose(st.text() | long_text),
        "count": loose(ints | st.text(alphabet="0123456789", min_size=1, max_size=30)),
        "ratio": loose(st.floats()),
        "flag": loose(st.booleans()),
    },
    optional={
        "maybe": loose(st.none() | ints),
        "items": loose(st.lists(ints, max_size=4)),
        "mapping": loose(st.dictionaries(st.text(max_size=8), st.floats(), max_size=4)),
        "inner": loose(st.fixed_dictionaries({"label": st.text()}, optional={"weight": ints})),
        "anything": json_like(),
        "extra": json_like(),
    },
)
# Mostly model instances; plain dicts and bare values the rest of the time.
inputs = st.one_of(payloads, payloads, raw_dicts, json_like())


# -- what the boundary must decide -----------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def representable(value: Any) -> bool:
    """Valid Unicode text throughout (no lone surrogates)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and _SURROGATE.search(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


def readable(value: Any) -> bool:
    """No integer of more than 4300 digits, which Python's JSON reader refuses."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 10**4300:
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


def finite(value: Any) -> bool:
    """No NaN or infinity anywhere: JSON cannot carry them."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


def depth(value: Any) -> int:
    best, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        best = max(best, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, level + 1) for v in item)
    return best


ACCEPT, REFUSE, TOO_LARGE, EITHER_WAY = "accept", "refuse", "too large", "either way"
# The outcomes each expectation allows: accepted, InvalidJobInput, PayloadTooLarge.
ALLOWED = {
    ACCEPT: {ACCEPT},
    REFUSE: {REFUSE},
    TOO_LARGE: {TOO_LARGE},
    EITHER_WAY: {ACCEPT, REFUSE, TOO_LARGE},
}


def expected_input(inp: Any) -> tuple[str, Payload | None]:
    """What enqueue must do with `inp`, and the validated model when it is valid.

    Invalid for the model, or holding NaN or an infinity: refused. Lone surrogates (not
    Unicode) and nesting deeper than 64 levels may meet a limit of a store or of the
    serializer: either way. Otherwise its JSON decides: over the limit, too large; else
    accepted.
    """
    try:
        model = inp if isinstance(inp, Payload) else Payload.model_validate(inp)
    except (ValidationError, RecursionError):
        return REFUSE, None
    plain = model.model_dump(mode="python")
    if not finite(plain) or not readable(plain):
        return REFUSE, model
    if not representable(plain) or depth(plain) > 64:
        return EITHER_WAY, model
    size = len(model.model_dump_json().encode("utf-8"))
    return (TOO_LARGE if size > MAX_PAYLOAD else ACCEPT), model


# -- the runtime -----------------------------------------------------------------------


@contextlib.contextmanager
def open_runtime(url: str, directory: Path) -> Iterator[tuple[BlockingPortal, bj.Runtime]]:
    runtime = bj.Runtime(
        url,
        jobs=[echo],
        load_entrypoints=False,
        artifacts=str(directory / "artifacts"),
        max_payload=MAX_PAYLOAD,
    )
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(runtime) as rt,
    ):
        yield portal, rt


async def wipe(rt: bj.Runtime) -> None:
    """Delete every job and event: each example starts from an empty database."""
    async with rt.store.engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(text("DELETE FROM job_events"))
        await conn.execute(text("DELETE FROM jobs"))


async def stored_count(rt: bj.Runtime) -> int:
    return sum((await rt.store.stats()).by_status.values())


async def enqueue(rt: bj.Runtime, inp: Any, **options: Any) -> bj.JobHandle[Any] | BaseException:
    try:
        return await rt.enqueue(echo, inp, **options)
    except Exception as exc:
        return exc


async def run_burst(rt: bj.Runtime) -> None:
    await rt.run_worker(burst=True, maintenance=False, concurrency=1)


def test_generated_inputs_come_back_unchanged_or_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    with open_runtime(database_url, tmp_path) as (portal, rt):

        @SETTINGS
        @given(recipe=inputs, through_worker=st.booleans())
        def check(recipe: Any, through_worker: bool) -> None:
            portal.call(wipe, rt)
            inp = materialize(recipe)
            expected, model = expected_input(inp)
            result = portal.call(enqueue, rt, inp)
            if isinstance(result, BaseException):
                if isinstance(result, bj.PayloadTooLarge):
                    outcome = TOO_LARGE
                elif isinstance(result, bj.InvalidJobInput):
                    outcome = REFUSE
                else:
                    # Chained, so that each kind of wrong error is a failure of its own.
                    raise AssertionError(f"refused with {result!r}") from result
                assert outcome in ALLOWED[expected], f"expected {expected}, got {result!r}"
                assert portal.call(stored_count, rt) == 0, "a refused input was stored"
                return
            assert ACCEPT in ALLOWED[expected], f"expected {expected}, but it was accepted"
            assert model is not None
            want = model.model_dump(mode="json")
            job = portal.call(rt.get, result.id)
            assert job.input == want, "the input did not come back unchanged"
            if through_worker:
                portal.call(run_burst, rt)
                job = portal.call(rt.get, result.id)
                error = job.last_error
                assert job.status is bj.JobStatus.SUCCEEDED, error and error.message[:500]
                assert job.output == want, "the output differs from the input it echoes"

        check()


# -- options ---------------------------------------------------------------------------

MAX_DELAY = 10 * 365 * 86400.0
ON_CONFLICT = ("return_existing", "reject", "replace")
UNIQUE_UNTIL = ("finished", "pruned")
_QUEUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
OFFSETS = st.sampled_from(
    (UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30)))
)
anything = json_like() | st.binary(max_size=8)

OPTION_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "queue": st.from_regex(_QUEUE, fullmatch=True)
    | st.from_regex(_QUEUE, fullmatch=True).map(lambda q: q + "\n")
    | st.text(max_size=140)
    | anything,
    "priority": st.integers(-1_000_000, 1_000_000) | ints | st.floats() | anything,
    "max_attempts": st.integers(1, 10_000) | ints | anything,
    "delay": st.floats(0, MAX_DELAY)
    | st.floats()
    | ints
    | st.timedeltas()
    | st.timedeltas(timedelta(0), timedelta(days=365))
    | anything,
    "run_at": st.datetimes(timezones=OFFSETS)
    | st.datetimes(datetime(2000, 1, 1), datetime(2200, 1, 1), timezones=OFFSETS)
    | st.datetimes()
    | anything,
    "unique_key": st.text(min_size=1, max_size=600) | anything,
    "owner": st.text(max_size=300) | anything,
    "tags": st.lists(st.text(max_size=140), max_size=4)
    | st.frozensets(st.text(min_size=1, max_size=20), max_size=3)
    | anything,
    "metadata": st.dictionaries(st.text(max_size=8), json_like(), max_size=4)
    | st.dictionaries(st.integers() | st.text(max_size=4), ints, max_size=2)
    | anything,
    "on_conflict": st.sampled_from(ON_CONFLICT) | anything,
    "unique_until": st.sampled_from(UNIQUE_UNTIL) | anything,
}
storable_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
# Options that are fine, as the base of every example...
FINE_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "queue": st.from_regex(_QUEUE, fullmatch=True),
    "priority": st.integers(-1_000_000, 1_000_000),
    "max_attempts": st.integers(1, 10_000),
    "delay": st.floats(0, MAX_DELAY) | st.timedeltas(timedelta(0), timedelta(days=365)),
    "unique_key": storable_text.filter(lambda t: 1 <= len(t) <= 512),
    "owner": storable_text.filter(lambda t: 1 <= len(t) <= 256),
    "tags": st.lists(storable_text.filter(lambda t: 1 <= len(t) <= 128), max_size=3),
    "metadata": st.dictionaries(storable_text, storable_text | st.integers(), max_size=3),
    "on_conflict": st.sampled_from(ON_CONFLICT),
    "unique_until": st.sampled_from(UNIQUE_UNTIL),
}
# ...and one or two drawn from the broad strategies on top.
options_strategy = st.builds(
    lambda base, broad: {**base, **dict(broad)},
    st.fixed_dictionaries({}, optional=FINE_OPTIONS),
    st.lists(
        st.sampled_from(sorted(OPTION_STRATEGIES)).flatmap(
            lambda name: st.tuples(st.just(name), OPTION_STRATEGIES[name])
        ),
        max_size=2,
    ),
)

# What the documentation says of an option's value: VALID must be accepted, INVALID must
# be refused; EITHER may go both ways (a limit of the implementation, a value that cannot
# be stored as it is), but accepted it must be stored as given.
VALID, INVALID, EITHER = "valid", "invalid", "either"


def _storable(text: str) -> bool:
    return representable(text) and "\x00" not in text


def _text_verdict(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        return INVALID
    return VALID if 1 <= len(value) <= limit and _storable(value) else EITHER


def _whole(value: Any, low: int, high: int, *, below: str) -> str:
    if isinstance(value, bool):
        return EITHER
    if not isinstance(value, int):
        return INVALID
    if value < low:
        return below
    return VALID if value <= high else EITHER


def _json_verdict(value: Any, level: int = 0) -> str:
    """Plain JSON that a store keeps as it is: VALID; anything else: EITHER."""
    if level > 32:
        return EITHER
    if value is None or isinstance(value, bool):
        return VALID
    if isinstance(value, int):  # one of more than 4300 digits could not be read back
        return VALID if readable(value) else EITHER
    if isinstance(value, float):
        return VALID if math.isfinite(value) else EITHER
    if isinstance(value, str):
        return VALID if _storable(value) else EITHER
    items: Iterable[Any]
    if isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        if not all(isinstance(k, str) and _storable(k) for k in value):
            return EITHER
        items = value.values()
    else:
        return EITHER
    return VALID if all(_json_verdict(v, level + 1) == VALID for v in items) else EITHER


def verdict(name: str, value: Any) -> str:
    """Whether the option `name` may be `value`, as the documentation words it."""
    if name in ("on_conflict", "unique_until"):
        allowed = ON_CONFLICT if name == "on_conflict" else UNIQUE_UNTIL
        return VALID if value in allowed else EITHER if value is None else INVALID
    if value is None:
        return VALID  # the default
    if name == "queue":
        # A name: 1 to 128 letters, digits and `_ . : -`, starting with a letter or digit.
        return VALID if isinstance(value, str) and _QUEUE.fullmatch(value) else INVALID
    if name == "priority":
        return _whole(value, -1_000_000, 1_000_000, below=EITHER)
    if name == "max_attempts":
        return _whole(value, 1, 10_000, below=INVALID)  # at least 1
    if name == "delay":
        if isinstance(value, timedelta):
            seconds = value.total_seconds()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:
                seconds = float(value)
            except OverflowError:
                return EITHER
        else:
            return INVALID
        if math.isnan(seconds) or seconds < 0:
            return INVALID
        return VALID if seconds <= MAX_DELAY else EITHER
    if name == "run_at":
        if not isinstance(value, datetime) or value.tzinfo is None:
            return INVALID
        try:
            moment = value.astimezone(UTC)
        except OverflowError:
            return EITHER  # an instant outside the years 1 to 9999 in UTC
        # Within ten years of now, as for `delay` (a little leeway for the test's clock).
        off = abs((moment - datetime.now(UTC)).total_seconds())
        return VALID if off < MAX_DELAY - 60 else (INVALID if off > MAX_DELAY + 60 else EITHER)
    if name == "unique_key":
        return _text_verdict(value, 512)
    if name == "owner":
        return _text_verdict(value, 256)
    if name == "tags":
        # A list of tags; any other collection of them may be taken as one.
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            return INVALID
        kinds = {_text_verdict(tag, 128) for tag in value}
        if not isinstance(value, list | tuple):
            kinds.add(EITHER)
        return INVALID if INVALID in kinds else EITHER if EITHER in kinds else VALID
    if name == "metadata":
        return _json_verdict(value) if isinstance(value, Mapping) else INVALID
    raise AssertionError(name)


def _shown(value: Any) -> str:
    """`repr(value)`, short enough for a message (Python will not print huge ints)."""
    try:
        text = repr(value)
    except ValueError:
        return f"<{type(value).__name__} too large to print>"
    return text if len(text) <= 200 else text[:200] + "..."


def _as_utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


def test_generated_options_are_stored_as_given_or_refused_by_name(
    database_url: str, tmp_path: Path
) -> None:
    with open_runtime(database_url, tmp_path) as (portal, rt):
        inp = {"text": "x", "count": 1, "ratio": 0.5, "flag": True}

        @settings(SETTINGS, max_examples=5000 if FULL else 400)
        @given(recipe=options_strategy)
        def check(recipe: dict[str, Any]) -> None:
            portal.call(wipe, rt)
            options = materialize(recipe)
            verdicts = {name: verdict(name, value) for name, value in options.items()}
            conflict = options.get("run_at") is not None and options.get("delay") is not None
            before = datetime.now(UTC)
            result = portal.call(partial(enqueue, rt, inp, **options))
            after = datetime.now(UTC)
            if isinstance(result, BaseException):
                if not isinstance(result, bj.InvalidJobOption):
                    # Chained, so that each kind of wrong error is a failure of its own.
                    raise AssertionError(f"refused with {result!r}") from result
                named = result.option
                assert named in options, f"refused naming {named!r}, not given: {result}"
                assert verdicts[named] != VALID or (named == "delay" and conflict), (
                    f"{named}={_shown(options[named])} is valid, yet refused: {result}"
                )
                assert portal.call(stored_count, rt) == 0, "a refused job was stored"
                return
            invalid = [n for n, v in verdicts.items() if v == INVALID]
            assert not invalid and not conflict, f"accepted invalid options {invalid}"
            assert result.created and not result.replaced

            def given_or(name: str, default: Any = None) -> Any:
                value = options.get(name)
                return default if value is None else value

            job = portal.call(rt.get, result.id)
            assert job.queue == given_or("queue", echo.queue)
            assert job.priority == given_or("priority", echo.priority)
            assert job.max_attempts == given_or("max_attempts", echo.max_attempts)
            assert job.unique_key == options.get("unique_key")
            assert job.unique_until == given_or("unique_until", "finished")
            assert job.owner == given_or("owner")
            assert job.tags == list(given_or("tags", []))
            assert job.metadata == given_or("metadata", {})
            if options.get("run_at") is not None:
                assert _as_utc(job.run_at) == _as_utc(options["run_at"]), "run_at not as given"
            if options.get("delay") is not None:
                delay = options["delay"]
                seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
                slack = timedelta(milliseconds=5)
                assert before + timedelta(seconds=seconds) - slack <= job.run_at, job.run_at
                assert job.run_at <= after + timedelta(seconds=seconds) + slack, job.run_at

            # The same enqueue again: a repeat of a key held by a queued job.
            key = options.get("unique_key")
            if key is None:
                return
            repeat = portal.call(partial(enqueue, rt, inp, **options))
            on_conflict = options.get("on_conflict", "return_existing")
            if on_conflict == "reject":
                assert isinstance(repeat, bj.DuplicateJob), repr(repeat)
                assert (repeat.key, repeat.job_id) == (key, job.id), repr(repeat)
            else:
                assert not isinstance(repeat, BaseException), repr(repeat)
                assert (repeat.id, repeat.created) == (job.id, False), repeat
                assert repeat.replaced == (on_conflict == "replace"), repeat
            assert portal.call(stored_count, rt) == 1, "a repeat was stored"

        check()

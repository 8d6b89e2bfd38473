"""`size_over`: a payload's size in bytes of UTF-8 against a limit, counted only when
the text could be over it; `dump_models`: many models in one dump, each read as it
would be dumped alone; `dumps`: JSON whose numbers read back the same from any column.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, RootModel, TypeAdapter, model_serializer

import brains_jobs as bj
from brains_jobs.payloads import (
    _long_digits,
    dump_model,
    dump_models,
    dumps,
    encoded_size,
    size_over,
    storable,
    unstorable,
)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 10,
        "\u00e9" * 5,  # 2 bytes each
        "\u20ac" * 4,  # 3 bytes each
        "\U0001f600" * 2,  # 4 bytes each
        "\U0001f600" * 3,
        "\ud800" * 4,  # lone surrogates, 3 bytes each as stored
        "a" * 7 + "\U0001f600",
    ],
)
@pytest.mark.parametrize("limit", [0, 1, 8, 10, 11, 12, 13])
def test_size_over_agrees_with_the_encoded_size(text: str, limit: int) -> None:
    size = encoded_size(text)
    assert size_over(text, limit) == (size if size > limit else 0)


def test_text_of_at_most_a_quarter_of_the_limit_in_characters_is_never_over() -> None:
    assert size_over("\U0001f600" * 25, 100) == 0  # exactly 100 bytes
    assert size_over("\U0001f600" * 26, 100) == 104


# -- dump_models: many models in one dump ------------------------------------------------


class Item(BaseModel):
    name: str
    tags: list[str] = []
    sizes: dict[str, int] = {}
    ratio: float = 0.0
    when: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    labelled: str = Field("", alias="Label")


class Nothing(BaseModel):
    pass


def _adapter(model: type[BaseModel]) -> TypeAdapter[Any]:
    adapter = bj.JobDefinition("t", _noop, input_model=model, output_model=Nothing).inputs_adapter
    assert adapter is not None
    return adapter


async def _noop(ctx: bj.JobContext, inp: Any) -> Nothing:
    return Nothing()


def test_models_dumped_together_read_as_each_dumped_alone() -> None:
    models = [
        Item(name="plain"),
        Item(name="\u20ac \U0001f600 \u0627\u0644\u0639\u0631\u0628\u064a\u0629", tags=["a", "b"]),
        Item(name='quotes " and \\ and \n and \x1f', sizes={"x": 1, "}": 2}, Label="l"),
        Item(name="brace } comma , brace {", ratio=2.5e-300),
    ]
    texts = dump_models(_adapter(Item), models, 1 << 20)
    assert texts == [dump_model(m) for m in models]
    empty = [Nothing(), Nothing(), Nothing()]
    assert dump_models(_adapter(Nothing), empty, 1 << 20) == ["{}", "{}", "{}"]


@pytest.mark.parametrize(
    ("odd", "together"),
    [
        (Item(name="x},{y"), False),  # what separates two objects, inside a string
        (Item(name="x", tags=["},{"]), False),
        (Item(name="n", ratio=math.nan), False),  # dumped as null: one model alone can tell
        (Item(name="9" * 5000), False),  # a run of digits that long
        (Item(name="big " * 100), False),  # over the limit below
        (Item(name="nul \x00 inside"), True),  # escaped in JSON: nothing to look closer at
    ],
    ids=["separator", "separator-in-list", "nan", "digits", "too-big", "nul"],
)
def test_a_dump_that_needs_a_closer_look_is_left_to_each_model(odd: Item, together: bool) -> None:
    models = [Item(name="a"), odd, Item(name="b")]
    texts = dump_models(_adapter(Item), models, 300)
    if together:
        assert texts == [dump_model(m) for m in models]
    else:
        assert texts is None  # `dump_model` decides for each of them


@given(
    st.lists(
        st.builds(
            Item,
            name=st.text(),
            tags=st.lists(st.text(alphabet='{},[]":\\ a\x1f', max_size=6), max_size=3),
            sizes=st.dictionaries(st.text(alphabet='{}," ', max_size=4), st.integers()),
            ratio=st.floats(allow_nan=False, allow_infinity=False),
        ),
        min_size=2,
        max_size=6,
    )
)
def test_models_dumped_together_are_what_each_gives_alone_or_none(models: list[Item]) -> None:
    texts = dump_models(_adapter(Item), models, 1 << 20)
    if texts is not None:
        assert texts == [dump_model(m) for m in models]


class Root(RootModel[list[int]]):
    pass


class Custom(BaseModel):
    value: int = 0

    @model_serializer
    def _as_list(self) -> list[int]:
        return [self.value]


def test_models_that_do_not_dump_as_objects_are_dumped_one_by_one() -> None:
    for model in (Root, Custom):
        definition = bj.JobDefinition("t", _noop, input_model=model, output_model=Nothing)
        assert definition.inputs_adapter is None


_RUN_LENGTHS = st.sampled_from([0, 1, 2, 4299, 4300, 4301, 4302, 8600, 8601, 12_903])


@pytest.mark.parametrize("offset", [0, 1, 2, 4298, 4299, 4300, 4301, 4302, 8599, 8600])
@pytest.mark.parametrize("length", [4299, 4300, 4301, 4302, 8601])
def test_a_run_of_digits_is_measured_wherever_it_starts(offset: int, length: int) -> None:
    for text in ("a" * offset + "7" * length, "a" * offset + "7" * length + "a" * 5000):
        assert _long_digits(text) == (length > 4300)


@given(
    st.lists(
        st.tuples(_RUN_LENGTHS, st.sampled_from(["", ",", "x", "\u00e9", "-", "."])),
        max_size=6,
    ),
    st.integers(min_value=0, max_value=4301),
)
def test_a_long_run_of_digits_is_found_wherever_it_lies(
    pieces: list[tuple[int, str]], offset: int
) -> None:
    text = "a" * offset + "".join("7" * length + sep for length, sep in pieces)
    assert _long_digits(text) == (re.search("[0-9]{4301}", text) is not None)


@given(st.text(alphabet=st.sampled_from(["a", "\x00", "\ud800", "\udfff", "\u00e9", "\U0001f600"])))
def test_unstorable_text_is_named_whether_ascii_or_not(text: str) -> None:
    problem = unstorable(text)
    first = re.search("[\x00\ud800-\udfff]", text)
    if first is None:
        assert problem is None
        assert storable(text) == text
    else:
        assert problem is not None
        assert f"U+{ord(first.group()):04X}" in problem
        assert unstorable(storable(text)) is None


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _as_jsonb_gives_it_back(number: str) -> Any:
    """A JSON number with a fraction or exponent, read back from PostgreSQL's `jsonb`,
    which keeps it as a decimal and writes it positionally (1e+16 as 10000000000000000).
    """
    return json.loads(format(Decimal(number), "f"))


@given(_JSON)
def test_dumps_reads_back_as_the_same_numbers_even_without_exponents(value: Any) -> None:
    text = dumps(value)
    # What json.dumps writes, unless that has a float with an exponent in it.
    if "e+" not in json.dumps(value):
        assert text == json.dumps(value)
    # Read back as written, and as jsonb gives it back: the same values, floats as floats.
    for read in (json.loads(text), json.loads(text, parse_float=_as_jsonb_gives_it_back)):
        assert json.dumps(read) == json.dumps(value)

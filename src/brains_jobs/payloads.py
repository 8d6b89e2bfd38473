"""What may be stored: text every store can hold, JSON that round-trips, sizes in bytes.

Caller input is checked at the boundary and rejected with an error naming the field;
text that a handler writes (log lines, progress messages, error messages) is made
storable instead, since rejecting it would lose the job's result.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticSerializationError

# NUL (PostgreSQL text cannot hold it) and lone surrogates (not UTF-8 at all).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored as it is, or None when it can."""
    # An ASCII text holds no surrogate; CPython knows whether a text is ASCII without
    # reading it, and finds a NUL far faster than the pattern can.
    if text.isascii() and "\x00" not in text:
        return None
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    char = match.group()
    if char == "\x00":
        return "contains a NUL character (U+0000)"
    return f"contains a lone surrogate (U+{ord(char):04X}), which is not valid Unicode"


def storable(text: str) -> str:
    """`text` with what no store can hold replaced by U+FFFD."""
    if unstorable(text) is None:
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def dumps(value: Any) -> str:
    """`value` (plain data) as JSON text that reads back as the same numbers from a
    PostgreSQL `jsonb` column as from text.

    `jsonb` keeps numbers as decimals and writes them back without an exponent: a float
    that Python writes with one (any of 1e16 or more) would come back as an integer,
    rounded to the digits written (5.279459010105126e+16 as 52794590101051260). Such a
    float is written out in full with a `.0`, which is exactly its value and reads
    back as the same float everywhere. Text without `e+` (nearly all) is as
    `json.dumps` writes it.
    """
    text = json.dumps(value)
    if "e+" not in text:
        return text
    return _positional(value)


def _positional(value: Any) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) >= 1e16:
            return f"{int(value)}.0"
        return json.dumps(value)
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}: {_positional(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_positional(v) for v in value) + "]"
    return json.dumps(value)


def storable_json(value: Any) -> Any:
    """`value` (decoded JSON) with every string made storable, keys included."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value


def json_problem(value: Any, *, depth: int = 0, max_depth: int = 64) -> str | None:
    """Why `value` (plain data) would not round-trip through JSON in a store, or None."""
    if depth > max_depth:
        return f"is nested more than {max_depth} levels deep"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _big(value)
    if isinstance(value, float):
        return None if math.isfinite(value) else f"holds {value!r}, which JSON cannot carry"
    if isinstance(value, str):
        return unstorable(value)
    if isinstance(value, list | tuple):
        for item in value:
            problem = json_problem(item, depth=depth + 1, max_depth=max_depth)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has a key {key!r} that is not a string"
            problem = unstorable(key) or json_problem(item, depth=depth + 1, max_depth=max_depth)
            if problem:
                return problem
        return None
    return f"holds a {type(value).__name__}, which is not JSON"


# Python reads no integer of more than 4300 digits from JSON (`int_max_str_digits`): one
# that big could be written and never read back.
_MAX_DIGITS = 4300
_TOO_BIG = 10**_MAX_DIGITS
_DIGITS = "0123456789"


def _big(value: int) -> str | None:
    if value.bit_length() > 14_000 and abs(value) >= _TOO_BIG:
        return "holds an integer of more than 4300 digits, which JSON readers refuse"
    return None


def dump_model(model: BaseModel) -> str:
    """The model as JSON text; `ValueError` when it cannot be dumped faithfully.

    pydantic writes NaN and infinities as `null`, which would come back as something
    else (or fail validation): those are refused here. The check only runs when the
    text holds a `null` at all, so ordinary payloads pay nothing for it.
    """
    try:
        # model_dump_json() with its defaults, without its wrapper's cost (half of it)
        text = model.__pydantic_serializer__.to_json(model).decode()
    except (PydanticSerializationError, RecursionError, ValueError) as exc:
        raise ValueError(f"cannot be written as JSON: {exc}") from None
    if "null" in text:
        bad = _non_finite(model.model_dump(mode="python"))
        if bad is not None:
            raise ValueError(f"holds {bad!r}, which JSON cannot carry")
    if len(text) > _MAX_DIGITS and _long_digits(text):  # the length first: no call
        try:
            json.loads(text)
        except ValueError:
            raise ValueError(_big(_TOO_BIG)) from None
    return text


def dump_models(adapter: TypeAdapter[Any], models: list[Any], limit: int) -> list[str] | None:
    """What `dump_model` gives each of `models` (instances of one class, each dumped as a
    JSON object), from one dump of the list by `adapter` (for a list of that class): a
    fifth of the cost for small models. None when that one text cannot tell: it holds a
    `null`, a run of digits that long, what no store can hold, more than `limit` bytes,
    or `},{` inside a string; `dump_model` then decides for each model.
    """
    try:
        text = adapter.dump_json(models).decode()
    except (PydanticSerializationError, RecursionError, ValueError):
        return None
    if "null" in text or _long_digits(text) or unstorable(text) or size_over(text, limit):
        return None
    inner = text[1:-1]
    # Between two objects the list reads `},{`: when those are all the `},{` it holds,
    # splitting there gives each object's text (JSON text holds no U+001F of its own).
    if inner.count("},{") != len(models) - 1:
        return None
    return inner.replace("},{", "}\x1f{").split("\x1f")


def _long_digits(text: str) -> bool:
    """True when `text` holds a run of digits longer than JSON readers accept.

    Such a run covers an index that is a multiple of `_MAX_DIGITS`, so only those
    characters are read; around one that is a digit, the run is measured. A pattern
    reading every character took a hundred times longer on a batch's dump.
    """
    n = _MAX_DIGITS
    for i in range(0, len(text) if len(text) > n else 0, n):
        if text[i] in _DIGITS:
            before = text[max(0, i - n) : i]
            after = text[i : i + n + 1]
            run = len(before) - len(before.rstrip(_DIGITS))
            if run + len(after) - len(after.lstrip(_DIGITS)) > n:
                return True
    return False


def _non_finite(value: Any) -> float | None:
    """The first NaN or infinity in `value`, looking through dicts, lists and tuples."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return None


def encoded_size(text: str) -> int:
    """The size of `text` in bytes of UTF-8 (what the limits count)."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass"))


def size_over(text: str, limit: int) -> int:
    """The size of `text` in bytes of UTF-8 when it is over `limit`, else 0.

    A code point takes at most four bytes, so text of up to `limit / 4` characters (most
    payloads) is within the limit without encoding it to count.
    """
    if len(text) * 4 <= limit:
        return 0
    size = encoded_size(text)
    return size if size > limit else 0


def loads(text: str) -> Any:
    """Decode JSON text; `ValueError` (naming the position) when it is not JSON."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"stored JSON is invalid: {exc}") from None


__all__ = [
    "REPLACEMENT",
    "dump_model",
    "encoded_size",
    "json_problem",
    "loads",
    "size_over",
    "storable",
    "storable_json",
    "unstorable",
]

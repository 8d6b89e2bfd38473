"""Turning what a caller asks for into jobs a store can insert, checked at the boundary.

Every input and option is validated here, the same way whichever store follows: an input
that fails its model, that is too big in bytes, or that would not come back unchanged
(NaN, text a database cannot hold) raises `InvalidJobInput` or `PayloadTooLarge`; a bad
option raises `InvalidJobOption` naming it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .definitions import JobDefinition
from .exceptions import InvalidJobInput, InvalidJobOption, PayloadTooLarge
from .limits import key_settings
from .payloads import dump_model, dump_models, encoded_size, json_problem, size_over, unstorable
from .store.records import NewJob, NewJobBatch

if TYPE_CHECKING:
    from .models import Job
    from .registry import Registry

MAX_PRIORITY = 1_000_000
MAX_DELAY = 10 * 365 * 86400.0  # ten years
MAX_ATTEMPTS = 10_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}\Z")
_TEXT_LIMITS = {"unique_key": 512, "owner": 256, "tag": 128}
OPTIONS = frozenset(
    {
        "queue",
        "priority",
        "run_at",
        "delay",
        "unique_key",
        "on_conflict",
        "unique_until",
        "tags",
        "metadata",
        "owner",
        "max_attempts",
        "parent_id",
        "depends_on",
        "on_parent_failure",
    }
)


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job for `Runtime.enqueue_many`: the type (definition or name), input, options."""

    job: JobDefinition[Any, Any] | str
    input: Any
    options: dict[str, Any] = field(default_factory=dict)


class Enqueuer:
    """Validates inputs and options against the registry, and builds `NewJob`s."""

    def __init__(self, registry: Registry, *, max_payload: int) -> None:
        self.registry = registry
        self.max_payload = max_payload

    def definition(self, job: JobDefinition[Any, Any] | str) -> JobDefinition[Any, Any]:
        """The definition of `job` (a definition or a registered name)."""
        if isinstance(job, JobDefinition):
            return job
        if isinstance(job, str):
            return self.registry.get(job)
        raise InvalidJobOption("job", f"expected a job definition or a type name, got {job!r}")

    def prepare(
        self, job: JobDefinition[Any, Any] | str, inp: Any, options: Mapping[str, Any]
    ) -> tuple[JobDefinition[Any, Any], NewJob]:
        """The definition and the checked `NewJob` for one enqueue."""
        definition = self.definition(job)
        new = self.options(definition, options)
        model, new.input = self.validated(definition, inp)
        if definition.limits:
            new.limits = key_settings(definition.limits, model)
        return definition, new

    def options(self, definition: JobDefinition[Any, Any], options: Mapping[str, Any]) -> NewJob:
        """A `NewJob` of `definition` with `options` checked and applied, its input not
        set yet; an unknown or bad option is an `InvalidJobOption` naming it.
        """
        if not options:  # the common enqueue: the definition's own settings
            return NewJob(
                definition.name,
                definition.queue,
                definition.priority,
                "",
                definition.max_attempts,
                version=definition.version,
            )
        unknown = set(options) - OPTIONS
        if unknown:
            raise InvalidJobOption(
                sorted(unknown)[0],
                f"unknown option; the options are {', '.join(sorted(OPTIONS))}",
            )
        return self._options(definition, **options)

    def prepare_many(
        self, job: JobDefinition[Any, Any] | str, inputs: Iterable[Any], options: Mapping[str, Any]
    ) -> tuple[JobDefinition[Any, Any], Sequence[NewJob]]:
        """One type and one set of options for many inputs: the options are checked once,
        and the jobs come as one `NewJobBatch` (but for a type with limits, whose keys
        come from each input).
        """
        items = list(inputs)
        definition = self.definition(job)
        if not items:
            return definition, []
        if definition.limits:
            return definition, [self.prepare(definition, inp, options)[1] for inp in items]
        template = self.options(definition, options)  # its own input is none of the jobs'
        return definition, NewJobBatch(template, self.payloads(definition, items))

    def payloads(self, definition: JobDefinition[Any, Any], inputs: list[Any]) -> list[str]:
        """Each input validated, as JSON text within the size limit: the models dumped
        in one call when `dump_models` can, else one by one.
        """
        models = [definition.validate_input(inp) for inp in inputs]
        adapter = definition.inputs_adapter
        if adapter is not None and len(models) > 1:
            model = definition.input_model
            if all(type(m) is model for m in models):
                texts = dump_models(adapter, models, self.max_payload)
                if texts is not None:
                    return texts
        return [self.payload(definition, m) for m in models]

    def resubmission(self, job: Job) -> NewJob:
        """A new job with the input and options of `job` (its type must be known here),
        linked to it by `original_id`. An input of an older version keeps its version,
        to be upgraded when claimed; one of today's is checked against today's model.
        """
        definition = self.definition(job.type)
        options: dict[str, Any] = {
            "queue": job.queue,
            "priority": job.priority,
            "tags": job.tags,
            "metadata": job.metadata,
            "owner": job.owner,
        }
        if job.version == definition.version:
            _, new = self.prepare(definition, job.input, options)
        else:
            new = self._options(definition, **options)
            new.input = checked_json("input", job.input, self.max_payload)
            new.version = job.version
        new.original_id = job.id
        return new

    def payload(self, definition: JobDefinition[Any, Any], inp: Any) -> str:
        """The validated input as JSON text, within the size limit."""
        return self.validated(definition, inp)[1]

    def validated(self, definition: JobDefinition[Any, Any], inp: Any) -> tuple[Any, str]:
        """The input as the input model, and as JSON text within the size limit."""
        model = definition.validate_input(inp)
        try:
            text = dump_model(model)
        except ValueError as exc:
            raise InvalidJobInput(definition.name, [{"loc": (), "msg": str(exc)}]) from None
        problem = unstorable(text)
        if problem:
            raise InvalidJobInput(definition.name, [{"loc": (), "msg": f"the input {problem}"}])
        size = size_over(text, self.max_payload)
        if size:
            raise PayloadTooLarge(
                f"input of job type {definition.name!r} is {size} bytes as JSON;"
                f" the limit is {self.max_payload} (store big data as artifacts)"
            )
        return model, text

    def _options(
        self,
        definition: JobDefinition[Any, Any],
        *,
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        unique_key: str | None = None,
        on_conflict: str = "return_existing",
        unique_until: str = "finished",
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        owner: str | None = None,
        max_attempts: int | None = None,
        parent_id: int | None = None,
        depends_on: Iterable[Any] | None = None,
        on_parent_failure: str = "skip",
    ) -> NewJob:
        if run_at is not None and delay is not None:
            raise InvalidJobOption("delay", "give run_at or delay, not both")
        if delay is not None:
            run_at = datetime.now(UTC) + timedelta(seconds=_delay(delay))
        elif run_at is not None:
            if not isinstance(run_at, datetime):
                raise InvalidJobOption("run_at", f"expected a datetime, got {_shown(run_at)}")
            if run_at.tzinfo is None:
                raise InvalidJobOption("run_at", "must be timezone-aware")
            try:
                run_at = run_at.astimezone(UTC)
                off = abs((run_at - datetime.now(UTC)).total_seconds())
            except (OverflowError, ValueError):
                off = math.inf
            if off > MAX_DELAY:
                raise InvalidJobOption(
                    "run_at",
                    f"{run_at.isoformat()} is more than {MAX_DELAY / 86400 / 365:.0f} years"
                    " away; give a time within that",
                )
        return NewJob(
            type=definition.name,
            queue=definition.queue if queue is None else _queue(queue),
            priority=definition.priority
            if priority is None
            else _int("priority", priority, -MAX_PRIORITY, MAX_PRIORITY),
            input="",
            max_attempts=definition.max_attempts
            if max_attempts is None
            else _int("max_attempts", max_attempts, 1, MAX_ATTEMPTS),
            run_at=run_at,
            unique_key=None if unique_key is None else _text("unique_key", unique_key),
            tags=_tags(tags),
            metadata=_metadata(metadata),
            owner=None if owner is None else _text("owner", owner),
            parent_id=None if parent_id is None else _int("parent_id", parent_id, 1, 2**63 - 1),
            on_conflict=_choice("on_conflict", on_conflict, ON_CONFLICT),
            unique_keep=_choice("unique_until", unique_until, UNIQUE_UNTIL) == "pruned",
            depends_on=_parents(depends_on),
            on_parent_failure=_choice("on_parent_failure", on_parent_failure, ("skip", "run")),
            version=definition.version,
        )

    def step(
        self,
        job: JobDefinition[Any, Any],
        options: Mapping[str, Any],
        *,
        depends_on: tuple[int, ...],
        input_from: str,
    ) -> NewJob:
        """A workflow step that takes its input from its parents once they are final
        (checked against its input model when it runs).
        """
        unknown = set(options) - OPTIONS
        if unknown:
            raise InvalidJobOption(sorted(unknown)[0], "unknown option")
        new = self._options(job, **options)
        new.input = "null"
        new.depends_on = depends_on
        new.input_from = input_from
        if job.limits:
            if any(callable(limit.key) for limit in job.limits):
                raise InvalidJobOption(
                    "limits",
                    f"job type {job.name!r} computes limit keys from its input, which a"
                    " workflow step only gets once its parents are done; give it fixed"
                    " keys to use it as a step",
                )
            new.limits = key_settings(job.limits, None)
        return new


def check_queue(value: Any) -> str:
    """A valid queue name, or `InvalidJobOption`."""
    return _queue(value)


def check_priority(value: Any) -> int:
    """A valid priority, or `InvalidJobOption`."""
    return _int("priority", value, -MAX_PRIORITY, MAX_PRIORITY)


def checked_json(name: str, value: Any, max_size: int | None = None) -> str:
    """`value` as JSON text that a database stores and gives back unchanged (and, with
    `max_size`, within that many bytes), or `InvalidJobOption` naming `name`.
    """
    problem = json_problem(value)
    if problem:
        raise InvalidJobOption(name, problem)
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    problem = unstorable(text)
    if problem:
        raise InvalidJobOption(name, problem)
    if max_size is not None and encoded_size(text) > max_size:
        raise PayloadTooLarge(
            f"{name} is {encoded_size(text)} bytes as JSON; the limit is {max_size}"
        )
    return text


ON_CONFLICT = ("return_existing", "reject", "replace")
UNIQUE_UNTIL = ("finished", "pruned")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidJobOption(name, f"must be one of {', '.join(allowed)}, got {_shown(value)}")
    return str(value)


def _parents(value: Any) -> tuple[int, ...]:
    """Job ids from ids or handles (anything with an integer `id`)."""
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidJobOption("depends_on", f"expected job handles or ids, got {_shown(value)}")
    ids = []
    for item in value:
        job_id = getattr(item, "id", item)
        ids.append(_int("depends_on", job_id, 1, 2**63 - 1))
    return tuple(dict.fromkeys(ids))


def _delay(value: Any) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    else:
        raise InvalidJobOption("delay", f"expected seconds or a timedelta, got {_shown(value)}")
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DELAY:
        raise InvalidJobOption(
            "delay",
            f"must be a number of seconds from 0 to {MAX_DELAY:.0f}, got {_shown(value)}",
        )
    return seconds


def _int(name: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidJobOption(name, f"expected a whole number, got {_shown(value)}")
    if not low <= value <= high:
        raise InvalidJobOption(name, f"must be from {low} to {high}, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    """`value` for an error message: short (a huge value is cut, a number too big to
    print is described), never an error of its own.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"a number of about {int(value.bit_length() * 0.30103)} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 200 else f"{text[:200]}..."


def _text(name: str, value: Any, limit_name: str | None = None) -> str:
    if not isinstance(value, str):
        raise InvalidJobOption(name, f"expected text, got {_shown(value)}")
    limit = _TEXT_LIMITS[limit_name or name]
    if not value or len(value) > limit:
        raise InvalidJobOption(name, f"must be 1 to {limit} characters long")
    problem = unstorable(value)
    if problem:
        raise InvalidJobOption(name, problem)
    return value


def _queue(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidJobOption(
            "queue", f"invalid queue name {_shown(value)}: use 1-128 letters, digits, '_.:-'"
        )
    return value


def check_name(option: str, value: Any, what: str) -> str:
    """`value` when it follows the rule of job type and queue names (1-128 letters,
    digits, '_.:-', starting with a letter or digit); else `InvalidJobOption(option)`.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidJobOption(
            option,
            f"invalid {what} name {_shown(value)}: use 1-128 letters, digits, '_.:-',"
            " starting with a letter or digit",
        )
    return value


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidJobOption("tags", f"expected a list of tags, got {_shown(value)}")
    return tuple(_text("tags", tag, "tag") for tag in value)


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidJobOption("metadata", f"expected a mapping, got {type(value).__name__}")
    data = dict(value)
    problem = json_problem(data)
    if problem:
        raise InvalidJobOption("metadata", problem)
    return data

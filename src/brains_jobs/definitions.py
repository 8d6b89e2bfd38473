"""Job definitions: a typed handler plus the options that govern how it runs."""

from __future__ import annotations

import inspect
import re
import sys
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from pydantic import BaseModel, RootModel, TypeAdapter, ValidationError

from .exceptions import ConfigurationError, InvalidJobInput
from .limits import Concurrency, Limit, Rate
from .payloads import loads
from .retry import RetryPolicy
from .schedules import Schedule, check_schedule
from .versions import check_versions

if TYPE_CHECKING:
    from .context import JobContext

#: A lifecycle callback: `(job, output)` after a success, `(job, error)` after a final
#: failure; `async def` or plain (a plain one runs in a thread).
Callback = Callable[[Any, Any], Any]

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)
In_contra = TypeVar("In_contra", bound=BaseModel, contravariant=True)
Out_co = TypeVar("Out_co", bound=BaseModel, covariant=True)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}\Z")


class Handler(Protocol[In_contra, Out_co]):
    """A function `(ctx, input) -> output` that does a job's work: `async def`, or a
    plain `def` that the worker runs in a thread.
    """

    def __call__(self, ctx: JobContext, inp: In_contra, /) -> Awaitable[Out_co] | Out_co: ...


@dataclass(frozen=True, eq=False)
class JobDefinition(Generic[In, Out]):
    """A job type: its name, typed handler, input and output models, and run options.

    Build one with the `job` decorator, or directly (for handlers that are methods or
    closures): ``JobDefinition("resize", handler, input_model=Req, output_model=Res)``.
    """

    name: str
    handler: Handler[In, Out]
    input_model: type[In]
    output_model: type[Out]
    max_attempts: int = 3
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    queue: str = "default"
    priority: int = 0
    description: str = ""
    max_crashes: int = 3
    limits: tuple[Limit, ...] = ()
    #: Enqueue a job of this type on this schedule, with the input model's defaults.
    schedule: Schedule | None = None
    #: The version of the input model; jobs remember the one they were enqueued under.
    version: int = 1
    #: `{n: fn}`: `fn` turns the input (a dict) of version `n` into that of `n + 1`.
    upgrade: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)
    #: Called with the job and its output after an attempt succeeds.
    on_success: Callback | None = None
    #: Called with the job and its last error after it fails for good.
    on_failure: Callback | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigurationError(
                f"invalid job type name {self.name!r}: use 1-128 letters, digits, '_.:-'"
            )
        for role, model in (("input", self.input_model), ("output", self.output_model)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise ConfigurationError(
                    f"job {self.name!r}: {role} model must be a pydantic BaseModel subclass,"
                    f" got {model!r}"
                )
        for role, model in (("input", self.input_model), ("output", self.output_model)):
            secret = _secret_field(model)
            if secret is not None:
                raise ConfigurationError(
                    f"job {self.name!r}: the {role} field {secret!r} is a secret type;"
                    " jobs are stored and shown as JSON, where pydantic writes a secret as"
                    " '**********' and the handler would never see it. Pass a reference"
                    " the handler resolves (a name in your secrets store) instead"
                )
        if not callable(self.handler):
            raise ConfigurationError(f"job {self.name!r}: handler must be a function")
        if self.max_attempts < 1:
            raise ConfigurationError(f"job {self.name!r}: max_attempts must be at least 1")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError(f"job {self.name!r}: timeout must be positive")
        if not _NAME.match(self.queue):
            raise ConfigurationError(
                f"job {self.name!r}: invalid queue name {self.queue!r}:"
                " use 1-128 letters, digits, '_.:-'"
            )
        if self.max_crashes < 1:
            raise ConfigurationError(f"job {self.name!r}: max_crashes must be at least 1")
        for limit in self.limits:
            if not isinstance(limit, Concurrency | Rate):
                raise ConfigurationError(
                    f"job {self.name!r}: limits are bj.Concurrency or bj.Rate, got {limit!r}"
                )
        check_versions(self.name, self.version, self.upgrade)
        for hook in ("on_success", "on_failure"):
            if getattr(self, hook) is not None and not callable(getattr(self, hook)):
                raise ConfigurationError(f"job {self.name!r}: {hook} must be a function")
        if self.schedule is not None:
            check_schedule(self.schedule, f"job {self.name!r}: schedule")
            try:
                self.input_model()
            except (ValidationError, TypeError, ValueError) as exc:
                raise ConfigurationError(
                    f"job {self.name!r}: a scheduled job's input model must be buildable"
                    f" from its defaults; {self.input_model.__name__}() fails: {exc}"
                ) from None

    @cached_property
    def threaded(self) -> bool:
        """True for a plain `def` handler, which the worker runs in a thread."""
        return not (
            inspect.iscoroutinefunction(self.handler)
            or inspect.iscoroutinefunction(
                getattr(self.handler, "__call__", None)  # noqa: B004 -- async callables count
            )
        )

    @cached_property
    def inputs_adapter(self) -> TypeAdapter[list[In]] | None:
        """Dumps a list of inputs in one call (`payloads.dump_models`), for an input model
        that dumps as a JSON object: fields, with no root and no serializer of its own.
        None for any other.
        """
        model: Any = self.input_model
        if issubclass(model, RootModel) or model.__pydantic_decorators__.model_serializers:
            return None
        return TypeAdapter(list[model])

    def validate_input(self, data: Any) -> In:
        """The input as the input model, or `InvalidJobInput` naming each bad field."""
        # The exact class first: isinstance() of a pydantic model class is a Python call.
        if type(data) is self.input_model or isinstance(data, self.input_model):
            return data
        try:
            if isinstance(data, BaseModel):
                data = data.model_dump(mode="json")
            return self.input_model.model_validate(data)
        except ValidationError as exc:
            raise InvalidJobInput(self.name, validation_errors(exc)) from None
        except (RecursionError, ValueError, TypeError) as exc:
            raise InvalidJobInput(self.name, [{"loc": (), "msg": f"{exc}"}]) from None

    def validate_input_json(self, text: str) -> In:
        """A stored input (JSON text) as the input model, parsed and validated in one
        pass, or `InvalidJobInput` naming each bad field (or the bad JSON).
        """
        try:
            # model_validate_json(text) without its wrapper, which costs twice the
            # validation of a small input
            inp: In = self.input_model.__pydantic_validator__.validate_json(text)
            return inp  # (typing.cast would be a call per job)
        except ValidationError as exc:
            if any(err["type"] == "json_invalid" for err in exc.errors()):
                # pydantic's parser nests less deeply than the JSON an input may hold
                # (or the text is not JSON at all): the standard library decides.
                try:
                    data = loads(text)
                except ValueError as bad:
                    raise InvalidJobInput(self.name, [{"loc": (), "msg": str(bad)}]) from None
                return self.validate_input(data)
            raise InvalidJobInput(self.name, validation_errors(exc)) from None
        except (RecursionError, ValueError, TypeError) as exc:
            raise InvalidJobInput(self.name, [{"loc": (), "msg": f"{exc}"}]) from None

    @property
    def has_callbacks(self) -> bool:
        """True when the type has a lifecycle callback."""
        return self.on_success is not None or self.on_failure is not None

    def parse_output(self, data: Any) -> Out:
        """The stored output as the output model."""
        return self.output_model.model_validate(data)

    def bind(self, inp: In | Any, **options: Any) -> Bound[In, Out]:
        """This job type with an input and enqueue options, for `Runtime.chain` and
        `Runtime.group`.
        """
        return Bound(self, inp, options)

    def __repr__(self) -> str:
        return (
            f"JobDefinition({self.name!r}, {self.input_model.__name__} -> "
            f"{self.output_model.__name__}, queue={self.queue!r})"
        )


@dataclass(frozen=True, slots=True)
class Bound(Generic[In, Out]):
    """A job type with its input and options, not enqueued yet (`definition.bind(...)`)."""

    definition: JobDefinition[In, Out]
    input: Any
    options: dict[str, Any] = field(default_factory=dict)


class GroupResults(BaseModel, Generic[Out]):
    """The input of a group's callback: its members' ids, final statuses and outputs (in
    the order the members were given; None for a member that did not succeed).
    """

    ids: list[int]
    statuses: list[str]
    results: list[Out | None]

    def succeeded(self) -> list[Out]:
        """The outputs of the members that succeeded."""
        return [r for r in self.results if r is not None]


def _secret_field(model: type[BaseModel]) -> str | None:
    """The name of a `SecretStr`/`SecretBytes` field in `model` or the models it holds,
    if any (they appear in its JSON schema as write-only passwords).
    """
    try:
        schema = model.model_json_schema()
    except Exception:  # a model without a JSON schema: nothing to tell from it
        return None
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        field, node = stack.pop()
        if isinstance(node, list):
            stack.extend((field, item) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("writeOnly") and node.get("format") == "password":
            return field or "(root)"
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                stack.extend(value.items())
            elif isinstance(value, dict | list):
                stack.append((field, value))
    return None


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors, without the offending values (they may be huge or secret)."""
    return [
        {"loc": err.get("loc", ()), "msg": err.get("msg", "invalid"), "type": err.get("type")}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def _models_from_annotations(
    fn: Callable[..., Any], localns: dict[str, Any]
) -> tuple[type[BaseModel], type[BaseModel]]:
    name = getattr(fn, "__qualname__", repr(fn))
    try:
        hints = typing.get_type_hints(fn, localns=localns)
    except Exception as exc:
        raise ConfigurationError(f"cannot resolve the annotations of {name}: {exc}") from exc
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) != 2:
        raise ConfigurationError(
            f"{name} must take exactly two positional parameters (ctx, input), got {len(params)}"
        )
    inp = hints.get(params[1].name)
    out = hints.get("return")
    if inp is None:
        raise ConfigurationError(f"{name}: annotate the input parameter with a pydantic model")
    if out is None:
        raise ConfigurationError(f"{name}: annotate the return type with a pydantic model")
    for role, model in (("input", inp), ("return", out)):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ConfigurationError(
                f"{name}: the {role} annotation must be a pydantic BaseModel subclass, "
                f"got {model!r}"
            )
    return inp, out


def job(
    name: str,
    *,
    max_attempts: int = 3,
    backoff: float = 1.0,
    backoff_cap: float = 300.0,
    jitter: bool = True,
    timeout: float | None = None,
    queue: str = "default",
    priority: int = 0,
    max_crashes: int = 3,
    limits: Iterable[Limit] = (),
    schedule: Schedule | None = None,
    version: int = 1,
    upgrade: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
    on_success: Callback | None = None,
    on_failure: Callback | None = None,
) -> _Decorator:
    """Turn `async def f(ctx: JobContext, inp: In) -> Out` (or a plain `def`, which runs
    in a thread) into a `JobDefinition[In, Out]`.

    The input and output models come from the annotations. Retries wait `backoff` seconds,
    doubling per attempt up to `backoff_cap`, with jitter; `timeout` bounds each attempt.
    A job whose worker died while running it `max_crashes` times is failed for good
    (`WorkerCrashed`) instead of taking more workers down. `limits` hold across every
    worker (`bj.Concurrency`, `bj.Rate`). With `schedule` (`bj.Cron`, `bj.Every`), a
    job of this type is enqueued on every tick, with the input model's defaults.

    `version` numbers the input model: a job queued under an older version is upgraded
    when claimed, by `upgrade[n]` (a function from the version-`n` input dict to the
    version-`n + 1` one) for each version in between. `on_success(job, output)` and
    `on_failure(job, error)` run after the outcome is stored, at least once; what they
    raise is logged and never changes the job.
    """
    # Annotations of handlers defined inside a function name local classes; keep the
    # caller's locals so that they resolve.
    caller_locals = dict(sys._getframe(1).f_locals)
    policy = RetryPolicy(base=backoff, cap=backoff_cap, jitter=jitter)

    def decorate(fn: Callable[[JobContext, In], Any]) -> JobDefinition[In, Out]:
        inp, out = _models_from_annotations(fn, caller_locals)
        return JobDefinition(
            name=name,
            handler=fn,
            input_model=typing.cast("type[In]", inp),
            output_model=typing.cast("type[Out]", out),
            max_attempts=max_attempts,
            retry=policy,
            timeout=timeout,
            queue=queue,
            priority=priority,
            description=inspect.getdoc(fn) or "",
            max_crashes=max_crashes,
            limits=tuple(limits),
            schedule=schedule,
            version=version,
            upgrade=dict(upgrade or {}),
            on_success=on_success,
            on_failure=on_failure,
        )

    return typing.cast("_Decorator", decorate)


class _Decorator(Protocol):
    """What `job(...)` returns: a decorator typed for async and for plain handlers."""

    @overload
    def __call__(
        self, fn: Callable[[JobContext, In], Awaitable[Out]], /
    ) -> JobDefinition[In, Out]: ...

    @overload
    def __call__(self, fn: Callable[[JobContext, In], Out], /) -> JobDefinition[In, Out]: ...

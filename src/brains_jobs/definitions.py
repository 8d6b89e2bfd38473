"""Job definitions: a typed handler plus the options that govern how it runs."""

from __future__ import annotations

import inspect
import re
import sys
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from pydantic import BaseModel, ValidationError

from .exceptions import ConfigurationError, InvalidJobInput
from .limits import Concurrency, Limit, Rate
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .context import JobContext

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)
In_contra = TypeVar("In_contra", bound=BaseModel, contravariant=True)
Out_co = TypeVar("Out_co", bound=BaseModel, covariant=True)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")


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

    @property
    def threaded(self) -> bool:
        """True for a plain `def` handler, which the worker runs in a thread."""
        return not (
            inspect.iscoroutinefunction(self.handler)
            or inspect.iscoroutinefunction(
                getattr(self.handler, "__call__", None)  # noqa: B004 -- async callables count
            )
        )

    def validate_input(self, data: Any) -> In:
        """The input as the input model, or `InvalidJobInput` naming each bad field."""
        if isinstance(data, self.input_model):
            return data
        try:
            if isinstance(data, BaseModel):
                data = data.model_dump(mode="json")
            return self.input_model.model_validate(data)
        except ValidationError as exc:
            raise InvalidJobInput(self.name, _errors(exc)) from None
        except (RecursionError, ValueError, TypeError) as exc:
            raise InvalidJobInput(self.name, [{"loc": (), "msg": f"{exc}"}]) from None

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


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
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
) -> _Decorator:
    """Turn `async def f(ctx: JobContext, inp: In) -> Out` (or a plain `def`, which runs
    in a thread) into a `JobDefinition[In, Out]`.

    The input and output models come from the annotations. Retries wait `backoff` seconds,
    doubling per attempt up to `backoff_cap`, with jitter; `timeout` bounds each attempt.
    A job whose worker died while running it `max_crashes` times is failed for good
    (`WorkerCrashed`) instead of taking more workers down. `limits` hold across every
    worker (`bj.Concurrency`, `bj.Rate`).
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

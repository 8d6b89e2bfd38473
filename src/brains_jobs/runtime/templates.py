"""Job templates: named presets of a job type, its input defaults and its enqueue
options, kept in the database and enqueued by name.

A template keeps only what it was given: an option it does not set follows the job
type's own default at enqueue time. Enqueueing one merges its input defaults with the
overrides (top-level fields: an override replaces a field's whole value) and its options
with those of the call (an option given at the call replaces the template's, `tags` and
`metadata` included), then enqueues through the same path as `enqueue`: the merged input
is validated against the type's input model, and unique keys, delays and limits apply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ..definitions import JobDefinition
from ..enqueueing import check_name
from ..exceptions import InvalidJobInput, PayloadTooLarge, TemplateNotFound
from ..handle import JobHandle
from ..payloads import encoded_size, json_problem
from .base import RuntimeBase

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..models import TemplateInfo


class TemplatesMixin(RuntimeBase):
    """`save_template`, `template`, `templates`, `delete_template`, `enqueue_template`."""

    async def save_template(
        self,
        name: str,
        job: JobDefinition[Any, Any] | str,
        input: Mapping[str, Any] | BaseModel | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | timedelta | None = None,
        unique_key: str | None = None,
        on_conflict: str | None = None,
        unique_until: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        owner: str | None = None,
        max_attempts: int | None = None,
    ) -> TemplateInfo:
        """Create the template `name`, or replace the one of that name; returns it.

        The job type must be registered in this runtime (`UnknownJobType` otherwise),
        and everything is checked now, as `enqueue` checks it: a bad option is an
        `InvalidJobOption` naming it, and an input default that its field refuses an
        `InvalidJobInput` naming the field. Required fields may be left to the overrides
        given at enqueue. Options left as None are not kept: the job type's defaults
        apply when the template is enqueued.

        :param name: the template's name: 1-128 letters, digits, `_.:-`, as job types.
        :param job: the job type: a registered definition or its name.
        :param input: input defaults: a mapping of top-level fields, or an instance of
            the input model (the fields that were set); None: no defaults.
        :param queue: the queue (default: the job type's).
        :param priority: higher runs first (default: the job type's).
        :param delay: seconds (or a timedelta) from enqueue until the job may run.
        :param unique_key: a key that at most one unfinished job holds (see `enqueue`).
        :param on_conflict: what a repeat of a held key does: `return_existing`,
            `reject` or `replace`.
        :param unique_until: how long the key is held: `finished` or `pruned`.
        :param tags: tags of the job.
        :param metadata: metadata of the job (JSON-able).
        :param owner: who the job belongs to.
        :param max_attempts: attempts before the job fails (default: the job type's).
        """
        check_name("name", name, "template")
        definition = self.registry.get(self.enqueuer.definition(job).name)
        given: dict[str, Any] = {
            key: value
            for key, value in (
                ("queue", queue),
                ("priority", priority),
                ("delay", delay),
                ("unique_key", unique_key),
                ("on_conflict", on_conflict),
                ("unique_until", unique_until),
                ("tags", tags),
                ("metadata", metadata),
                ("owner", owner),
                ("max_attempts", max_attempts),
            )
            if value is not None
        }
        checked = self.enqueuer.options(definition, given)
        if "tags" in given:
            given["tags"] = list(checked.tags)
        if "metadata" in given:
            given["metadata"] = checked.metadata
        if isinstance(delay, timedelta):
            given["delay"] = delay.total_seconds()
        defaults = _fields(definition, input)
        _check_defaults(definition, defaults)
        text = json.dumps(defaults, ensure_ascii=False)
        size = encoded_size(text)
        if size > self.max_payload:
            raise PayloadTooLarge(
                f"input defaults of template {name!r} are {size} bytes as JSON;"
                f" the limit is {self.max_payload}"
            )
        await self.store.save_template(name, definition.name, text, given)
        return await self.template(name)

    async def template(self, name: str) -> TemplateInfo:
        """The template named `name`, or `TemplateNotFound`."""
        info = await self.store.template(name)
        if info is None:
            raise TemplateNotFound(name)
        return info

    async def templates(self) -> list[TemplateInfo]:
        """Every template, by name, each with its job type."""
        return await self.store.templates()

    async def delete_template(self, name: str) -> bool:
        """Delete the template `name`; False when there was none. Jobs enqueued from it
        are left as they are.
        """
        return await self.store.delete_template(name)

    async def enqueue_template(
        self,
        name: str,
        overrides: Mapping[str, Any] | BaseModel | None = None,
        *,
        connection: AsyncConnection | None = None,
        **options: Any,
    ) -> JobHandle[Any]:
        """Enqueue one job from the template `name`; returns its handle (untyped, as
        `enqueue` by name).

        The input is the template's defaults with `overrides` laid over them, field by
        top-level field, validated against the job type's input model (`InvalidJobInput`
        names the bad fields). `options` are those of `enqueue` (`queue`, `priority`,
        `delay` or `run_at`, `unique_key`, `tags`...); each one given replaces the
        template's (`run_at` replaces its `delay`), and one given as None is left to the
        template. `TemplateNotFound` when no template has that name, `UnknownJobType`
        when its job type is not registered in this runtime.

        :param name: the template's name.
        :param overrides: input fields that replace the template's defaults: a mapping,
            or an instance of the input model (the fields that were set).
        :param connection: insert the job in this open transaction (see `enqueue`).
        :param options: enqueue options that replace the template's.
        """
        info = await self.template(name)
        definition = self.registry.get(info.type)
        inp = {**info.input, **_fields(definition, overrides)}
        given = {key: value for key, value in options.items() if value is not None}
        merged = {**info.options, **given}
        if "run_at" in given and "delay" not in given:
            merged.pop("delay", None)
        definition, new = self.enqueuer.prepare(definition, inp, merged)
        (row,) = await self._publish([new], connection)
        return JobHandle(
            self.source, row.id, definition, created=row.created, replaced=row.replaced
        )


def _fields(definition: JobDefinition[Any, Any], value: Any) -> dict[str, Any]:
    """Top-level input fields as JSON-able values, from a mapping or a model instance."""
    if value is None:
        return {}
    try:
        if isinstance(value, BaseModel):
            fields = value.model_dump(mode="json", exclude_unset=True)
        elif isinstance(value, Mapping):
            fields = to_jsonable_python(dict(value), by_alias=False)
        else:
            raise InvalidJobInput(
                definition.name,
                [{"loc": (), "msg": f"expected a mapping of fields, got {type(value).__name__}"}],
            )
    except (PydanticSerializationError, RecursionError, ValueError) as exc:
        raise InvalidJobInput(definition.name, [{"loc": (), "msg": f"{exc}"}]) from None
    assert isinstance(fields, dict)
    return fields


def _check_defaults(definition: JobDefinition[Any, Any], defaults: dict[str, Any]) -> None:
    """`InvalidJobInput` unless `defaults` are valid fields of the input model, or only
    lack required fields (which the overrides may give at enqueue).
    """
    problem = json_problem(defaults)
    if problem:
        raise InvalidJobInput(definition.name, [{"loc": (), "msg": f"the input {problem}"}])
    try:
        definition.validate_input(defaults)
    except InvalidJobInput as exc:
        errors = [
            err
            for err in exc.errors
            if not (err.get("type") == "missing" and len(err.get("loc", ())) == 1)
        ]
        if errors:
            raise InvalidJobInput(definition.name, errors) from None

"""The templates role: named presets of a job, kept by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import anyio

from ...store import Store
from ._support import TYPE, UNUSUAL

OPTIONS = {"queue": "reports", "priority": 5, "tags": ["nightly", UNUSUAL], "delay": 1.5}


class TemplatesContract:
    """`Templates`: save (create or replace), read, list and delete."""

    async def test_a_saved_template_reads_back_as_saved(self, store: Store) -> None:
        """A saved template reads back with its type, its input decoded, its options,
        and aware creation and update times (equal for a new one); text of every
        script survives.
        """
        before = datetime.now(UTC) - timedelta(seconds=5)
        await store.save_template("report", TYPE, json.dumps({"title": UNUSUAL}), OPTIONS)
        info = await store.template("report")
        assert info is not None
        assert (info.name, info.type) == ("report", TYPE)
        assert info.input == {"title": UNUSUAL}
        assert info.options == OPTIONS
        assert info.created_at.tzinfo is not None and info.created_at >= before
        assert info.updated_at == info.created_at

    async def test_an_unknown_name_is_none(self, store: Store) -> None:
        """`template` returns None for a name no template has."""
        await store.save_template("report", TYPE, "{}", {})
        assert await store.template("Report") is None
        assert await store.template("other") is None

    async def test_templates_are_listed_by_name(self, store: Store) -> None:
        """`templates` lists every template, ordered by name (the order of the names'
        characters, capitals before small letters, whatever the database's locale).
        """
        assert await store.templates() == []
        for name in ("b", "a", "C", "a.2"):
            await store.save_template(name, TYPE, json.dumps({"name": name}), {})
        listed = await store.templates()
        assert [t.name for t in listed] == ["C", "a", "a.2", "b"]
        assert [t.input for t in listed] == [{"name": n} for n in ("C", "a", "a.2", "b")]

    async def test_saving_again_replaces_and_keeps_the_creation_time(self, store: Store) -> None:
        """Saving a template of an existing name replaces its type, input and options
        at once, keeps its creation time and moves its update time forward.
        """
        await store.save_template("report", TYPE, json.dumps({"a": 1}), OPTIONS)
        first = await store.template("report")
        assert first is not None
        await anyio.sleep(0.01)
        await store.save_template("report", "contract.other", json.dumps({"b": 2}), {})
        second = await store.template("report")
        assert second is not None
        assert (second.type, second.input, second.options) == ("contract.other", {"b": 2}, {})
        assert second.created_at == first.created_at
        assert second.updated_at > first.updated_at
        assert [t.name for t in await store.templates()] == ["report"]

    async def test_delete_says_whether_there_was_one(self, store: Store) -> None:
        """`delete_template` removes the template and returns True; False when there was
        none; the others stay.
        """
        await store.save_template("a", TYPE, "{}", {})
        await store.save_template("b", TYPE, "{}", {})
        assert await store.delete_template("a") is True
        assert await store.delete_template("a") is False
        assert await store.template("a") is None
        assert [t.name for t in await store.templates()] == ["b"]

"""The PostgreSQL store's templates role: named presets of a job, kept by name.

Times come from the database clock, as every other time of this store; names are listed
in the order of their bytes (`COLLATE "C"`), as on SQLite, whatever the database's locale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...models import TemplateInfo
from ...payloads import dumps
from .._rows import template_from_row
from .connection import PostgresBase

SAVE = """
INSERT INTO {{schema}}.templates (name, type, input, options)
VALUES ($1, $2, $3::json, $4::jsonb)
ON CONFLICT (name) DO UPDATE
   SET type = excluded.type, input = excluded.input, options = excluded.options,
       updated_at = now()
"""

COLUMNS = "name, type, input::text AS input, options::text AS options, created_at, updated_at"
ONE = f"SELECT {COLUMNS} FROM {{{{schema}}}}.templates WHERE name = $1"
ALL = f'SELECT {COLUMNS} FROM {{{{schema}}}}.templates ORDER BY name COLLATE "C"'
DELETE = "DELETE FROM {{schema}}.templates WHERE name = $1 RETURNING name"


class PostgresTemplates(PostgresBase):
    """Templates on PostgreSQL."""

    async def save_template(
        self, name: str, job_type: str, input: str, options: Mapping[str, Any]
    ) -> None:
        options_json = dumps(dict(options))  # jsonb: numbers kept as given
        await self.fetch(
            "template", self.sql(SAVE), name, job_type, input, options_json, idempotent=True
        )

    async def template(self, name: str) -> TemplateInfo | None:
        rows = await self.read(self.sql(ONE), name)
        return template_from_row(rows[0]) if rows else None

    async def templates(self) -> list[TemplateInfo]:
        return [template_from_row(r) for r in await self.read(self.sql(ALL))]

    async def delete_template(self, name: str) -> bool:
        return bool(await self.fetch("template", self.sql(DELETE), name))

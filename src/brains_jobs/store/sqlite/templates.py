"""The SQLite store's templates role: named presets of a job, kept by name."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, text

from ...models import TemplateInfo
from .._rows import template_from_row
from ..tables import templates as table
from .connection import SQLiteBase

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

SAVE = text("""
INSERT INTO templates (name, type, input, options, created_at, updated_at)
VALUES (:name, :type, :input, :options, :now, :now)
ON CONFLICT (name) DO UPDATE
   SET type = excluded.type, input = excluded.input, options = excluded.options,
       updated_at = excluded.updated_at
""")


class SQLiteTemplates(SQLiteBase):
    """Templates on SQLite."""

    async def save_template(
        self, name: str, job_type: str, input: str, options: Mapping[str, Any]
    ) -> None:
        params = {
            "name": name,
            "type": job_type,
            "input": input,
            "options": json.dumps(dict(options)),
            "now": time.time(),
        }

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(SAVE, params)

        await self._write(write)

    async def template(self, name: str) -> TemplateInfo | None:
        query = select(table).where(table.c.name == name)

        async def read(conn: AsyncConnection) -> TemplateInfo | None:
            row = (await conn.execute(query)).mappings().first()
            return None if row is None else template_from_row(row)

        return await self._read(read)

    async def templates(self) -> list[TemplateInfo]:
        query = select(table).order_by(table.c.name)

        async def read(conn: AsyncConnection) -> list[TemplateInfo]:
            return [template_from_row(r) for r in (await conn.execute(query)).mappings()]

        return await self._read(read)

    async def delete_template(self, name: str) -> bool:
        statement = delete(table).where(table.c.name == name)

        async def write(conn: AsyncConnection) -> bool:
            return (await conn.execute(statement)).rowcount > 0

        return await self._write(write)

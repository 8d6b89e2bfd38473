"""The OpenAPI document, made from the job types' own models.

Each registered job type's input and output models become components
(`<type>.Input`, `<type>.Output`, their nested models under the same prefix), and the
body of `POST /api/jobs` is one alternative per type, told apart by `type`. A plugin's
job types appear as soon as a server that loads the plugin starts.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..registry import Registry
from .jobs import ENQUEUE_OPERATION

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def component_name(job_type: str) -> str:
    """A job type's name as an OpenAPI component name (`:` is not allowed there)."""
    return "job." + _UNSAFE.sub("_", job_type)


def _add_model(components: dict[str, Any], name: str, model: type[Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=f"#/components/schemas/{name}.{{model}}")
    for nested, nested_schema in schema.pop("$defs", {}).items():
        components[f"{name}.{nested}"] = nested_schema
    components[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def build_openapi(app: FastAPI, registry: Registry) -> dict[str, Any]:
    """The app's OpenAPI document with every job type's models in it."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    base = components.get("EnqueueBody")
    alternatives: dict[str, dict[str, str]] = {}
    for definition in registry:
        prefix = component_name(definition.name)
        input_ref = _add_model(components, f"{prefix}.Input", definition.input_model)
        _add_model(components, f"{prefix}.Output", definition.output_model)
        if base is None:
            continue
        body = copy.deepcopy(base)
        body["title"] = f"Enqueue {definition.name}"
        body["properties"]["type"] = {"type": "string", "const": definition.name}
        body["properties"]["input"] = input_ref
        body["required"] = ["type", "input"]
        components[f"{prefix}.Enqueue"] = body
        alternatives[definition.name] = {"$ref": f"#/components/schemas/{prefix}.Enqueue"}
    if alternatives:
        _set_enqueue_body(document, alternatives)
    return document


def _set_enqueue_body(document: dict[str, Any], alternatives: dict[str, dict[str, str]]) -> None:
    for path in document.get("paths", {}).values():
        for operation in path.values():
            if operation.get("operationId") != ENQUEUE_OPERATION:
                continue
            content = operation["requestBody"]["content"]["application/json"]
            content["schema"] = {
                "oneOf": list(alternatives.values()),
                "discriminator": {
                    "propertyName": "type",
                    "mapping": {name: ref["$ref"] for name, ref in alternatives.items()},
                },
            }


def install(app: FastAPI, registry: Registry) -> None:
    """Make `app.openapi()` build (once) the document with the job types' models."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, registry)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

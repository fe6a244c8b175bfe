"""Every string the API takes is constrained before it reaches SQL.

PostgreSQL refuses a NUL in text and parses ltree, so a string that reaches it unchecked
can answer 500 instead of 422. The committed contract says what each input may be: every
string schema reachable from a request body or a parameter must have an `enum`, a strict
`format`, or a `pattern` that refuses NUL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi" / "openapi.json"

# Formats the server parses into a value before anything else sees the string.
STRICT_FORMATS = {"uuid", "date", "date-time", "time", "binary", "byte", "ipv4", "ipv6"}
NUL = "before\x00after"


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def _strings(
    spec: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every string schema under `schema`, with where it was found."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return
        seen = seen | {ref}
        where = f"{where} -> {ref.rsplit('/', 1)[-1]}"
    schema = _resolve(spec, schema)
    types = schema.get("type")
    if types == "string" or (isinstance(types, list) and "string" in types):
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf"):
        for index, branch in enumerate(schema.get(key, [])):
            yield from _strings(spec, branch, f"{where}[{key} {index}]", seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _strings(spec, sub, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        yield from _strings(spec, schema["items"], f"{where}[]", seen)
    for index, item in enumerate(schema.get("prefixItems", [])):
        yield from _strings(spec, item, f"{where}[{index}]", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _strings(spec, schema["additionalProperties"], f"{where}{{}}", seen)
    if isinstance(schema.get("propertyNames"), dict):
        yield from _strings(spec, schema["propertyNames"], f"{where}{{key}}", seen)


def input_strings(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every string schema a client sends: in a parameter or a request body."""
    for path, operations in spec["paths"].items():
        shared = operations.get("parameters", [])
        for method, operation in operations.items():
            if method == "parameters":
                continue
            for parameter in [*shared, *operation.get("parameters", [])]:
                parameter = _resolve(spec, parameter)
                where = f"{method.upper()} {path} {parameter['in']} {parameter['name']}"
                yield from _strings(spec, parameter.get("schema", {}), where, set())
            body = _resolve(spec, operation.get("requestBody", {}))
            for media, content in body.get("content", {}).items():
                where = f"{method.upper()} {path} body ({media})"
                yield from _strings(spec, content.get("schema", {}), where, set())


def refuses_nul(schema: dict[str, Any]) -> bool:
    if "enum" in schema or "const" in schema:
        return True
    if schema.get("format") in STRICT_FORMATS:
        return True
    pattern = schema.get("pattern")
    return pattern is not None and re.search(pattern, NUL) is None


def test_the_walk_finds_the_inputs() -> None:
    found = list(input_strings(json.loads(SPEC_PATH.read_text(encoding="utf-8"))))
    # Sanity: the walk reaches parameters, bodies behind $ref, and items of lists.
    assert any(" query " in where for where, _ in found)
    assert any(" path " in where for where, _ in found)
    assert any(" header " in where for where, _ in found)
    assert any(" body " in where and "->" in where for where, _ in found)
    assert any(where.endswith("[]") for where, _ in found)


def test_every_string_input_refuses_nul() -> None:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    loose = sorted({where for where, schema in input_strings(spec) if not refuses_nul(schema)})
    assert not loose, f"{len(loose)} string inputs take anything:\n" + "\n".join(loose)

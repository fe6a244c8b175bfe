"""The committed contract is the app's contract: regenerate it when the API changes."""

from __future__ import annotations

import re
from pathlib import Path

from backend.cli import DEFAULT_CONTRACT, DEFAULT_SPEC, render_openapi, render_outputs

ROOT = Path(__file__).resolve().parent.parent


def test_openapi_json_and_the_miniapp_contract_are_current() -> None:
    for path, text in render_outputs(ROOT / DEFAULT_SPEC, ROOT / DEFAULT_CONTRACT).items():
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        assert committed == text, f"{path.name} is stale: run `shanzhi openapi`"


def test_every_operation_is_named_and_documents_its_errors() -> None:
    import json

    spec = json.loads(render_openapi())
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("operationId"), f"{method} {path} has no operation id"
            # FastAPI's generated ids end in the method; ours are chosen names.
            assert not re.search(r"_(get|post|put|patch|delete)$", operation["operationId"])
            if path.startswith("/v1/"):
                errors = [code for code in operation["responses"] if code.startswith(("4", "5"))]
                assert errors, f"{method} {path} documents no error response"
                for code in errors:
                    content = operation["responses"][code]["content"]
                    assert list(content) == ["application/problem+json"], f"{method} {path} {code}"
                    assert content["application/problem+json"]["schema"]


def test_schema_names_are_short_domain_names() -> None:
    """FastAPI falls back to `module__path__Class` when two models share a name; the
    mini-program's generated types would then carry Python module paths."""
    import json

    names = json.loads(render_openapi())["components"]["schemas"]
    leaking = [name for name in names if "__" in name or "." in name]
    assert not leaking, leaking

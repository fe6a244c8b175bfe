"""TypeScript types and a typed `wx.request` client generated from the OpenAPI spec.

The mini-program imports `miniapp-contract/api.ts`; it is regenerated with the spec
(`shanzhi openapi`) and checked with it (`--check`), so the two never drift apart.
"""

from __future__ import annotations

import json
import re
from typing import Any

HEADER = """\
// Generated from openapi/openapi.json by `shanzhi openapi`. Do not edit by hand.
/* eslint-disable */

declare const wx: {
  request(options: {
    url: string;
    method: string;
    data?: unknown;
    header?: Record<string, string>;
    success(result: { statusCode: number; data: unknown; header: Record<string, string> }): void;
    fail(error: { errMsg: string }): void;
  }): void;
};
"""

CLIENT = """\
export class ApiError extends Error {
  constructor(public readonly status: number, public readonly problem: Problem) {
    super(problem.detail);
  }
}

export interface ClientOptions {
  baseUrl: string;
  /** The access token to send, if logged in. */
  accessToken?: () => string | undefined;
  /** zh-CN (default) or en: the language of error messages. */
  language?: "zh-CN" | "en";
}

type Query = Record<string, string | number | boolean | undefined | null>;

function buildUrl(base: string, path: string, query?: Query): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null) {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
    }
  }
  return base + path + (parts.length ? `?${parts.join("&")}` : "");
}

function call<T>(
  options: ClientOptions,
  method: string,
  path: string,
  extra: { query?: Query; body?: unknown; headers?: Record<string, string> } = {},
): Promise<T> {
  const header: Record<string, string> = {
    "Accept-Language": options.language ?? "zh-CN",
    ...(extra.headers ?? {}),
  };
  const token = options.accessToken?.();
  if (token) header["Authorization"] = `Bearer ${token}`;
  if (extra.body !== undefined) header["Content-Type"] = "application/json";
  return new Promise<T>((resolve, reject) => {
    wx.request({
      url: buildUrl(options.baseUrl, path, extra.query),
      method,
      data: extra.body,
      header,
      success(result) {
        if (result.statusCode >= 200 && result.statusCode < 300) resolve(result.data as T);
        else reject(new ApiError(result.statusCode, result.data as Problem));
      },
      fail(error) {
        reject(new Error(error.errMsg));
      },
    });
  });
}
"""


def _camel(name: str) -> str:
    head, *rest = re.split(r"[_\W]+", name)
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _type_name(ref: str) -> str:
    return re.sub(r"\W", "_", ref.rsplit("/", 1)[-1])


def ts_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return _type_name(schema["$ref"])
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    if "enum" in schema:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            joiner = " & " if key == "allOf" else " | "
            return joiner.join(dict.fromkeys(ts_type(s) for s in schema[key]))
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return "number"
    if kind == "string":
        return "string"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        return f"Array<{ts_type(schema.get('items', {}))}>"
    if kind == "object" or "properties" in schema:
        if "properties" in schema:
            return _object(schema)
        extra = schema.get("additionalProperties")
        return f"Record<string, {ts_type(extra) if isinstance(extra, dict) else 'unknown'}>"
    return "unknown"


def _object(schema: dict[str, Any], indent: str = "") -> str:
    required = set(schema.get("required", []))
    lines = ["{"]
    for name, prop in schema.get("properties", {}).items():
        doc = prop.get("description")
        if doc:
            lines.append(f"{indent}  /** {doc} */")
        optional = "" if name in required else "?"
        lines.append(f"{indent}  {json.dumps(name)}{optional}: {ts_type(prop)};")
    if isinstance(schema.get("additionalProperties"), dict) or schema.get("additionalProperties"):
        lines.append(f"{indent}  [key: string]: unknown;")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def render_typescript(spec: dict[str, Any]) -> str:
    out = [HEADER]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        name = _type_name(name)
        doc = schema.get("description")
        if doc:
            out.append(f"/** {doc.strip().splitlines()[0]} */")
        if schema.get("type") == "object" or "properties" in schema:
            out.append(f"export interface {name} {_object(schema)}\n")
        else:
            out.append(f"export type {name} = {ts_type(schema)};\n")
    out.append(CLIENT)
    out.append("export function createClient(options: ClientOptions) {\n  return {")
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            out.append(_operation(path, method, op))
    out.append("  };\n}\n")
    return "\n".join(out)


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    name = _camel(op["operationId"])
    params = op.get("parameters", [])
    path_params = [p for p in params if p["in"] == "path"]
    query_params = [p for p in params if p["in"] == "query"]
    header_params = [p for p in params if p["in"] == "header"]
    args: list[str] = [f"{_camel(p['name'])}: {ts_type(p.get('schema', {}))}" for p in path_params]
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body is not None:
        args.append(f"body: {ts_type(body)}")
    extras = query_params + header_params
    if extras:
        fields = "; ".join(
            f"{json.dumps(p['name'])}{'' if p.get('required') else '?'}: "
            f"{ts_type(p.get('schema', {}))}"
            for p in extras
        )
        optional = "" if any(p.get("required") for p in extras) else "?"
        args.append(f"params{optional}: {{ {fields} }}")
    ok = next((c for c in op.get("responses", {}) if c.startswith("2")), "200")
    content = op["responses"].get(ok, {}).get("content", {}).get("application/json", {})
    result = ts_type(content["schema"]) if "schema" in content else "void"
    url = re.sub(r"\{(\w+)\}", lambda m: "${encodeURIComponent(" + _camel(m[1]) + ")}", path)
    pieces = []
    if query_params:
        names = ", ".join(json.dumps(p["name"]) for p in query_params)
        pieces.append(f"query: pick(params, [{names}])")
    if header_params:
        names = ", ".join(json.dumps(p["name"]) for p in header_params)
        pieces.append(f"headers: pick(params, [{names}]) as Record<string, string>")
    if body is not None:
        pieces.append("body")
    extra = f", {{ {', '.join(pieces)} }}" if pieces else ""
    summary = (op.get("summary") or "").strip()
    doc = f"    /** {summary} */\n" if summary else ""
    return (
        f"{doc}    {name}: ({', '.join(args)}): Promise<{result}> =>\n"
        f"      call<{result}>(options, {json.dumps(method.upper())}, `{url}`{extra}),"
    )


PICK = """
function pick(source: Record<string, unknown> | undefined, keys: string[]): Query {
  const picked: Query = {};
  for (const key of keys) {
    const value = source?.[key];
    if (value !== undefined) picked[key] = value as Query[string];
  }
  return picked;
}
"""


def render_contract(spec: dict[str, Any]) -> str:
    return render_typescript(spec) + PICK

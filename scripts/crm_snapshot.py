"""What the generators read from Rollout's OpenAPI snapshot
(api/rollout-crm-openapi.json): its collections, the fields their records
answer with and the fields their requests accept.  Used by
scripts/gen_crm_tables.py and scripts/gen_crm_fields.py."""

import json


def load(path):
    with open(path) as f:
        return json.load(f)


def schema_of(op, status=None):
    """The JSON schema of an operation's request body (status None) or of a response."""
    part = op.get("requestBody", {}) if status is None else \
        op.get("responses", {}).get(status, {})
    return part.get("content", {}).get("application/json", {}).get("schema", {}) or {}


def properties(schema):
    """{name: schema} of an object schema, the union of the variants of an anyOf."""
    fields = {}
    for variant in schema.get("anyOf", [schema]):
        for name, fs in variant.get("properties", {}).items():
            fields.setdefault(name, fs)
    return fields


def list_items(spec, path):
    """The schema of a record of GET /{resource}: the items of its envelope's array
    (or of a bare array), or None when the collection has no such list."""
    ops = spec["paths"].get(path, {})
    if "get" not in ops:
        return None
    schema = schema_of(ops["get"], "200")
    if schema.get("type") == "array":
        return schema.get("items", {})
    keys = [k for k in schema.get("properties", {}) if k != "_metadata"]
    if not keys:
        return None
    return schema["properties"][keys[0]].get("items", {})


def response_fields(spec, path):
    """{name: schema} of every field a record of the collection is answered with:
    its list's records, then GET /{resource}/{id}'s."""
    fields = properties(list_items(spec, path) or {})
    item = spec["paths"].get(path + "/{id}", {})
    if "get" in item:
        for name, fs in properties(schema_of(item["get"], "200")).items():
            fields.setdefault(name, fs)
    return fields


def request_fields(spec, path):
    """{name: schema} of every field the collection's create (POST /{resource})
    or update (PUT /{resource}/{id}) body accepts."""
    fields = {}
    for op in (spec["paths"].get(path, {}).get("post"),
               spec["paths"].get(path + "/{id}", {}).get("put")):
        if op:
            for name, fs in properties(schema_of(op)).items():
                fields.setdefault(name, fs)
    return fields


def collections(spec):
    """The collection paths of the spec (/{resource}), in its order."""
    return [path for path in spec["paths"] if "{" not in path]

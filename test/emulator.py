#!/usr/bin/env python3
"""Emulator of the Rollout Universal CRM API, for testing rollout_fdw.

A standalone HTTP(S) server (Python 3 standard library only) that behaves like
https://crm.universal.rollout.com/api and https://universal.rollout.com/api as documented in
ROLLOUT_API.md: HS512 JWT bearer auth, the X-Rollout-Credential-Id header, GET /api/credentials,
and every CRM collection of the OpenAPI snapshot (/api/people, /api/users, /api/notes, ...)
with the `_metadata` list envelope, opaque `next` cursors, filters and create/update/delete.

Test control lives under /_admin/ (no auth): reset the data, load verbatim records, inject
faults (status codes, latency, stalls, truncated or malformed bodies, pagination loops, huge
bodies; any of them for one token `sub` or credential only), a "data not ready" window, a
token-bucket rate limit, a request log with a count of the distinct tokens received, and many
tenant users (tenant-user-<i>, each with one credential tenant-cred-<i>).

Run `python3 test/emulator.py --help` for the command line. The Authorization header and the
JWT are never printed or recorded (the "echo_headers" fault sends the request's headers back
in a 400 error body to the client that sent them, as a careless API would).
"""

import argparse
import base64
import binascii
import copy
import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode

from emulator_data import (
    CREDENTIALS,
    LIVE_PERSON,
    SMALL_STORES,
    SMALL_STORE_PEOPLE,
    TENANT_ID_BASE,
    credential,
    fresh_uuid,
    fub_person,
    id_key,
    iso_z,
    make_appointments,
    make_calls,
    make_custom_fields,
    make_email_messages,
    make_events,
    make_lists,
    make_named,
    make_notes,
    make_smart_lists,
    make_tasks,
    make_teams,
    make_text_messages,
    make_users,
    make_webhooks,
    tenant_cred,
    tenant_credentials,
    tenant_person,
    uuid_for,
    uuid_person,
)

JSON_TYPE = "application/json"
CRED_HEADER = "X-Rollout-Credential-Id"
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_REQUEST_BODY = 64 * 1024 * 1024
MAX_TOKEN_LIFETIME_S = 3600
EXP_LEEWAY_S = 2
IAT_FUTURE_LEEWAY_S = 60
NOT_READY_MESSAGE = "Data for this credential is not ready yet. Please try again."
FORBIDDEN_MESSAGE = "Forbidden (invalid credentials)"
FUB_FIRST_ID = 11  # the live-captured person is id 11; generated FUB ids follow it

# ---------------------------------------------------------------------------------------------
# Collections: one table drives routing, list keys, filters, defaults and fixture data
# ---------------------------------------------------------------------------------------------




def item_values(record, list_name, key):
    items = record.get(list_name) if isinstance(record, dict) else None
    if not isinstance(items, list):
        return []
    return [item.get(key) for item in items if isinstance(item, dict)]


def has_email(record, value, mode="exact"):
    values = item_values(record, "emails", "value")
    if mode == "case-insensitive":
        return value.casefold() in [v.casefold() for v in values if isinstance(v, str)]
    return value in values


def digits(text):
    return re.sub(r"[^0-9]", "", text) if isinstance(text, str) else text


def has_phone(record, value, mode="exact"):
    values = item_values(record, "phones", "value") + item_values(record, "phones", "normalized")
    if mode == "digits":
        return digits(value) in [digits(v) for v in values]
    return value in values


def has_tag(record, value):
    tags = record.get("tags") if isinstance(record, dict) else None
    return isinstance(tags, list) and value in tags


def has_person(record, value):
    return isinstance(record, dict) and "personId" in record and id_key(record["personId"]) == value


FILTERS = {"email": has_email, "phone": has_phone, "tags": has_tag, "personId": has_person}


@dataclass(frozen=True)
class Collection:
    path: str  # segment under /api
    list_key: str  # key of the item array and value of _metadata.collection
    noun: str  # for "<noun> not found"
    filters: tuple = ()  # query parameters that filter the list (names in FILTERS)
    required: tuple = ()  # non-empty string fields a create must carry
    defaults: dict = field(default_factory=dict)  # set on create when absent
    make: object = None  # make(style, seed, person_ids) -> fixed records of a credential


# Fields a create or update accepts that no record is answered with, per the OpenAPI
# snapshot (its request schemas less its response schemas: people's rating, teams' name,
# appointments' appointmentTypeId...): accepted, not kept, so never echoed.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "scripts"))
import crm_snapshot  # noqa: E402

_SPEC = crm_snapshot.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                       "api", "rollout-crm-openapi.json"))
WRITE_ONLY = {path[1:]: set(crm_snapshot.request_fields(_SPEC, path))
              - set(crm_snapshot.response_fields(_SPEC, path))
              for path in crm_snapshot.collections(_SPEC)}
del _SPEC

COLLECTIONS = {c.path: c for c in (
    Collection("people", "people", "Person", filters=("email", "phone", "tags"),
               required=("firstName", "lastName"),
               defaults={"stage": "Lead", "tags": [], "emails": [], "phones": [],
                         "addresses": []}),
    Collection("users", "users", "User", make=make_users),
    Collection("notes", "notes", "Note", filters=("personId",), make=make_notes),
    Collection("tasks", "tasks", "Task", filters=("personId",), make=make_tasks),
    Collection("textMessages", "textmessages", "Text message", filters=("personId",),
               make=make_text_messages),
    Collection("calls", "calls", "Call", filters=("personId",), make=make_calls),
    Collection("teams", "teams", "Team", make=make_teams),
    Collection("emailMessages", "emailmessages", "Email message", filters=("personId",),
               make=make_email_messages),
    Collection("appointments", "appointments", "Appointment", filters=("personId",),
               make=make_appointments),
    Collection("appointment-types", "appointment-types", "Appointment type",
               make=make_named("appointment-types", ("Showing", "Listing presentation"), 300)),
    Collection("appointment-outcomes", "appointment-outcomes", "Appointment outcome",
               make=make_named("appointment-outcomes", ("Met", "No show"), 320)),
    Collection("events", "events", "Event", filters=("personId",), make=make_events),
    Collection("smart-lists", "smart-lists", "Smart list", make=make_smart_lists),
    Collection("lists", "lists", "List", make=make_lists),
    Collection("customFields", "customfields", "Custom field", make=make_custom_fields),
    Collection("webhooks", "webhooks", "Webhook", make=make_webhooks),
)}


# ---------------------------------------------------------------------------------------------
# Routes: exactly those of Rollout's OpenAPI snapshot (api/rollout-crm-openapi.json). A path
# the snapshot lacks is 404, a method its path lacks 405; a create must carry the fields its
# request schema requires and answers the full record its response schema describes.
# ---------------------------------------------------------------------------------------------

SNAPSHOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "api",
                        "rollout-crm-openapi.json")
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# GET /textMessages needs personId: Rollout's own client code says so (ROLLOUT_API.md
# section 10); the snapshot lists only next/offset/limit (scripts/gen_crm_endpoints.py).
LIST_REQUIRED_BEYOND_SNAPSHOT = {"textMessages": ("personId",)}
# POST /appointments answers a missing field with 422 and errors[] (ROLLOUT_API.md)
CREATE_422 = ("appointments",)
# GET /metadata/transactions/create: the transaction fields of each transactionType
TRANSACTION_FIELDS = {
    "purchase": [
        {"name": "closeDate", "originalName": "Close Date", "description": "Expected closing date",
         "config": {"type": "date", "required": True}},
        {"name": "price", "originalName": "Price", "description": "Purchase price",
         "config": {"type": "number", "required": True}},
        {"name": "stage", "originalName": "Stage", "description": "Deal stage",
         "config": {"type": "dropdown", "required": False},
         "options": [{"label": "Under contract", "value": "under_contract"},
                     {"label": "Closed", "value": "closed"}]},
    ],
    "listing": [
        {"name": "listPrice", "originalName": "List Price", "description": "Asking price",
         "config": {"type": "number", "required": True}},
        {"name": "listDate", "originalName": "List Date", "description": "Date listed",
         "config": {"type": "date", "required": False}},
    ],
}


def json_schema(op, status=None):
    """The JSON schema of an operation's request body (status None) or of a response."""
    part = op.get("requestBody", {}) if status is None else op.get("responses", {}).get(status, {})
    return part.get("content", {}).get("application/json", {}).get("schema", {}) or {}


def load_routes(path=SNAPSHOT):
    """[(template segments, {METHOD: operation})] of every path of the snapshot."""
    with open(path) as f:
        spec = json.load(f)
    return [(template.strip("/").split("/"),
             {m.upper(): op for m, op in ops.items() if m in HTTP_METHODS})
            for template, ops in spec["paths"].items()]


ROUTES = load_routes()


def match_route(segments):
    """(template, {METHOD: operation}, {name: value}) for /api/... segments, or None."""
    if segments[:1] != ["api"] or any(part == "" for part in segments[1:]):
        return None
    for template, ops in ROUTES:
        if len(template) != len(segments) - 1:
            continue
        bound = {}
        for want, got in zip(template, segments[1:]):
            if want.startswith("{") and want.endswith("}"):
                bound[want[1:-1]] = got
            elif want != got:
                break
        else:
            return "/" + "/".join(template), ops, bound
    return None


def list_required(template, op):
    """The query parameters a list request must carry."""
    names = [p["name"] for p in op.get("parameters", []) if p.get("required")]
    return tuple(names) + LIST_REQUIRED_BEYOND_SNAPSHOT.get(template.lstrip("/"), ())


def missing_fields(op, fields):
    """The fields the request schema requires that the body lacks (null or "" count as lacking)."""
    return [name for name in json_schema(op).get("required", [])
            if fields.get(name) is None or fields.get(name) == ""]


def full_record(op, status, record):
    """The record with every property of the response schema, absent ones null."""
    schema = json_schema(op, status)
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    for name in schema.get("properties", {}):
        record.setdefault(name, None)
    return record


# ---------------------------------------------------------------------------------------------
# Store: the records of one collection of one credential, in list order
# ---------------------------------------------------------------------------------------------


class Store:
    """Records in insertion order with an id index.

    A slot holds either a record (any JSON value; the admin interface may load odd ones) or an
    int: the index of a record generated on demand by `generate`, so a 200k-person dataset costs
    only its ids until a record is written."""

    def __init__(self, id_style, generate=None):
        self.id_style = id_style  # "int" or "uuid": how new ids are made
        self.generate = generate
        self.slots = []
        self.keys = []  # id_key of each slot, None when the record has no id
        self.index = {}  # id key -> position of its first occurrence
        self.seqs = []  # insertion sequence of each slot: increasing along the list
        self.next_seq = 0
        self.next_int = 1
        self.version = 0
        self.filter_cache = (None, {})  # (version, {filter hash: positions})

    def __len__(self):
        return len(self.slots)

    def extend_generated(self, indexes, key_of):
        for i in indexes:
            key = key_of(i)
            self.slots.append(i)
            self.keys.append(key)
            self.seqs.append(self.next_seq)
            self.next_seq += 1
            self.ids().setdefault(key, len(self.slots) - 1)
        self.version += 1

    def append(self, record):
        has_id = isinstance(record, dict) and "id" in record
        key = id_key(record["id"]) if has_id else None
        self.slots.append(record)
        self.keys.append(key)
        self.seqs.append(self.next_seq)
        self.next_seq += 1
        if key is not None:
            self.ids().setdefault(key, len(self.slots) - 1)
        if has_id and type(record["id"]) is int:
            self.next_int = max(self.next_int, record["id"] + 1)
        self.version += 1

    def replace_all(self, records):
        next_int = self.next_int
        self.slots, self.keys, self.index, self.seqs = [], [], {}, []
        for record in records:
            self.append(record)
        self.next_int = max(next_int, self.next_int)

    def new_id(self):
        if self.id_style != "int":
            return fresh_uuid()
        self.next_int += 1
        return self.next_int - 1

    def position(self, key):
        return self.ids().get(key)

    def record_at(self, pos):
        slot = self.slots[pos]
        return self.generate(slot) if type(slot) is int else slot

    def set(self, pos, record):
        self.slots[pos] = record
        self.version += 1

    def delete(self, pos):
        del self.slots[pos]
        del self.keys[pos]
        del self.seqs[pos]
        self.index = None  # rebuilt when next needed: deleting stays cheap under churn
        self.version += 1

    def ids(self):
        if self.index is None:
            self.index = {}
            for i, key in enumerate(self.keys):
                if key is not None:
                    self.index.setdefault(key, i)
        return self.index

    def all(self):
        return [self.record_at(i) for i in range(len(self.slots))]

    def matching(self, filters, fhash, paging=None):
        """Positions of the records that pass every filter value, cached per store version
        (email and phone compared as the matching switches say)."""
        modes = {"email": (paging or PAGING_DEFAULTS)["email_match"],
                 "phone": (paging or PAGING_DEFAULTS)["phone_match"]}
        version, cache = self.filter_cache
        if version != self.version:
            cache = {}
            self.filter_cache = (self.version, cache)
        key = (fhash, modes["email"], modes["phone"])
        if key not in cache:
            tests = [(FILTERS[name], value, modes.get(name)) for name, values in filters.items()
                     for value in values]
            cache[key] = [pos for pos in range(len(self.slots))
                          if all(test(self.record_at(pos), value, *([mode] if mode else []))
                                 for test, value, mode in tests)]
        return cache[key]

    def page(self, start, limit, filters, fhash, paging=None):
        """(records, total, seq of the last record or None) of one list page.

        `start` is an offset, or ("after", seq) for a keyset cursor: the records that come
        after the one with that insertion sequence in list order (which may be gone)."""
        newest = paging is not None and paging.get("order") == "newest"
        if not filters and not newest and not isinstance(start, tuple):
            end = min(start + limit, len(self.slots))
            positions = range(start, end)
            total = len(self.slots)
        else:
            matching = range(len(self.slots)) if not filters else \
                self.matching(filters, fhash, paging)
            total = len(matching)
            ordered = list(matching)[::-1] if newest else matching
            if isinstance(start, tuple):
                after = start[1]
                first = next((i for i, pos in enumerate(ordered)
                              if (self.seqs[pos] < after if newest else self.seqs[pos] > after)),
                             len(ordered))
            else:
                first = start
            positions = ordered[first:first + limit]
            if isinstance(start, tuple):
                total_after = len(ordered) - first
                positions = list(positions)
                return ([self.record_at(pos) for pos in positions], total,
                        self.seqs[positions[-1]] if positions else None, total_after)
        positions = list(positions)
        return ([self.record_at(pos) for pos in positions], total,
                self.seqs[positions[-1]] if positions else None, None)


def people_store(shape, seed, count, cred_id, first_id, live_first):
    if shape == "uuid":
        store = Store("uuid", lambda i: uuid_person(seed, i, cred_id))
        store.extend_generated(range(count), lambda i: uuid_for(seed, i))
        return store
    store = Store("int", lambda i: fub_person(seed, i, first_id))
    start = 0
    if live_first and count > 0:
        store.append(copy.deepcopy(LIVE_PERSON))
        start = 1
    store.extend_generated(range(start, count), lambda i: str(first_id + i))
    store.next_int = max(store.next_int, first_id + count)
    return store


def credential_stores(shape, seed, count, cred_id, first_id, live_first):
    """{collection path: Store} for one credential."""
    people = people_store(shape, seed, count, cred_id, first_id, live_first)
    return stores_around(people, "uuid" if shape == "uuid" else "int", seed)


def tenant_stores(tenant, count):
    """{collection path: Store} of tenant-cred-<tenant>: `count` people named after it."""
    people = Store("int", lambda i: tenant_person(tenant, i))
    people.extend_generated(range(count), lambda i: str(TENANT_ID_BASE * tenant + i + 1))
    people.next_int = TENANT_ID_BASE * tenant + count + 1
    return stores_around(people, "int", tenant)


def stores_around(people, style, seed):
    """The people store and the fixed records of every other collection beside it."""
    person_ids = [people.record_at(i).get("id") for i in range(min(5, len(people)))]
    stores = {"people": people}
    for path, collection in COLLECTIONS.items():
        if path == "people":
            continue
        store = Store(style)
        for record in (collection.make(style, seed, person_ids) if collection.make else []):
            store.append(record)
        stores[path] = store
    return stores


def build_stores(dataset, people, seed):
    stores = {"cred-1": credential_stores(dataset, seed, people, "cred-1", FUB_FIRST_ID, True)}
    for cred_id, (shape, small_seed, first_id) in SMALL_STORES.items():
        stores[cred_id] = credential_stores(shape, small_seed, SMALL_STORE_PEOPLE, cred_id,
                                            first_id, False)
    return stores


def build_tenants(users, people):
    """({tenant-cred-<i>: stores}, {tenant-user-<i>: [credential]}) of the tenant switch."""
    return ({tenant_cred(i): tenant_stores(i, people) for i in range(1, users + 1)},
            tenant_credentials(users))


def tenant_counts(data, users, people):
    """(users, people) of a tenants object ({"users": N, "people": M}), missing keys given."""
    if not isinstance(data, dict) or not set(data) <= {"users", "people"}:
        raise ApiError(400, "tenants must be {\"users\": N, \"people\": M}")
    users, people = data.get("users", users), data.get("people", people)
    if type(users) is not int or type(people) is not int or users < 0 or people < 0:
        raise ApiError(400, "tenant users and people must be integers >= 0")
    return users, people


# ---------------------------------------------------------------------------------------------
# Errors, responses, cursors
# ---------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status, message, headers=None, payload=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.payload = payload  # a body other than {"errorMessage": message}


class Response:
    def __init__(self, status, payload=None, raw=None, ctype=JSON_TYPE, headers=None):
        self.status = status
        self.payload = payload
        self.raw = raw
        self.ctype = ctype
        self.headers = dict(headers or {})
        self.page = None  # PageInfo on list responses

    def body(self):
        if self.raw is not None:
            return self.raw if isinstance(self.raw, bytes) else self.raw.encode()
        return json.dumps(self.payload, ensure_ascii=False).encode()


@dataclass
class PageInfo:
    list_key: str
    cursor: str  # the cursor that produced this page
    link: str  # nextLink for that cursor


def error(status, message, headers=None):
    return Response(status, {"errorMessage": message}, headers=headers)


# The salt makes every cursor contain '/' and '+' (base64 of ">>?" and "~~~" at a 3-byte
# boundary), so a client that forgets to percent-encode `next` fails every time, not by chance.
CURSOR_SALT = ">>?~~~"


def filter_hash(filters):
    canonical = json.dumps(sorted((name, sorted(values)) for name, values in filters.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def encode_cursor(offset, fhash, key="o"):
    """A cursor standing for an offset (key "o") or, for keyset paging, for the insertion
    sequence of the last record a page returned (key "k")."""
    text = json.dumps({"x": CURSOR_SALT, key: offset, "f": fhash}, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def decode_cursor(cursor, fhash):
    """The offset a cursor stands for, or ("after", seq) for a keyset cursor; it must have
    been made for the same filters."""
    try:
        data = json.loads(base64.b64decode(cursor, validate=True))
    except (binascii.Error, ValueError):
        data = None
    valid = isinstance(data, dict) and data.get("x") == CURSOR_SALT and data.get("f") == fhash
    if valid and type(data.get("k")) is int:
        return ("after", data["k"])
    if not valid or type(data.get("o")) is not int or data["o"] < 0:
        raise ApiError(400, "invalid next cursor")
    return data["o"]


# ---------------------------------------------------------------------------------------------
# JWT (HS512) verification
# ---------------------------------------------------------------------------------------------


@dataclass
class Auth:
    ok: bool
    sub: object = None  # the sub claim when the token could be decoded (for the log)
    reason: str = ""
    iat: object = None  # iat and exp of a decoded token (for the log: which token was used)
    exp: object = None


def b64url_decode(part):
    if not re.fullmatch(r"[A-Za-z0-9_-]*", part):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def json_object(part):
    value = json.loads(b64url_decode(part))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def claims_problem(claims, now):
    """Why the (correctly signed) claims are unacceptable, or None."""
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        return "missing sub"
    if not is_number(claims.get("iat")):
        return "missing iat"
    if not is_number(claims.get("exp")):
        return "missing exp"
    if claims["exp"] + EXP_LEEWAY_S <= now:
        return "expired"
    if claims["exp"] - claims["iat"] > MAX_TOKEN_LIFETIME_S:
        return "lifetime over 3600 s"
    if claims["iat"] > now + IAT_FUTURE_LEEWAY_S:
        return "issued in the future"
    return None


def verify_token(header_value, clients, now):
    if not header_value:
        return Auth(False, reason="missing Authorization header")
    scheme, _, token = header_value.strip().partition(" ")
    parts = token.strip().split(".")
    if scheme.lower() != "bearer" or len(parts) != 3:
        return Auth(False, reason="malformed")
    try:
        header, claims = json_object(parts[0]), json_object(parts[1])
        signature = b64url_decode(parts[2])
    except ValueError:
        return Auth(False, reason="malformed")
    sub = claims.get("sub")
    if header.get("alg") != "HS512":
        return Auth(False, sub, "unsupported alg")
    secret = clients.get(claims.get("iss")) if isinstance(claims.get("iss"), str) else None
    if secret is None:
        return Auth(False, sub, "unknown issuer")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha512)
    if not hmac.compare_digest(expected.digest(), signature):
        return Auth(False, sub, "bad signature")
    problem = claims_problem(claims, now)
    return Auth(problem is None, sub, problem or "", claims.get("iat"), claims.get("exp"))


# ---------------------------------------------------------------------------------------------
# Fault rules and rate limiting
# ---------------------------------------------------------------------------------------------

IMMEDIATE_ACTIONS = ("status", "html", "not_json")
SEND_ACTIONS = ("truncate", "stall_body_s")
LIST_ACTIONS = ("loop", "drop_metadata", "drop_list_key", "bad_total")
NUMBER_ACTIONS = ("latency_ms", "stall_s", "stall_body_s", "bad_total", "huge_body_bytes")
FLAG_ACTIONS = ("truncate", "html", "not_json", "loop", "drop_metadata", "drop_list_key",
                "echo_headers")
# "after_serving": the API acts (a POST creates), then the answer is lost: "drop" closes the
# connection with no response, a status code (500) replaces the answer
ACTIONS = ("status", "after_serving") + NUMBER_ACTIONS + FLAG_ACTIONS
# "sub" and "cred" restrict a rule to the requests whose token's sub, or whose
# X-Rollout-Credential-Id, equals them (one user of many answers 409, 500 or 403)
MATCHERS = ("sub", "cred")
RULE_KEYS = {"method", "path", "query", "after", "times", "body", "headers"} | set(ACTIONS) \
    | set(MATCHERS)


def compile_regex(spec, key):
    if key not in spec:
        return None
    try:
        return re.compile(spec[key])
    except (re.error, TypeError) as exc:
        raise ApiError(400, f"bad {key} regex: {exc}") from None


def whole_number(spec, key, default):
    value = spec.get(key, default)
    if value is not None and (type(value) is not int or value < 0):
        raise ApiError(400, f"{key} must be a non-negative integer")
    return value


def check_action_value(name, value, spec):
    if name == "status" and (type(value) is not int or not 100 <= value <= 599):
        raise ApiError(400, "status must be an HTTP status code")
    if name in NUMBER_ACTIONS and (not is_number(value) or value < 0):
        raise ApiError(400, f"{name} must be a non-negative number")
    if name == "after_serving" and value != "drop" and \
            (type(value) is not int or not 100 <= value <= 599):
        raise ApiError(400, "after_serving must be \"drop\" or an HTTP status code")
    if name in FLAG_ACTIONS and value is not True:
        raise ApiError(400, f"{name} must be true")
    if ("body" in spec or "headers" in spec) and name != "status":
        raise ApiError(400, "body and headers go only with status")
    if "body" in spec and not isinstance(spec["body"], str):
        raise ApiError(400, "body must be a string")
    if not isinstance(spec.get("headers", {}), dict):
        raise ApiError(400, "headers must be an object")


def exact_matchers(spec):
    """{"sub": ..., "cred": ...} of the matchers a rule or switch gives (strings)."""
    for key in MATCHERS:
        if key in spec and (not isinstance(spec[key], str) or not spec[key]):
            raise ApiError(400, f"{key} must be a non-empty string")
    return {key: spec[key] for key in MATCHERS if key in spec}


def matched_by(matchers, who):
    """Whether a request from `who` ({"sub": token sub, "cred": header}) passes matchers."""
    return all((who or {}).get(key) == value for key, value in matchers.items())


class FaultRule:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ApiError(400, "a fault rule must be an object")
        unknown = set(spec) - RULE_KEYS
        actions = [name for name in ACTIONS if name in spec]
        if unknown:
            raise ApiError(400, f"unknown fault rule keys: {sorted(unknown)}")
        if len(actions) != 1:
            raise ApiError(400, f"a fault rule needs exactly one action of {list(ACTIONS)}")
        self.action, self.value = actions[0], spec[actions[0]]
        check_action_value(self.action, self.value, spec)
        self.spec = spec
        self.method = str(spec.get("method", "*")).upper()
        self.path = compile_regex(spec, "path")
        self.query = compile_regex(spec, "query")
        self.after = whole_number(spec, "after", 0)
        self.times = whole_number(spec, "times", None)
        self.who = exact_matchers(spec)
        self.seen = 0
        self.applied = 0

    def live(self):
        return self.times is None or self.applied < self.times

    def matches(self, method, path, query, who=None):
        return ((self.method == "*" or self.method == method)
                and (self.path is None or self.path.search(path) is not None)
                and (self.query is None or self.query.search(query) is not None)
                and matched_by(self.who, who))

    def describe(self):
        return dict(self.spec, seen=self.seen, applied=self.applied, live=self.live())


class TokenBucket:
    def __init__(self, rps, burst, retry_after):
        self.rps = rps
        self.burst = burst
        self.retry_after = retry_after
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rps)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# ---------------------------------------------------------------------------------------------
# Shared state (one lock guards everything below)
# ---------------------------------------------------------------------------------------------


# How lists page where the API's behaviour is unknown (ROLLOUT_API.md §12), switched by
# POST /_admin/paging: the cursor is an offset ("offset") or the position after the last
# record returned ("keyset"); the list is oldest first or newest first; `offset` is honoured,
# ignored (every page from the start) or refused beyond max_offset with offset_status.
# How the email= and phone= filters match, also unknown (§12): email exactly or
# case-insensitively, phone exactly (value or normalized) or by its digits alone.
PAGING_DEFAULTS = {"cursor": "offset", "order": "oldest", "offset": "honoured",
                   "max_offset": None, "offset_status": 400, "churn": None,
                   "email_match": "exact", "phone_match": "exact"}
PAGING_CHOICES = {"cursor": ("offset", "keyset"), "order": ("oldest", "newest"),
                  "offset": ("honoured", "ignored"),
                  "email_match": ("exact", "case-insensitive"),
                  "phone_match": ("exact", "digits")}


@dataclass
class Settings:
    dataset: str = "fub"
    people: int = 25
    seed: int = 1
    latency_ms: float = 0
    tenant_users: int = 0
    tenant_people: int = 10


class State:
    def __init__(self, clients, defaults):
        self.lock = threading.RLock()
        self.clients = clients
        self.defaults = defaults
        self.reset({})

    def reset(self, options):
        """Rebuild every store and clear faults, rate limit, not-ready, latency, log, stats.

        Values missing from `options` come from the command line."""
        dataset = options.get("dataset", self.defaults.dataset)
        people = options.get("people", self.defaults.people)
        seed = options.get("seed", self.defaults.seed)
        if dataset not in ("fub", "uuid"):
            raise ApiError(400, "dataset must be fub or uuid")
        if type(people) is not int or people < 0 or type(seed) is not int:
            raise ApiError(400, "people and seed must be integers, people >= 0")
        tenants = tenant_counts(options.get("tenants", {}), self.defaults.tenant_users,
                                self.defaults.tenant_people)
        stores = build_stores(dataset, people, seed)
        tenant_stores, tenant_creds = build_tenants(*tenants)
        stores.update(tenant_stores)
        with self.lock:
            self.stores = stores
            self.credentials = dict(CREDENTIALS, **tenant_creds)
            self.tenants = tenants
            self.faults = []
            self.bucket = None
            self.not_ready_until = 0.0
            self.not_ready_for = []  # (matchers, until): a 409 window of one user or credential
            self.latency_ms = self.defaults.latency_ms
            self.log = []
            self.tokens = {}  # digest of each Authorization header since log-clear -> its sub
            self.stats = {}
            self.paging = dict(PAGING_DEFAULTS)
            self.churn_seen = 0
            self.churned = {"created": [], "deleted": []}

    def churn(self, store, collection):
        """Every `every`-th list request of the churned collection first deletes `delete`
        records at random and creates `create` new ones (a busy CRM); the lock is held."""
        spec = self.paging["churn"]
        if spec is None or collection.path != spec.get("collection", "people"):
            return
        self.churn_seen += 1
        if self.churn_seen % spec["every"] != 0:
            return
        rng = spec["rng"]
        for _ in range(min(spec["delete"], len(store))):
            pos = rng.randrange(len(store))
            self.churned["deleted"].append(str(store.record_at(pos).get("id")))
            store.delete(pos)
        for _ in range(spec["create"]):
            record = copy.deepcopy(store.record_at(0)) if len(store) else {}
            record.update(id=store.new_id(), firstName="Churn", lastName=str(self.churn_seen))
            store.append(record)
            self.churned["created"].append(str(record["id"]))

    def set_tenants(self, users, people):
        """Replace the tenant users and their stores; everything else stays."""
        tenant_stores, tenant_creds = build_tenants(users, people)
        with self.lock:
            self.stores = {cred_id: stores for cred_id, stores in self.stores.items()
                           if not cred_id.startswith("tenant-cred-")}
            self.stores.update(tenant_stores)
            self.credentials = dict(CREDENTIALS, **tenant_creds)
            self.tenants = (users, people)

    def store(self, cred_id, path):
        return self.stores[cred_id][path]

    def owned_credentials(self, sub):
        with self.lock:
            return self.credentials.get(sub, [])

    def credential_problem(self, sub, cred_id):
        owned = {cred["id"] for cred in self.owned_credentials(sub)}
        return None if cred_id in owned and cred_id in self.stores else FORBIDDEN_MESSAGE

    def not_ready(self, who=None):
        with self.lock:
            now = time.time()
            return now < self.not_ready_until or any(
                now < until and matched_by(matchers, who)
                for matchers, until in self.not_ready_for)

    def saw_token(self, header_value, sub):
        """Count an Authorization header (kept only as a digest) for /_admin/tokens."""
        if header_value:
            digest = hashlib.sha256(header_value.encode("utf-8", "replace")).hexdigest()
            with self.lock:
                self.tokens[digest] = sub if isinstance(sub, str) else "(undecoded)"

    def token_counts(self):
        with self.lock:
            by_sub = {}
            for sub in self.tokens.values():
                by_sub[sub] = by_sub.get(sub, 0) + 1
            return {"distinct_tokens": len(self.tokens), "by_sub": by_sub}

    def global_latency_s(self):
        with self.lock:
            return self.latency_ms / 1000.0

    def rate_limited(self):
        """The 429 response when the token bucket is empty, else None."""
        with self.lock:
            if self.bucket is None or self.bucket.take():
                return None
            retry_after = self.bucket.retry_after
        return error(429, "Too many requests", {"Retry-After": json.dumps(retry_after)})

    def pick_fault(self, method, path, query, who=None):
        with self.lock:
            for rule in self.faults:
                if rule.live() and rule.matches(method, path, query, who):
                    rule.seen += 1
                    if rule.seen <= rule.after:
                        return None
                    rule.applied += 1
                    return rule
        return None

    def begin(self, entry):
        with self.lock:
            self.log.append(entry)
        return entry

    def finish(self, entry, status):
        with self.lock:
            entry["status"] = status
            entry["t_done"] = time.time()
            key = str(status) if status is not None else "no_response"
            self.stats[key] = self.stats.get(key, 0) + 1


# ---------------------------------------------------------------------------------------------
# CRM API
# ---------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str  # raw, still percent-encoded
    query: str  # raw
    body: bytes
    cred: object  # X-Rollout-Credential-Id or None
    base_url: str  # scheme://host:port of this server as the client addressed it

    @property
    def params(self):
        return parse_qs(self.query, keep_blank_values=True)


def first_param(params, name):
    values = params.get(name)
    return values[0] if values else None


def parse_limit(text):
    if text is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        raise ApiError(400, "limit must be a positive integer")
    return min(int(text), MAX_LIMIT)


def parse_offset(text):
    if text is None:
        return 0
    if not re.fullmatch(r"[0-9]+", text):
        raise ApiError(400, "offset must be a non-negative integer")
    return int(text)


def parse_object(body):
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "request body must be a JSON object")
    return value


def list_offset(params, paging):
    """The `offset` a list request asks for, as the paging switches treat it."""
    offset = parse_offset(first_param(params, "offset"))
    if paging["offset"] == "ignored":
        return 0
    if paging["max_offset"] is not None and offset > paging["max_offset"]:
        raise ApiError(paging["offset_status"], "offset is too large: use the next cursor")
    return offset


def list_response(store, collection, req, paging=None):
    paging = paging or PAGING_DEFAULTS
    params = req.params
    limit = parse_limit(first_param(params, "limit"))
    filters = {name: params[name] for name in collection.filters if name in params}
    fhash = filter_hash(filters)
    cursor = first_param(params, "next")
    start = decode_cursor(cursor, fhash) if cursor is not None else list_offset(params, paging)
    records, total, last_seq, left = store.page(start, limit, filters, fhash, paging)
    offset = start if not isinstance(start, tuple) else None

    def link(page_cursor):
        query = [("limit", limit), ("next", page_cursor)]
        query += [(name, value) for name, values in filters.items() for value in values]
        return f"{req.base_url}{req.path}?{urlencode(query)}"

    if paging["cursor"] == "keyset":
        more = (left if left is not None else total - offset) > len(records)
        next_cursor = encode_cursor(last_seq, fhash, "k") if more and records else None
    else:
        next_cursor = encode_cursor(offset + limit, fhash) if offset is not None and \
            offset + limit < total else None
        if offset is None:  # a keyset cursor after the switch went back to offsets
            next_cursor = encode_cursor(last_seq, fhash, "k") if left > len(records) else None
    metadata = {"collection": collection.list_key, "offset": offset if offset is not None else 0,
                "limit": limit, "total": total, "next": next_cursor,
                "nextLink": link(next_cursor) if next_cursor else None}
    response = Response(200, {"_metadata": metadata, collection.list_key: records})
    this_cursor = cursor if cursor is not None else encode_cursor(offset, fhash)
    response.page = PageInfo(collection.list_key, this_cursor, link(this_cursor))
    return response


def find(store, collection, item_id):
    pos = store.position(item_id)
    if pos is None:
        raise ApiError(404, f"{collection.noun} not found")
    return pos


def check_required(collection, fields, op):
    for name in collection.required:
        if not isinstance(fields.get(name), str) or not fields[name]:
            raise ApiError(400, " and ".join(collection.required) + " are required")
    missing = missing_fields(op, fields)
    if missing and collection.path in CREATE_422:
        raise ApiError(422, "validation failed", payload={"errors": [
            {"path": f"/{name}", "message": f"must have required property '{name}'"}
            for name in missing]})
    if missing:
        raise ApiError(400, " and ".join(missing) + (" is" if len(missing) == 1 else " are")
                       + " required")


def create_response(store, collection, req, op):
    fields = parse_object(req.body)
    check_required(collection, fields, op)
    record = {"id": store.new_id()}
    record.update((key, value) for key, value in fields.items()
                  if key != "id" and key not in WRITE_ONLY.get(collection.path, ()))
    if "firstName" in record and "lastName" in record:
        record.setdefault("name", f"{record['firstName']} {record['lastName']}")
    for key, value in collection.defaults.items():
        record.setdefault(key, copy.deepcopy(value))
    record["created"] = record["updated"] = iso_z(time.time())
    full_record(op, "201", record)
    store.append(record)
    if json_schema(op, "201").get("type") == "array":
        return Response(201, [record])  # POST /users answers [record]
    return Response(201, record)


def merged(record, fields, merge_tags, write_only=()):
    result = copy.deepcopy(record) if isinstance(record, dict) else {}
    for key, value in fields.items():
        old_tags = result.get("tags")
        if key == "id" or key in write_only:
            continue
        if key == "tags" and merge_tags and isinstance(old_tags, list) and isinstance(value, list):
            result["tags"] = old_tags + [tag for tag in value if tag not in old_tags]
        else:
            result[key] = value
    renamed = "firstName" in fields or "lastName" in fields
    if renamed and "name" not in fields and "firstName" in result and "lastName" in result:
        result["name"] = f"{result['firstName']} {result['lastName']}"
    result["updated"] = iso_z(time.time())
    return result


def update_response(store, collection, req, item_id):
    pos = find(store, collection, item_id)
    fields = parse_object(req.body)
    merge_tags = (first_param(req.params, "mergeTags") or "").lower() == "true"
    record = merged(store.record_at(pos), fields, merge_tags,
                    WRITE_ONLY.get(collection.path, ()))
    store.set(pos, record)
    return Response(200, record)


def delete_response(store, collection, item_id):
    store.delete(find(store, collection, item_id))
    return Response(200, [])


def credentials_response(state, req, sub):
    app_key = first_param(req.params, "appKey")
    creds = [cred for cred in state.owned_credentials(sub)
             if app_key in (None, cred["appKey"])]
    return Response(200, copy.deepcopy(creds))


def transactions_response(req, op):
    """GET /metadata/transactions/create: a bare array, unpaged."""
    kind = first_param(req.params, "transactionType")
    if kind not in TRANSACTION_FIELDS:
        raise ApiError(400, "transactionType must be purchase or listing")
    return Response(200, copy.deepcopy(TRANSACTION_FIELDS[kind]))


def tags_response(store, collection, req, item_id, apply):
    """POST /people/{id}/tags/apply|delete {"tags": [...]}."""
    pos = find(store, collection, item_id)
    tags = parse_object(req.body).get("tags")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ApiError(400, "tags is required")
    record = copy.deepcopy(store.record_at(pos))
    old = record.get("tags") if isinstance(record.get("tags"), list) else []
    record["tags"] = old + [t for t in tags if t not in old] if apply else \
        [t for t in old if t not in tags]
    store.set(pos, record)
    return Response(200, [])


def members_response(store, collection, req, item_id):
    """POST|DELETE /lists/{id}/people {"personIds": [...]}."""
    pos = find(store, collection, item_id)
    ids = parse_object(req.body).get("personIds")
    if not isinstance(ids, list):
        raise ApiError(400, "personIds is required")
    record = copy.deepcopy(store.record_at(pos))
    members = [id_key(m) for m in record.get("peopleParticipantIds") or []]
    ids = [id_key(i) for i in ids]
    record["peopleParticipantIds"] = members + [i for i in ids if i not in members] \
        if req.method == "POST" else [m for m in members if m not in ids]
    store.set(pos, record)
    return Response(200, [])


def collection_response(state, req, template, op, bound):
    """The answer of the snapshot route template (method already allowed)."""
    parts = template.strip("/").split("/")
    if template == "/metadata/transactions/create":
        return transactions_response(req, op)
    collection = COLLECTIONS[parts[0]]
    store = state.store(req.cred, collection.path)
    item_id = bound.get("id")
    if len(parts) == 1 and req.method == "GET":
        for name in list_required(template, op):
            if not first_param(req.params, name):
                raise ApiError(400, f"{name} is required")
        state.churn(store, collection)
        return list_response(store, collection, req, state.paging)
    if len(parts) == 1:
        return create_response(store, collection, req, op)
    if parts[2:] == ["tags", "apply"] or parts[2:] == ["tags", "delete"]:
        return tags_response(store, collection, req, item_id, parts[3] == "apply")
    if parts[2:] == ["people"]:
        return members_response(store, collection, req, item_id)
    if req.method == "GET":
        return Response(200, store.record_at(find(store, collection, item_id)))
    if req.method == "PUT":
        return update_response(store, collection, req, item_id)
    return delete_response(store, collection, item_id)


def method_not_allowed(allowed):
    return error(405, "Method not allowed", {"Allow": ", ".join(allowed)})


def api_response(state, req, auth):
    """The normal answer to a CRM or credentials request (faults aside)."""
    if not auth.ok:
        return error(401, f"invalid token: {auth.reason}")
    segments = [unquote(part) for part in req.path.split("/")[1:]]
    if segments == ["api", "credentials"]:
        if req.method != "GET":
            return method_not_allowed(["GET"])
        return credentials_response(state, req, auth.sub)
    route = match_route(segments)
    if route is None:
        return error(404, "Not found")
    template, ops, bound = route
    if req.method not in ops:
        return method_not_allowed(list(ops))
    if state.credential_problem(auth.sub, req.cred):
        return error(403, FORBIDDEN_MESSAGE)
    if state.not_ready({"sub": auth.sub, "cred": req.cred}):
        return error(409, NOT_READY_MESSAGE)
    with state.lock:
        return collection_response(state, req, template, ops[req.method], bound)


def with_list_fault(response, rule):
    """Apply a list-shaping fault (loop, drop_*, bad_total) to a list response."""
    payload, page = response.payload, response.page
    if rule.action == "loop":
        payload["_metadata"].update(next=page.cursor, nextLink=page.link)
    elif rule.action == "drop_metadata":
        del payload["_metadata"]
    elif rule.action == "drop_list_key":
        del payload[page.list_key]
    elif rule.action == "bad_total":
        payload["_metadata"]["total"] = rule.value
    return response


def padded(response, size):
    """The response with a `padding` string that makes its JSON body exactly `size` bytes."""
    if not isinstance(response.payload, dict):
        return response
    response.payload["padding"] = ""
    missing = size - len(response.body())
    if missing > 0:
        response.payload["padding"] = "x" * missing
    return response


def shaped(response, rule):
    if rule is None:
        return response
    if rule.action in LIST_ACTIONS and response.page is not None:
        return with_list_fault(response, rule)
    if rule.action == "huge_body_bytes":
        return padded(response, int(rule.value))
    return response


def immediate_fault(rule):
    if rule.action == "html":
        return Response(200, raw="<html><body>Gateway</body></html>", ctype="text/html")
    if rule.action == "not_json":
        return Response(200, raw="this is not json")
    body = rule.spec.get("body")
    if body is None:
        return error(rule.value, f"injected {rule.value}", rule.spec.get("headers"))
    return Response(rule.value, raw=body, headers=rule.spec.get("headers"))


# ---------------------------------------------------------------------------------------------
# Admin interface
# ---------------------------------------------------------------------------------------------


def admin_json(body):
    return parse_object(body) if body.strip() else {}


def admin_number(data, key, default=None):
    value = data.get(key, default)
    if not is_number(value) or value < 0:
        raise ApiError(400, f"{key} must be a non-negative number")
    return value


def admin_health(state, params, body):
    return Response(200, {"ok": True})


def admin_reset(state, params, body):
    state.reset(admin_json(body))
    return Response(200, {"ok": True})


def admin_cred_store(state, cred_id, path):
    if cred_id not in state.stores:
        raise ApiError(404, f"unknown credential {cred_id!r}")
    if path not in COLLECTIONS:
        raise ApiError(404, f"unknown collection {path!r}")
    return state.store(cred_id, path)


def admin_get_people(state, params, body):
    path = first_param(params, "collection") or "people"
    with state.lock:
        store = admin_cred_store(state, first_param(params, "cred") or "cred-1", path)
        return Response(200, {COLLECTIONS[path].list_key: store.all()})


def admin_put_people(state, params, body):
    data = admin_json(body)
    path = data.get("collection", "people")
    records = data.get(COLLECTIONS[path].list_key if path in COLLECTIONS else "people")
    if not isinstance(records, list):
        raise ApiError(400, "people must be an array")
    with state.lock:
        admin_cred_store(state, data.get("cred", "cred-1"), path).replace_all(records)
    return Response(200, {"ok": True, "count": len(records)})


def admin_get_faults(state, params, body):
    with state.lock:
        return Response(200, {"rules": [rule.describe() for rule in state.faults]})


def admin_set_faults(state, params, body):
    specs = admin_json(body).get("rules", [])
    if not isinstance(specs, list):
        raise ApiError(400, "rules must be an array")
    rules = [FaultRule(spec) for spec in specs]
    with state.lock:
        state.faults = rules
    return Response(200, {"ok": True, "rules": len(rules)})


def admin_add_fault(state, params, body):
    rule = FaultRule(admin_json(body))
    with state.lock:
        state.faults.append(rule)
        count = len(state.faults)
    return Response(200, {"ok": True, "rules": count})


def admin_clear_faults(state, params, body):
    with state.lock:
        state.faults = []
    return Response(200, {"ok": True})


def admin_not_ready(state, params, body):
    """{"seconds": S}: every CRM request answers 409 for S seconds (0 ends it); with "sub"
    or "cred", only that user's or credential's requests do."""
    data = admin_json(body)
    seconds = admin_number(data, "seconds")
    unknown = set(data) - {"seconds", *MATCHERS}
    if unknown:
        raise ApiError(400, f"unknown not_ready keys: {sorted(unknown)}")
    matchers = exact_matchers(data)
    until = time.time() + seconds if seconds > 0 else 0.0
    with state.lock:
        if matchers:
            state.not_ready_for = [(m, u) for m, u in state.not_ready_for if m != matchers]
            state.not_ready_for.append((matchers, until))
        else:
            state.not_ready_until = until
            if seconds == 0:
                state.not_ready_for = []
    return Response(200, {"ok": True})


def admin_set_tenants(state, params, body):
    with state.lock:
        users, people = state.tenants
    state.set_tenants(*tenant_counts(admin_json(body), users, people))
    return admin_get_tenants(state, params, body)


def admin_get_tenants(state, params, body):
    with state.lock:
        users, people = state.tenants
    return Response(200, {"users": users, "people": people})


def admin_tokens(state, params, body):
    return Response(200, state.token_counts())


def admin_rate_limit(state, params, body):
    data = admin_json(body)
    rps = admin_number(data, "rps")
    burst = admin_number(data, "burst", rps)
    retry_after = admin_number(data, "retry_after", 1)
    with state.lock:
        state.bucket = TokenBucket(rps, burst, retry_after) if rps > 0 else None
    return Response(200, {"ok": True})


def admin_latency(state, params, body):
    ms = admin_number(admin_json(body), "ms")
    with state.lock:
        state.latency_ms = ms
    return Response(200, {"ok": True})


def admin_set_paging(state, params, body):
    data = admin_json(body)
    paging = dict(PAGING_DEFAULTS)
    for key, value in data.items():
        if key not in PAGING_DEFAULTS:
            raise ApiError(400, f"unknown paging switch {key!r}")
        if key in PAGING_CHOICES and value not in PAGING_CHOICES[key]:
            raise ApiError(400, f"{key} must be one of {list(PAGING_CHOICES[key])}")
        paging[key] = value
    if paging["max_offset"] is not None:
        admin_number(paging, "max_offset")
    if paging["offset_status"] not in (400, 422):
        raise ApiError(400, "offset_status must be 400 or 422")
    churn = paging["churn"]
    if churn is not None:
        if not isinstance(churn, dict) or not set(churn) <= {"every", "create", "delete",
                                                              "seed", "collection"}:
            raise ApiError(400, "churn must be {every, create, delete[, seed, collection]}")
        for key in ("every", "create", "delete"):
            if type(churn.get(key)) is not int or churn[key] < (1 if key == "every" else 0):
                raise ApiError(400, f"churn.{key} must be a whole number")
        paging["churn"] = dict(churn, rng=random.Random(churn.get("seed", 1)))
    with state.lock:
        state.paging = paging
        state.churn_seen = 0
        state.churned = {"created": [], "deleted": []}
    return Response(200, {"ok": True})


def admin_get_paging(state, params, body):
    with state.lock:
        shown = {key: value for key, value in state.paging.items() if key != "churn"}
        churn = state.paging["churn"]
        shown["churn"] = {k: v for k, v in churn.items() if k != "rng"} if churn else None
        return Response(200, dict(shown, churned=copy.deepcopy(state.churned)))


def admin_get_log(state, params, body):
    with state.lock:
        return Response(200, copy.deepcopy(state.log))


def admin_clear_log(state, params, body):
    with state.lock:
        state.log = []
        state.tokens = {}
    return Response(200, {"ok": True})


def admin_stats(state, params, body):
    with state.lock:
        return Response(200, {"total": sum(state.stats.values()), "by_status": dict(state.stats)})


ADMIN_ROUTES = {
    "health": {"GET": admin_health},
    "reset": {"POST": admin_reset},
    "people": {"GET": admin_get_people, "POST": admin_put_people},
    "faults": {"GET": admin_get_faults, "POST": admin_set_faults, "DELETE": admin_clear_faults},
    "faults/add": {"POST": admin_add_fault},
    "not_ready": {"POST": admin_not_ready},
    "tenants": {"GET": admin_get_tenants, "POST": admin_set_tenants},
    "tokens": {"GET": admin_tokens},
    "rate_limit": {"POST": admin_rate_limit},
    "latency": {"POST": admin_latency},
    "paging": {"GET": admin_get_paging, "POST": admin_set_paging},
    "log": {"GET": admin_get_log, "DELETE": admin_clear_log},
    "stats": {"GET": admin_stats},
}


def admin_response(state, method, path, query, body):
    routes = ADMIN_ROUTES.get(path[len("/_admin/"):].rstrip("/"))
    if routes is None:
        return error(404, "Not found")
    handler = routes.get(method)
    if handler is None:
        return method_not_allowed(sorted(routes))
    return handler(state, parse_qs(query, keep_blank_values=True), body)


# ---------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------


def read_chunked(rfile):
    data = b""
    while True:
        size_line = rfile.readline(1024)
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise ValueError("bad chunked encoding") from None
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return data
        if len(data) + size > MAX_REQUEST_BODY:
            raise ValueError("request body too large")
        data += rfile.read(size)
        rfile.readline(1024)


def read_body(rfile, headers):
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return read_chunked(rfile)
    length = headers.get("Content-Length")
    if length is None:
        return b""
    if not re.fullmatch(r"[0-9]+", length.strip()):
        raise ValueError("bad Content-Length")
    if int(length) > MAX_REQUEST_BODY:
        raise ValueError("request body too large")
    data = rfile.read(int(length))
    if len(data) < int(length):
        raise ConnectionError("client closed the connection mid-body")
    return data


def guarded(produce, *args):
    """Call a response producer; ApiError becomes its error response, a bug becomes a 500."""
    try:
        return produce(*args)
    except ApiError as exc:
        if exc.payload is not None:
            return Response(exc.status, exc.payload, headers=exc.headers)
        return error(exc.status, exc.message, exc.headers)
    except Exception:  # an emulator bug must not take the connection down silently
        traceback.print_exc(file=sys.stderr)
        return error(500, "internal emulator error")


WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "RolloutEmulator/1.0"
    timeout = 300  # idle keep-alive connections are dropped after this many seconds

    def do_GET(self):
        try:
            self.dispatch()
        except (ConnectionError, socket.timeout, ssl.SSLError):
            self.close_connection = True

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def do_HEAD(self):
        """HEAD is not part of the API: 405 with no body (and no log entry)."""
        try:
            read_body(self.rfile, self.headers)
        except (ValueError, ConnectionError):
            self.close_connection = True
        self.send_response(405)
        self.send_header("Allow", "GET, POST, PUT, DELETE")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def dispatch(self):
        try:
            body = read_body(self.rfile, self.headers)
        except ValueError as exc:
            self.close_connection = True
            self.send(error(400, str(exc)))
            return
        path, _, query = self.path.partition("?")
        if path == "/_admin" or path.startswith("/_admin/"):
            state = self.server.state
            self.send(guarded(admin_response, state, self.command, path, query, body))
        else:
            self.serve_api(path, query, body)

    def base_url(self):
        scheme = "https" if self.server.tls is not None else "http"
        host, port = self.server.server_address[:2]
        return f"{scheme}://{self.headers.get('Host') or f'{host}:{port}'}"

    def serve_api(self, path, query, body):
        state = self.server.state
        auth = verify_token(self.headers.get("Authorization"), state.clients, time.time())
        state.saw_token(self.headers.get("Authorization"), auth.sub)
        req = Request(self.command, path, query, body, self.headers.get(CRED_HEADER),
                      self.base_url())
        entry = state.begin({
            "t": time.time(), "method": self.command, "path": path, "query": query,
            "status": None, "sub": auth.sub, "cred": req.cred,
            "body": body.decode("utf-8", "replace") if body and self.command in WRITE_METHODS
            else None,
            "auth_ok": auth.ok, "token_iat": auth.iat, "token_exp": auth.exp,
        })
        status = None
        try:
            status = self.exchange(state, req, auth)
        finally:
            state.finish(entry, status)

    def exchange(self, state, req, auth):
        """Answer one CRM request through latency, rate limit and fault rules; the status sent."""
        time.sleep(state.global_latency_s())
        limited = state.rate_limited()
        if limited is not None:
            return self.send(limited)
        rule = state.pick_fault(req.method, req.path, req.query,
                                {"sub": auth.sub, "cred": req.cred})
        action = rule.action if rule else None
        if action == "stall_s":
            time.sleep(rule.value)
            self.close_connection = True
            return None
        if action in IMMEDIATE_ACTIONS:
            return self.send(immediate_fault(rule))
        if action == "echo_headers":
            # a careless API that quotes the request, Authorization included,
            # in its error (only to the client that sent it: never logged)
            echoed = "; ".join(f"{name}: {value}" for name, value in self.headers.items())
            return self.send(error(400, f"rejected request with headers {echoed}"))
        if action == "after_serving":
            guarded(api_response, state, req, auth)
            if rule.value == "drop":
                self.close_connection = True
                return None
            return self.send(error(rule.value, f"injected {rule.value} after serving"))
        if action == "latency_ms":
            time.sleep(rule.value / 1000.0)
        response = shaped(guarded(api_response, state, req, auth), rule)
        return self.send(response, rule if action in SEND_ACTIONS else None)

    def send(self, response, cut=None):
        """Write a response; `cut` (a truncate/stall_body_s rule) sends half the body and closes."""
        body = response.body()
        self.send_response(response.status)
        self.send_header("Content-Type", response.ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in response.headers.items():
            self.send_header(name, str(value))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if cut is None:
            self.wfile.write(body)
            return response.status
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        if cut.action == "stall_body_s":
            time.sleep(cut.value)
        self.close_connection = True
        return response.status

    def log_request(self, code="-", size="-"):
        if not self.server.quiet:
            sys.stderr.write(f"{self.command} {self.path} -> {code}\n")

    def log_message(self, format, *args):
        if not self.server.quiet:
            sys.stderr.write("emulator: " + (format % args) + "\n")


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # many connections open at once (32 requests of a many-user scan): Python's
    # default listen backlog of 5 drops SYNs, and the kernel retries them a
    # second later, which no real API server does
    request_queue_size = 128

    def __init__(self, address, state, tls=None, quiet=False):
        self.state = state
        self.tls = tls
        self.quiet = quiet
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        """Handle one connection; with TLS the handshake runs here, in the worker thread."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, socket.timeout)):
            super().handle_error(request, client_address)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def client_pair(text):
    client_id, sep, secret = text.partition(":")
    if not sep or not client_id or not secret:
        raise argparse.ArgumentTypeError("expected ID:SECRET")
    return client_id, secret


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Emulator of the Rollout Universal CRM API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the port number here once listening")
    parser.add_argument("--dataset", choices=("fub", "uuid"), default="fub")
    parser.add_argument("--people", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--tenant-users", type=int, default=0, metavar="N",
                        help="users tenant-user-1..N, each with one credential tenant-cred-<i>")
    parser.add_argument("--tenant-people", type=int, default=10, metavar="M",
                        help="people of each tenant credential")
    parser.add_argument("--client", type=client_pair, action="append", default=[],
                        metavar="ID:SECRET", help="another JWT issuer (repeatable)")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--quiet", action="store_true", help="no per-request logging")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.people < 0:
        parser.error("--people must be >= 0")
    if args.tenant_users < 0 or args.tenant_people < 0:
        parser.error("--tenant-users and --tenant-people must be >= 0")
    return args


def tls_context(args):
    if not args.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    return context


def write_port_file(path, port):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as handle:
        handle.write(f"{port}\n")
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    clients = {"test-client": "test-secret"}
    clients.update(dict(args.client))
    settings = Settings(args.dataset, args.people, args.seed, args.latency_ms,
                        args.tenant_users, args.tenant_people)
    tls = tls_context(args)
    server = EmulatorServer((args.host, args.port), State(clients, settings), tls, args.quiet)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    print(f"listening on {'https' if tls else 'http'}://{args.host}:{port}", flush=True)
    if args.port_file:
        write_port_file(args.port_file, port)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

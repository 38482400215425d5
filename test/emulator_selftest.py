#!/usr/bin/env python3
"""Self-test of test/emulator.py (the Rollout Universal CRM API emulator).

Starts the emulator as a subprocess on a free port, drives it over HTTP with urllib and
http.client using HS512 JWTs minted here, and checks auth, credentials, paging, filters,
writes, every admin fault kind, keep-alive, a 200k-person start-up and clean SIGTERM shutdown.
Prints one line per failed check, then `N passed, N failed`; exits 1 if any check failed.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "emulator.py")
NOT_READY = "Data for this credential is not ready yet. Please try again."
UUID_RE = re.compile(r"^0199e3ca-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
DOCUMENTED_PERSON_FIELDS = (
    "id", "name", "firstName", "lastName", "assignedUserId", "assignedPondId", "officeId",
    "timeframeId", "stage", "stageId", "tags", "originalIds", "original", "created", "updated",
    "rolloutUpdated", "addresses", "emails", "phones", "source", "sourceId", "systemSource",
    "averageBeds", "averagePrice", "birthday", "lastActivity", "lastActivityType",
    "contactTypes", "jobTitle", "companyName", "communicationsConsent",
)


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, condition, detail=""):
        if condition:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return condition


R = Results()
check = R.check


# ---------------------------------------------------------------------------------------------
# Tokens, process control and HTTP helpers
# ---------------------------------------------------------------------------------------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub="user-1", iss="test-client", secret="test-secret", alg="HS512", ttl=900,
         iat=None, drop=()):
    """A JWT; alg picks the HMAC used to sign (none: empty signature); drop omits claims."""
    now = int(time.time()) if iat is None else iat
    claims = {"iss": iss, "sub": sub, "iat": now, "exp": now + ttl}
    claims = {key: value for key, value in claims.items() if key not in drop}
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    digest = {"HS512": hashlib.sha512, "HS256": hashlib.sha256}.get(alg)
    signing_input = f"{head}.{body}".encode()
    signature = hmac.new(secret.encode(), signing_input, digest).digest() if digest else b""
    return f"{head}.{body}.{b64url(signature)}"


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


class Emulator:
    def __init__(self, *args):
        self.tmp = tempfile.mkdtemp(prefix="emu-selftest-")
        port_file = os.path.join(self.tmp, "port")
        self.started = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, EMULATOR, "--port", "0", "--port-file", port_file, "--quiet",
             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.port = self.wait_for_port(port_file)
        self.ready_after = time.time() - self.started
        self.scheme = "https" if "--tls-cert" in args else "http"
        self.base = f"{self.scheme}://127.0.0.1:{self.port}"

    def wait_for_port(self, port_file):
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(port_file):
                return int(open(port_file).read())
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited: " + self.proc.stderr.read())
            time.sleep(0.02)
        raise RuntimeError("emulator did not write its port file")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "timeout"
        shutil.rmtree(self.tmp, ignore_errors=True)
        return code

    def url(self, path):
        return path if path.startswith("http") else self.base + path

    def call(self, method, path, body=None, sub="user-1", cred="cred-1", auth="mint",
             headers=None, timeout=10, context=None):
        """One request on a fresh connection; auth="mint" signs a token for sub, None omits it."""
        all_headers = {"Content-Type": "application/json"}
        if auth == "mint":
            all_headers["Authorization"] = "Bearer " + mint(sub)
        elif auth is not None:
            all_headers["Authorization"] = auth
        if cred is not None:
            all_headers["X-Rollout-Credential-Id"] = cred
        all_headers.update(headers or {})
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        request = urllib.request.Request(self.url(path), data=data, method=method,
                                         headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                return Reply(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.headers, exc.read())

    def admin(self, method, name, body=None):
        reply = self.call(method, "/_admin/" + name, body, auth=None, cred=None)
        if reply.status != 200:
            raise RuntimeError(f"admin {method} {name} failed: {reply}")
        return reply.json

    def faults(self, *rules):
        self.admin("POST", "faults", {"rules": list(rules)})


def raw_get(emu, path, timeout=5, sub="user-1"):
    """GET on a fresh http.client connection; returns (connection, response)."""
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=timeout)
    conn.request("GET", path, headers={"Authorization": "Bearer " + mint(sub),
                                       "X-Rollout-Credential-Id": "cred-1"})
    return conn, conn.getresponse()


def all_people(emu, cred="cred-1", sub="user-1"):
    return emu.admin("GET", f"people?cred={cred}")["people"]


def error_message(reply):
    data = reply.json
    return data.get("errorMessage") if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def test_auth(emu):
    good = emu.call("GET", "/api/people")
    check("auth: valid token", good.status == 200, good)
    now = int(time.time())
    bad_tokens = {
        "missing header": None,
        "not bearer": "Basic dXNlcjpwdw==",
        "garbage": "Bearer not.a.jwt",
        "bad signature": "Bearer " + mint(secret="wrong-secret"),
        "expired": "Bearer " + mint(iat=now - 1000, ttl=900),
        "alg HS256": "Bearer " + mint(alg="HS256"),
        "alg none": "Bearer " + mint(alg="none"),
        "unknown iss": "Bearer " + mint(iss="nobody"),
        "lifetime 7200": "Bearer " + mint(ttl=7200),
        "no exp": "Bearer " + mint(drop=("exp",)),
        "no iat": "Bearer " + mint(drop=("iat",)),
        "no sub": "Bearer " + mint(drop=("sub",)),
        "sub not string": "Bearer " + mint(sub=42),
    }
    for name, header in bad_tokens.items():
        reply = emu.call("GET", "/api/people", auth=header)
        message = error_message(reply) or ""
        check(f"auth: {name} -> 401", reply.status == 401, reply)
        check(f"auth: {name} message", message.startswith("invalid token"), message)
        if header and " " in header:
            check(f"auth: {name} token not echoed", header.split(" ")[1].encode() not in reply.body)
    check("auth: 1 h lifetime accepted",
          emu.call("GET", "/api/people", auth="Bearer " + mint(ttl=3600)).status == 200)
    check("auth: credentials need a token",
          emu.call("GET", "/api/credentials", auth=None, cred=None).status == 401)


def test_credentials(emu):
    expected = {"user-1": ["cred-1"], "user-multi": ["cred-a", "cred-b"], "user-none": [],
                "user-2": ["cred-2"], "someone-else": []}
    for sub, ids in expected.items():
        reply = emu.call("GET", "/api/credentials", sub=sub, cred=None)
        data = reply.json
        check(f"credentials: {sub} bare array", reply.status == 200 and isinstance(data, list),
              reply)
        check(f"credentials: {sub} ids", [c.get("id") for c in data or []] == ids, data)
    cred = emu.call("GET", "/api/credentials", cred=None).json[0]
    check("credentials: item keys",
          set(cred) == {"id", "createdAt", "appKey", "label", "avatar", "data"}, cred)
    check("credentials: cred-1 secret in data",
          cred["data"].get("accessToken") == "upstream-secret-do-not-leak", cred)
    labels = [c["label"] for c in emu.call("GET", "/api/credentials", sub="user-multi").json]
    check("credentials: user-multi labels", labels == ["Follow Up Boss A", "Salesforce B"], labels)


def test_credential_header(emu):
    cases = {"missing": (None, "user-1"), "unknown": ("cred-zzz", "user-1"),
             "other user's": ("cred-2", "user-1"), "user-none": ("cred-1", "user-none")}
    for name, (cred, sub) in cases.items():
        reply = emu.call("GET", "/api/people", cred=cred, sub=sub)
        check(f"cred header: {name} -> 403", reply.status == 403, reply)
        check(f"cred header: {name} message",
              error_message(reply) == "Forbidden (invalid credentials)", reply)
    reply = emu.call("GET", "/api/people", cred=None,
                     headers={"x-rollout-credential-id": "cred-1"})
    check("cred header: lower-case name", reply.status == 200, reply)
    multi = emu.call("GET", "/api/people?limit=100", sub="user-multi", cred="cred-b").json
    check("cred header: cred-b own store", multi["_metadata"]["total"] == 3, multi["_metadata"])
    check("cred header: cred-b uuid ids", all(UUID_RE.match(p["id"]) for p in multi["people"]))
    check("cred header: cred-b forbidden for user-2",
          emu.call("GET", "/api/people", sub="user-2", cred="cred-b").status == 403)


def test_paging(emu):
    pages, ids, path = [], [], "/api/people?limit=10"
    while path and len(pages) < 10:
        reply = emu.call("GET", path)
        if not check("paging: page 200", reply.status == 200, reply):
            return
        pages.append(reply.json)
        ids += [p["id"] for p in reply.json["people"]]
        cursor = reply.json["_metadata"]["next"]
        path = cursor and "/api/people?limit=10&next=" + urllib.parse.quote(cursor, safe="")
    check("paging: 3 pages", len(pages) == 3, len(pages))
    check("paging: 25 distinct ids in order", ids == list(range(11, 36)), ids)
    first = pages[0]
    check("paging: _metadata first", list(first)[0] == "_metadata", list(first))
    meta = first["_metadata"]
    check("paging: metadata", {k: meta[k] for k in ("collection", "offset", "limit", "total")} ==
          {"collection": "people", "offset": 0, "limit": 10, "total": 25}, meta)
    check("paging: cursor needs percent-encoding", "+" in meta["next"] and "/" in meta["next"])
    link = meta["nextLink"]
    check("paging: nextLink absolute", link.startswith(emu.base + "/api/people?limit=10&next="),
          link)
    via_link = emu.call("GET", link)
    check("paging: nextLink usable",
          via_link.status == 200 and via_link.json["people"] == pages[1]["people"], via_link)
    last = pages[-1]["_metadata"]
    check("paging: last page nulls", last["next"] is None and last["nextLink"] is None, last)
    check("paging: last page offset", last["offset"] == 20 and len(pages[-1]["people"]) == 5)
    live = first["people"][0]
    check("paging: live person first", live["name"] == "Isabella Martinez"
          and live["stageId"] == 2 and live["sourceId"] == 14
          and live["emails"][0]["isPrimary"] == 1 and live["pondMembers"] == [], live)
    check("paging: generated people have extra keys",
          all("collaborators" in p and "picture" in p for p in first["people"][1:]))


def walk(emu, first_path, hook=None):
    """Ids of a whole list following `next`, calling hook(page number) before each page."""
    ids, path, n = [], first_path, 0
    while path and n < 50:
        if hook:
            hook(n)
        reply = emu.call("GET", path)
        if reply.status != 200:
            return ids, reply
        ids += [p["id"] for p in reply.json["people"]]
        cursor = reply.json["_metadata"]["next"]
        path = cursor and "/api/people?limit=10&next=" + urllib.parse.quote(cursor, safe="")
        n += 1
    return ids, None


def test_paging_switches(emu):
    """The behaviours ROLLOUT_API.md §12 leaves open, one switch each."""
    everyone = [p["id"] for p in all_people(emu)]
    emu.admin("POST", "paging", {"order": "newest"})
    ids, bad = walk(emu, "/api/people?limit=10")
    check("paging switch: newest first", ids == everyone[::-1] and bad is None, ids)
    reply = emu.call("GET", "/api/people?limit=10&offset=20")
    check("paging switch: newest first by offset",
          [p["id"] for p in reply.json["people"]] == everyone[::-1][20:], reply)

    emu.admin("POST", "paging", {"cursor": "keyset"})
    deleted = []

    def delete_behind(n):
        if n == 1:  # a record of the first page goes: an offset cursor would skip one
            deleted.append(everyone[3])
            emu.call("DELETE", f"/api/people/{everyone[3]}")
    ids, bad = walk(emu, "/api/people?limit=10", delete_behind)
    check("paging switch: keyset cursor is stable under deletes",
          ids == everyone and bad is None, ids)
    emu.admin("POST", "reset")
    emu.admin("POST", "paging", {})
    ids, _ = walk(emu, "/api/people?limit=10", delete_behind)
    check("paging switch: an offset cursor skips after a delete (the risk the FDW handles)",
          len(ids) == len(everyone) - 1 and everyone[3] in ids, ids)
    emu.admin("POST", "reset")

    emu.admin("POST", "paging", {"offset": "ignored"})
    reply = emu.call("GET", "/api/people?limit=10&offset=10")
    check("paging switch: offset ignored", reply.json["people"][0]["id"] == everyone[0] and
          reply.json["_metadata"]["offset"] == 0, reply)
    emu.admin("POST", "paging", {"max_offset": 10, "offset_status": 422})
    check("paging switch: deep offset refused",
          emu.call("GET", "/api/people?limit=10&offset=11").status == 422 and
          emu.call("GET", "/api/people?limit=10&offset=10").status == 200)
    emu.admin("POST", "paging", {"churn": {"every": 1, "create": 2, "delete": 1, "seed": 3}})
    emu.call("GET", "/api/people?limit=1")
    churned = emu.admin("GET", "paging")["churned"]
    now = [str(p["id"]) for p in all_people(emu)]
    check("paging switch: churn creates and deletes",
          len(churned["created"]) == 2 and len(churned["deleted"]) == 1 and
          churned["deleted"][0] not in now and all(c in now for c in churned["created"]) and
          len(now) == len(everyone) + 1, churned)
    reply = emu.call("POST", "/_admin/paging", {"cursor": "sideways"}, auth=None, cred=None)
    check("paging switch: unknown value refused", reply.status == 400, reply)


def test_list_parameters(emu):
    reply = emu.call("GET", "/api/people?offset=20&limit=10")
    check("offset: 5 left", reply.status == 200 and len(reply.json["people"]) == 5, reply)
    check("offset: ids", [p["id"] for p in reply.json["people"]] == list(range(31, 36)))
    check("default limit 10", len(emu.call("GET", "/api/people").json["people"]) == 10)
    clamped = emu.call("GET", "/api/people?limit=500").json["_metadata"]
    check("limit clamped to 100", clamped["limit"] == 100 and clamped["next"] is None, clamped)
    for query in ("limit=abc", "limit=0", "limit=-1", "offset=x", "offset=-3", "limit="):
        reply = emu.call("GET", "/api/people?" + query)
        check(f"bad {query} -> 400", reply.status == 400 and error_message(reply), reply)
    bad = emu.call("GET", "/api/people?next=bm9wZQ%3D%3D")
    check("bad cursor -> 400", bad.status == 400
          and error_message(bad) == "invalid next cursor", bad)
    unencoded = emu.call("GET", "/api/people?limit=10").json["_metadata"]["next"]
    check("unencoded cursor -> 400",
          emu.call("GET", "/api/people?limit=10&next=" + unencoded).status == 400)
    beyond = emu.call("GET", "/api/people?offset=100").json
    check("offset past the end", beyond["people"] == [] and beyond["_metadata"]["next"] is None)


def expected_ids(people, predicate):
    return [p["id"] for p in people if predicate(p)]


def filtered(emu, query):
    reply = emu.call("GET", "/api/people?limit=100&" + urllib.parse.urlencode(query))
    return reply, [p["id"] for p in (reply.json or {}).get("people", [])]


def test_filters(emu):
    people = all_people(emu)
    target = next(p for p in people[1:] if len(p["emails"]) == 2)
    email = target["emails"][1]["value"]
    reply, ids = filtered(emu, {"email": email})
    check("filter email", ids == [target["id"]] and reply.json["_metadata"]["total"] == 1, ids)
    check("filter email case-sensitive", filtered(emu, {"email": email.upper()})[1] == [])
    formatted = next(p for p in people if len(p["phones"]) == 2)
    work = formatted["phones"][1]
    check("filter phone by value", filtered(emu, {"phone": work["value"]})[1] == [formatted["id"]])
    check("filter phone by normalized",
          formatted["id"] in filtered(emu, {"phone": work["normalized"]})[1])
    vip = expected_ids(people, lambda p: "VIP" in (p.get("tags") or []))
    reply, ids = filtered(emu, {"tags": "VIP"})
    check("filter tags", ids == vip and reply.json["_metadata"]["total"] == len(vip), (ids, vip))
    check("filter tags case-sensitive", filtered(emu, {"tags": "vip"})[1] == [])
    both = expected_ids(people, lambda p: "buyer" in (p.get("tags") or [])
                        and any(e["value"] == email for e in p["emails"]))
    check("filter combined", filtered(emu, {"tags": "buyer", "email": email})[1] == both)
    buyers = expected_ids(people, lambda p: "buyer" in (p.get("tags") or []))
    seen, path = [], "/api/people?limit=2&tags=buyer"
    while path and len(seen) < 100:
        meta = emu.call("GET", path).json
        seen += [p["id"] for p in meta["people"]]
        path = meta["_metadata"]["nextLink"]
        check("filter nextLink keeps filter", path is None or "tags=buyer" in path, path)
    check("filter paging via nextLink", seen == buyers, (seen, buyers))
    cursor = emu.call("GET", "/api/people?limit=2&tags=buyer").json["_metadata"]["next"]
    mismatch = emu.call("GET", "/api/people?limit=2&next=" + urllib.parse.quote(cursor, safe=""))
    check("cursor without its filter -> 400", mismatch.status == 400, mismatch)


def test_get_by_id(emu):
    reply = emu.call("GET", "/api/people/11")
    check("get 11", reply.status == 200 and reply.json.get("firstName") == "Isabella", reply)
    missing = emu.call("GET", "/api/people/99999")
    check("get missing -> 404", missing.status == 404
          and error_message(missing) == "Person not found", missing)
    sneaky = emu.call("GET", "/api/people/..%2Fcredentials")
    check("get ..%2Fcredentials -> 404 person", sneaky.status == 404
          and error_message(sneaky) == "Person not found", sneaky)
    check("unknown path -> 404", error_message(emu.call("GET", "/api/nothing")) == "Not found")
    check("no /api prefix -> 404", emu.call("GET", "/people").status == 404)
    check("PATCH -> 405", emu.call("PATCH", "/api/people/11", {}).status == 405)
    check("HEAD -> 405", emu.call("HEAD", "/api/people").status == 405)
    check("DELETE collection -> 405", emu.call("DELETE", "/api/people").status == 405)
    check("POST credentials -> 405", emu.call("POST", "/api/credentials", {}).status == 405)


def test_writes(emu):
    new = {"firstName": "Ada", "lastName": "Lovelace", "emails": [{"value": "ada@example.com"}],
           "customThing": {"x": 1}}
    created = emu.call("POST", "/api/people", new)
    person = created.json or {}
    check("create -> 201", created.status == 201, created)
    check("create id is next int", person.get("id") == 36, person.get("id"))
    check("create fills defaults", person.get("name") == "Ada Lovelace"
          and person.get("stage") == "Lead" and person.get("tags") == []
          and person.get("phones") == [] and person.get("addresses") == [], person)
    check("create keeps unknown keys", person.get("customThing") == {"x": 1})
    check("create timestamps", re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                                        person.get("created", "")), person.get("created"))
    listing = emu.call("GET", "/api/people?offset=25").json
    check("create appends to list", listing["_metadata"]["total"] == 26
          and listing["people"][-1]["id"] == 36, listing["_metadata"])
    for name, body in {"missing lastName": {"firstName": "A"},
                       "empty firstName": {"firstName": "", "lastName": "B"}}.items():
        reply = emu.call("POST", "/api/people", body)
        check(f"create {name} -> 400", reply.status == 400 and
              error_message(reply) == "firstName and lastName are required", reply)
    check("create not JSON -> 400", emu.call("POST", "/api/people", b"{nope").status == 400)
    check("create array -> 400", emu.call("POST", "/api/people", [1]).status == 400)

    updated = emu.call("PUT", "/api/people/36", {"tags": ["a"], "lastName": "Byron"}).json
    check("update replaces", updated["tags"] == ["a"] and updated["name"] == "Ada Byron"
          and updated["emails"] == new["emails"], updated)
    merged = emu.call("PUT", "/api/people/36?mergeTags=true", {"tags": ["a", "b"]}).json
    check("update mergeTags", merged["tags"] == ["a", "b"], merged)
    check("update persisted", emu.call("GET", "/api/people/36").json["tags"] == ["a", "b"])
    rated = emu.call("PUT", "/api/people/36", {"rating": 4, "jobTitle": "Poet"}).json
    check("update accepts a request-only field, not echoed (the snapshot's response lacks it)",
          "rating" not in rated and rated["jobTitle"] == "Poet", rated)
    applied = emu.call("POST", "/api/people/36/tags/apply", {"tags": ["b", "c"]})
    check("tags/apply -> 200 [], adds the absent tags", applied.status == 200
          and applied.json == [] and emu.call("GET", "/api/people/36").json["tags"]
          == ["a", "b", "c"], applied)
    removed = emu.call("POST", "/api/people/36/tags/delete", {"tags": ["a", "x"]})
    check("tags/delete removes", removed.status == 200
          and emu.call("GET", "/api/people/36").json["tags"] == ["b", "c"], removed)
    check("tags/apply without tags -> 400",
          emu.call("POST", "/api/people/36/tags/apply", {}).status == 400)
    check("tags/apply of a missing person -> 404",
          emu.call("POST", "/api/people/999/tags/apply", {"tags": ["a"]}).status == 404)
    check("tags/apply by GET -> 405", emu.call("GET", "/api/people/36/tags/apply").status == 405)
    generated = emu.call("PUT", "/api/people/20", {"stage": "Closed"})
    check("update generated person", generated.status == 200
          and emu.call("GET", "/api/people/20").json["stage"] == "Closed", generated)
    check("update missing -> 404", emu.call("PUT", "/api/people/999", {"a": 1}).status == 404)
    check("update bad JSON -> 400", emu.call("PUT", "/api/people/36", b"][").status == 400)

    deleted = emu.call("DELETE", "/api/people/36")
    check("delete -> 200 []", deleted.status == 200 and deleted.json == [], deleted)
    check("deleted is gone", emu.call("GET", "/api/people/36").status == 404)
    check("delete again -> 404", emu.call("DELETE", "/api/people/36").status == 404)
    check("delete generated", emu.call("DELETE", "/api/people/12").status == 200
          and emu.call("GET", "/api/people?limit=1").json["_metadata"]["total"] == 24)


def test_other_collections(emu):
    for path, key in (("users", "users"), ("notes", "notes"), ("tasks", "tasks"),
                      ("textMessages?personId=11", "textmessages")):
        data = emu.call("GET", f"/api/{path}").json or {}
        path = path.partition("?")[0]
        items = data.get(key) or []
        check(f"{path}: list key {key}", len(items) > 0
              and data["_metadata"]["collection"] == key, data)
        if items:
            one = emu.call("GET", f"/api/{path}/{items[0]['id']}")
            check(f"{path}: get by id", one.status == 200 and one.json == items[0], one)
    notes = emu.call("GET", "/api/notes?personId=11").json["notes"]
    check("notes: personId filter", notes and all(n["personId"] == 11 for n in notes), notes)
    check("textMessages: personId required",
          error_message(emu.call("GET", "/api/textMessages")) == "personId is required")
    emu.admin("POST", "paging", {"email_match": "case-insensitive", "phone_match": "digits"})
    found = emu.call("GET", "/api/people?email=ISABELLA.MARTINEZ%40example.com"
                     "&phone=718-555-0166").json["people"]
    emu.admin("POST", "paging", {})
    exact = emu.call("GET", "/api/people?email=ISABELLA.MARTINEZ%40example.com").json["people"]
    check("people: email and phone matching switches",
          [p["id"] for p in found] == [11] and exact == [], (found, exact))
    check("users: missing -> 404",
          error_message(emu.call("GET", "/api/users/999")) == "User not found")
    lists = emu.call("GET", "/api/lists").json["lists"]
    members = f"/api/lists/{lists[0]['id']}/people"
    added = emu.call("POST", members, {"personIds": ["13", 11]})
    check("lists: POST people adds the absent ids", added.status == 200 and added.json == []
          and emu.call("GET", f"/api/lists/{lists[0]['id']}").json["peopleParticipantIds"]
          == ["11", "12", "13"], added)
    gone = emu.call("DELETE", members, {"personIds": ["11"]})
    check("lists: DELETE people removes", gone.status == 200
          and emu.call("GET", f"/api/lists/{lists[0]['id']}").json["peopleParticipantIds"]
          == ["12", "13"], gone)
    check("lists: PUT people -> 405", emu.call("PUT", members, {}).status == 405)
    team = emu.call("POST", "/api/teams", {"name": "Closers", "zip": "10001"})
    check("teams: create accepts request-only fields, answers without them",
          team.status == 201 and "name" not in team.json and "zip" not in team.json, team)


# ---------------------------------------------------------------------------------------------
# The routes of the OpenAPI snapshot, and only those
# ---------------------------------------------------------------------------------------------

SNAPSHOT = os.path.join(HERE, os.pardir, "api", "rollout-crm-openapi.json")
SNAPSHOT_METHODS = ("GET", "POST", "PUT", "DELETE")
PROBED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def snapshot_paths():
    """{path template: {METHOD: operation}} of the snapshot."""
    spec = json.load(open(SNAPSHOT))
    return {path: {m.upper(): op for m, op in ops.items() if m.upper() in PROBED_METHODS}
            for path, ops in spec["paths"].items()}


def request_schema(op):
    return (op.get("requestBody", {}).get("content", {}).get("application/json", {})
            .get("schema", {}) or {})


def response_schema(op, status):
    return (op.get("responses", {}).get(status, {}).get("content", {})
            .get("application/json", {}).get("schema", {}) or {})


def sample_body(op):
    """A body carrying every required field of the request schema, typed as it says."""
    samples = {"string": "x", "number": 1, "integer": 1, "boolean": False, "array": [],
               "object": {}}
    schema = request_schema(op)
    body = {}
    for name in schema.get("required", []):
        prop = schema.get("properties", {}).get(name, {})
        kind = prop.get("type") or next((alt.get("type") for alt in prop.get("anyOf", [])
                                         if alt.get("type") not in (None, "null")), "string")
        body[name] = samples.get(kind, "x")
    return body


def concrete(emu, template):
    """The template with {id} replaced by an existing record's id."""
    if "{id}" not in template:
        return template
    collection = template.split("/")[1]
    query = "?personId=11" if collection == "textMessages" else ""
    listing = emu.call("GET", f"/api/{collection}{query}").json or {}
    key = listing.get("_metadata", {}).get("collection")
    ident = (listing.get(key) or [{}])[0].get("id")
    return template.replace("{id}", urllib.parse.quote(str(ident), safe=""))


def test_snapshot_routes(emu):
    paths = snapshot_paths()
    # every route of the snapshot is answered (DELETE last: the record must exist for the rest)
    for method in ("GET", "PUT", "POST", "DELETE"):
        for template, ops in paths.items():
            if method not in ops:
                continue
            emu.admin("POST", "reset")
            path = concrete(emu, template)
            query = {"/textMessages": "?personId=11",
                     "/metadata/transactions/create": "?transactionType=purchase"}
            path += query.get(template, "") if method == "GET" else ""
            body = sample_body(ops[method]) if method in ("POST", "PUT") or \
                template.endswith("/people") else None
            reply = emu.call(method, f"/api{path}", body)
            check(f"snapshot route {method} {template} answered", 200 <= reply.status < 300,
                  reply)
            want = response_schema(ops[method], "201" if reply.status == 201 else "200")
            if want.get("type") == "array":
                check(f"{method} {template}: an array as the snapshot says",
                      isinstance(reply.json, list), reply)
            elif want.get("type") == "object" and want.get("required") and \
                    not template.startswith("/people"):  # person 11 is a live capture
                record = reply.json if isinstance(reply.json, dict) else {}
                missing = [k for k in want["required"]
                           if k not in record and k not in ("_metadata",)]
                check(f"{method} {template}: every required key of the snapshot", not missing,
                      missing)
    # every other method of a snapshot path is 405 with Allow, any other path 404
    emu.admin("POST", "reset")
    for template, ops in paths.items():
        path = concrete(emu, template)
        for method in PROBED_METHODS:
            if method in ops:
                continue
            reply = emu.call(method, f"/api{path}", {} if method != "GET" else None)
            check(f"{method} {template} not in the snapshot -> 405", reply.status == 405
                  and set(reply.headers.get("Allow", "").split(", ")) == set(ops), reply)
    for path in ("/api/metadata", "/api/metadata/transactions", "/api/people/11/tags",
                 "/api/people/11/tags/apply/x", "/api/lists/80/people/11",
                 "/api/webhooks/1/x", "/api/credentials/x"):
        check(f"{path} not in the snapshot -> 404", emu.call("GET", path).status == 404)
    # the routes the issue names, by their answers
    check("GET /webhooks/{id} -> 405", emu.call("GET", "/api/webhooks/1").status == 405)
    for method in ("PUT", "DELETE"):
        reply = emu.call(method, "/api/emailMessages/1200", {} if method == "PUT" else None)
        check(f"{method} /emailMessages/{{id}} -> 405", reply.status == 405, reply)
    user = {"email": "u@example.com", "firstName": "U", "lastName": "V", "phone": "1",
            "role": "Agent", "status": "Active", "username": "uv", "type": "user",
            "address": "1 Main St"}
    created = emu.call("POST", "/api/users", user)
    check("POST /users -> 201 [record]", created.status == 201 and isinstance(created.json, list)
          and len(created.json) == 1 and created.json[0].get("email") == "u@example.com"
          and "timezone" in created.json[0], created)
    short = emu.call("POST", "/api/users", {"firstName": "U"})
    check("POST /users without its required fields -> 400", short.status == 400
          and "email" in error_message(short), short)
    appointment = emu.call("POST", "/api/appointments", {"title": "T"})
    errors = (appointment.json or {}).get("errors") or []
    check("POST /appointments without its required fields -> 422 errors[]",
          appointment.status == 422 and {e.get("path") for e in errors} ==
          {"/personId", "/appointmentTypeId", "/location"}, appointment)
    fields = emu.call("GET", "/api/metadata/transactions/create?transactionType=listing")
    check("GET /metadata/transactions/create -> a bare array", fields.status == 200
          and isinstance(fields.json, list) and fields.json
          and all("originalName" in f for f in fields.json), fields)
    check("GET /metadata/transactions/create without transactionType -> 400",
          emu.call("GET", "/api/metadata/transactions/create").status == 400)
    check("GET /textMessages without personId -> 400",
          error_message(emu.call("GET", "/api/textMessages")) == "personId is required")
    texts = emu.call("GET", "/api/textMessages?personId=12").json["textmessages"]
    check("GET /textMessages?personId= filters", texts
          and all(t["personId"] == 12 for t in texts), texts)
    note = emu.call("POST", "/api/notes", {"personId": 11}).json or {}
    check("a create answers the full record", all(k in note for k in
          ("subject", "body", "isHtml", "created", "updated", "originalIds")), note)


def test_uuid_dataset(emu):
    emu.admin("POST", "reset", {"dataset": "uuid", "people": 12, "seed": 7})
    page = emu.call("GET", "/api/people?limit=100").json
    people = page["people"]
    check("uuid: count", page["_metadata"]["total"] == 12 and len(people) == 12)
    check("uuid: ids", all(UUID_RE.match(p["id"]) for p in people), people[0]["id"])
    missing = [f for f in DOCUMENTED_PERSON_FIELDS if f not in people[0]]
    check("uuid: documented fields", not missing, missing)
    check("uuid: extra keys", all(k in people[0] for k in
                                  ("createdAt", "updatedAt", "recordMissingCount",
                                   "credentialId")))
    check("uuid: string stageId", all(isinstance(p["stageId"], str) for p in people))
    check("uuid: boolean isPrimary", all(isinstance(e["isPrimary"], bool)
                                         for p in people for e in p["emails"]))
    again = emu.call("GET", "/api/people/" + people[3]["id"])
    check("uuid: get by id", again.status == 200 and again.json == people[3])
    created = emu.call("POST", "/api/people", {"firstName": "U", "lastName": "V"}).json
    check("uuid: created id is a uuid", isinstance(created.get("id"), str)
          and len(created["id"]) == 36, created)
    emu.admin("POST", "reset", {"dataset": "uuid", "people": 12, "seed": 7})
    check("uuid: deterministic", emu.call("GET", "/api/people?limit=100").json["people"] == people)
    emu.admin("POST", "reset")
    check("reset restores defaults",
          emu.call("GET", "/api/people").json["_metadata"]["total"] == 25)


def test_admin_people(emu):
    odd = [{"id": "x1", "averagePrice": "12.50", "tags": None}, {"id": 5}, {"noid": True},
           {"id": 5, "dup": True}]
    emu.admin("POST", "people", {"cred": "cred-1", "people": odd})
    check("admin people: verbatim store", all_people(emu) == odd)
    listing = emu.call("GET", "/api/people?limit=100").json
    check("admin people: listed verbatim", listing["people"] == odd, listing)
    check("admin people: numeric id lookup", emu.call("GET", "/api/people/5").json == {"id": 5})
    created = emu.call("POST", "/api/people", {"firstName": "A", "lastName": "B"}).json
    check("admin people: next int after load", created["id"] >= 36, created)
    emu.admin("POST", "reset")


def expect_status_sequence(emu, name, path, expected, method="GET"):
    got = [emu.call(method, path, {} if method != "GET" else None).status for _ in expected]
    check(name, got == expected, got)


def test_fault_status(emu):
    emu.faults({"path": "^/api/people$", "status": 503, "times": 1,
                "headers": {"Retry-After": "1"}})
    reply = emu.call("GET", "/api/people")
    check("fault status: 503", reply.status == 503
          and error_message(reply) == "injected 503", reply)
    check("fault status: header", reply.headers.get("Retry-After") == "1")
    check("fault status: spent", emu.call("GET", "/api/people").status == 200)
    emu.faults({"status": 500, "after": 1, "times": 1})
    expect_status_sequence(emu, "fault after/times", "/api/people", [200, 500, 200])
    emu.faults({"method": "POST", "status": 502})
    check("fault method: GET untouched", emu.call("GET", "/api/people").status == 200)
    check("fault method: POST hit", emu.call("POST", "/api/people", {}).status == 502)
    emu.faults({"query": "offset=5", "status": 504}, {"path": "/api/people/11$", "status": 418,
                                                      "body": "teapot"})
    check("fault query: hit", emu.call("GET", "/api/people?offset=5").status == 504)
    check("fault query: miss", emu.call("GET", "/api/people?offset=6").status == 200)
    teapot = emu.call("GET", "/api/people/11")
    check("fault raw body", teapot.status == 418 and teapot.body == b"teapot", teapot)
    emu.faults({"status": 500})
    check("fault never on admin", emu.admin("GET", "health") == {"ok": True})
    emu.admin("POST", "faults/add", {"status": 401})
    described = emu.admin("GET", "faults")["rules"]
    check("faults/add appends", len(described) == 2 and described[1]["status"] == 401, described)
    check("first live rule wins", emu.call("GET", "/api/people").status == 500)
    emu.admin("DELETE", "faults")
    check("faults cleared", emu.call("GET", "/api/people").status == 200)
    for bad in ({"status": 500, "html": True}, {"path": "(", "status": 500}, {"nope": 1},
                {"truncate": False}, {"latency_ms": 5, "body": "x"}):
        reply = emu.call("POST", "/_admin/faults", {"rules": [bad]}, auth=None, cred=None)
        check(f"bad rule {bad} -> 400", reply.status == 400, reply)


def test_fault_bodies(emu):
    emu.faults({"html": True, "times": 1})
    html = emu.call("GET", "/api/people")
    check("fault html", html.status == 200 and html.headers.get_content_type() == "text/html"
          and b"Gateway" in html.body, html)
    emu.faults({"not_json": True, "times": 1})
    reply = emu.call("GET", "/api/people")
    check("fault not_json", reply.status == 200 and reply.body == b"this is not json"
          and reply.headers.get_content_type() == "application/json", reply)
    emu.faults({"drop_metadata": True, "times": 1})
    check("fault drop_metadata", "_metadata" not in emu.call("GET", "/api/people").json)
    emu.faults({"drop_list_key": True, "times": 1})
    data = emu.call("GET", "/api/people").json
    check("fault drop_list_key", "people" not in data and "_metadata" in data, data)
    emu.faults({"bad_total": 3, "times": 1})
    check("fault bad_total", emu.call("GET", "/api/people").json["_metadata"]["total"] == 3)
    emu.faults({"huge_body_bytes": 300000, "times": 1})
    huge = emu.call("GET", "/api/people")
    check("fault huge body size", len(huge.body) == 300000, len(huge.body))
    check("fault huge body is a page", len((huge.json or {}).get("people", [])) == 10)
    emu.admin("DELETE", "faults")


def test_fault_loop(emu):
    emu.faults({"loop": True})
    first = emu.call("GET", "/api/people?limit=10").json["_metadata"]
    cursor = first["next"]
    again = emu.call("GET", "/api/people?limit=10&next=" + urllib.parse.quote(cursor, safe=""))
    meta = again.json["_metadata"]
    check("fault loop: first page offset 0 cursor", meta["offset"] == 0, meta)
    check("fault loop: points back", meta["next"] == cursor and meta["nextLink"] ==
          first["nextLink"], meta)
    emu.admin("DELETE", "faults")


def test_fault_timing(emu):
    emu.faults({"latency_ms": 300, "times": 1})
    start = time.time()
    reply = emu.call("GET", "/api/people")
    check("fault latency", reply.status == 200 and time.time() - start >= 0.29)

    emu.faults({"stall_s": 1, "times": 1})
    start = time.time()
    conn, outcome = None, None
    try:
        conn, _ = raw_get(emu, "/api/people")
        outcome = "response"
    except (http.client.RemoteDisconnected, ConnectionError) as exc:
        outcome = type(exc).__name__
    check("fault stall_s: closed without answer", outcome not in (None, "response"), outcome)
    check("fault stall_s: waited", time.time() - start >= 0.9, time.time() - start)

    emu.faults({"stall_body_s": 1, "times": 1})
    start = time.time()
    conn, resp = raw_get(emu, "/api/people")
    check("fault stall_body_s: headers", resp.status == 200)
    try:
        resp.read()
        outcome = "complete"
    except http.client.IncompleteRead as exc:
        outcome = len(exc.partial)
    check("fault stall_body_s: partial body", isinstance(outcome, int) and outcome > 0, outcome)
    check("fault stall_body_s: waited", time.time() - start >= 0.9)

    emu.faults({"truncate": True, "times": 1})
    conn, resp = raw_get(emu, "/api/people")
    length = int(resp.getheader("Content-Length"))
    try:
        resp.read()
        outcome = "complete"
    except http.client.IncompleteRead as exc:
        outcome = len(exc.partial)
    check("fault truncate: half body", outcome == length // 2, (outcome, length))
    emu.admin("DELETE", "faults")
    check("after faults: normal", emu.call("GET", "/api/people").status == 200)


def test_create_then_fail(emu):
    """after_serving: the POST creates, then its answer is lost (the ambiguous failures)."""
    body = {"firstName": "Lost", "lastName": "Answer", "emails": [{"value": "Lost@X.org"}]}
    emu.faults({"after_serving": "drop", "times": 1})
    try:
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
        conn.request("POST", "/api/people", json.dumps(body),
                     {"Authorization": "Bearer " + mint(), "X-Rollout-Credential-Id": "cred-1"})
        outcome = conn.getresponse().status
    except (http.client.RemoteDisconnected, ConnectionError) as exc:
        outcome = type(exc).__name__
    check("after_serving drop: no answer", outcome not in (None, 201), outcome)
    emu.faults({"after_serving": 500, "times": 1})
    check("after_serving 500: 500", emu.call("POST", "/api/people", body).status == 500)
    found = emu.call("GET", "/api/people?email=Lost%40X.org").json["people"]
    check("after_serving: both created", len(found) == 2, found)
    check("email_match exact", emu.call("GET", "/api/people?email=lost%40x.org")
          .json["people"] == [])
    emu.admin("POST", "paging", {"email_match": "case-insensitive"})
    check("email_match case-insensitive",
          len(emu.call("GET", "/api/people?email=lost%40x.org").json["people"]) == 2)
    emu.admin("POST", "paging", {})


def test_not_ready(emu):
    emu.admin("POST", "not_ready", {"seconds": 30})
    reply = emu.call("GET", "/api/people")
    check("not_ready: 409", reply.status == 409 and error_message(reply) == NOT_READY, reply)
    check("not_ready: by id too", emu.call("GET", "/api/people/11").status == 409)
    check("not_ready: credentials fine",
          emu.call("GET", "/api/credentials", cred=None).status == 200)
    emu.admin("POST", "not_ready", {"seconds": 0})
    check("not_ready: ended", emu.call("GET", "/api/people").status == 200)


def test_rate_limit(emu):
    emu.admin("POST", "rate_limit", {"rps": 1, "burst": 2, "retry_after": 1})
    replies = [emu.call("GET", "/api/people") for _ in range(3)]
    check("rate limit: burst then 429", [r.status for r in replies] == [200, 200, 429],
          [r.status for r in replies])
    check("rate limit: Retry-After", replies[2].headers.get("Retry-After") == "1")
    check("rate limit: message", error_message(replies[2]) == "Too many requests")
    check("rate limit: admin exempt", emu.admin("GET", "health") == {"ok": True})
    emu.admin("POST", "rate_limit", {"rps": 0})
    check("rate limit: off", all(emu.call("GET", "/api/people").status == 200 for _ in range(3)))


def test_latency(emu):
    emu.admin("POST", "latency", {"ms": 250})
    start = time.time()
    emu.call("GET", "/api/people")
    check("global latency", time.time() - start >= 0.24)
    emu.admin("POST", "latency", {"ms": 0})


def test_log_and_stats(emu):
    emu.admin("POST", "reset")
    token = mint()
    emu.call("GET", "/api/people/..%2Fcredentials", auth="Bearer " + token)
    emu.call("POST", "/api/people", {"firstName": "L", "lastName": "G"})
    emu.call("GET", "/api/people", auth=None)
    emu.admin("GET", "health")
    log = emu.admin("GET", "log")
    check("log: non-admin only", len(log) == 3, log)
    if len(log) == 3:
        get, post, anonymous = log
        check("log: raw path", get["path"] == "/api/people/..%2Fcredentials", get)
        check("log: fields", get["sub"] == "user-1" and get["cred"] == "cred-1"
              and get["auth_ok"] is True and get["status"] == 404 and get["body"] is None
              and isinstance(get["t"], float) and get["t_done"] >= get["t"], get)
        check("log: write body", json.loads(post["body"]) == {"firstName": "L", "lastName": "G"}
              and post["status"] == 201, post)
        check("log: failed auth", anonymous["auth_ok"] is False and anonymous["status"] == 401)
    text = json.dumps(log)
    check("log: no token", token not in text and "Bearer" not in text
          and "uthorization" not in text)
    stats = emu.admin("GET", "stats")
    check("stats: by status", stats["by_status"] == {"404": 1, "201": 1, "401": 1}, stats)
    emu.admin("DELETE", "log")
    check("log: cleared", emu.admin("GET", "log") == [])


def tenant_page(emu, i, cred=None, limit=100):
    return emu.call("GET", f"/api/people?limit={limit}", sub=f"tenant-user-{i}",
                    cred=cred or f"tenant-cred-{i}")


def test_tenants(emu):
    """--tenant-users/--tenant-people and POST /_admin/tenants: tenant-user-<i> owns
    tenant-cred-<i> and its people; the fixed users are untouched."""
    check("tenants: none by default", emu.admin("GET", "tenants") == {"users": 0, "people": 10})
    check("tenants: unknown user before the switch", tenant_page(emu, 1).status == 403)
    emu.admin("POST", "tenants", {"users": 3, "people": 7})
    check("tenants: switched at run time",
          emu.admin("GET", "tenants") == {"users": 3, "people": 7})
    for i in (1, 3):
        creds = emu.call("GET", "/api/credentials", sub=f"tenant-user-{i}", cred=None).json
        check(f"tenants: tenant-user-{i} has exactly tenant-cred-{i}",
              [c.get("id") for c in creds or []] == [f"tenant-cred-{i}"], creds)
        reply = tenant_page(emu, i)
        people = (reply.json or {}).get("people", [])
        check(f"tenants: tenant-cred-{i} holds 7 people", reply.status == 200 and len(people) == 7
              and reply.json["_metadata"]["total"] == 7, reply)
        check(f"tenants: tenant {i} ids {i}000001..{i}000007",
              [p.get("id") for p in people] == [1000000 * i + k for k in range(1, 8)], people)
        check(f"tenants: tenant {i} e-mails and names say whose",
              all(p["emails"][0]["value"] == f"p{k}@tenant{i}.example.com"
                  and p["lastName"] == f"Tenant{i}" and p["firstName"] == f"Person{k}"
                  for k, p in enumerate(people, 1)), people[:1])
        one = emu.call("GET", f"/api/people/{1000000 * i + 2}", sub=f"tenant-user-{i}",
                       cred=f"tenant-cred-{i}")
        check(f"tenants: tenant {i} get by id", one.status == 200 and one.json == people[1], one)
    notes = emu.call("GET", "/api/notes", sub="tenant-user-2", cred="tenant-cred-2")
    check("tenants: the other collections too", notes.status == 200
          and len(notes.json["notes"]) == 5 and notes.json["notes"][0]["personId"] == 2000001,
          notes)
    for name, sub, cred in (("another tenant's credential", "tenant-user-1", "tenant-cred-2"),
                            ("user-1 with a tenant credential", "user-1", "tenant-cred-1"),
                            ("a tenant with cred-1", "tenant-user-1", "cred-1")):
        reply = emu.call("GET", "/api/people", sub=sub, cred=cred)
        check(f"tenants: {name} -> 403", reply.status == 403
              and error_message(reply) == "Forbidden (invalid credentials)", reply)
    check("tenants: user-1 unchanged",
          emu.call("GET", "/api/people").json["_metadata"]["total"] == 25)
    check("tenants: user-multi unchanged", [c["id"] for c in emu.call(
        "GET", "/api/credentials", sub="user-multi", cred=None).json] == ["cred-a", "cred-b"])
    created = emu.call("POST", "/api/people", {"firstName": "N", "lastName": "T"},
                       sub="tenant-user-2", cred="tenant-cred-2").json
    check("tenants: a create takes the tenant's next id", created.get("id") == 2000008, created)
    check("tenants: one tenant's create leaves the others",
          tenant_page(emu, 1).json["_metadata"]["total"] == 7)
    emu.admin("POST", "faults/add", {"status": 500, "times": 1, "sub": "nobody"})
    emu.admin("POST", "tenants", {"users": 1})
    check("tenants: fewer users, same people", tenant_page(emu, 1).json["_metadata"]["total"]
          == 7 and tenant_page(emu, 2).status == 403)
    check("tenants: the switch keeps the faults", len(emu.admin("GET", "faults")["rules"]) == 1)
    for bad in ({"users": -1}, {"people": "5"}, {"tenants": 3}, {"users": 1.5}):
        reply = emu.call("POST", "/_admin/tenants", bad, auth=None, cred=None)
        check(f"tenants: {bad} -> 400", reply.status == 400, reply)
    emu.admin("POST", "reset", {"tenants": {"users": 2, "people": 3}})
    check("tenants: reset takes them too", tenant_page(emu, 2).json["_metadata"]["total"] == 3)
    emu.admin("POST", "reset")
    check("tenants: reset goes back to the command line", tenant_page(emu, 1).status == 403)


def test_fault_matchers(emu):
    """"sub" and "cred" restrict a fault (and a not_ready window) to one user or credential."""
    emu.admin("POST", "tenants", {"users": 3, "people": 2})
    emu.faults({"sub": "tenant-user-2", "status": 409, "times": 2},
               {"cred": "tenant-cred-3", "status": 500})
    got = [tenant_page(emu, i).status for i in (1, 2, 3, 1, 2, 3, 2)]
    check("fault sub/cred: only the matched requests", got == [200, 409, 500, 200, 409, 500, 200],
          got)
    check("fault sub/cred: user-1 untouched", emu.call("GET", "/api/people").status == 200)
    emu.faults({"sub": "tenant-user-1", "cred": "tenant-cred-2", "status": 418})
    check("fault sub and cred: both must match",
          [tenant_page(emu, 1).status, tenant_page(emu, 2).status,
           tenant_page(emu, 1, cred="tenant-cred-2").status] == [200, 200, 418])
    emu.faults({"sub": "tenant-user-1", "path": "^/api/people$", "status": 403,
                "body": '{"errorMessage": "Forbidden (invalid credentials)"}'})
    check("fault sub with path: a 403 for one user",
          [tenant_page(emu, 1).status, tenant_page(emu, 2).status] == [403, 200])
    check("fault sub with path: not its other paths",
          emu.call("GET", "/api/credentials", sub="tenant-user-1", cred=None).status == 200)
    described = emu.admin("GET", "faults")["rules"][0]
    check("fault sub: described", described.get("sub") == "tenant-user-1", described)
    for bad in ({"sub": 1, "status": 500}, {"cred": "", "status": 500},
                {"user": "x", "status": 500}):
        reply = emu.call("POST", "/_admin/faults/add", bad, auth=None, cred=None)
        check(f"fault matcher {bad} -> 400", reply.status == 400, reply)
    emu.admin("DELETE", "faults")
    emu.admin("POST", "not_ready", {"seconds": 30, "cred": "tenant-cred-2"})
    reply = tenant_page(emu, 2)
    check("not_ready cred: that credential 409", reply.status == 409
          and error_message(reply) == NOT_READY, reply)
    check("not_ready cred: the others answer",
          [tenant_page(emu, i).status for i in (1, 3)] == [200, 200])
    emu.admin("POST", "not_ready", {"seconds": 30, "sub": "tenant-user-3"})
    check("not_ready sub: that user 409 too", tenant_page(emu, 3).status == 409)
    emu.admin("POST", "not_ready", {"seconds": 0, "cred": "tenant-cred-2"})
    check("not_ready cred 0: ended for it only",
          [tenant_page(emu, i).status for i in (2, 3)] == [200, 409])
    emu.admin("POST", "not_ready", {"seconds": 0})
    check("not_ready 0: ends every window", tenant_page(emu, 3).status == 200)
    reply = emu.call("POST", "/_admin/not_ready", {"seconds": 1, "user": "x"}, auth=None,
                     cred=None)
    check("not_ready unknown key -> 400", reply.status == 400, reply)


def test_tokens(emu):
    """GET /_admin/tokens: distinct Authorization headers since log-clear, by sub."""
    emu.admin("POST", "tenants", {"users": 2, "people": 1})
    check("tokens: none yet", emu.admin("GET", "tokens") == {"distinct_tokens": 0, "by_sub": {}})
    one = "Bearer " + mint("tenant-user-1")
    two = "Bearer " + mint("tenant-user-1", ttl=600)
    other = "Bearer " + mint("tenant-user-2")
    for header, cred in ((one, "tenant-cred-1"), (one, "tenant-cred-1"), (two, "tenant-cred-1"),
                         (other, "tenant-cred-2"), (other, "tenant-cred-1")):
        emu.call("GET", "/api/people", auth=header, cred=cred)
    emu.call("GET", "/api/credentials", auth="Bearer not.a.jwt", cred=None)
    emu.call("GET", "/api/people", auth=None)
    counts = emu.admin("GET", "tokens")
    check("tokens: distinct per sub", counts == {"distinct_tokens": 4, "by_sub": {
        "tenant-user-1": 2, "tenant-user-2": 1, "(undecoded)": 1}}, counts)
    text = json.dumps(counts) + json.dumps(emu.admin("GET", "log"))
    check("tokens: no token shown", all(h.split(" ")[1] not in text for h in (one, two, other)))
    emu.admin("DELETE", "log")
    check("tokens: cleared with the log",
          emu.admin("GET", "tokens") == {"distinct_tokens": 0, "by_sub": {}})
    emu.call("GET", "/api/people", auth=one, cred="tenant-cred-1")
    check("tokens: counted again after the clear",
          emu.admin("GET", "tokens")["by_sub"] == {"tenant-user-1": 1})


def test_tenant_command_line():
    emu = Emulator("--tenant-users", "100", "--tenant-people", "200")
    try:
        check("--tenant-users 100: starts fast", emu.ready_after < 5, emu.ready_after)
        check("--tenant-users: the switch shows it",
              emu.admin("GET", "tenants") == {"users": 100, "people": 200})
        reply = tenant_page(emu, 100, limit=100)
        check("--tenant-people 200: tenant 100 pages", reply.status == 200
              and reply.json["_metadata"]["total"] == 200
              and reply.json["people"][0]["id"] == 100000001, reply)
        emu.admin("POST", "reset")
        check("--tenant-users: reset keeps the command line's tenants",
              tenant_page(emu, 57).json["_metadata"]["total"] == 200)
    finally:
        check("--tenant-users: SIGTERM exit 0", emu.stop() == 0)


def test_keep_alive(emu):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    headers = {"Authorization": "Bearer " + mint(), "X-Rollout-Credential-Id": "cred-1",
               "Content-Type": "application/json"}
    requests = [("GET", "/api/people", None, 200), ("GET", "/api/people/404", None, 404),
                ("POST", "/api/people", b'{"firstName":"K","lastName":"A"}', 201),
                ("PUT", "/api/people/11", b"not json", 400),
                ("GET", "/api/credentials", None, 200), ("PATCH", "/api/people/11", b"{}", 405),
                ("GET", "/_admin/health", None, 200), ("DELETE", "/api/people/11", None, 200)]
    sock = None
    for method, path, body, status in requests:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        sock = sock or conn.sock
        check(f"keep-alive: {method} {path} -> {status}", resp.status == status, resp.status)
        check(f"keep-alive: {method} {path} same socket",
              conn.sock is sock and not resp.will_close)
    conn.request("GET", "/api/people", headers=dict(headers, Connection="close"))
    resp = conn.getresponse()
    resp.read()
    check("Connection: close honoured", resp.will_close
          and resp.getheader("Connection") == "close")
    conn.close()
    emu.admin("POST", "reset")


def test_big_dataset():
    emu = Emulator("--people", "200000", "--client", "other:other-secret")
    try:
        check("200k: starts fast", emu.ready_after < 5, emu.ready_after)
        start = time.time()
        page = emu.call("GET", "/api/people?limit=100&offset=199950").json
        check("200k: deep page", len(page["people"]) == 50 and page["_metadata"]["total"] ==
              200000 and page["_metadata"]["next"] is None, page["_metadata"])
        check("200k: page is quick", time.time() - start < 1, time.time() - start)
        check("200k: get by id", emu.call("GET", "/api/people/200010").json["id"] == 200010)
        token = mint(iss="other", secret="other-secret")
        check("--client issuer accepted",
              emu.call("GET", "/api/people", auth="Bearer " + token).status == 200)
        wrong = mint(iss="other", secret="test-secret")
        check("--client wrong secret -> 401",
              emu.call("GET", "/api/people", auth="Bearer " + wrong).status == 401)
    finally:
        check("200k: SIGTERM exit 0", emu.stop() == 0)


def test_tls():
    openssl = shutil.which("openssl")
    if openssl is None:
        print("note: openssl not found, TLS check skipped", flush=True)
        return
    tmp = tempfile.mkdtemp(prefix="emu-tls-")
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    made = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                           "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                          capture_output=True)
    if made.returncode != 0:
        print("note: could not make a certificate, TLS check skipped", flush=True)
        return
    emu = Emulator("--tls-cert", cert, "--tls-key", key)
    try:
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        reply = emu.call("GET", "/api/people?limit=2", context=context)
        check("tls: https works", reply.status == 200, reply)
        link = reply.json["_metadata"]["nextLink"]
        check("tls: nextLink is https", link.startswith("https://"), link)
    finally:
        check("tls: SIGTERM exit 0", emu.stop() == 0)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    started = time.time()
    emu = Emulator()
    try:
        first_line = emu.proc.stdout.readline().strip()
        check("announces its URL", first_line == f"listening on http://127.0.0.1:{emu.port}",
              first_line)
        check("health", emu.admin("GET", "health") == {"ok": True})
        for test in (test_auth, test_credentials, test_credential_header, test_paging,
                     test_paging_switches,
                     test_list_parameters, test_filters, test_get_by_id, test_writes,
                     test_other_collections, test_snapshot_routes, test_uuid_dataset, test_admin_people,
                     test_fault_status, test_fault_bodies, test_fault_loop, test_fault_timing,
                     test_create_then_fail,
                     test_not_ready, test_rate_limit, test_latency, test_log_and_stats,
                     test_keep_alive, test_tenants, test_fault_matchers, test_tokens):
            emu.admin("POST", "reset")
            try:
                test(emu)
            except Exception as exc:  # a crash in one group must not hide the others
                check(f"{test.__name__} ran", False, f"{type(exc).__name__}: {exc}")
    finally:
        code = emu.stop()
    check("SIGTERM exit 0", code == 0, code)
    check("no stderr noise with --quiet", emu.proc.stderr.read() == "")
    for test in (test_big_dataset, test_tls, test_tenant_command_line):
        try:
            test()
        except Exception as exc:
            check(f"{test.__name__} ran", False, f"{type(exc).__name__}: {exc}")
    check("finished in time", time.time() - started < 60, time.time() - started)
    print(f"{R.passed} passed, {R.failed} failed", flush=True)
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""INSERT ... ON CONFLICT DO NOTHING against lookup answers that break the
list contract (GET /people?email= answered with a hostile 200): every case
is a classified error with no POST sent, or the row created when the answer
holds nobody with the e-mail; never SQLSTATE XX000, never a crash.  Then the
same answers to the lookup made after a POST that may have created: the
error stays the POST's own."""

import json

from lib import Checker, fault, log, make_db, psql, reset

DB = "rollout_idempotent"
c = Checker()
reset()
make_db(DB)
psql("""CREATE FOREIGN TABLE pe (id text, first_name text, last_name text, emails jsonb)
        SERVER rollout OPTIONS (resource 'people')""", DB)


def meta(people, **extra):
    return json.dumps(dict({"_metadata": dict({"collection": "people", "total": len(people),
                                               "next": None}, **extra.pop("m", {})),
                            "people": people}, **extra))


ME = "fuzz@idem.test"
HOSTILE = {  # name: (body, outcome: "error" or "created" or "skipped")
    "not JSON": ("<html>gateway</html>", "error"),
    "cut short": (meta([])[:20], "error"),
    "an array": ("[]", "error"),
    "no _metadata": (json.dumps({"people": []}), "error"),
    "list not an array": (json.dumps({"_metadata": {"collection": "people"}, "people": {}}),
                          "error"),
    "record without id": (meta([{"emails": [{"value": ME}]}]), "error"),
    "record not an object": (meta([7]), "error"),
    "emails not an array": (meta([{"id": "1", "emails": {"value": ME}}]), "created"),
    "values not strings": (meta([{"id": "1", "emails": [{"value": 5}, "x", None]}]), "created"),
    "someone else": (meta([{"id": "1", "emails": [{"value": "other@idem.test"}]}]), "created"),
    "more pages, none matching": (meta([{"id": "1"}], m={"next": "abc"}), "error"),
    "a match, more pages": (meta([{"id": "7", "emails": [{"value": ME.upper()}]}],
                                 m={"next": "abc"}), "skipped"),
    "numeric id": (meta([{"id": 70, "emails": [{"value": ME}]}]), "skipped"),
    "deep nesting": ('{"_metadata": {"collection": "people"}, "people": ' + "[" * 5000 +
                     "]" * 5000 + "}", "error"),
    "collection elsewhere": (json.dumps({"_metadata": {"collection": "x", "next": None},
                                         "x": [{"id": "3", "emails": [{"value": ME}]}]}),
                             "skipped"),
}
INSERT = (f"INSERT INTO pe (first_name, last_name, emails) VALUES "
          f"('Fuzz', 'Case', '[{{\"value\": \"{ME}\"}}]') ON CONFLICT DO NOTHING")

for name, (body, outcome) in HOSTILE.items():
    reset()
    fault(method="GET", path="^/api/people$", query="email=", status=200, body=body)
    rc, out, err, _ = psql(INSERT, DB)
    posts = [r for r in log() if r["method"] == "POST"]
    _, alive, _, _ = psql("SELECT 1", DB)
    if outcome == "error":
        ok = rc != 0 and "XX000" not in err and "server closed" not in err and not posts
    elif outcome == "created":
        ok = rc == 0 and out == "INSERT 0 1" and len(posts) == 1
    else:
        ok = rc == 0 and out == "INSERT 0 0" and not posts
    c.check(f"lookup answer {name}: {outcome}", ok and alive == "1",
            f"rc={rc} out={out!r} posts={len(posts)} err={err[:300]!r}")

# the lookup after a POST that may have created: a hostile answer adds
# nothing, the error is the POST's
for name in ("not JSON", "record without id", "deep nesting"):
    reset()
    fault(method="POST", path="^/api/people$", after_serving="drop", times=1)
    fault(method="GET", path="^/api/people$", query="email=", status=200,
          body=HOSTILE[name][0], after=1)
    rc, out, err, _ = psql(INSERT, DB)
    c.check(f"after an unsure POST, lookup answer {name}: the POST's error",
            rc != 0 and "connection closed after the request was sent" in err
            and "looking its e-mail up afterwards failed too" in err, err[:400])

psql(f"DROP DATABASE {DB}")
c.finish()

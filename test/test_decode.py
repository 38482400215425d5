#!/usr/bin/env python3
"""The page decoder against hostile and extreme answers (issue 9, items 1, 6,
7, 8, 12, 17): a huge _metadata.limit with parallel paging, a list that ends
short of its total, numbers beyond double and int64, text in LATIN1 and
SQL_ASCII databases, the CHECK of a domain over an array, and what a body of
many empty objects costs in memory.  Bodies are served verbatim by emulator
faults, so every byte is the test's own."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import API, Checker, fault, make_db, measured_query, psql, psql_script, reset  # noqa: E402

c = Checker()
DB = "rollout_decode"


def page(records, total=None, nxt=None, limit=100, offset=0, collection="people"):
    meta = {"collection": collection, "offset": offset, "limit": limit,
            "total": len(records) if total is None else total, "next": nxt, "nextLink": None}
    return {collection: records, "_metadata": meta}


def serve(body, path="^/api/people$"):
    """Answer every GET of path with body (a string, sent as it is)."""
    reset()
    fault(path=path, method="GET", status=200, body=body)


def postmaster_started():
    return psql("SELECT pg_postmaster_start_time()")[1]


def sqlstate(sql, db=DB):
    rc, out, err, _ = psql(f"SELECT sqlstate_of($q${sql}$q$)", db=db)
    return out if rc == 0 else "psql failed: " + err


started = postmaster_started()
make_db(DB)
psql_script("""
CREATE FOREIGN TABLE nums (id text, n numeric, big numeric, e numeric, t text,
  j jsonb, f float8, i bigint) SERVER rollout OPTIONS (resource 'people');
CREATE DOMAIN short_tags AS text[] CHECK (cardinality(VALUE) < 2);
CREATE FOREIGN TABLE dom (id text, tags short_tags) SERVER rollout OPTIONS (resource 'people');
CREATE SERVER parallel FOREIGN DATA WRAPPER rollout_fdw OPTIONS (api_url '%s', auth_url '%s',
  client_id 'test-client', scan_concurrency '4', page_size '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER parallel
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE people_par (id text, first_name text) SERVER parallel OPTIONS (resource 'people');
""" % (API, API), db=DB)

# === item 1: _metadata.limit from the API never sizes memory or paging
two = [{"id": 1}, {"id": 2}]
for limit in (2147483648, 4294967296, 9223372036854775807, 100000000):
    serve(json.dumps(page(two, total=60, nxt="c2", limit=limit)))
    state = sqlstate("SELECT count(*) FROM people_par")
    c.check(f"a _metadata.limit of {limit} above the page size asked is a contract error",
            state == "08P01", state)
c.check("no backend crashed on a huge _metadata.limit", postmaster_started() == started)
serve(json.dumps(page(two, total=9223372036854775807, nxt="c2", limit=2)))
state = sqlstate("SELECT count(*) FROM people_par")
c.check("a total near INT64_MAX with offset paging fails cleanly, no wrap", state == "08P01", state)
c.check("no backend crashed on a huge total", postmaster_started() == started)

# === item 6: a list that ends short of _metadata.total is an error
serve(json.dumps(page([], total=2345)))
rc, out, err, _ = psql("SELECT count(*) FROM people", db=DB)
c.check("total 2345 and an empty last page: an error, not 0 rows",
        rc != 0 and "ended after 0 records of the 2345" in err, out + err)
serve(json.dumps(page(two, total=3)))
state = sqlstate("SELECT count(*) FROM people")
c.check("2 records of 3 announced: an error", state == "08P01", state)
serve(json.dumps(page(two, total=2)))
rc, out, err, _ = psql("SELECT count(*) FROM people", db=DB)
c.check("2 records of 2 announced: 2 rows", rc == 0 and out == "2", out + err)

# === item 8: numbers reach numeric, text and jsonb as written
body = ('{"people": [{"id": 1, "n": 1234567.123456789012345678, '
        '"big": 123456789012345678901234567890, "e": 1e400, "t": 1234567.123456789012345678, '
        '"j": {"x": 1234567.123456789012345678, "y": 123456789012345678901234567890}, '
        '"f": 0.1, "i": 9223372036854775807}], '
        '"_metadata": {"collection": "people", "offset": 0, "limit": 100, "total": 1, "next": null}}')
serve(body)
rc, out, err, _ = psql("SELECT n, big, e = 1e400, t, j->>'x', j->>'y', f, i FROM nums", db=DB)
c.check("numeric keeps 1234567.123456789012345678",
        rc == 0 and out.split("|")[0] == "1234567.123456789012345678", out + err)
c.check("an integer beyond int64 reads into numeric",
        rc == 0 and out.split("|")[1] == "123456789012345678901234567890", out + err)
c.check("1e400 reads into numeric", rc == 0 and out.split("|")[2] == "t", out + err)
c.check("text keeps the number as written",
        rc == 0 and out.split("|")[3] == "1234567.123456789012345678", out + err)
c.check("jsonb keeps every digit",
        rc == 0 and out.split("|")[4:6] == ["1234567.123456789012345678",
                                           "123456789012345678901234567890"], out + err)
c.check("float8 and bigint read their edges", rc == 0 and out.split("|")[6:] == ["0.1", "9223372036854775807"],
        out + err)
state = sqlstate("SELECT e::text FROM (SELECT f AS e FROM nums) s")
c.check("only the column's type refuses a number (float8 takes 0.1)", state == "ok", state)
body2 = body.replace('"f": 0.1', '"f": 1e400')
serve(body2)
rc, out, err, _ = psql("SELECT f FROM nums", db=DB)
c.check("1e400 into float8: the type's own out-of-range error naming the column",
        rc != 0 and "out of range" in err and 'column "f"' in err, err)
rc, out, err, _ = psql("SELECT n FROM nums", db=DB)
c.check("the other columns of that page still read", rc == 0 and out == "1234567.123456789012345678", out + err)

# === item 12: the CHECK of a domain over an array applies to values read
serve(json.dumps(page([{"id": 1, "tags": ["a", "b", "c"]}])))
state = sqlstate("SELECT tags FROM dom")
c.check("a domain over text[] with a CHECK refuses three tags", state == "23514", state)
serve(json.dumps(page([{"id": 1, "tags": ["a"]}])))
rc, out, err, _ = psql("SELECT tags FROM dom", db=DB)
c.check("and takes one", rc == 0 and out == "{a}", out + err)

# === the review of the decoder: a domain's cache over several rows, the
# last page without total, integral numbers for integer columns, element
# typmods, a repeated key on the way to a value
serve(json.dumps(page([{"id": i, "tags": ["a"]} for i in range(1, 6)])))
rc, out, err, _ = psql("SELECT count(*), min(tags::text) FROM dom", db=DB)
c.check("a domain over an array checks every row of a page", rc == 0 and out == "5|{a}", out + err)
reset()
fault(path="^/api/people$", method="GET", query="next=", status=200,
      body=json.dumps(page([], total=None, nxt=None) | {"_metadata": {"next": None}}))
fault(path="^/api/people$", method="GET", status=200,
      body=json.dumps(page([{"id": 1}], total=1000, nxt="c1", limit=1)))
state = sqlstate("SELECT count(*) FROM people")
c.check("a last page without total does not hide a list ending short", state == "08P01", state)
reset()
fault(path="^/api/people$", method="GET", query="next=", status=200,
      body=json.dumps(page([{"id": 2}], total=2, nxt=None)))
fault(path="^/api/people$", method="GET", status=200,
      body=json.dumps(page([{"id": 1}], total=2345, nxt="c1", limit=1)))
state = sqlstate("SELECT count(*) FROM people")
c.check("a total that drops from 2345 to 2 does not excuse 2343 missing records",
        state == "08P01", state)
reset()
fault(path="^/api/people$", method="GET", query="next=", status=200,
      body=json.dumps(page([{"id": 2}], total=2, nxt=None)))
fault(path="^/api/people$", method="GET", status=200,
      body=json.dumps(page([{"id": 1}], total=3, nxt="c1", limit=1)))
rc, out, err, _ = psql("SELECT count(*) FROM people", db=DB)
c.check("a record deleted during the scan (total 3, then 2) is not an error",
        rc == 0 and out == "2", out + err)
reset()
fault(path="^/api/people$", method="GET", query="next=", status=200,
      body=json.dumps(page([{"id": 3}], total=3, nxt=None, limit=2)))
fault(path="^/api/people$", method="GET", status=200,
      body=json.dumps(page([{"id": 1}, {"id": 2}], total=2, nxt="c2", limit=2)))
rc, out, err, _ = psql("SELECT count(*) FROM people_par", db=DB)
c.check("parallel paging: a first page that says it holds all but has a next cursor is followed",
        rc == 0 and out == "3", out + err)
psql_script("""
CREATE FOREIGN TABLE ints (id text, a integer, b bigint, c smallint[], v varchar(3)[])
  SERVER rollout OPTIONS (resource 'people');
""", db=DB)
serve('{"people": [{"id": 1, "a": 5.0, "b": 1e2, "c": [2.00, 3]}], '
      '"_metadata": {"collection": "people", "total": 1, "next": null}}')
rc, out, err, _ = psql("SELECT a, b, c FROM ints", db=DB)
c.check("integral numbers written 5.0 and 1e2 read into integer columns",
        rc == 0 and out == "5|100|{2,3}", out + err)
serve('{"people": [{"id": 1, "a": 5.5}], "_metadata": {"collection": "people", "total": 1, "next": null}}')
state = sqlstate("SELECT a FROM ints")
c.check("5.5 into an integer column is the type's own 22P02", state == "22P02", state)
serve('{"people": [{"id": 1, "v": ["abcdef"]}], "_metadata": {"collection": "people", "total": 1, "next": null}}')
state = sqlstate("SELECT v FROM ints")
c.check("varchar(3)[] elements keep the column's length limit", state == "22001", state)
psql_script("""
CREATE FOREIGN TABLE nested (id text, e text OPTIONS (field 'emails.0.value'))
  SERVER rollout OPTIONS (resource 'people');
""", db=DB)
serve('{"people": [{"id": 1, "emails": [{"value": "a@x"}], "emails": []}], '
      '"_metadata": {"collection": "people", "total": 1, "next": null}}')
rc, out, err, _ = psql("SELECT coalesce(e, 'NULL') FROM nested", db=DB)
c.check("a repeated key on the way to a value: the later one wins", rc == 0 and out == "NULL", out + err)
serve('{"people": [{"id": 1, "\\u0066irst_name": "Esc", "last\\u005fname": "Aped", '
      '"first_nam": "no", "first_namex": "no", "\\"": 1}], '
      '"_\\u006detadata": {"collection": "people", "total": 1, "next": null}}')
rc, out, err, _ = psql("SELECT first_name, last_name FROM people", db=DB)
c.check("keys are matched by their text: escaped keys name columns, prefixes and longer keys do not",
        rc == 0 and out == "Esc|Aped", out + err)
serve('{"people": [{"id": 1}, 5], "_metadata": {"collection": "people", "total": 2, "next": null}}')
state = sqlstate("SELECT count(*) FROM people")
c.check("a record that is not an object breaks the contract", state == "08P01", state)

# === item 7: text crosses the database encoding
for enc in ("LATIN1", "SQL_ASCII"):
    name = "rollout_decode_" + enc.lower()
    psql(f"DROP DATABASE IF EXISTS {name}")
    rc, _, err, _ = psql(f"CREATE DATABASE {name} ENCODING '{enc}' LC_COLLATE 'C' LC_CTYPE 'C' "
                         "TEMPLATE template0")
    c.check(f"a {enc} database is created", rc == 0, err)
    psql_script(f"""
CREATE EXTENSION rollout_fdw;
CREATE SERVER rollout FOREIGN DATA WRAPPER rollout_fdw OPTIONS (api_url '{API}',
  auth_url '{API}', client_id 'test-client');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE people (id text, first_name text, last_name text, attrs jsonb OPTIONS (field '*'),
  addresses text[] OPTIONS (field 'emails[*].value')) SERVER rollout OPTIONS (resource 'people');
""", db=name)
    body = ('{"people": [{"id": 1, "first_name": "Zo\u00eb", "last_name": "\\u00e9t\\u00e9", '
            '"emails": [{"value": "Zo\u00eb"}, {"value": "\\u00e9t\\u00e9"}]}], '
            '"_metadata": {"collection": "people", "offset": 0, "limit": 100, "total": 1, "next": null}}')
    serve(body)
    p = __import__("subprocess").run(
        ["psql", "-X", "-At", "-d", name, "-c",
         "SELECT first_name, last_name" + (", attrs->>'first_name', addresses" if enc == "LATIN1" else "")
         + " FROM people"],
        capture_output=True, env=dict(os.environ, PGCLIENTENCODING="UTF8"))
    out = p.stdout.decode("utf-8", "replace").strip()
    if enc == "LATIN1":
        c.check("LATIN1: raw UTF-8 and \\u escapes both read as the same characters",
                p.returncode == 0 and out.startswith("Zo\u00eb|\u00e9t\u00e9|Zo\u00eb|"), out + p.stderr.decode())
        c.check("LATIN1: a wildcard column's elements are converted like text",
                out.endswith("|{Zo\u00eb,\u00e9t\u00e9}"), out + p.stderr.decode())
        serve('{"people": [{"id": 7, "first_name": "\u65e5\u672c"}], "_metadata": {"collection": '
              '"people", "offset": 0, "limit": 100, "total": 1, "next": null}}')
        rc, out, err, _ = psql("SELECT first_name FROM people", db=name)
        c.check("LATIN1: a character it cannot hold is 22P05 naming column and record",
                rc != 0 and "has no equivalent in encoding" in err and 'column "first_name"' in err
                and "record id 7" in err, err)
    else:
        c.check("SQL_ASCII: UTF-8 bytes stored as they came",
                p.returncode == 0 and out.split("|")[0] == "Zo\u00eb", out + p.stderr.decode())

# === item 17: what a body costs is a small multiple of its size
n = 3_000_000
body = '{"people": [' + ",".join(["{}"] * n) + '], "_metadata": {"collection": "people", ' \
       '"offset": 0, "limit": null, "total": %d, "next": null}}' % n
serve(body)
mb = len(body) / 1e6
rc, out, err, _ = psql("SELECT count(*) FROM people", db=DB)
c.check("the body of empty objects reads without error", rc == 0 and out == str(n), out + err[:300])
secs, line, grown_kb = measured_query("SELECT count(*) FROM people", DB)
c.check(f"a {mb:.1f} MB body of empty objects is read", line == str(n), line)
c.check(f"peak memory growth {grown_kb / 1024:.0f} MB is under 12x the body",
        grown_kb / 1024 < 12 * mb, f"{grown_kb} kB")
print(f"memory: {mb:.1f} MB body, peak RSS growth {grown_kb / 1024:.0f} MB "
      f"({grown_kb / 1024 / mb:.1f}x)")
c.check("no backend crashed in this suite", postmaster_started() == started)

reset()
c.finish()

"""Writes whose 2xx answer cannot be read: the API has acted, so the error
says what it did (created, with the count and the ids known so far; updated)
and a retry of the statement would not silently duplicate records.  Then
text crossing the database encoding: a LATIN1 and a SQL_ASCII database send
UTF-8 to the CRM, or nothing."""

import json
import os

from lib import Checker, admin, fault, log, make_db, psql, reset

os.environ["PGCLIENTENCODING"] = "UTF8"
DB = "rollout_write_answers"
c = Checker()
reset()
make_db(DB)


def posts():
    return [r for r in log() if r["method"] == "POST" and r["path"] == "/api/people"]


def insert(first, extra=""):
    return psql(f"INSERT INTO people (first_name, last_name) VALUES ('{first}', 'W') {extra}", DB)


# === a single INSERT answered 201 with a body that is no record
for name, body in (("not JSON", "Created!"), ("truncated", '{"id": "501", "firstNa'),
                   ("not an object", "[]"), ("no id", '{"firstName": "x"}'),
                   ("empty", "")):
    for extra in ("", "RETURNING id"):
        reset()
        fault(method="POST", path="^/api/people$", status=201, body=body, times=1)
        rc, out, err, _ = insert("Broken", extra)
        if name == "no id" and not extra:
            # a record without its id is a readable answer: nothing needs the row
            c.check("201 no id without RETURNING: INSERT 0 1", rc == 0, err)
        else:
            c.check(f"201 {name} {extra or 'without RETURNING'}: the error says it was created",
                    rc != 0 and "created the record but its answer" in err
                    and "1 row(s) of this statement were created" in err, err)
        c.check(f"... {name}: sent once", len(posts()) == 1, str(len(posts())))

# === the same inside a batch: every 2xx counts as created, known ids listed
psql("ALTER FOREIGN TABLE people OPTIONS (ADD batch_size '4')", DB)
reset()
fault(method="POST", path="^/api/people$", status=201, body="<html>ok</html>", times=1)
rc, out, err, _ = psql("""INSERT INTO people (first_name, last_name)
                          SELECT 'Batch', 'Row ' || g FROM generate_series(1, 4) g""", DB)
ids = sorted(str(r["id"]) for r in admin("GET", "people?cred=cred-1")["people"]
             if r.get("firstName") == "Batch") if rc != 0 else []
c.check("batch with one unreadable 201: the error counts all 4 as created",
        rc != 0 and "4 row(s) of this statement were created" in err
        and "1 of its answers" in err, err)
c.check("... and lists the 3 ids it could read, and one unknown",
        len(ids) == 3 and all(i in err for i in ids) and "(unknown)" in err, f"{ids} {err}")

# === a batch where one POST fails and one answer is unreadable
reset()
fault(method="POST", path="^/api/people$", status=201, body="nope", times=1)
rc, out, err, _ = psql("""INSERT INTO people (first_name, last_name)
                          SELECT 'Mixed', CASE WHEN g = 4 THEN NULL ELSE 'Row ' || g END
                          FROM generate_series(1, 4) g""", DB)
c.check("batch with a 400 and an unreadable 201: the 400 is raised, 3 counted as created",
        rc != 0 and "HTTP 400" in err and "3 row(s) of this statement were created" in err
        and "(unknown)" in err, err)
psql("ALTER FOREIGN TABLE people OPTIONS (DROP batch_size)", DB)

# === a row the answer cannot fill (a column refuses the value) was still created
reset()
psql("CREATE FOREIGN TABLE people_typed (id text, first_name text, last_name text, "
     "stage integer) SERVER rollout OPTIONS (resource 'people')", DB)
rc, out, err, _ = psql("INSERT INTO people_typed (first_name, last_name) VALUES ('T', 'Y') "
                       "RETURNING id", DB)
c.check("RETURNING that cannot convert the answer says the record was created",
        rc != 0 and "1 row(s) of this statement were created" in err, err)

# === PUT answered 200 with a broken body: the update was done
for extra in ("RETURNING id", ""):
    reset()
    fault(method="PUT", path="^/api/people/", status=200, body="{\"id\": 12, ", times=1)
    rc, out, err, _ = psql(f"UPDATE people SET last_name = 'Done' WHERE id = '12' {extra}", DB)
    if extra:
        c.check("PUT whose answer is unreadable: the error says the update was done",
                rc != 0 and "updated the record 12 but its answer" in err
                and "1 row(s) of this statement were updated" in err, err)
    else:
        c.check("PUT whose answer is not needed: not read, the UPDATE succeeds",
                rc == 0 and out == "UPDATE 1", err)

# === a tag change answered 200, then its read-back (GET /people/{id}) unreadable:
# === a classified error (never XX000) whose context says the change was made
for name, body in (("not JSON", "<html>"), ("truncated", '{"id": 12, "tags": ["a'),
                   ("not an object", "[]"), ("tags not an array", '{"id": 12, "tags": "a"}'),
                   ("a tag that is an object", '{"id": 12, "tags": [{"a": 1}]}'),
                   ("a tag holding \\u0000", '{"id": 12, "tags": ["a\\u0000b"]}')):
    reset()
    fault(method="GET", path="^/api/people/12$", status=200, body=body, times=2)
    rc, out, err, _ = psql("SELECT sqlstate_of($$SELECT rollout_fdw_apply_tags("
                           "'people', '12', '{fresh}')$$)", DB)
    rc2, out2, err2, _ = psql("SELECT rollout_fdw_apply_tags('people', '12', '{again}')", DB)
    _, tags, _, _ = psql("SELECT tags FROM people WHERE id = '12'", DB)
    c.check(f"apply_tags read back {name}: a classified error saying the change was made",
            rc == 0 and out not in ("ok", "XX000") and rc2 != 0
            and "Rollout made the change" in err2 and "fresh" in tags and "again" in tags,
            f"{out} {err2} {tags}")
reset()
rc, out, err, _ = psql("SELECT rollout_fdw_apply_tags('people', '12', '{x}') IS NULL", DB)
c.check("apply_tags after the faults: works", rc == 0 and out == "f", err)

# === encodings: a LATIN1 database sends UTF-8
LAT = "rollout_latin1"
psql(f"DROP DATABASE IF EXISTS {LAT}")
rc, out, err, _ = psql(f"CREATE DATABASE {LAT} WITH ENCODING 'LATIN1' LC_COLLATE 'C' "
                       "LC_CTYPE 'C' TEMPLATE template0")
c.check("a LATIN1 database", rc == 0, err)


def setup(db):
    api = os.environ["ROLLOUT_EMU_BASE"] + "/api"
    return psql(f"""CREATE EXTENSION rollout_fdw;
CREATE SERVER rollout FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url '{api}', auth_url '{api}', client_id 'test-client');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE people (id text, first_name text, last_name text,
  attrs jsonb OPTIONS (field '*')) SERVER rollout OPTIONS (resource 'people');""", db)


def raw_bodies(method):
    return [r.get("body") or "" for r in log() if r["method"] == method]


rc, out, err, _ = setup(LAT)
c.check("LATIN1: extension set up", rc == 0, err)
reset()
rc, out, err, _ = psql("INSERT INTO people (first_name, last_name, attrs) "
                       "VALUES ('Zoë', 'Crème', '{\"jobTitle\": \"Pâtissière\"}')", LAT)
stored = [r for r in admin("GET", "people?cred=cred-1")["people"] if r.get("lastName") == "Crème"]
c.check("LATIN1: INSERT of 'Zoë' arrives as UTF-8 'Zoë'",
        rc == 0 and len(stored) == 1 and stored[0].get("firstName") == "Zoë"
        and stored[0].get("jobTitle") == "Pâtissière", f"{err} {stored}")
c.check("LATIN1: the body is valid UTF-8 (no replacement character)",
        all("\ufffd" not in b for b in raw_bodies("POST")), str(raw_bodies("POST")))
rc, out, err, _ = psql("UPDATE people SET last_name = 'Müller' WHERE id = '12'", LAT)
stored = [r for r in admin("GET", "people?cred=cred-1")["people"] if str(r.get("id")) == "12"]
c.check("LATIN1: UPDATE to 'Müller' arrives as UTF-8",
        rc == 0 and stored and stored[0].get("lastName") == "Müller", f"{err} {stored}")
rc, out, err, _ = psql("SELECT rollout_fdw_apply_tags('people', '12', '{Crème}')", LAT)
stored = [r for r in admin("GET", "people?cred=cred-1")["people"] if str(r.get("id")) == "12"]
c.check("LATIN1: apply_tags of 'Crème' arrives as UTF-8 and reads back",
        rc == 0 and "Crème" in out and stored and "Crème" in stored[0].get("tags"),
        f"{out} {err} {stored}")
admin("POST", "people", {"cred": "cred-1", "people": [{"id": 12, "tags": ["日本"]}]})
rc, out, err, _ = psql("SELECT rollout_fdw_apply_tags('people', '12', '{x}')", LAT)
c.check("LATIN1: a tag the database cannot hold is its encoding error",
        rc != 0 and 'has no equivalent in encoding "LATIN1"' in err, f"{out} {err}")
psql(f"DROP DATABASE {LAT}")

# === SQL_ASCII: bytes pass through when they are UTF-8; others are refused unsent
ASC = "rollout_sqlascii"
psql(f"DROP DATABASE IF EXISTS {ASC}")
rc, out, err, _ = psql(f"CREATE DATABASE {ASC} WITH ENCODING 'SQL_ASCII' LC_COLLATE 'C' "
                       "LC_CTYPE 'C' TEMPLATE template0")
rc2, out, err2, _ = setup(ASC)
c.check("a SQL_ASCII database", rc == 0 and rc2 == 0, err + err2)
reset()
rc, out, err, _ = psql("INSERT INTO people (first_name, last_name) VALUES ('Zoë', 'Ascii')", ASC)
stored = [r for r in admin("GET", "people?cred=cred-1")["people"] if r.get("lastName") == "Ascii"]
c.check("SQL_ASCII: UTF-8 bytes pass through",
        rc == 0 and stored and stored[0].get("firstName") == "Zoë", f"{err} {stored}")
reset()
rc, out, err, _ = psql("INSERT INTO people (first_name, last_name) VALUES (E'Zo\\353', 'Latin')",
                       ASC)
c.check("SQL_ASCII: bytes that are not UTF-8 are refused with a clear error",
        rc != 0 and "not valid UTF-8" in err and "nothing was sent" in err, err)
c.check("... and nothing was sent", len(posts()) == 0, str(len(posts())))
psql(f"DROP DATABASE {ASC}")

psql(f"DROP DATABASE {DB}")
c.finish()

"""Many users in one statement (issue 12), against the emulator's tenant users
(tenant-user-<i>, one credential tenant-cred-<i> each, people with ids
1000000*i + k): a join of the app's customers with the key columns reads
every customer's people, each row saying whose it is, with one token per
user and each user's pages sent together with the others'; a user whose
data is not synced yet (409) is waited out while the others' pages keep
coming; on_user_error 'skip' leaves out a failing user with a WARNING and
never a user that already returned rows; the token cache is bounded; the
incremental refresh of a few ids per user costs one GET per id."""

import re

from lib import API, Checker, admin, log, make_db, psql, psql_script, reset, sql_out

DB = "rollout_keys"
USERS = 40
PEOPLE = 25                     # three pages of 10 each
c = Checker()


def sql(text):
    return sql_out(text, DB)


def check(ok, name, info=""):
    c.check(name, ok, info)


def tenant_of(person_id):
    return int(person_id) // 1000000


reset()
admin("POST", "tenants", {"users": USERS, "people": PEOPLE})
make_db(DB)
rc, _, err, _ = psql_script(f"""
CREATE SERVER many FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url '{API}', auth_url '{API}',
           client_id 'test-client', page_size '10', rate_limit '0',
           retry_base_ms '20', retry_max_ms '200', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER many
  OPTIONS (client_secret 'test-secret', user_id '*');
CREATE SCHEMA crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER many INTO crm
  OPTIONS (key_columns 'true');
CREATE TABLE customers (name text, rollout_user text, credential text);
INSERT INTO customers
  SELECT 'customer ' || i, 'tenant-user-' || i, 'tenant-cred-' || i
  FROM generate_series(1, {USERS}) i;
ANALYZE customers;
""", db=DB)
if rc != 0:
    raise RuntimeError(err)

JOIN = """SELECT c.rollout_user, p.rollout_credential_id, p.id
FROM customers c
JOIN crm.people p ON p.rollout_user_id = c.rollout_user
                 AND p.rollout_credential_id = c.credential"""

# --- the join: every customer's people, each row saying whose ------------
admin("DELETE", "log")
rows = [line.split("|") for line in sql(JOIN).splitlines()]
check(len(rows) == USERS * PEOPLE, f"the join returns {USERS} x {PEOPLE} rows",
        f"{len(rows)} rows")
check(all(u == "tenant-user-%d" % tenant_of(pid) and cred == "tenant-cred-%d" % tenant_of(pid)
            for u, cred, pid in rows),
        "each row's key columns name the tenant whose CRM holds it")
check(len({pid for _, _, pid in rows}) == USERS * PEOPLE, "no row twice")
lists = [r for r in log() if r["method"] == "GET" and r["path"] == "/api/people"]
check(len(lists) == USERS * 3, f"{USERS * 3} list requests: 3 pages per user, by cursor",
        f"{len(lists)}")
check(all(r["sub"] == "tenant-user-%s" % r["cred"].rsplit("-", 1)[1] for r in lists),
        "each request carries its own user's token and credential")
tokens = admin("GET", "tokens")
check(tokens["distinct_tokens"] == USERS and
        all(n == 1 for n in tokens["by_sub"].values()),
        f"one token per user ({USERS})", str(tokens)[:200])
check(not any(r["path"].endswith("/credentials") for r in log()),
        "no credential lookup: the join names each credential")

plan = sql("EXPLAIN (COSTS OFF) " + JOIN)
check("Custom Scan (Rollout Key Join)" in plan, "the join is a key join", plan)
# the users' pages go together: a user's first page does not wait for the
# pages of the users before it (the requests of 40 users interleave)
order = [r["sub"] for r in lists]
first_of_last = order.index("tenant-user-%d" % USERS)
last_of_first = len(order) - 1 - order[::-1].index("tenant-user-1")
check(first_of_last < last_of_first,
        "the last user's first page is asked before the first user's last page")

# --- only the user: each credential discovered, concurrently --------------
admin("DELETE", "log")
out = sql("""SELECT count(*), count(DISTINCT p.rollout_credential_id)
FROM customers c JOIN crm.people p ON p.rollout_user_id = c.rollout_user""")
check(out == f"{USERS * PEOPLE}|{USERS}", "users alone: credentials discovered", out)
creds = [r for r in log() if r["path"].endswith("/credentials")]
check(len(creds) == 0 or len(creds) == USERS,
        "at most one credential lookup per user (cached after)", str(len(creds)))

# --- = ANY of users ------------------------------------------------------
ALL_USERS = """SELECT count(*) FROM crm.people
WHERE rollout_user_id = ANY (ARRAY(SELECT rollout_user FROM customers))"""
out = sql(ALL_USERS)
check(out == str(USERS * PEOPLE), "= ANY (ARRAY(SELECT ...)) of every customer: every row", out)
out = sql("""SELECT rollout_user_id, count(*) FROM crm.people
WHERE rollout_user_id = ANY (ARRAY['tenant-user-3', 'tenant-user-7']) GROUP BY 1 ORDER BY 1""")
check(out == f"tenant-user-3|{PEOPLE}\ntenant-user-7|{PEOPLE}", "= ANY of two users", out)

# --- a user not synced yet: waited out while the others' pages flow --------
admin("DELETE", "log")
admin("POST", "latency", {"ms": 50})       # the others' pages take a while
admin("POST", "not_ready", {"seconds": 1.0, "cred": "tenant-cred-2"})
out = sql(f"SELECT count(*) FROM ({JOIN}) j")
admin("POST", "latency", {"ms": 0})
check(out == str(USERS * PEOPLE), "a 409 for one user: every row all the same", out)
entries = [r for r in log() if r["path"] == "/api/people"]
n409 = [r for r in entries if r["status"] == 409]
check(len(n409) >= 1 and all(r["cred"] == "tenant-cred-2" for r in n409),
        "only tenant-user-2 was answered 409", str(len(n409)))
if n409:
    first, last = n409[0]["t"], max(r["t"] for r in n409)
    others = [r for r in entries if r["cred"] != "tenant-cred-2" and first < r["t"] < last]
    check(len(others) > 0, "other users' pages were served while tenant-user-2 waited",
            f"{len(others)} served between its first and last 409")

# --- on_user_error ----------------------------------------------------------
admin("POST", "faults/add", {"status": 500, "cred": "tenant-cred-5", "path": "/people"})
rc, _, err, _ = psql(f"SELECT count(*) FROM ({JOIN}) j", DB)
check(rc != 0 and "HTTP 500" in err, "'fail' (default): one user's 500 fails the statement",
        err[:200])
sql("ALTER FOREIGN TABLE crm.people OPTIONS (ADD on_user_error 'skip')")
rc, out, err, _ = psql(f"SELECT count(*) FROM ({JOIN}) j", DB)
check(rc == 0 and out == str((USERS - 1) * PEOPLE),
        "'skip': the other users' rows, all of them", f"{out} {err[:200]}")
check('Rollout user "tenant-user-5"' in err and "left out" in err and "HTTP 500" in err,
        "'skip': a WARNING names the user and the error", err[:300])
out = sql("SELECT users_skipped > 0 FROM rollout_fdw_stats() "
          "WHERE server = 'many' AND database = current_database()")
check(out == "t", "users_skipped counted", out)
admin("DELETE", "faults")

# a user that fails after its first rows is never skipped: the statement fails
admin("POST", "faults/add", {"status": 500, "cred": "tenant-cred-6", "path": "/people",
                             "query": "next="})
rc, out, err, _ = psql(f"SELECT count(*) FROM ({JOIN}) j", DB)
check(rc != 0 or out == str(USERS * PEOPLE),
        "'skip': a failure after a user's first rows is not a silent partial result",
        f"rc={rc} out={out} {err[:200]}")
admin("DELETE", "faults")
sql("ALTER FOREIGN TABLE crm.people OPTIONS (DROP on_user_error)")

# --- the token cache is bounded (256 users) ------------------------------------
admin("POST", "tenants", {"users": 300, "people": 1})
STATS = ("\nSELECT tokens_minted FROM rollout_fdw_stats() "
         "WHERE server = 'many' AND database = current_database();")
script = "\n".join(
    f"SELECT count(*) FROM crm.people WHERE rollout_user_id = 'tenant-user-{i}';"
    for i in range(1, 301))
script += STATS
script += "\nSELECT count(*) FROM crm.people WHERE rollout_user_id = 'tenant-user-300';"
script += STATS
script += "\nSELECT count(*) FROM crm.people WHERE rollout_user_id = 'tenant-user-1';"
script += STATS
rc, out, err, _ = psql_script(script, db=DB, timeout=300)
lines = out.splitlines()
print("       token cache: " + " ".join(lines[299:]))
if rc == 0 and len(lines) >= 305:
    after_all, after_recent, after_old = int(lines[300]), int(lines[302]), int(lines[304])
    check(after_recent == after_all, "a recently used user's token is reused")
    check(after_old == after_all + 1,
            "the least recently used user's token was dropped (cache bounded): minted anew",
            f"{after_all} -> {after_old}")
else:
    check(False, "300 users one after the other", err[:300])

# --- writes in many users' CRMs, in one statement -------------------------------
admin("POST", "tenants", {"users": USERS, "people": PEOPLE})
out = sql("""INSERT INTO crm.people (first_name, last_name, rollout_user_id, rollout_credential_id)
SELECT 'New', name, rollout_user, credential FROM customers WHERE rollout_user IN
  ('tenant-user-1', 'tenant-user-2', 'tenant-user-3')
RETURNING rollout_user_id || ':' || (id::bigint / 1000000)""")
check(sorted(line for line in out.splitlines() if ":" in line) == ["tenant-user-1:1", "tenant-user-2:2", "tenant-user-3:3"],
        "a batch INSERT creates each row in its user's CRM", out)
out = sql("""SELECT count(*) FROM customers c JOIN crm.people p
  ON p.rollout_user_id = c.rollout_user AND p.rollout_credential_id = c.credential
  WHERE p.first_name = 'New'""")
check(out == "3", "each user's CRM holds its new person", out)

c.finish()

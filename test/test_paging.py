#!/usr/bin/env python3
"""Parallel paging that never fails and never misses (issue 10, item 2).

Where the API's behaviour is unknown (ROLLOUT_API.md §12) the emulator offers
each plausible one as a switch (/_admin/paging): a cursor that stands for an
offset or for the last record returned, a list oldest first or newest first,
`offset` honoured, ignored, or refused beyond some depth with 400 or 422.  Its
churn switch creates and deletes records while a scan runs, as a busy CRM
does.  Under every combination a plain SELECT, with no option set, must end
without error and return every record that existed for the whole scan, none
twice, and nothing that never existed."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import Checker, admin, log, make_db, psql, reset  # noqa: E402

c = Checker()
DB = "rollout_paging"
PEOPLE = 2000


def paging(**switches):
    admin("POST", "paging", switches)


def people_ids():
    return {str(p["id"]) for p in admin("GET", "people")["people"]}


def scan(sql="SELECT id FROM people", db=DB):
    rc, out, err, _ = psql(sql, db=db)
    return rc, out.split("\n") if out else [], err


def list_requests():
    return [e for e in log() if e["method"] == "GET" and e["path"] == "/api/people"]


def check_scan(name, **switches):
    """Scan under the switches; every record that existed throughout, once."""
    reset(people=PEOPLE)
    paging(**switches)
    before = people_ids()
    rc, ids, err = scan()
    after = people_ids()
    churned = admin("GET", "paging")["churned"]
    created = set(churned["created"])
    throughout = before & after
    got = set(ids)
    c.check(f"{name}: no error", rc == 0, err[:300])
    c.check(f"{name}: none twice", len(ids) == len(got),
            f"{len(ids) - len(got)} duplicates")
    c.check(f"{name}: none missing", throughout <= got,
            f"{len(throughout - got)} of {len(throughout)} missing, e.g. "
            f"{sorted(throughout - got)[:5]}")
    c.check(f"{name}: nothing that never existed", got <= before | created,
            sorted(got - before - created)[:5])
    return list_requests()


make_db(DB)

# === a static list: overlapping offset pages, in flight together, no cursor
reqs = check_scan("static list, defaults")
offsets = sorted(int(re.search(r"offset=(\d+)", e["query"]).group(1))
                 for e in reqs if "offset=" in e["query"])
c.check("static list: the first page, then overlapping offset pages (step 95 of 100) "
        "to the first short one", offsets == list(range(95, PEOPLE, 95)), offsets)
c.check("static list: no cursor request after the first page",
        not any("next=" in e["query"] for e in reqs), [e["query"] for e in reqs][:3])

# === churn under every cursor kind and order
for cursor in ("offset", "keyset"):
    for order in ("oldest", "newest"):
        for every, create, delete in ((3, 2, 2), (1, 3, 3)):
            check_scan(f"{cursor} cursor, {order} first, churn {create}+/{delete}- "
                       f"every {every} request(s)", cursor=cursor, order=order,
                       churn={"every": every, "create": create, "delete": delete,
                              "seed": every * 7 + create})

# === deletes only, at the end of the list, where offsets land past the end
check_scan("deletes only", churn={"every": 2, "create": 0, "delete": 5, "seed": 5})
check_scan("creates only, newest first", order="newest",
           churn={"every": 1, "create": 7, "delete": 0, "seed": 6})

# === offsets the API will not serve: the cursor takes over, skipping ids
for status in (400, 422):
    reqs = check_scan(f"offset beyond 500 refused with {status}", max_offset=500,
                      offset_status=status)
    c.check(f"offset refused with {status}: the scan followed the cursor instead",
            any("next=" in e["query"] for e in reqs) and
            any(e["status"] == status for e in reqs))
    # the cursor takes over: an API that refuses deep offsets pages by keyset
    check_scan(f"offset beyond 500 refused with {status}, keyset cursor, with churn",
               max_offset=500, offset_status=status, cursor="keyset",
               churn={"every": 2, "create": 1, "delete": 1, "seed": status})
reqs = check_scan("offset ignored", offset="ignored")
c.check("offset ignored: the scan followed the cursor instead",
        any("next=" in e["query"] for e in reqs))
check_scan("offset ignored, keyset cursor, churn", offset="ignored", cursor="keyset",
           churn={"every": 2, "create": 2, "delete": 2, "seed": 9})

# === scan_concurrency 1 pages the same way, one page at a time
psql("ALTER FOREIGN TABLE people OPTIONS (ADD scan_concurrency '1')", db=DB)
check_scan("scan_concurrency 1, offset cursor, churn",
           churn={"every": 1, "create": 2, "delete": 2, "seed": 11})
psql("ALTER FOREIGN TABLE people OPTIONS (DROP scan_concurrency)", db=DB)

# === a LIMIT needs no wave of pages it will not read
reset(people=PEOPLE)
rc, ids, err = scan("SELECT id FROM people LIMIT 150")
c.check("LIMIT 150: 150 rows", rc == 0 and len(ids) == 150, err)
c.check("LIMIT 150: two requests, not a wave of eight", len(list_requests()) == 2,
        [e["query"] for e in list_requests()])

# === EXPLAIN ANALYZE says what a repair cost
reset(people=PEOPLE)
paging(max_offset=500)
rc, out, err, _ = psql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                       "SELECT id FROM people", db=DB)
c.check("EXPLAIN ANALYZE shows the repair",
        rc == 0 and re.search(r"Rollout Repairs: 1\b", out) and
        re.search(r"Rollout Duplicates Skipped: \d+", out), out + err)

c.finish()

"""The README's "Collections" table says what src/crm_endpoints.h (the
OpenAPI snapshot) says: one row per collection, its table name as
IMPORT FOREIGN SCHEMA makes it (src/crm_tables.h), which of list, by id,
INSERT, UPDATE and DELETE it has, its other routes, and the query parameter
its list requires.  The "Incremental refresh" recipe has the SQL blocks
test/test_incremental.py runs as written, in an order that never loses an
event.  Runs outside the cluster; needs only python3."""
import os
import re
import sys

from lib import readme_block

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def endpoints():
    """{resource: (routes, required, list_is_array, create_is_array)}."""
    rows = re.findall(r'\{"([^"]+)", ([A-Z_ |0]+), (NULL|"[^"]*"), (true|false), (true|false)\}',
                      read("src/crm_endpoints.h"))
    return {r: ({name[len("ROLLOUT_ROUTE_"):] for name in routes.split(" | ") if name != "0"},
                None if req == "NULL" else req.strip('"'), arr == "true", carr == "true")
            for r, routes, req, arr, carr in rows}


def tables():
    """{resource: table name} of IMPORT FOREIGN SCHEMA."""
    found = dict((r, t) for t, r in re.findall(r'\{"([a-z_]+)", "([^"]+)", \w+_columns',
                                               read("src/crm_tables.h")))
    found["people"] = "people"
    return found


def readme_rows():
    text = read("README.md")
    start = text.index("#### Collections")
    rows = {}
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[1].startswith("`"):
            rows[cells[1].strip("`")] = cells
    return rows


# the blocks test/test_incremental.py takes from the README, by what they hold
INCREMENTAL = ("CREATE TABLE crm_events", "CREATE FUNCTION crm_receive_webhook",
               "CREATE PROCEDURE crm_apply_events",
               "cron.schedule_in_database('crm-apply-events'",
               "CREATE TABLE crm_user_events", "CREATE FUNCTION crm_receive_user_webhook",
               "CREATE PROCEDURE crm_apply_user_events",
               "cron.schedule_in_database('crm-apply-user-events'")


def check_incremental(check):
    """The recipe's blocks exist once each; the receiver verifies before it
    stores; the job deletes only the events it read, after the MERGE."""
    blocks = {}
    for marker in INCREMENTAL:
        try:
            blocks[marker] = readme_block("### Incremental refresh", marker)
        except (ValueError, RuntimeError) as exc:
            check(f"incremental refresh: block {marker!r}", False, exc)
    if len(blocks) < len(INCREMENTAL):
        return
    receiver = blocks["CREATE FUNCTION crm_receive_webhook"]
    check("incremental refresh: the receiver verifies the signature before it stores",
          0 <= receiver.find("rollout_fdw_verify_webhook(") < receiver.find("INSERT INTO"))
    job = blocks["CREATE PROCEDURE crm_apply_events"]
    check("incremental refresh: one MERGE reading the ids, then the events it read deleted",
          job.count("MERGE INTO") == 1 and "WHERE id = ANY (changed)" in job and
          job.index("MERGE INTO") < job.index("DELETE FROM crm_events WHERE event_id = ANY"))
    job = blocks["CREATE PROCEDURE crm_apply_user_events"]
    check("incremental refresh per user: the join names the user, the credential and the id",
          job.count("MERGE INTO") == 1 and all(
              cond in job for cond in ("p.rollout_user_id = e.user_id",
                                       "p.rollout_credential_id = e.credential_id",
                                       "p.id = e.id")) and
          job.index("MERGE INTO") <
          job.index("DELETE FROM crm_user_events WHERE event_id = ANY"))


def main():
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))

    eps, names, rows = endpoints(), tables(), readme_rows()
    check("crm_endpoints.h parsed", len(eps) >= 16, len(eps))
    check("one README row per collection", set(rows) == set(eps),
          sorted(set(rows) ^ set(eps)))
    for resource, (routes, required, list_array, create_array) in eps.items():
        cells = rows.get(resource)
        if cells is None:
            continue
        table, _, lst, get, ins, upd, dele, other, req = cells
        check(f"{resource}: table name", table == f"`{names.get(resource)}`", table)
        for cell, route in ((lst, "LIST"), (get, "GET"), (ins, "CREATE"), (upd, "UPDATE"),
                            (dele, "DELETE")):
            says = cell.split(":")[0].split()[0]
            check(f"{resource}: {route} is {'yes' if route in routes else 'no'}",
                  says == ("yes" if route in routes else "no"), cell)
        check(f"{resource}: bare-array list", ("bare array" in lst) == list_array, lst)
        check(f"{resource}: POST answers [record]", ("`[record]`" in ins) == create_array, ins)
        check(f"{resource}: mergeTags", ("mergeTags" in other) == ("MERGE_TAGS" in routes), other)
        check(f"{resource}: tags routes", ("tags/apply" in other and "tags/delete" in other)
              == ("TAGS" in routes), other)
        check(f"{resource}: member routes", (f"/{resource}/{{id}}/people" in other)
              == ("MEMBERS" in routes), other)
        check(f"{resource}: required parameter",
              (req == "—") if required is None else req.startswith(f"`{required}`"), req)
    check_incremental(check)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

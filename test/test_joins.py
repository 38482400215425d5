"""Joins of app tables with the CRM through list filters: 5 app users with
people by e-mail address (email=) and by phone number (phone=), 5 contacts
with their text messages (personId=), against an emulator holding 2000
people.  Under each matching switch of the emulator's email= (exact,
case-insensitive) and phone= (exact, digits) the join's rows equal the same
join done locally on a full copy of the CRM (the pushed condition is always
rechecked), and EXPLAIN ANALYZE and the emulator's log count one request
per app user, not a scan of the CRM.
Also: a generic plan of a prepared statement pushes its parameter; a
text-message scan without personId sends nothing."""

import json

from lib import Checker, admin, log, make_db, psql, psql_script, reset, sql_out

DB = "rollout_joins"
PEOPLE = 2000
USERS = 5
c = Checker()


def sql(text):
    return sql_out(text, DB)


def people_requests():
    return sum(1 for r in log() if r["method"] == "GET" and r["path"] == "/api/people")


def analyze(query):
    """EXPLAIN ANALYZE's Rollout Requests of the foreign scan, and its plan."""
    plan = json.loads(sql("EXPLAIN (ANALYZE, FORMAT JSON) " + query))[0]["Plan"]
    found = []

    def walk(node):
        if node.get("Node Type") == "Foreign Scan":
            found.append(node)
        for child in node.get("Plans", []):
            walk(child)
    walk(plan)
    return (found[0].get("Rollout Requests") if len(found) == 1 else None), \
        json.dumps(plan)


reset(people=PEOPLE)
make_db(DB)
rc, _, err, _ = psql_script("""
CREATE FOREIGN TABLE crm_people (id text, first_name text,
  email_addresses text[] OPTIONS (field 'emails[*].value'),
  phone_numbers text[] OPTIONS (field 'phones[*].value'))
  SERVER rollout OPTIONS (resource 'people');
CREATE FOREIGN TABLE text_messages (id text, person_id text, message text)
  SERVER rollout OPTIONS (resource 'textMessages');
CREATE TABLE local_people AS
  SELECT id, email_addresses, phone_numbers FROM crm_people;
CREATE TABLE app_users (email text);
CREATE TABLE app_phones (phone text);
""", DB)
if rc != 0:
    raise SystemExit(err)
c.check("the CRM copied: 2000 people", sql("SELECT count(*) FROM local_people") == str(PEOPLE))

# 5 e-mail addresses: two as stored, a second (work) address, one in other
# letter case (the API may match it; SQL does not), one nobody has; read
# from the records' emails and phones (jsonb)
PEOPLE_JSON = """(SELECT id,
  ARRAY(SELECT e->>'value' FROM jsonb_array_elements(emails) e) AS email_addresses,
  ARRAY(SELECT e->>'value' FROM jsonb_array_elements(phones) e) AS phone_numbers
  FROM people_json) j"""
sql("CREATE FOREIGN TABLE people_json (id text, emails jsonb, phones jsonb) "
    "SERVER rollout OPTIONS (resource 'people')")
sql(f"CREATE TABLE known_people AS SELECT * FROM {PEOPLE_JSON}")
emails = sql("""
SELECT string_agg(e, '|' ORDER BY n) FROM (
  SELECT email_addresses[1] AS e, 1 AS n FROM (SELECT * FROM known_people
    WHERE cardinality(email_addresses) >= 1 ORDER BY id::int LIMIT 1 OFFSET 100) s
  UNION ALL SELECT email_addresses[1], 2 FROM (SELECT * FROM known_people
    WHERE cardinality(email_addresses) >= 1 ORDER BY id::int LIMIT 1 OFFSET 1500) s
  UNION ALL SELECT email_addresses[2], 3 FROM (SELECT * FROM known_people
    WHERE cardinality(email_addresses) = 2 ORDER BY id::int DESC LIMIT 1) s
  UNION ALL SELECT upper(email_addresses[1]), 4 FROM (SELECT * FROM known_people
    WHERE cardinality(email_addresses) >= 1 ORDER BY id::int LIMIT 1 OFFSET 222) s
  UNION ALL SELECT 'nobody@example.com', 5) s""").split("|")
# 5 phone numbers: two as stored, a formatted work number as stored, its
# digits alone (the API's normalized form), one with dashes
phones = sql("""
SELECT string_agg(p, '|' ORDER BY n) FROM (
  SELECT phone_numbers[1] AS p, 1 AS n FROM (SELECT * FROM known_people
    WHERE cardinality(phone_numbers) >= 1 ORDER BY id::int LIMIT 1 OFFSET 333) s
  UNION ALL SELECT phone_numbers[1], 2 FROM (SELECT * FROM known_people
    WHERE cardinality(phone_numbers) >= 1 ORDER BY id::int DESC LIMIT 1) s
  UNION ALL SELECT phone_numbers[2], 3 FROM (SELECT * FROM known_people
    WHERE cardinality(phone_numbers) = 2 ORDER BY id::int LIMIT 1 OFFSET 3) s
  UNION ALL SELECT regexp_replace(phone_numbers[2], '[^0-9]', '', 'g'), 4
    FROM (SELECT * FROM known_people
    WHERE cardinality(phone_numbers) = 2 ORDER BY id::int LIMIT 1 OFFSET 4) s
  UNION ALL SELECT regexp_replace(phone_numbers[1], '^(...)(...)', '\\1-\\2-'), 5
    FROM (SELECT * FROM known_people
    WHERE cardinality(phone_numbers) >= 1 ORDER BY id::int LIMIT 1 OFFSET 444) s) s""").split("|")
c.check("5 app e-mail addresses and 5 phone numbers",
        len(emails) == USERS and len(phones) == USERS and all(emails + phones),
        (emails, phones))
print(f"# app e-mail addresses {emails}; phone numbers {phones}")
sql("INSERT INTO app_users VALUES " + ", ".join(f"('{e}')" for e in emails))
sql("INSERT INTO app_phones VALUES " + ", ".join(f"('{p}')" for p in phones))
sql("ANALYZE app_users; ANALYZE app_phones")

JOINS = {
    "email": ("email_match", ("exact", "case-insensitive"),
              "SELECT u.email, p.id FROM app_users u JOIN {t} p "
              "ON u.email = ANY (p.email_addresses) ORDER BY 1, 2"),
    "phone": ("phone_match", ("exact", "digits"),
              "SELECT u.phone, p.id FROM app_phones u JOIN {t} p "
              "ON p.phone_numbers @> ARRAY[u.phone] ORDER BY 1, 2"),
}
figures = {}
for name, (switch, modes, query) in JOINS.items():
    expected = sql(query.format(t="local_people"))
    c.check(f"{name}: the local join finds 3 or more", len(expected.splitlines()) >= 3,
            expected)
    for mode in modes:
        admin("POST", "paging", {switch: mode})
        admin("DELETE", "log")
        got = sql(query.format(t="crm_people"))
        sent = people_requests()
        c.check(f"{name} join, {switch} {mode}: the rows of the local join", got == expected,
                f"\n{got}\n!=\n{expected}")
        c.check(f"{name} join, {switch} {mode}: {USERS} requests", sent == USERS, sent)
        requests, plan = analyze(query.format(t="crm_people"))
        c.check(f"{name} join, {switch} {mode}: EXPLAIN ANALYZE counts {USERS} requests",
                requests == USERS, plan)
        figures[(name, mode)] = requests
    admin("POST", "paging", {})

# a generic plan pushes its parameter: one request per execution
admin("DELETE", "log")
rc, out, err, _ = psql_script(f"""
SET plan_cache_mode = force_generic_plan;
PREPARE by_email(text) AS SELECT id FROM crm_people WHERE $1 = ANY (email_addresses);
""" + "".join(f"EXECUTE by_email('{emails[k % 3]}');\n" for k in range(6)), DB)
c.check("generic plan: 6 executions, 6 requests, each with its email=",
        rc == 0 and people_requests() == 6 and
        all("email=" in (r.get("query") or "") for r in log() if r["path"] == "/api/people"),
        (rc, err, people_requests()))

# text messages of 5 contacts: one list per contact
sql("CREATE TABLE contacts AS SELECT id AS person_id FROM local_people "
    "WHERE id IN ('11', '12', '13', '14', '15')")
sql("ANALYZE contacts")
admin("DELETE", "log")
requests, plan = analyze("SELECT t.id FROM contacts c JOIN text_messages t "
                         "ON t.person_id = c.person_id")
c.check(f"text messages of {USERS} contacts: {USERS} requests", requests == USERS, plan)
c.check("each with its personId",
        sorted(r["query"] for r in log() if r["path"] == "/api/textMessages") ==
        sorted(f"limit=100&personId={k}" for k in range(11, 16)),
        [r.get("query") for r in log()])
admin("DELETE", "log")
rc, _, err, _ = psql("SELECT * FROM text_messages", DB)
c.check("text messages without personId: refused, nothing sent",
        rc != 0 and "personId" in err and len(log()) == 0, (rc, err, log()))

print("# requests of the joins of 5 app users with 2000 CRM people: " +
      ", ".join(f"{n} ({m}) {r}" for (n, m), r in figures.items()))
psql(f"DROP DATABASE IF EXISTS {DB}")
c.finish()

-- ===================================================================
-- joins: the list filters that meet app tables with the CRM.  personId
-- (which GET /textMessages requires: refused when planned without it),
-- e-mail addresses and phone numbers of people; one list per value and
-- per outer row of a nested loop, every condition rechecked locally
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc

CREATE FOREIGN TABLE text_messages (id text, person_id text, message text)
  SERVER rollout OPTIONS (resource 'textMessages');
CREATE TABLE contacts (person_id text, label text);
INSERT INTO contacts VALUES ('11', 'a'), ('12', 'b'), ('13', 'c'), ('999', 'd');
ANALYZE contacts;

-- === no condition on person_id: refused when planned, nothing sent
\! test/emu log-clear
SELECT error_text('SELECT * FROM text_messages');
SELECT error_text('EXPLAIN SELECT * FROM text_messages WHERE message LIKE ''H%''');
SELECT error_text('SELECT * FROM text_messages WHERE person_id LIKE ''1%''');
\! test/emu count GET '^/api/textMessages'
-- a GET by id needs no personId
SELECT count(*) AS by_id FROM text_messages
WHERE id = (SELECT min(id) FROM text_messages WHERE person_id = '11');

-- === the table need not be the query's first: EXPLAIN VERBOSE names what
-- was pushed whatever its range table entry
SELECT count(*) AS buyer_pairs FROM contacts c, people p
WHERE 'buyer' = ANY (p.tags) AND c.label = 'a';
SELECT count(*) AS buyers FROM (SELECT id FROM people WHERE 'buyer' = ANY (tags)) s;

-- === person_id = x: personId=x
EXPLAIN (COSTS OFF, VERBOSE)
SELECT id, message FROM text_messages WHERE person_id = '11';
\! test/emu log-clear
SELECT id, person_id, message FROM text_messages WHERE person_id = '11' ORDER BY id;
\! test/emu queries '^/api/textMessages$'

-- === person_id = ANY / IN: one list per distinct value, rows once
EXPLAIN (COSTS OFF, VERBOSE)
SELECT id FROM text_messages WHERE person_id IN ('11', '12', '13');
\! test/emu log-clear
SELECT id, person_id FROM text_messages
WHERE person_id IN ('11', '12', '13', '12', '999') ORDER BY id;
\! test/emu queries '^/api/textMessages$' | sort
-- an OR of equalities is the same
SELECT count(*) AS either FROM text_messages
WHERE person_id = '11' OR person_id = '12';
-- no value: no request
\! test/emu log-clear
SELECT count(*) AS none FROM text_messages WHERE person_id = ANY ('{}'::text[]);
SELECT count(*) AS none FROM text_messages WHERE person_id = ANY (ARRAY[NULL]::text[]);
\! test/emu count GET '^/api/textMessages'

-- === a join on person_id: a list per outer row
EXPLAIN (COSTS OFF, VERBOSE)
SELECT c.label, t.id FROM contacts c JOIN text_messages t ON t.person_id = c.person_id;
\! test/emu log-clear
SELECT c.label, t.id, t.person_id
FROM contacts c JOIN text_messages t ON t.person_id = c.person_id ORDER BY t.id;
\! test/emu count GET '^/api/textMessages$'
-- with people on the outer side (a foreign table too)
SELECT p.first_name, t.id FROM people p JOIN text_messages t ON t.person_id = p.id
WHERE p.id IN ('11', '12') ORDER BY t.id;
-- a left join keeps the people without messages
SELECT c.label, count(t.id) AS messages
FROM contacts c LEFT JOIN text_messages t ON t.person_id = c.person_id
GROUP BY c.label ORDER BY c.label;

-- === prepared, generic plans: parameters are pushed
SET plan_cache_mode = force_generic_plan;
PREPARE msgs(text) AS SELECT count(*) FROM text_messages WHERE person_id = $1;
EXPLAIN (COSTS OFF) EXECUTE msgs('11');
EXECUTE msgs('11');
EXECUTE msgs('12');
EXECUTE msgs('13');
EXECUTE msgs('11');
EXECUTE msgs('12');
EXECUTE msgs(NULL);
PREPARE msgs_any(text[]) AS
  SELECT count(*) FROM text_messages WHERE person_id = ANY ($1);
EXPLAIN (COSTS OFF) EXECUTE msgs_any('{11,12}');
EXECUTE msgs_any('{11,12,13}');
DEALLOCATE msgs;
DEALLOCATE msgs_any;
RESET plan_cache_mode;

-- === people by e-mail address and phone number (wildcard field paths)
CREATE FOREIGN TABLE crm_people (id text, first_name text,
  email_addresses text[] OPTIONS (field 'emails[*].value'),
  phone_numbers text[] OPTIONS (field 'phones[*].value'))
  SERVER rollout OPTIONS (resource 'people');
CREATE TABLE app_users (email text, phone text);
INSERT INTO app_users VALUES ('isabella.martinez@example.com', '7185550166'),
  ('Nobody@Example.com', '(212) 555-0100'), ('a@b.com', NULL);
ANALYZE app_users;

-- constants: 'x' = ANY (col), col @> ARRAY[x], col && ARRAY[...], OR
EXPLAIN (COSTS OFF, VERBOSE)
SELECT id FROM crm_people WHERE 'a@b.com' = ANY (email_addresses);
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people WHERE email_addresses @> ARRAY['a@b.com', 'c@d.com'];
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people WHERE ARRAY['a@b.com'] <@ email_addresses;
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people WHERE email_addresses && ARRAY['a@b.com', 'c@d.com'];
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people
WHERE 'a@b.com' = ANY (email_addresses) OR 'c@d.com' = ANY (email_addresses);
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people WHERE phone_numbers @> '{7185550166}';
-- one parameter with several values at most: the second stays local
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people WHERE email_addresses && ARRAY['a@b.com', 'c@d.com']
  AND phone_numbers && ARRAY['1', '2'];
-- not a list filter: stays local
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people WHERE email_addresses <@ ARRAY['a@b.com'];
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people WHERE email_addresses @> '{}';
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people WHERE 'a@b.com' = ANY (email_addresses)
  OR 'x' = ANY (phone_numbers);
-- a case-insensitive collation matches more than the API may: local
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2',
  deterministic = false);
EXPLAIN (COSTS OFF)
SELECT id FROM crm_people WHERE 'A@b.com' COLLATE ci = ANY (email_addresses);
DROP COLLATION ci;

-- a join of app users by e-mail: a list per app user, not the whole CRM
EXPLAIN (COSTS OFF, VERBOSE)
SELECT u.email, p.id FROM app_users u JOIN crm_people p
  ON u.email = ANY (p.email_addresses);
\! test/emu log-clear
SELECT u.email, p.id, p.email_addresses FROM app_users u JOIN crm_people p
  ON u.email = ANY (p.email_addresses) ORDER BY 1, 2;
\! test/emu queries '^/api/people$' | sort
-- the same rows as the join done locally
SELECT (SELECT array_agg(u.email || '/' || p.id ORDER BY 1) FROM app_users u
        JOIN crm_people p ON u.email = ANY (p.email_addresses))
  IS NOT DISTINCT FROM
       (SELECT array_agg(u.email || '/' || p.id ORDER BY 1) FROM app_users u
        JOIN crm_people p ON u.email = ANY (p.email_addresses || '{}'))
  AS same_rows;
-- a constant, a second address, and &&
SELECT id FROM crm_people WHERE 'isabella.martinez@example.com' = ANY (email_addresses);
SELECT id, email_addresses FROM crm_people
WHERE email_addresses && (SELECT array_agg(e) FROM (SELECT email_addresses[2] e
  FROM crm_people WHERE cardinality(email_addresses) = 2 ORDER BY id LIMIT 2) s)
ORDER BY id;
-- by phone (a NULL asks nothing)
EXPLAIN (COSTS OFF)
SELECT u.phone, p.id FROM app_users u JOIN crm_people p
  ON p.phone_numbers @> ARRAY[u.phone];
\! test/emu log-clear
SELECT u.phone, p.id FROM app_users u JOIN crm_people p
  ON p.phone_numbers @> ARRAY[u.phone] ORDER BY 1, 2;
\! test/emu queries '^/api/people$' | sort
-- by either: one list per value of the outer row
EXPLAIN (COSTS OFF)
SELECT u.email, p.id FROM app_users u JOIN crm_people p
  ON u.email = ANY (p.email_addresses) OR u.phone = ANY (p.email_addresses);

-- generic plans
SET plan_cache_mode = force_generic_plan;
PREPARE by_email(text) AS
  SELECT id FROM crm_people WHERE $1 = ANY (email_addresses);
EXPLAIN (COSTS OFF) EXECUTE by_email('x');
PREPARE by_emails(text[]) AS
  SELECT id FROM crm_people WHERE email_addresses && $1 ORDER BY id;
EXPLAIN (COSTS OFF) EXECUTE by_emails('{x}');
\! test/emu log-clear
\o /dev/null
EXECUTE by_email('a@b.com');
EXECUTE by_email('a@b.com');
EXECUTE by_email('a@b.com');
EXECUTE by_email('a@b.com');
EXECUTE by_email('a@b.com');
EXECUTE by_email('c@d.com');
\o
\! test/emu queries '^/api/people$'
-- several values: their lists in flight together, each asked once
\! test/emu log-clear
\o /dev/null
EXECUTE by_emails('{a@b.com,c@d.com,a@b.com}');
\o
\! test/emu queries '^/api/people$' | sort
DEALLOCATE by_email;
DEALLOCATE by_emails;
RESET plan_cache_mode;

DROP TABLE app_users, contacts;
DROP FOREIGN TABLE crm_people, text_messages;

\i :abs_srcdir/sql/teardown.inc

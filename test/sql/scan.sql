-- ===================================================================
-- scan: paging, the live-captured person, joins, field mapping,
-- credentials, EXPLAIN
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc

-- === the emulator answers
SELECT count(*) > 0 AS reachable FROM people;

-- === a full scan reads the first page, then overlapping pages by offset
-- (each repeats 2 records of the one before) to the first short one:
-- 25 people, 7 a page
ALTER FOREIGN TABLE people OPTIONS (ADD page_size '7');
\! test/emu log-clear
SELECT count(*) AS people, count(DISTINCT id) AS distinct_ids FROM people;
\! test/emu count GET '^/api/people$'
\! test/emu queries '^/api/people$' | sort
-- an API that ignores offset: the scan follows _metadata.next from the
-- start instead, skipping the records it returned already
-- (one page in flight, so that the log's order is the scan's)
ALTER FOREIGN TABLE people OPTIONS (ADD scan_concurrency '1');
\! test/emu paging '{"offset": "ignored"}'
\! test/emu log-clear
SELECT count(*) AS people, count(DISTINCT id) AS distinct_ids FROM people;
\! test/emu queries '^/api/people$'
\! test/emu paging
ALTER FOREIGN TABLE people OPTIONS (DROP page_size, DROP scan_concurrency);

-- === the person captured live (numeric id, isPrimary 1, unknown keys) reads cleanly
SELECT id, first_name, last_name, tags, created, updated,
       emails->0->>'value' AS email, emails->0->'isPrimary' AS is_primary
FROM people WHERE first_name = 'Isabella';

-- === attrs is the whole record, unknown keys included
SELECT attrs->>'createdVia' AS created_via,
       attrs->'collaborators'->0->>'role' AS role,
       jsonb_typeof(attrs->'id') AS id_type
FROM people WHERE id = '11';

-- === join with a local table, in both directions
CREATE TABLE deals (person_id text, amount numeric);
INSERT INTO deals VALUES ('11', 1000), ('12', 250.5), ('13', 99), ('999', 5);
SELECT d.person_id, p.first_name, p.last_name, d.amount
FROM deals d JOIN people p ON p.id = d.person_id ORDER BY 1;
SELECT d.person_id AS unknown_person
FROM deals d LEFT JOIN people p ON p.id = d.person_id WHERE p.id IS NULL;
SELECT count(*) AS people_without_deals
FROM people p WHERE NOT EXISTS (SELECT 1 FROM deals d WHERE d.person_id = p.id);

-- === column names: exact key, else camelCase; explicit and dotted fields
CREATE FOREIGN TABLE people_fields (
  id bigint,
  "firstName" text,
  last_name text,
  stage_id integer,
  given text OPTIONS (field 'firstName'),
  first_email text OPTIONS (field 'emails.0.value'),
  phone_type text OPTIONS (field 'phones.0.type'),
  lead_role text OPTIONS (field 'collaborators.0.role'),
  no_such text OPTIONS (field 'emails.7.value')
) SERVER rollout;
SELECT * FROM people_fields WHERE id = 11;

-- === local conditions are applied locally, on every page
SELECT count(*) FILTER (WHERE 'buyer' = ANY (tags)) AS buyers,
       count(*) FILTER (WHERE tags IS NULL) AS no_tags
FROM people;

-- === credentials: listed for the mapping, never their data
SELECT id, label, app_key FROM rollout_fdw_credentials('rollout');
SELECT rollout_fdw_credentials('no_such_server');

-- === discovery: several credentials -> an error listing them; then credential_id
CREATE SERVER rollout_multi FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url :'emu_url', auth_url :'emu_url', client_id 'test-client');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout_multi
  OPTIONS (client_secret 'test-secret', user_id 'user-multi');
CREATE FOREIGN TABLE multi_people (id text, first_name text) SERVER rollout_multi;
SELECT count(*) FROM multi_people;
SELECT id, label FROM rollout_fdw_credentials('rollout_multi') ORDER BY id;
ALTER USER MAPPING FOR CURRENT_USER SERVER rollout_multi
  OPTIONS (ADD credential_id 'cred-b');
SELECT count(*) AS cred_b_people FROM multi_people;
-- === no credential at all
ALTER USER MAPPING FOR CURRENT_USER SERVER rollout_multi
  OPTIONS (DROP credential_id, SET user_id 'user-none');
SELECT count(*) FROM multi_people;
DROP SERVER rollout_multi CASCADE;

-- === EXPLAIN shows the request; a plain EXPLAIN sends nothing
\! test/emu log-clear
EXPLAIN (COSTS OFF) SELECT * FROM people;
EXPLAIN (COSTS OFF, VERBOSE) SELECT id FROM people WHERE last_name = 'Brown';
\! test/emu count GET '.'
SELECT explain_analyze('SELECT id FROM people');

DROP FOREIGN TABLE people_fields;
DROP TABLE deals;

\i :abs_srcdir/sql/teardown.inc

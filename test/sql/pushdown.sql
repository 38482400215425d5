-- ===================================================================
-- pushdown: which conditions become requests, and that pushing them
-- never changes a result
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
SET timezone = 'UTC';

-- === id = ANY / IN: a GET by id for each distinct id
EXPLAIN (COSTS OFF, VERBOSE)
SELECT id, first_name FROM people WHERE id IN ('11', '12', '999');
\! test/emu log-clear
SELECT id, first_name FROM people WHERE id IN ('11', '12', '999', '12') ORDER BY id;
\! test/emu paths | sort

-- === tags, email, phone: query parameters of the list request
EXPLAIN (COSTS OFF, VERBOSE)
SELECT id FROM people WHERE 'buyer' = ANY (tags);
\! test/emu log-clear
SELECT count(*) AS buyers FROM people WHERE 'buyer' = ANY (tags);
\! test/emu queries '^/api/people$'
-- the same answer with the condition kept local (no pushdown possible)
SELECT count(*) AS buyers_local FROM people WHERE 'buyer' = ANY (tags || '{}');
-- case-sensitive, like the local check
SELECT count(*) AS upper_buyers FROM people WHERE 'BUYER' = ANY (tags);
CREATE FOREIGN TABLE people_contact (id text, first_name text, emails jsonb,
  phones jsonb) SERVER rollout OPTIONS (resource 'people');
EXPLAIN (COSTS OFF)
SELECT id FROM people_contact
WHERE emails @> '[{"value": "isabella.martinez@example.com"}]';
\! test/emu log-clear
SELECT id, first_name FROM people_contact
WHERE emails @> '[{"value": "isabella.martinez@example.com"}]';
SELECT id, first_name FROM people_contact
WHERE phones @> '[{"value": "7185550166"}]' AND 'new_lead' = ANY (ARRAY['new_lead']);
\! test/emu queries '^/api/people$'
-- other shapes stay local, with the same answer
SELECT count(*) AS local_contains FROM people_contact
WHERE emails @> '[{"type": "home"}]';

-- === prepared statements with a generic plan push parameters too
SET plan_cache_mode = force_generic_plan;
PREPARE by_tag(text) AS SELECT count(*) FROM people WHERE $1 = ANY (tags);
EXPLAIN (COSTS OFF) EXECUTE by_tag('seller');
EXECUTE by_tag('seller');
EXECUTE by_tag('nobody');
PREPARE by_ids(text[]) AS SELECT id FROM people WHERE id = ANY ($1) ORDER BY id;
EXECUTE by_ids('{13,14}');
DEALLOCATE by_tag;
DEALLOCATE by_ids;
RESET plan_cache_mode;

-- === LIMIT: passed on only when it cannot change the answer
EXPLAIN (COSTS OFF) SELECT id FROM people LIMIT 5;
\! test/emu log-clear
SELECT count(*) FROM (SELECT id FROM people LIMIT 5) s;
\! test/emu queries '^/api/people$'
EXPLAIN (COSTS OFF) SELECT id FROM people WHERE 'buyer' = ANY (tags) LIMIT 2 OFFSET 1;
-- a local filter: the request keeps its page size, the answer stays right
EXPLAIN (COSTS OFF) SELECT id FROM people WHERE last_name LIKE 'B%' LIMIT 1;
SELECT count(*) FROM (SELECT id FROM people WHERE last_name LIKE 'B%' LIMIT 3) s;
-- sorting, joins, aggregates need every row
CREATE TABLE deals (person_id text, amount numeric);
INSERT INTO deals VALUES ('11', 1000), ('12', 250.5), ('13', 99), ('999', 5);
EXPLAIN (COSTS OFF) SELECT id FROM people ORDER BY id LIMIT 5;
EXPLAIN (COSTS OFF) SELECT p.id FROM people p JOIN deals d ON d.person_id = p.id LIMIT 1;
SELECT count(*) FROM (SELECT p.id FROM people p, deals d WHERE d.amount > 0 LIMIT 60) s;

-- === joins with local tables: by id per outer row while the outer side is small
CREATE TABLE few (person_id text);
INSERT INTO few SELECT (10 + g)::text FROM generate_series(1, 20) g;
ANALYZE few;
EXPLAIN (COSTS OFF)
SELECT f.person_id, p.first_name FROM few f JOIN people p ON p.id = f.person_id;
\! test/emu log-clear
SELECT count(*) AS joined FROM few f JOIN people p ON p.id = f.person_id;
\! test/emu count GET '^/api/people/'
\! test/emu count GET '^/api/people$'
-- a large outer side: one full scan and a hash join
CREATE TABLE many (person_id text);
INSERT INTO many SELECT (g % 4000)::text FROM generate_series(1, 5000) g;
ANALYZE many;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM many m JOIN people p ON p.id = m.person_id;
SELECT count(*) AS joined FROM many m JOIN people p ON p.id = m.person_id;
-- the same answers whichever plan
SET enable_nestloop = off;
SELECT count(*) AS joined_hash FROM few f JOIN people p ON p.id = f.person_id;
RESET enable_nestloop;

-- === scan_concurrency: overlapping pages by offset in parallel, in order,
-- same rows (each page repeats the last 2 records of the one before)
ALTER FOREIGN TABLE people OPTIONS (ADD page_size '4', ADD scan_concurrency '3');
EXPLAIN (COSTS OFF, VERBOSE) SELECT id FROM people;
\! test/emu log-clear
SELECT count(*) AS all_rows, count(DISTINCT id) AS distinct_ids,
       string_agg(id, ',') = (SELECT string_agg(id::text, ',')
                              FROM generate_series(11, 35) AS id) AS in_order
FROM people;
\! test/emu queries '^/api/people$' | sort
-- a page that shares no record with the one before (the list moved under
-- the scan) is asked again from the last page that did: never a wrong answer
\! test/emu fault '{"path": "^/api/people$", "query": "offset=8", "times": 1, "status": 200, "body": "{\"_metadata\": {\"collection\": \"people\", \"offset\": 8, \"limit\": 4, \"total\": 25, \"next\": null}, \"people\": [{\"id\": 901}, {\"id\": 902}, {\"id\": 903}, {\"id\": 904}]}"}'
\! test/emu log-clear
SELECT count(*) AS all_rows, count(DISTINCT id) AS distinct_ids,
       string_agg(id, ',') = (SELECT string_agg(id::text, ',')
                              FROM generate_series(11, 35) AS id) AS in_order
FROM people;
\! test/emu faults-clear
ALTER FOREIGN TABLE people OPTIONS (DROP page_size, DROP scan_concurrency);

-- === ANALYZE: the row count Rollout reports becomes the estimate
ANALYZE people;
SELECT reltuples FROM pg_class WHERE oid = 'people'::regclass;
SELECT count(*) > 0 AS has_column_stats FROM pg_stats WHERE tablename = 'people';
-- a 25-person CRM is one request: now a full scan beats 20 lookups
EXPLAIN (COSTS OFF)
SELECT f.person_id, p.first_name FROM few f JOIN people p ON p.id = f.person_id;
DROP TABLE few, many, deals;
DROP FOREIGN TABLE people_contact;

\i :abs_srcdir/sql/teardown.inc

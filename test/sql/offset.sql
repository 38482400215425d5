-- ===================================================================
-- offset: a query's OFFSET (and LIMIT) taken over by the scan and sent as
-- the list's offset, where that cannot change the answer; the same rows
-- whatever the API does with the offset
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc

-- the ids of the same query with its LIMIT and OFFSET applied locally
-- (a materialized CTE keeps them above the scan)
CREATE FUNCTION local_window(lim bigint, off bigint, tag text DEFAULT NULL)
RETURNS text[] LANGUAGE sql AS $$
  WITH everyone AS MATERIALIZED (SELECT id, tags FROM people)
  SELECT coalesce(array_agg(id), '{}') FROM (
    SELECT id FROM everyone WHERE tag IS NULL OR tag = ANY (tags)
    LIMIT lim OFFSET off) s
$$;

-- === a plain scan: OFFSET and LIMIT are the request's, no Limit node
EXPLAIN (COSTS OFF) SELECT id, first_name FROM people OFFSET 10 LIMIT 5;
\! test/emu log-clear
SELECT id, first_name FROM people OFFSET 10 LIMIT 5;
\! test/emu queries '^/api/people$'
SELECT array(SELECT id FROM people OFFSET 10 LIMIT 5) = local_window(5, 10)
  AS same_rows;
-- with a pushed filter: the OFFSET stays with PostgreSQL (how the API matches a filter is unknown, section 12)
EXPLAIN (COSTS OFF) SELECT id FROM people WHERE 'buyer' = ANY (tags) LIMIT 2 OFFSET 3;
\! test/emu log-clear
SELECT id FROM people WHERE 'buyer' = ANY (tags) LIMIT 2 OFFSET 3;
\! test/emu queries '^/api/people$'
SELECT array(SELECT id FROM people WHERE 'buyer' = ANY (tags) LIMIT 2 OFFSET 3)
  = local_window(2, 3, 'buyer') AS same_rows;
-- an OFFSET alone: from there to the end; one past the end: no row
\! test/emu log-clear
SELECT id FROM people OFFSET 22;
SELECT count(*) FROM (SELECT id FROM people OFFSET 25) s;
SELECT count(*) FROM (SELECT id FROM people OFFSET 1000 LIMIT 3) s;
\! test/emu queries '^/api/people$'
-- LIMIT 0: no request at all
\! test/emu log-clear
SELECT count(*) FROM (SELECT id FROM people LIMIT 0 OFFSET 5) s;
\! test/emu count GET '^/api/people'
-- FETCH FIRST ... ONLY is a LIMIT too
EXPLAIN (COSTS OFF) SELECT id FROM people OFFSET 4 ROWS FETCH FIRST 2 ROWS ONLY;

-- === more rows than a page: the rest of the list follows the first page
ALTER FOREIGN TABLE people OPTIONS (ADD page_size '4', ADD scan_concurrency '2');
EXPLAIN (COSTS OFF) SELECT id FROM people OFFSET 5 LIMIT 9;
SELECT local_window(9, 5) AS want \gset
\! test/emu log-clear
SELECT array(SELECT id FROM people OFFSET 5 LIMIT 9) = :'want' AS same_rows;
-- pages in flight together are logged in any order
\! test/emu queries '^/api/people$' | LC_ALL=C sort -V
SELECT array(SELECT id FROM people OFFSET 5) = local_window(NULL, 5)
  AS same_rows_to_the_end;
ALTER FOREIGN TABLE people OPTIONS (DROP page_size, DROP scan_concurrency);

-- === parameters: a generic plan evaluates them when the scan starts
SET plan_cache_mode = force_generic_plan;
PREPARE window_of(bigint, bigint) AS SELECT id FROM people LIMIT $1 OFFSET $2;
EXPLAIN (COSTS OFF) EXECUTE window_of(3, 20);
\! test/emu log-clear
EXECUTE window_of(3, 20);
\! test/emu queries '^/api/people$'
-- NULL is no LIMIT, and no OFFSET, as for the Limit node
SELECT array(SELECT id FROM people LIMIT NULL OFFSET 21) = local_window(NULL, 21)
  AS null_limit;
EXECUTE window_of(NULL, 21);
EXECUTE window_of(2, NULL);
-- negative values: the Limit node's errors
SELECT sqlstate_of('EXECUTE window_of(-1, 0)') AS negative_limit,
       sqlstate_of('EXECUTE window_of(1, -1)') AS negative_offset;
SELECT error_text('EXECUTE window_of(1, -1)');
DEALLOCATE window_of;
RESET plan_cache_mode;

-- === the API ignores offset: the page says it starts at 0; the scan walks
-- the list from its start and skips the rows itself
\! test/emu paging '{"offset": "ignored"}'
SELECT local_window(5, 10) AS want \gset
\! test/emu log-clear
SELECT array(SELECT id FROM people OFFSET 10 LIMIT 5) = :'want' AS same_rows;
\! test/emu queries '^/api/people$'
SELECT explain_analyze('SELECT id FROM people OFFSET 10 LIMIT 5');
\! test/emu paging '{"offset": "honoured"}'
-- no _metadata.offset in the answer: not trusted either
\! test/emu fault '{"path": "^/api/people$", "query": "offset=10", "times": 1, "status": 200, "body": "{\"_metadata\": {\"collection\": \"people\", \"limit\": 5, \"total\": 25, \"next\": null}, \"people\": [{\"id\": 901}, {\"id\": 902}, {\"id\": 903}, {\"id\": 904}, {\"id\": 905}]}"}'
SELECT array(SELECT id FROM people OFFSET 10 LIMIT 5) = local_window(5, 10)
  AS same_rows;
\! test/emu faults-clear

-- === the API refuses the offset (400 or 422): the same, by the cursor
\! test/emu paging '{"max_offset": 4, "offset_status": 422}'
SELECT local_window(5, 10) AS want \gset
\! test/emu log-clear
SELECT array(SELECT id FROM people OFFSET 10 LIMIT 5) = :'want' AS same_rows;
\! test/emu queries '^/api/people$'
\! test/emu paging '{"max_offset": 4, "offset_status": 400, "cursor": "keyset"}'
SELECT array(SELECT id FROM people OFFSET 10 LIMIT 5) = local_window(5, 10)
  AS same_rows;
\! test/emu paging '{"max_offset": null, "cursor": "offset"}'
-- a 400 that is not about the offset stays an error
\! test/emu fault '{"path": "^/api/people$", "status": 400, "body": "{\"errorMessage\": \"limit must be a number\"}"}'
SELECT sqlstate_of('SELECT id FROM people OFFSET 10 LIMIT 5') AS bad_request;
\! test/emu faults-clear

-- === where the OFFSET could change the answer, it stays local (Limit node)
-- a local condition
EXPLAIN (COSTS OFF) SELECT id FROM people WHERE last_name LIKE 'B%' OFFSET 2 LIMIT 1;
SELECT array(SELECT id FROM people WHERE last_name LIKE 'B%' OFFSET 1 LIMIT 2) AS b_names;
-- sorting, grouping, DISTINCT, joins, locking
EXPLAIN (COSTS OFF) SELECT id FROM people ORDER BY id OFFSET 2 LIMIT 1;
EXPLAIN (COSTS OFF) SELECT DISTINCT last_name FROM people OFFSET 2 LIMIT 1;
EXPLAIN (COSTS OFF) SELECT count(*) FROM people OFFSET 1;
CREATE TABLE deals (person_id text, amount numeric);
INSERT INTO deals VALUES ('11', 1000), ('12', 250.5);
EXPLAIN (COSTS OFF) SELECT p.id FROM people p JOIN deals d ON d.person_id = p.id OFFSET 1;
DROP TABLE deals;
EXPLAIN (COSTS OFF) SELECT id FROM people OFFSET 2 LIMIT 1 FOR UPDATE;
-- a volatile LIMIT
EXPLAIN (COSTS OFF) SELECT id FROM people OFFSET 2 LIMIT (random() * 0 + 1)::int;
-- OFFSET 0: the LIMIT alone is passed on, as the page size
EXPLAIN (COSTS OFF) SELECT id FROM people OFFSET 0 LIMIT 3;
-- by id: no list to page
EXPLAIN (COSTS OFF) SELECT id FROM people WHERE id = '11' OFFSET 1;

-- === inside a subquery, per its own LIMIT and OFFSET; rescanned for each
-- outer row with the outer value as the filter
SELECT t.tag, array(SELECT id FROM people WHERE t.tag = ANY (tags) OFFSET 1 LIMIT 2)
         = local_window(2, 1, t.tag) AS same_rows
FROM (VALUES ('buyer'), ('seller'), ('nobody')) t(tag);

DROP FUNCTION local_window(bigint, bigint, text);

\i :abs_srcdir/sql/teardown.inc

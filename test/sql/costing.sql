-- ===================================================================
-- costing: a list scan costs one request per page of the records it
-- brings, whether or not the table was ANALYZEd; a GET by id costs one
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
\! test/emu reset '{"people": 2000}'

-- the requests a plan is costed at: its total cost in units of one request
CREATE FUNCTION plan_requests(query text) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
  plan json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
  RETURN round((plan -> 0 -> 'Plan' ->> 'Total Cost')::numeric / 100);
END $$;

-- === a table never ANALYZEd is assumed to hold 10,000 records: 100 pages
-- of 100, whatever a local condition keeps of them
SELECT reltuples FROM pg_class WHERE oid = 'people'::regclass;
SELECT plan_requests('SELECT id FROM people') AS all_rows,
       plan_requests($q$SELECT id FROM people WHERE first_name = 'x'$q$) AS local_filter,
       plan_requests($q$SELECT id FROM people WHERE last_name LIKE 'B%'$q$) AS local_like;
-- a pushed filter: the pages of the records it selects
SELECT plan_requests($q$SELECT id FROM people
                        WHERE emails @> '[{"value": "a@b.com"}]'$q$) AS pushed_filter,
       plan_requests($q$SELECT id FROM people
                        WHERE emails @> '[{"value": "a@b.com"}]'
                          AND first_name = 'x'$q$) AS pushed_and_local;
-- a smaller page size: more requests
ALTER FOREIGN TABLE people OPTIONS (ADD page_size '50');
SELECT plan_requests($q$SELECT id FROM people WHERE first_name = 'x'$q$) AS pages_of_50;
ALTER FOREIGN TABLE people OPTIONS (DROP page_size);

-- === a prepared lookup keeps its pushed request: the generic plan (where
-- the value is a parameter, which this filter cannot push) is a full scan,
-- so the plan cache keeps making custom plans, one request each
PREPARE by_email(jsonb) AS SELECT id, first_name FROM people WHERE emails @> $1;
\! test/emu log-clear
EXECUTE by_email('[{"value": "isabella.martinez@example.com"}]');
EXECUTE by_email('[{"value": "isabella.martinez@example.com"}]');
EXECUTE by_email('[{"value": "isabella.martinez@example.com"}]');
EXECUTE by_email('[{"value": "isabella.martinez@example.com"}]');
EXECUTE by_email('[{"value": "isabella.martinez@example.com"}]');
EXECUTE by_email('[{"value": "isabella.martinez@example.com"}]');
EXECUTE by_email('[{"value": "isabella.martinez@example.com"}]');
-- seven executions, seven requests
\! test/emu count GET '^/api/people'
EXPLAIN (COSTS OFF) EXECUTE by_email('[{"value": "isabella.martinez@example.com"}]');
DEALLOCATE by_email;

-- === a join with a local condition on the CRM side still reads by id
-- while the outer side is small, however often it is executed
CREATE TABLE orders (order_id int, customer int, person_id text);
INSERT INTO orders SELECT g, g / 3, (10 + g)::text FROM generate_series(1, 1500) g;
ANALYZE orders;
PREPARE customer_people(int, text) AS
  SELECT o.order_id, p.first_name, p.last_name
  FROM orders o JOIN people p ON p.id = o.person_id
  WHERE o.customer = $1 AND p.last_name LIKE $2 ORDER BY o.order_id;
\! test/emu log-clear
EXECUTE customer_people(1, '%');
EXECUTE customer_people(2, '%');
EXECUTE customer_people(3, '%');
EXECUTE customer_people(4, '%');
EXECUTE customer_people(5, '%');
EXECUTE customer_people(6, '%');
EXECUTE customer_people(7, '%');
-- by id only: three per execution, no list request
\! test/emu count GET '^/api/people/'
\! test/emu count GET '^/api/people$'
EXPLAIN (COSTS OFF) EXECUTE customer_people(8, '%');
DEALLOCATE customer_people;

-- === ANALYZE: the collection's own count replaces the assumption
ANALYZE people;
SELECT reltuples FROM pg_class WHERE oid = 'people'::regclass;
SELECT plan_requests($q$SELECT id FROM people WHERE first_name = 'x'$q$) AS analyzed;

DROP TABLE orders;
DROP FUNCTION plan_requests(text);

\i :abs_srcdir/sql/teardown.inc

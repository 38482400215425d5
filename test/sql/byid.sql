-- ===================================================================
-- byid: WHERE id = constant or parameter -> GET /{resource}/{id}
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc

-- === one request by id, 404 is no row, the id is percent-encoded
\! test/emu log-clear
SELECT id, first_name FROM people WHERE id = '12';
SELECT id FROM people WHERE id = 'nope';
SELECT id FROM people WHERE id = '../credentials';
SELECT id FROM people WHERE id = 'a b/c?d#e&f';
\! test/emu paths

-- === the other conditions are still checked locally
SELECT id FROM people WHERE id = '12' AND first_name = 'nobody';
SELECT id FROM people WHERE id = '12' AND id = '13';

-- === prepared statements: custom and generic plans, NULL parameter
PREPARE by_id(text) AS SELECT id, first_name FROM people WHERE id = $1;
EXECUTE by_id('13');
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE by_id('13');
EXECUTE by_id('14');
EXECUTE by_id(NULL);
RESET plan_cache_mode;
DEALLOCATE by_id;

-- === a parameter from each outer row: one lookup per row
CREATE TABLE deals (person_id text, amount numeric);
INSERT INTO deals VALUES ('11', 1000), ('12', 250.5), ('13', 99), ('999', 5);
\! test/emu log-clear
SELECT d.person_id,
       (SELECT first_name FROM people p WHERE p.id = d.person_id) AS first_name
FROM deals d ORDER BY 1;
\! test/emu count GET '^/api/people/'
\! test/emu count GET '^/api/people$'

-- === a numeric id column compares numerically and asks by its text
CREATE FOREIGN TABLE people_num (id bigint, first_name text)
  SERVER rollout OPTIONS (resource 'people');
SELECT * FROM people_num WHERE id = 11;
EXPLAIN (COSTS OFF) SELECT * FROM people_num WHERE id = 11;
EXPLAIN (COSTS OFF) SELECT * FROM people WHERE id = '11' OR id = '12';

-- === a record by id that is not an object is a protocol error
\! test/emu fault '{"path": "^/api/people/12$", "status": 200, "body": "[1, 2]"}'
SELECT id FROM people WHERE id = '12';
\! test/emu faults-clear

DROP FOREIGN TABLE people_num;
DROP TABLE deals;

\i :abs_srcdir/sql/teardown.inc

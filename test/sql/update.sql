-- ===================================================================
-- update: UPDATE -> PUT /people/{id} with the assigned columns,
-- DELETE -> DELETE /people/{id}, RETURNING, the id as row identity
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
SET timezone = 'UTC';
CREATE FOREIGN TABLE people_w (
  id text,
  first_name text,
  last_name text,
  stage text,
  tags text[],
  average_price numeric,
  consent_email boolean OPTIONS (field 'communicationsConsent.email'),
  attrs jsonb OPTIONS (field '*')
) SERVER rollout OPTIONS (resource 'people');

-- === only the assigned columns are sent; NULL clears a field
\! test/emu log-clear
UPDATE people_w SET stage = 'Hot', tags = '{a,b}', average_price = NULL
WHERE id = '12';
\! test/emu bodies PUT '.'
SELECT id, stage, tags, average_price FROM people_w WHERE id = '12';

-- === RETURNING comes from the API's answer
UPDATE people_w SET last_name = 'Hernández' WHERE id = '12'
RETURNING id, first_name, last_name, stage;

-- === any WHERE: the rows are found by the scan first
\! test/emu log-clear
UPDATE people_w SET stage = 'Cold' WHERE 'seller' = ANY (tags);
\! test/emu count PUT '.'
SELECT count(*) AS sellers, count(*) FILTER (WHERE stage = 'Cold') AS cold
FROM people_w WHERE 'seller' = ANY (tags);

-- === a nested field is written as a nested object
\! test/emu log-clear
UPDATE people_w SET consent_email = false WHERE id = '13';
\! test/emu bodies PUT '.'

-- === the id cannot change; a table without id cannot UPDATE or DELETE
UPDATE people_w SET id = '1' WHERE id = '12';
CREATE FOREIGN TABLE people_noid (first_name text) SERVER rollout;
UPDATE people_noid SET first_name = 'x';
DELETE FROM people_noid;
DROP FOREIGN TABLE people_noid;

-- === an UPDATE of a record gone since the scan updates nothing
\! test/emu fault '{"method": "PUT", "status": 404, "times": 1}'
UPDATE people_w SET stage = 'Gone' WHERE id = '14' RETURNING id;
\! test/emu faults-clear

-- === DELETE by id, by any WHERE, with RETURNING (read before deleting)
\! test/emu log-clear
DELETE FROM people_w WHERE id = '12';
DELETE FROM people_w WHERE last_name LIKE 'B%' RETURNING id, first_name, last_name;
\! test/emu paths
SELECT count(*) AS left_after_delete FROM people_w;
DELETE FROM people_w WHERE id = '12';

-- === EXPLAIN names the requests
EXPLAIN (COSTS OFF) UPDATE people_w SET stage = 'x' WHERE id = '11';
EXPLAIN (COSTS OFF) DELETE FROM people_w WHERE stage = 'x';
EXPLAIN (COSTS OFF) DELETE FROM people_w WHERE id = '11' RETURNING id;

-- === API errors on writes are classified like reads
\! test/emu fault '{"method": "PUT", "status": 400, "body": "{\"errorMessage\": \"stage is unknown\"}"}'
UPDATE people_w SET stage = 'Nope' WHERE id = '11';
\! test/emu faults-clear

-- === AFTER ROW triggers: UPDATE's NEW is the record Rollout answered (it
-- === recomputes name), DELETE's OLD the record as it was
\! test/emu reset
CREATE TABLE trigger_log (op text, id text, first_name text, stage text,
                          has_created boolean);
CREATE FOREIGN TABLE people_named (id text, first_name text, last_name text,
                                   name text, stage text)
  SERVER rollout OPTIONS (resource 'people');
CREATE FUNCTION log_named() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO trigger_log VALUES (TG_OP, OLD.id, OLD.name, OLD.stage, NULL);
    RETURN OLD;
  END IF;
  INSERT INTO trigger_log VALUES (TG_OP, NEW.id, NEW.name, NEW.stage, NULL);
  RETURN NEW;
END $$;
CREATE TRIGGER people_named_after AFTER UPDATE OR DELETE ON people_named
  FOR EACH ROW EXECUTE FUNCTION log_named();
TRUNCATE trigger_log;
\! test/emu log-clear
UPDATE people_named SET first_name = 'Augusta' WHERE id = '12';
DELETE FROM people_named WHERE id = '13';
SELECT op, id, first_name AS name, stage FROM trigger_log ORDER BY op;
\! test/emu paths
EXPLAIN (COSTS OFF) DELETE FROM people_named WHERE id = '14';
DROP FOREIGN TABLE people_named;

-- === a field '*' value carrying the row's own id (read back with the
-- === record) is sent without it; another id is refused, nothing sent
\! test/emu log-clear
UPDATE people_w SET attrs = attrs || '{"jobTitle": "Chef"}' WHERE id = '14';
UPDATE people_w SET attrs = attrs || '{"id": "15"}' WHERE id = '14';
UPDATE people_w SET attrs = '{"id": null}' WHERE id = '14';
\! test/emu key PUT '.' id
\! test/emu key PUT '.' jobTitle
SELECT id, attrs->>'jobTitle' AS job_title FROM people_w WHERE id = '14';
DROP FOREIGN TABLE people_w;
DROP TABLE trigger_log;
DROP FUNCTION log_named();

\i :abs_srcdir/sql/teardown.inc

-- ===================================================================
-- insert: INSERT -> POST /people, RETURNING from the 201 answer,
-- SQL values -> JSON, batches, API errors
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
  emails jsonb,
  average_price numeric,
  average_beds numeric,
  birthday date,
  last_activity timestamptz,
  consent_email boolean OPTIONS (field 'communicationsConsent.email'),
  consent_text boolean OPTIONS (field 'communicationsConsent.text'),
  created timestamptz,
  attrs jsonb OPTIONS (field '*')
) SERVER rollout OPTIONS (resource 'people');

-- === one row: the body holds the non-NULL columns through their fields
\! test/emu log-clear
INSERT INTO people_w (first_name, last_name, tags, emails, average_price,
                      average_beds, birthday, last_activity, consent_email,
                      consent_text)
VALUES ('Ada', 'Lovelace', '{vip,"new lead"}',
        '[{"value": "ada@example.com", "type": "work", "isPrimary": true}]',
        350000.50, 3, '1815-12-10', '2025-10-22 17:33:47.25+02', true, false);
\! test/emu bodies POST '^/api/people$'

-- === RETURNING shows what the API answered: the new id, defaults
INSERT INTO people_w (first_name, last_name)
VALUES ('Grace', 'Hopper')
RETURNING id, first_name, stage, tags, created IS NOT NULL AS has_created;
SELECT id, first_name, last_name, stage FROM people_w WHERE id = '37';

-- === attrs (field '*') adds keys; the columns win over it
\! test/emu log-clear
INSERT INTO people_w (first_name, last_name, attrs)
VALUES ('Alan', 'Turing', '{"jobTitle": "Mathematician", "firstName": "ignored", "source": "SQL"}')
RETURNING id, attrs->>'jobTitle' AS job_title, first_name;
\! test/emu bodies POST '^/api/people$'

-- === the id is the CRM's to assign
INSERT INTO people_w (id, first_name, last_name) VALUES ('99', 'x', 'y');

-- === values JSON cannot hold: an error, and nothing sent
\! test/emu log-clear
INSERT INTO people_w (first_name, last_name, average_price) VALUES ('N', 'aN', 'NaN');
INSERT INTO people_w (first_name, last_name, last_activity) VALUES ('I', 'nf', 'infinity');
INSERT INTO people_w (first_name, last_name, attrs) VALUES ('A', 'rr', '[1, 2]');
\! test/emu count POST '.'

-- === the API's refusal: 400, with its errorMessage
INSERT INTO people_w (first_name) VALUES ('NoLastName');
SELECT sqlstate_of($$INSERT INTO people_w (first_name) VALUES ('NoLastName')$$);

-- === INSERT ... SELECT goes in batches, each row created once
\! test/emu log-clear
EXPLAIN (COSTS OFF)
INSERT INTO people_w (first_name, last_name)
SELECT 'Batch', 'Row ' || g FROM generate_series(1, 25) g;
INSERT INTO people_w (first_name, last_name)
SELECT 'Batch', 'Row ' || g FROM generate_series(1, 25) g;
\! test/emu count POST '^/api/people$'
SELECT count(*) AS batch_rows, count(DISTINCT last_name) AS distinct_rows
FROM people_w WHERE first_name = 'Batch';

-- === COPY ... FROM goes in batches too, from PostgreSQL 16 on (15 hands a
-- === foreign table COPY's rows one at a time): at 200 ms an answer, more
-- === than one POST is in flight at once exactly where the version batches
\! test/emu log-clear
\! test/emu latency 200
COPY people_w (first_name, last_name) FROM STDIN;
Copy	Row 1
Copy	Row 2
Copy	Row 3
Copy	Row 4
Copy	Row 5
Copy	Row 6
\.
\! test/emu latency 0
\set inflight `test/emu overlap POST '^/api/people$'`
SELECT (:inflight > 1) = (current_setting('server_version_num')::int >= 160000)
  AS batched_where_the_version_batches;
\! test/emu count POST '^/api/people$'
SELECT count(*) AS copied, count(DISTINCT last_name) AS distinct_rows
FROM people_w WHERE first_name = 'Copy';

-- === a batch that fails part-way says what it created (no ROLLBACK undoes it)
ALTER FOREIGN TABLE people_w OPTIONS (ADD batch_size '4');
-- (the rows of a batch are created concurrently: their ids in any order)
SELECT split_part(t, ' | ', 1) AS message,
       split_part(t, ' | ', 2) AS detail,
       regexp_replace(split_part(split_part(t, ' | ', 4), E'\n', 1),
                      'ids: [0-9, ]+', 'ids: <ids>') AS context,
       (SELECT string_agg(id, ', ' ORDER BY id) FROM people_w
        WHERE first_name = 'Partial') =
       (SELECT string_agg(x, ', ' ORDER BY x)
        FROM regexp_split_to_table(substring(t FROM 'ids: ([0-9, ]+)'), ', ') x)
         AS context_lists_the_created_ids
FROM error_text($$INSERT INTO people_w (first_name, last_name)
                  SELECT 'Partial', CASE WHEN g = 3 THEN NULL ELSE 'Row ' || g END
                  FROM generate_series(1, 4) g$$) AS t \gx
SELECT count(*) AS created_anyway FROM people_w WHERE first_name = 'Partial';
ALTER FOREIGN TABLE people_w OPTIONS (DROP batch_size);

-- === writes are not transactional: a ROLLBACK keeps the created person
BEGIN;
INSERT INTO people_w (first_name, last_name) VALUES ('Kept', 'Anyway');
ROLLBACK;
SELECT count(*) AS kept FROM people_w WHERE first_name = 'Kept';

-- === AFTER ROW triggers and WITH CHECK OPTION see the record Rollout
-- === answered: its id and the defaults it filled in (stage 'Lead')
CREATE TABLE trigger_log (op text, id text, first_name text, stage text,
                          has_created boolean);
CREATE FUNCTION log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO trigger_log VALUES (TG_OP, OLD.id, OLD.first_name, OLD.stage,
                                    OLD.created IS NOT NULL);
    RETURN OLD;
  END IF;
  INSERT INTO trigger_log VALUES (TG_OP, NEW.id, NEW.first_name, NEW.stage,
                                  NEW.created IS NOT NULL);
  RETURN NEW;
END $$;
CREATE TRIGGER people_w_after_insert AFTER INSERT ON people_w
  FOR EACH ROW EXECUTE FUNCTION log_row();
INSERT INTO people_w (first_name, last_name) VALUES ('Trig', 'One');
INSERT INTO people_w (first_name, last_name)
SELECT 'Trig', 'Row ' || g FROM generate_series(1, 3) g;
SELECT op, id IS NOT NULL AS has_id, first_name, stage, has_created,
       id IN (SELECT id FROM people_w WHERE first_name = 'Trig') AS id_is_the_records
FROM trigger_log ORDER BY id;
DROP TRIGGER people_w_after_insert ON people_w;
CREATE VIEW leads AS SELECT * FROM people_w WHERE stage = 'Lead'
  WITH CHECK OPTION;
INSERT INTO leads (first_name, last_name) VALUES ('Checked', 'Lead');
DROP VIEW leads;

-- === the id in a field '*' value is refused like the id column; a null
-- === id is no id; no other column may write the field id either
\! test/emu log-clear
INSERT INTO people_w (first_name, last_name, attrs)
VALUES ('Id', 'In Attrs', '{"id": "99", "jobTitle": "Forger"}');
INSERT INTO people_w (first_name, last_name, attrs)
VALUES ('Id', 'Null', '{"id": null, "jobTitle": "Honest"}')
RETURNING id <> '99' AS assigned_by_rollout, attrs->>'jobTitle' AS job_title;
CREATE FOREIGN TABLE people_id2 (
  id text,
  crm_id text OPTIONS (field 'id'),
  under_id text OPTIONS (field 'id.inner'),
  first_name text, last_name text
) SERVER rollout OPTIONS (resource 'people');
INSERT INTO people_id2 (crm_id, first_name, last_name) VALUES ('98', 'a', 'b');
INSERT INTO people_id2 (under_id, first_name, last_name) VALUES ('97', 'a', 'b');
DROP FOREIGN TABLE people_id2;
\! test/emu key POST '^/api/people$' id

-- === ON CONFLICT DO NOTHING needs every row's e-mail to look the person
-- up: rows without one are refused before anything is sent (the rest is
-- test/sql/idempotent.sql)
\! test/emu log-clear
INSERT INTO people_w (first_name, last_name) VALUES ('On', 'Conflict')
ON CONFLICT DO NOTHING;
CREATE TABLE people_parted (id text, first_name text, last_name text)
  PARTITION BY LIST (first_name);
CREATE FOREIGN TABLE people_part_on PARTITION OF people_parted
  FOR VALUES IN ('On') SERVER rollout OPTIONS (resource 'people');
INSERT INTO people_parted (first_name, last_name) VALUES ('On', 'Partition')
ON CONFLICT DO NOTHING;
DROP TABLE people_parted;
\! test/emu count POST '.'

DROP FOREIGN TABLE people_w;
DROP TABLE trigger_log;
DROP FUNCTION log_row();

\i :abs_srcdir/sql/teardown.inc

-- ===================================================================
-- idempotent: INSERT ... ON CONFLICT DO NOTHING on people skips the rows
-- whose e-mail a CRM person holds (GET /people?email= first), so a job
-- run again creates nobody twice; a POST that may have acted is looked up
-- by e-mail, and the error says what the CRM did
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc

CREATE TABLE signups (first text, last text, email text);
INSERT INTO signups VALUES
  ('Ann', 'One', 'ann@idem.test'), ('Bob', 'Two', 'Bob@Idem.test'),
  ('Cy', 'Three', 'cy@idem.test'), ('Di', 'Four', 'di@idem.test'),
  ('Ed', 'Five', 'ed@idem.test');
CREATE VIEW idem_people AS
  SELECT first_name, e->>'value' AS email FROM people, jsonb_array_elements(emails) e
  WHERE e->>'value' ILIKE '%idem.test';

-- === the same import twice: 5 created, then 0 (exact e-mail filter)
\! test/emu log-clear
INSERT INTO people (first_name, last_name, emails)
SELECT first, last, jsonb_build_array(jsonb_build_object('value', email)) FROM signups
ON CONFLICT DO NOTHING;
INSERT INTO people (first_name, last_name, emails)
SELECT first, last, jsonb_build_array(jsonb_build_object('value', email)) FROM signups
ON CONFLICT DO NOTHING;
\! test/emu count POST '^/api/people$'
SELECT count(*) AS idem_people FROM idem_people;
-- each e-mail asked as written and, for Bob's, in lower case too
\! test/emu queries '^/api/people$' | grep -c 'email='
\! test/emu queries '^/api/people$' | grep -i 'email=bob' | sort | uniq -c

-- === an e-mail differing in case is the same person.  Exact filter:
-- ANN@Idem.TEST is found by its lower-case lookup, but bob@idem.test is
-- not (the CRM holds Bob@Idem.test, which only a lookup of that very text
-- finds): created.  Case-insensitive filter: bob@ and every upper-cased
-- e-mail are found
\! test/emu log-clear
INSERT INTO people (first_name, last_name, emails)
VALUES ('Ann', 'Again', '[{"value": "ANN@Idem.TEST"}]') ON CONFLICT DO NOTHING;
INSERT INTO people (first_name, last_name, emails)
VALUES ('Bob', 'Again', '[{"value": "bob@idem.test"}]') ON CONFLICT DO NOTHING;
\! test/emu paging '{"email_match": "case-insensitive"}'
INSERT INTO people (first_name, last_name, emails)
VALUES ('Bob', 'Again', '[{"value": "bob@idem.test"}]') ON CONFLICT DO NOTHING;
INSERT INTO people (first_name, last_name, emails)
SELECT first, last, jsonb_build_array(jsonb_build_object('value', upper(email))) FROM signups
ON CONFLICT DO NOTHING;
\! test/emu paging '{}'
SELECT email FROM idem_people ORDER BY email;

-- === the conflict is decided on the records answered: a person the API
-- answers whose e-mail is another one is no conflict
\! test/emu fault '{"method": "GET", "path": "^/api/people$", "query": "email=fay", "status": 200, "body": "{\"_metadata\": {\"collection\": \"people\", \"total\": 1, \"next\": null}, \"people\": [{\"id\": \"9\", \"emails\": [{\"value\": \"fay@other.test\"}]}]}"}'
INSERT INTO people (first_name, last_name, emails)
VALUES ('Fay', 'Six', '[{"value": "fay@idem.test"}]') ON CONFLICT DO NOTHING
RETURNING first_name;
\! test/emu faults-clear

-- === e-mails written through attrs count, any of a row's e-mails
-- conflicts, and a row conflicts with an earlier row of the statement
INSERT INTO people (first_name, last_name, attrs)
VALUES ('Gus', 'Seven', '{"emails": [{"value": "gus@idem.test"}, {"value": "ED@idem.test"}]}')
ON CONFLICT DO NOTHING;
INSERT INTO people (first_name, last_name, emails)
VALUES ('Hal', 'Eight', '[{"value": "hal@idem.test"}]'),
       ('Hal', 'Twin', '[{"value": "HAL@idem.test"}]')
ON CONFLICT DO NOTHING;
SELECT first_name, email FROM idem_people WHERE first_name IN ('Gus', 'Hal');

-- === RETURNING gives only the rows created
INSERT INTO people (first_name, last_name, emails)
VALUES ('Ann', 'Dup', '[{"value": "ann@idem.test"}]'),
       ('Ivy', 'Nine', '[{"value": "ivy@idem.test"}]'),
       ('Cy', 'Dup', '[{"value": "cy@idem.test"}]')
ON CONFLICT DO NOTHING
RETURNING first_name, last_name, emails->0->>'value' AS email;

-- === batches of batch_size rows: lookups in flight together, 25 rows
-- in 3 batches, the 5 known ones skipped
ALTER FOREIGN TABLE people OPTIONS (ADD batch_size '10');
EXPLAIN (COSTS OFF)
INSERT INTO people (first_name, last_name, emails)
SELECT 'Batch', g::text, jsonb_build_array(jsonb_build_object('value', 'b' || g || '@idem.test'))
FROM generate_series(1, 20) g ON CONFLICT DO NOTHING;
\! test/emu log-clear
INSERT INTO people (first_name, last_name, emails)
SELECT first, last, jsonb_build_array(jsonb_build_object('value', email)) FROM signups
UNION ALL
SELECT 'Batch', g::text, jsonb_build_array(jsonb_build_object('value', 'b' || g || '@idem.test'))
FROM generate_series(1, 20) g
ON CONFLICT DO NOTHING;
\! test/emu count POST '^/api/people$'
INSERT INTO people (first_name, last_name, emails)
SELECT 'Batch', g::text, jsonb_build_array(jsonb_build_object('value', 'b' || g || '@idem.test'))
FROM generate_series(1, 20) g ON CONFLICT DO NOTHING;
SELECT count(*) AS batch_people FROM idem_people WHERE first_name = 'Batch';
ALTER FOREIGN TABLE people OPTIONS (DROP batch_size);

-- === a row without an e-mail: an error before anything is sent
\! test/emu log-clear
INSERT INTO people (first_name, last_name, emails)
VALUES ('Jo', 'Ten', '[{"value": "jo@idem.test"}]'),
       ('Kim', 'Eleven', '[]')
ON CONFLICT DO NOTHING;
INSERT INTO people (first_name, last_name) VALUES ('Lee', 'Twelve')
ON CONFLICT DO NOTHING;
\! test/emu paths

-- === other collections have no key to look up: refused, nothing sent
CREATE FOREIGN TABLE idem_notes (id text, person_id text, body text)
  SERVER rollout OPTIONS (resource 'notes');
INSERT INTO idem_notes (person_id, body) VALUES ('11', 'hello') ON CONFLICT DO NOTHING;
DROP FOREIGN TABLE idem_notes;
\! test/emu paths

-- === rows routed to a people partition with ON CONFLICT DO NOTHING
CREATE TABLE idem_parted (id text, first_name text, last_name text, emails jsonb)
  PARTITION BY LIST (first_name);
CREATE FOREIGN TABLE idem_part_ann PARTITION OF idem_parted
  FOR VALUES IN ('Ann', 'Mo') SERVER rollout OPTIONS (resource 'people');
INSERT INTO idem_parted (first_name, last_name, emails)
VALUES ('Ann', 'Part', '[{"value": "ann@idem.test"}]'),
       ('Mo', 'Part', '[{"value": "mo@idem.test"}]')
ON CONFLICT DO NOTHING;
SELECT first_name, count(*) FROM idem_people WHERE first_name IN ('Ann', 'Mo')
GROUP BY 1 ORDER BY 1;
DROP TABLE idem_parted;

-- === a POST that created, then lost its answer, with ON CONFLICT DO
-- NOTHING: the error names the person created; running it again skips it
\! test/emu fault '{"method": "POST", "path": "^/api/people$", "after_serving": "drop", "times": 1}'
INSERT INTO people (first_name, last_name, emails)
VALUES ('Ned', 'Lost', '[{"value": "ned@idem.test"}]') ON CONFLICT DO NOTHING;
INSERT INTO people (first_name, last_name, emails)
VALUES ('Ned', 'Lost', '[{"value": "ned@idem.test"}]') ON CONFLICT DO NOTHING;
SELECT count(*) AS neds FROM idem_people WHERE first_name = 'Ned';

-- === ... answered 500 after creating; a plain INSERT cannot tell the
-- person from an earlier one, and says so
\! test/emu fault '{"method": "POST", "path": "^/api/people$", "after_serving": 500, "times": 1}'
INSERT INTO people (first_name, last_name, emails)
VALUES ('Oz', 'Lost', '[{"value": "oz@idem.test"}]');
SELECT count(*) AS ozs FROM idem_people WHERE first_name = 'Oz';

-- === a 500 that created nothing: nobody found, not sent again
\! test/emu fault '{"method": "POST", "path": "^/api/people$", "status": 500, "times": 1}'
INSERT INTO people (first_name, last_name, emails)
VALUES ('Pat', 'Lost', '[{"value": "pat@idem.test"}]') ON CONFLICT DO NOTHING;
SELECT count(*) AS pats FROM idem_people WHERE first_name = 'Pat';

-- === a row without an e-mail keeps the error it had
\! test/emu fault '{"method": "POST", "path": "^/api/people$", "after_serving": "drop", "times": 1}'
INSERT INTO people (first_name, last_name) VALUES ('Quin', 'Lost');

-- === in a batch: the error says what the CRM did for the other rows
\! test/emu fault '{"method": "POST", "path": "^/api/people$", "after_serving": "drop", "times": 1, "after": 1}'
SELECT split_part(part, E'\n', 1) AS error_part
FROM unnest(string_to_array(regexp_replace(error_text($$
  INSERT INTO people (first_name, last_name, emails)
  SELECT 'Ray', g::text, jsonb_build_array(jsonb_build_object('value', 'ray' || g || '@idem.test'))
  FROM generate_series(1, 3) g ON CONFLICT DO NOTHING $$), '[0-9]+', 'N', 'g'), ' | ')) AS part;
SELECT count(*) AS rays FROM idem_people WHERE first_name = 'Ray';

DROP VIEW idem_people;
DROP TABLE signups;

\i :abs_srcdir/sql/teardown.inc

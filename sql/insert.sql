-- ===================================================================
-- insert: INSERT -> POST /people, RETURNING from the 201 answer,
-- SQL values -> JSON, batches, API errors
-- ===================================================================
\! test/emu reset
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

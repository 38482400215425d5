-- ===================================================================
-- import: IMPORT FOREIGN SCHEMA crm creates typed tables
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
CREATE SCHEMA crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout INTO crm;
\d crm.people

-- === every column converts, in the FUB shape (numeric ids) ...
-- (p::text reads every column of every row: 'ok' is no conversion error)
SELECT count(*) AS people,
       sqlstate_of('SELECT p::text FROM crm.people p') AS whole_rows_convert
FROM crm.people p;
SELECT id, name, stage, stage_id, source_id, assigned_user_id, tags,
       created, last_activity
FROM crm.people WHERE id = '11';
SELECT id, average_price, birthday, contact_types, communications_consent
FROM crm.people WHERE average_price IS NOT NULL ORDER BY id::int LIMIT 3;

-- === ... and in the normalised UUID shape
\! test/emu reset '{"dataset": "uuid", "people": 12}'
SELECT count(*) AS people, count(DISTINCT id) AS ids,
       sqlstate_of('SELECT p::text FROM crm.people p') AS whole_rows_convert
FROM crm.people p;
SELECT length(id) AS id_length, original_ids IS NOT NULL AS has_original_ids,
       jsonb_typeof(emails->0->'isPrimary') AS is_primary_type
FROM crm.people LIMIT 1;
\! test/emu reset

-- === LIMIT TO / EXCEPT, and only the crm schema exists
CREATE SCHEMA crm2;
IMPORT FOREIGN SCHEMA crm EXCEPT (people) FROM SERVER rollout INTO crm2;
SELECT count(*) AS tables_in_crm2 FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'crm2';
IMPORT FOREIGN SCHEMA sales FROM SERVER rollout INTO crm2;
DROP SCHEMA crm2 CASCADE;

-- === every collection of the CRM API becomes a table
CREATE SCHEMA crm_all;
IMPORT FOREIGN SCHEMA crm FROM SERVER rollout INTO crm_all;
SELECT c.relname, ft.ftoptions
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
WHERE n.nspname = 'crm_all' ORDER BY 1;
\d crm_all.calls

-- every one reads, every column converting (a whole-row reference); a
-- list that requires a query parameter with the condition that gives it
CREATE FUNCTION whole_rows(t regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM (SELECT x::text FROM %s x %s) s', t,
                 CASE t::text
                 WHEN 'crm_all.text_messages' THEN
                   'WHERE person_id = (SELECT id FROM crm_all.people LIMIT 1)'
                 WHEN 'crm_all.metadata_transactions_create' THEN
                   'WHERE transaction_type = ''purchase'''
                 ELSE '' END) INTO n;
  RETURN n;
END $$;
SELECT c.relname, whole_rows(c.oid) AS records
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'crm_all' ORDER BY 1;
-- the same in the normalised UUID shape
\! test/emu reset '{"dataset": "uuid", "people": 5}'
SELECT count(*) AS tables, bool_and(whole_rows(c.oid) > 0) AS all_read
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'crm_all';
\! test/emu reset

-- writes work where the API has them
INSERT INTO crm_all.notes (person_id, subject, body, is_html)
VALUES ('11', 'Called', 'Wants a 3-bed.', false)
RETURNING person_id, subject, created IS NOT NULL AS has_created;
UPDATE crm_all.tasks SET is_completed = true WHERE name = 'Follow up #1'
RETURNING name, is_completed;
DELETE FROM crm_all.webhooks RETURNING event;
SELECT count(*) AS webhooks_left FROM crm_all.webhooks;
DROP SCHEMA crm_all CASCADE;
DROP FUNCTION whole_rows(regclass);
DROP SCHEMA crm CASCADE;

\i :abs_srcdir/sql/teardown.inc

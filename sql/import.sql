-- ===================================================================
-- import: IMPORT FOREIGN SCHEMA crm creates typed tables
-- ===================================================================
\! test/emu reset
CREATE SCHEMA crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout INTO crm;
\d crm.people

-- === every column converts, in the FUB shape (numeric ids) ...
SELECT count(*) AS people, sum(length(p::text)) > 0 AS all_columns_read
FROM crm.people p;
SELECT id, name, stage, stage_id, source_id, assigned_user_id, tags,
       created, last_activity
FROM crm.people WHERE id = '11';
SELECT id, average_price, birthday, contact_types, communications_consent
FROM crm.people WHERE average_price IS NOT NULL ORDER BY id::int LIMIT 3;

-- === ... and in the normalised UUID shape
\! test/emu reset '{"dataset": "uuid", "people": 12}'
SELECT count(*) AS people, count(DISTINCT id) AS ids,
       sum(length(p::text)) > 0 AS all_columns_read
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
DROP SCHEMA crm2;

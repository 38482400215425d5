-- ===================================================================
-- endpoints: each collection is asked only what Rollout's API answers
-- (src/crm_endpoints.h, from the OpenAPI snapshot)
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
CREATE SCHEMA ep;
IMPORT FOREIGN SCHEMA crm LIMIT TO (webhooks, email_messages, users)
  FROM SERVER rollout INTO ep;
SELECT id AS hook FROM ep.webhooks \gset

-- === webhooks have no GET /webhooks/{id}: an id is read through the list
\! test/emu log-clear
SELECT id, event, status FROM ep.webhooks WHERE id = :'hook';
SELECT id FROM ep.webhooks WHERE id = ANY (ARRAY[:'hook', 'nope']);
SELECT id FROM ep.webhooks WHERE id = 'nope';
\! test/emu paths
EXPLAIN (COSTS OFF, VERBOSE) SELECT id FROM ep.webhooks WHERE id = :'hook';
-- a join on id: the list once, not a GET per outer row
CREATE TABLE hook_notes (hook_id text, note text);
INSERT INTO hook_notes VALUES (:'hook', 'main'), ('gone', 'old');
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (COSTS OFF) SELECT n.note, w.event FROM hook_notes n
  JOIN ep.webhooks w ON w.id = n.hook_id;
\! test/emu log-clear
SELECT n.note, w.event FROM hook_notes n JOIN ep.webhooks w ON w.id = n.hook_id;
\! test/emu paths
RESET enable_hashjoin;
RESET enable_mergejoin;

-- === UPDATE and DELETE of a webhook by id: the list finds it, PUT and
-- DELETE /webhooks/{id} act on it
\! test/emu log-clear
UPDATE ep.webhooks SET url = 'https://app.example.com/hooks/v2' WHERE id = :'hook'
  RETURNING id, url, status;
\! test/emu paths
EXPLAIN (COSTS OFF) DELETE FROM ep.webhooks WHERE id = :'hook' RETURNING id, url;
\! test/emu log-clear
DELETE FROM ep.webhooks WHERE id = :'hook' RETURNING id, url, event;
\! test/emu paths
SELECT count(*) AS webhooks_left FROM ep.webhooks;
INSERT INTO ep.webhooks (url, event) VALUES ('https://x.example.com/h', 'peopleUpdated')
  RETURNING url, event, status IS NULL AS no_status;
DELETE FROM ep.webhooks WHERE event = 'peopleUpdated';
SELECT count(*) AS webhooks_left FROM ep.webhooks;

-- === e-mail messages have no PUT or DELETE: refused when planned, nothing sent
\! test/emu log-clear
UPDATE ep.email_messages SET subject = 'x' WHERE id = 'a';
DELETE FROM ep.email_messages;
EXPLAIN DELETE FROM ep.email_messages WHERE subject = 'x';
\! test/emu paths
SELECT sqlstate_of('UPDATE ep.email_messages SET subject = ''x''') AS update_state;
-- a view over it is not updatable either
CREATE VIEW mail AS SELECT id, subject FROM ep.email_messages;
SELECT is_updatable, is_insertable_into FROM information_schema.views
WHERE table_name = 'mail';
DROP VIEW mail;

-- === what each table allows, as information_schema says it
CREATE SCHEMA ep_all;
IMPORT FOREIGN SCHEMA crm FROM SERVER rollout INTO ep_all;
SELECT table_name, is_insertable_into FROM information_schema.tables
WHERE table_schema = 'ep_all' ORDER BY 1;
SELECT c.relname,
       pg_relation_is_updatable(c.oid, false) & 8 <> 0 AS can_insert,
       pg_relation_is_updatable(c.oid, false) & 4 <> 0 AS can_update,
       pg_relation_is_updatable(c.oid, false) & 16 <> 0 AS can_delete
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'ep_all' ORDER BY 1;
-- a resource the snapshot does not know keeps the five usual routes
CREATE FOREIGN TABLE ep.other (id text) SERVER rollout OPTIONS (resource 'deals');
SELECT pg_relation_is_updatable('ep.other'::regclass, false) AS other_updatable;
DROP SCHEMA ep_all CASCADE;

-- === POST /users answers [record]: the array of one is the created user
\! test/emu log-clear
INSERT INTO ep.users (email, first_name, last_name, phone, role, status,
                      username, type, address)
VALUES ('new.agent@agency.example.com', 'New', 'Agent', '2125550199', 'Agent',
        'Active', 'newagent', 'user', '{"street": "1 Main St"}')
RETURNING id IS NOT NULL AS has_id, email, first_name, role;
INSERT INTO ep.users (email, first_name, last_name, phone, role, status,
                      username, type, address)
VALUES ('second@agency.example.com', 'Second', 'Agent', '2125550198', 'Agent',
        'Active', 'second', 'user', '{"street": "1 Main St"}');
\! test/emu bodies POST '^/api/users$' | cut -c1-40
SELECT count(*) AS new_users FROM ep.users WHERE email LIKE '%new.agent%' OR email LIKE 'second@%';
-- an array of other than one record: the CRM may have created the user
\! test/emu fault '{"path": "^/api/users$", "method": "POST", "status": 201, "body": "[]"}'
SELECT error_text($$INSERT INTO ep.users (email) VALUES ('x@y.z') RETURNING id$$);
\! test/emu faults-clear
\! test/emu fault '{"path": "^/api/users$", "method": "POST", "status": 201, "body": "[{\"id\": \"a\"}, {\"id\": \"b\"}]"}'
SELECT error_text($$INSERT INTO ep.users (email) VALUES ('x@y.z')$$);
\! test/emu faults-clear

-- === GET /metadata/transactions/create: a bare array, not paged, that
-- needs transactionType; a query without it is refused before any request
IMPORT FOREIGN SCHEMA crm LIMIT TO (metadata_transactions_create, text_messages)
  FROM SERVER rollout INTO ep;
\d ep.metadata_transactions_create
\! test/emu log-clear
SELECT name, original_name, transaction_type, config->>'type' AS type
FROM ep.metadata_transactions_create WHERE transaction_type = 'purchase'
ORDER BY name;
EXPLAIN (COSTS OFF)
SELECT name FROM ep.metadata_transactions_create WHERE transaction_type = 'listing';
PREPARE fields(text) AS
  SELECT count(*) FROM ep.metadata_transactions_create WHERE transaction_type = $1;
EXECUTE fields('listing');
DEALLOCATE fields;
-- not paged: a LIMIT and OFFSET are the scan's
SELECT name FROM ep.metadata_transactions_create
WHERE transaction_type = 'purchase' OFFSET 1 LIMIT 1;
SELECT name FROM ep.metadata_transactions_create;
SELECT name FROM ep.metadata_transactions_create WHERE transaction_type <> 'listing';
EXPLAIN SELECT name FROM ep.metadata_transactions_create;
\! test/emu paths
-- the API's refusal of an unknown type is an error, not zero rows
SELECT name FROM ep.metadata_transactions_create WHERE transaction_type = 'lease';
-- an answer that is not a bare array breaks the contract
\! test/emu fault '{"path": "^/api/metadata/transactions/create$", "status": 200, "body": "{\"a\": 1}"}'
SELECT name FROM ep.metadata_transactions_create WHERE transaction_type = 'listing';
\! test/emu faults-clear
\! test/emu fault '{"path": "^/api/metadata/transactions/create$", "status": 200, "body": "[{\"name\": \"a\"}, 2]"}'
SELECT name FROM ep.metadata_transactions_create WHERE transaction_type = 'listing';
\! test/emu faults-clear
INSERT INTO ep.metadata_transactions_create (name) VALUES ('x');

-- === GET /textMessages needs personId; by id it does not
\! test/emu log-clear
SELECT message, person_id FROM ep.text_messages WHERE person_id = '12';
SELECT id AS msg FROM ep.text_messages WHERE person_id = '13' \gset
SELECT message FROM ep.text_messages WHERE id = :'msg';
SELECT count(*) FROM ep.text_messages;
ANALYZE ep.text_messages;
\! test/emu paths

DROP TABLE hook_notes;
DROP SCHEMA ep CASCADE;

\i :abs_srcdir/sql/teardown.inc

-- Key columns: which Rollout user and credential a row belongs to, the
-- opt-in of a user mapping for any user (user_id '*'), the settings
-- rollout_fdw.user_id / rollout_fdw.credential_id and who may set them,
-- on_user_error, and writes to the row's user's CRM (README "Many users").
-- The emulator's users: user-1 (cred-1, 25 people), user-2 (cred-2, 3),
-- user-multi (cred-a and cred-b, 3 each), user-none (no credential).
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
SET client_min_messages = warning;
CREATE SCHEMA own;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout INTO own
  OPTIONS (key_columns 'true');
SELECT attname, format_type(atttypid, atttypmod), attfdwoptions
FROM pg_attribute WHERE attrelid = 'own.people'::regclass AND attname LIKE 'rollout%'
ORDER BY attnum;
SELECT sqlstate_of($$IMPORT FOREIGN SCHEMA crm FROM SERVER rollout INTO own OPTIONS (keys 'true')$$);

-- the options
SELECT error_text($$CREATE FOREIGN TABLE bad (u text OPTIONS (field '@user')) SERVER rollout$$);
CREATE SERVER many FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url :'emu_url', auth_url :'emu_url', client_id 'test-client',
           retry_base_ms '10', retry_max_ms '40', max_retries '2');
SELECT error_text($$CREATE USER MAPPING FOR CURRENT_USER SERVER many
  OPTIONS (client_secret 'test-secret', user_id '*', credential_id 'cred-1')$$);
SELECT error_text($$ALTER SERVER many OPTIONS (ADD on_user_error 'ignore')$$);
CREATE USER MAPPING FOR CURRENT_USER SERVER many
  OPTIONS (client_secret 'test-secret', user_id '*');
CREATE SCHEMA many;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people, text_messages) FROM SERVER many INTO many
  OPTIONS (key_columns 'true');

-- a mapping for one user: its rows say whose they are; another user or
-- credential is refused before anything is sent
SELECT id, rollout_user_id, rollout_credential_id FROM own.people ORDER BY id LIMIT 2;
SELECT count(*) FROM own.people WHERE rollout_user_id = 'user-1';
SELECT count(*) FROM own.people WHERE rollout_credential_id = 'cred-1';
\! test/emu log-clear
SELECT error_text($$SELECT count(*) FROM own.people WHERE rollout_user_id = 'user-2'$$);
SELECT error_text($$SELECT count(*) FROM own.people WHERE rollout_credential_id = 'cred-2'$$);
\! test/emu count GET /people

-- a mapping for any user: a query that names none is refused, nothing sent
SELECT error_text($$SELECT count(*) FROM many.people$$);
SELECT error_text($$SELECT count(*) FROM many.people WHERE rollout_credential_id = 'cred-2'$$);
\! test/emu count GET /people
EXPLAIN (COSTS OFF) SELECT count(*) FROM many.people WHERE rollout_user_id = 'user-2';
SELECT name, rollout_user_id, rollout_credential_id FROM many.people
WHERE rollout_user_id = 'user-2' ORDER BY name;
-- several users: every one's rows, each credential discovered
EXPLAIN (COSTS OFF) SELECT count(*) FROM many.people WHERE rollout_user_id IN ('user-1', 'user-2');
SELECT rollout_user_id, rollout_credential_id, count(*) FROM many.people
WHERE rollout_user_id = ANY (ARRAY['user-1', 'user-2', NULL]) GROUP BY 1, 2 ORDER BY 1;
SELECT count(*) FROM many.people WHERE rollout_user_id = ANY ('{}'::text[]);
-- no user is "*" or empty, nor longer than 255 bytes
SELECT error_text($$SELECT count(*) FROM many.people WHERE rollout_user_id = '*'$$);
SELECT error_text($$SELECT count(*) FROM many.people WHERE rollout_user_id = ''$$);
SELECT error_text(format($$SELECT count(*) FROM many.people WHERE rollout_user_id = %L$$, repeat('u', 256)));
-- nor holds a control character: a user id goes into the token, a
-- credential id into a request header (CR/LF would add a header)
SELECT split_part(error_text($$SELECT count(*) FROM many.people
                               WHERE rollout_user_id = E'user-1\r\nX-Injected: 1'$$), ' | ', 1)
  AS user_id_with_crlf;
SELECT split_part(error_text($$SELECT count(*) FROM many.people
                               WHERE rollout_user_id = 'user-1'
                                 AND rollout_credential_id = E'cred-1\nX-Injected: 1'$$), ' | ', 1)
  AS credential_id_with_lf;
-- a user with two credentials must name one
SELECT error_text($$SELECT count(*) FROM many.people WHERE rollout_user_id = 'user-multi'$$);
SELECT rollout_credential_id, count(*) FROM many.people
WHERE rollout_user_id = 'user-multi' AND rollout_credential_id IN ('cred-a', 'cred-b')
GROUP BY 1 ORDER BY 1;
-- a credential of another user: the API refuses it (403), nothing is read
SELECT sqlstate_of($$SELECT count(*) FROM many.people WHERE rollout_user_id = 'user-2' AND rollout_credential_id = 'cred-1'$$);

-- a join with the app's own table of customers: one scan per customer
CREATE TABLE customers (rollout_user text, credential text);
INSERT INTO customers VALUES ('user-1', 'cred-1'), ('user-2', 'cred-2'),
  ('user-multi', 'cred-b');
ANALYZE customers;
EXPLAIN (COSTS OFF)
SELECT c.rollout_user, count(*) FROM customers c
JOIN many.people p ON p.rollout_user_id = c.rollout_user
                  AND p.rollout_credential_id = c.credential
GROUP BY 1;
\! test/emu log-clear
SELECT c.rollout_user, p.rollout_credential_id, count(*) FROM customers c
JOIN many.people p ON p.rollout_user_id = c.rollout_user
                  AND p.rollout_credential_id = c.credential
GROUP BY 1, 2 ORDER BY 1;
-- one list each (no credential lookup: the join names them)
\! test/emu count GET /people
\! test/emu count GET /credentials
-- a user named by several outer rows is read once; NULL keys join nothing
INSERT INTO customers VALUES ('user-2', 'cred-2'), (NULL, 'cred-1'), ('user-1', NULL);
\! test/emu log-clear
SELECT c.rollout_user, count(*) FROM customers c
JOIN many.people p ON p.rollout_user_id = c.rollout_user
                  AND p.rollout_credential_id = c.credential
GROUP BY 1 ORDER BY 1;
\! test/emu count GET /people
-- other join conditions are checked on the joined rows
SELECT c.rollout_user, count(*) FROM customers c
JOIN many.people p ON p.rollout_user_id = c.rollout_user
                  AND p.rollout_credential_id = c.credential
                  AND p.first_name < 'F'
GROUP BY 1 ORDER BY 1;
-- an outer join keeps the nested loop: one scan per outer row
EXPLAIN (COSTS OFF)
SELECT c.rollout_user, p.id FROM customers c
LEFT JOIN many.people p ON p.rollout_user_id = c.rollout_user
                       AND p.rollout_credential_id = c.credential;
-- the output is the join's columns alone (no projection)
SELECT p.rollout_user_id, c.rollout_user FROM customers c
JOIN many.people p ON p.rollout_user_id = c.rollout_user
WHERE c.rollout_user <> 'user-multi'
ORDER BY 1 LIMIT 2;
SELECT p.rollout_user_id, p.rollout_credential_id, c.rollout_user, c.credential
FROM customers c
JOIN many.people p ON p.rollout_user_id = c.rollout_user
                  AND p.rollout_credential_id = c.credential
ORDER BY 1 DESC LIMIT 1;
-- a list that needs a parameter from the outer rows stays a nested loop
CREATE TABLE contacts (rollout_user text, credential text, person text);
INSERT INTO contacts VALUES ('user-1', 'cred-1', '11');
EXPLAIN (COSTS OFF)
SELECT count(*) FROM contacts k
JOIN many.text_messages t ON t.rollout_user_id = k.rollout_user
                         AND t.rollout_credential_id = k.credential
                         AND t.person_id = k.person;
SELECT count(*) > 0 AS has_messages FROM contacts k
JOIN many.text_messages t ON t.rollout_user_id = k.rollout_user
                         AND t.rollout_credential_id = k.credential
                         AND t.person_id = k.person;
DROP TABLE contacts;
DELETE FROM customers WHERE rollout_user IS NULL OR credential IS NULL;
DELETE FROM customers WHERE ctid IN (SELECT max(ctid) FROM customers WHERE rollout_user = 'user-2');
-- only the user: the credential is discovered
SELECT c.rollout_user, count(*) FROM customers c
JOIN many.people p ON p.rollout_user_id = c.rollout_user
WHERE c.rollout_user <> 'user-multi'
GROUP BY 1 ORDER BY 1;

-- on_user_error: 'fail' (the default) fails the statement for one user;
-- 'skip' leaves that user out with a WARNING, counted
SELECT error_text($$SELECT count(*) FROM many.people WHERE rollout_user_id IN ('user-1', 'user-none', 'user-2')$$);
ALTER FOREIGN TABLE many.people OPTIONS (ADD on_user_error 'skip');
SELECT rollout_user_id, count(*) FROM many.people
WHERE rollout_user_id IN ('user-1', 'user-none', 'user-2') GROUP BY 1 ORDER BY 1;
SELECT explain_analyze($$SELECT count(*) FROM many.people WHERE rollout_user_id IN ('user-none', 'user-2')$$);
SELECT users_skipped >= 2 AS counted FROM rollout_fdw_stats() WHERE server = 'many';
-- nor a wait that statement_timeout would cut: the rate limiter's here
-- (a client id of its own: a tenant's lowest rate_limit holds for a minute)
CREATE SERVER slow FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url :'emu_url', auth_url :'emu_url', client_id 'slow-client',
           rate_limit '1', on_user_error 'skip');
CREATE USER MAPPING FOR CURRENT_USER SERVER slow
  OPTIONS (client_secret 'test-secret', user_id '*');
CREATE SCHEMA slow;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER slow INTO slow
  OPTIONS (key_columns 'true');
SET statement_timeout = '500ms';
SELECT sqlstate_of($$SELECT count(*) FROM slow.people WHERE rollout_user_id IN ('user-1', 'user-2')$$);
RESET statement_timeout;
DROP SCHEMA slow CASCADE;
DROP SERVER slow CASCADE;
-- a cancel is never skipped: statement_timeout still ends the statement
\! test/emu latency 300
SET statement_timeout = '200ms';
SELECT count(*) FROM many.people WHERE rollout_user_id IN ('user-1', 'user-2');
RESET statement_timeout;
\! test/emu latency 0
ALTER FOREIGN TABLE many.people OPTIONS (DROP on_user_error);

-- a user whose data is not synced yet (409) is waited out, the others read
\! test/emu not-ready 0.5 '{"cred": "cred-2"}'
SELECT rollout_user_id, count(*) FROM many.people
WHERE rollout_user_id IN ('user-1', 'user-2') GROUP BY 1 ORDER BY 1;

-- the settings: used when the query names no user
SET rollout_fdw.user_id = 'user-2';
SELECT count(*), min(rollout_user_id) FROM many.people;
SET rollout_fdw.user_id = 'user-multi';
SET rollout_fdw.credential_id = 'cred-a';
SELECT count(*), min(rollout_credential_id) FROM many.people;
RESET rollout_fdw.credential_id;
-- a key condition wins over the settings
SELECT count(*) FROM many.people WHERE rollout_user_id = 'user-2';
RESET rollout_fdw.user_id;
SELECT error_text($$SET rollout_fdw.user_id = '*'$$);
-- the settings cannot take a mapping for one user elsewhere: not for a
-- scan, ANALYZE or the tags functions
SET rollout_fdw.user_id = 'user-2';
SELECT error_text($$SELECT count(*) FROM own.people$$);
SET rollout_fdw.user_id = 'user-1';
SET rollout_fdw.credential_id = 'cred-2';
\! test/emu log-clear
SELECT error_text($$SELECT count(*) FROM own.people$$);
SELECT error_text($$ANALYZE own.people$$);
SELECT error_text($$SELECT rollout_fdw_apply_tags('own.people', '11', ARRAY['x'])$$);
\! test/emu count POST /tags
\! test/emu count GET /people
RESET rollout_fdw.user_id;
RESET rollout_fdw.credential_id;

-- who may set them: only roles granted SET; an app sets them through a
-- SECURITY DEFINER function after its own checks
CREATE ROLE regress_keys_app;
CREATE USER MAPPING FOR regress_keys_app SERVER many
  OPTIONS (client_secret 'test-secret', user_id '*');
GRANT USAGE ON FOREIGN SERVER many TO regress_keys_app;
GRANT USAGE ON SCHEMA many TO regress_keys_app;
GRANT SELECT ON many.people TO regress_keys_app;
CREATE FUNCTION act_for_customer(customer text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  IF customer NOT IN ('user-2') THEN
    RAISE EXCEPTION 'not your customer';
  END IF;
  PERFORM set_config('rollout_fdw.user_id', customer, true);
END $$;
REVOKE ALL ON FUNCTION act_for_customer(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION act_for_customer(text) TO regress_keys_app;
SET ROLE regress_keys_app;
SELECT error_text($$SET rollout_fdw.user_id = 'user-1'$$);
SELECT error_text($$SELECT set_config('rollout_fdw.user_id', 'user-1', false)$$);
BEGIN;
SELECT act_for_customer('user-2');
SELECT count(*), min(rollout_user_id) FROM many.people;
SELECT error_text($$RESET rollout_fdw.user_id$$);
COMMIT;
SELECT error_text($$SELECT act_for_customer('user-1')$$);
SELECT error_text($$SELECT count(*) FROM many.people$$);
RESET ROLE;
GRANT SET ON PARAMETER rollout_fdw.user_id TO regress_keys_app;
SET ROLE regress_keys_app;
SET rollout_fdw.user_id = 'user-2';
SELECT count(*) FROM many.people;
RESET rollout_fdw.user_id;
RESET ROLE;
REVOKE SET ON PARAMETER rollout_fdw.user_id FROM regress_keys_app;

-- rollout_fdw_credentials of another user: with the opt-in only
SELECT id, label FROM rollout_fdw_credentials('many', 'user-multi') ORDER BY id;
SELECT id FROM rollout_fdw_credentials('rollout');
SELECT id FROM rollout_fdw_credentials('rollout', NULL);
SELECT error_text($$SELECT * FROM rollout_fdw_credentials('rollout', 'user-2')$$);
SELECT error_text($$SELECT * FROM rollout_fdw_credentials('many')$$);
SELECT error_text($$SELECT * FROM rollout_fdw_credentials('many', '*')$$);

-- writes go to the CRM of the row's user and credential
INSERT INTO many.people (first_name, last_name, rollout_user_id, rollout_credential_id)
VALUES ('Ann', 'Two', 'user-2', NULL), ('Bob', 'Multi', 'user-multi', 'cred-b')
RETURNING id IS NOT NULL AS created, first_name, rollout_user_id, rollout_credential_id;
SELECT first_name FROM many.people WHERE rollout_user_id = 'user-2' ORDER BY 1;
SELECT first_name FROM many.people
WHERE rollout_user_id = 'user-multi' AND rollout_credential_id = 'cred-b' ORDER BY 1;
SELECT count(*) FROM own.people WHERE first_name IN ('Ann', 'Bob');
UPDATE many.people SET last_name = 'Updated'
WHERE rollout_user_id = 'user-2' AND first_name = 'Ann'
RETURNING first_name, last_name, rollout_user_id, rollout_credential_id;
\! test/emu log-clear
SELECT error_text($$UPDATE many.people SET rollout_user_id = 'user-1' WHERE rollout_user_id = 'user-2' AND first_name = 'Ann'$$);
\! test/emu count PUT /people
DELETE FROM many.people
WHERE rollout_user_id = 'user-multi' AND rollout_credential_id = 'cred-b' AND first_name = 'Bob'
RETURNING first_name, rollout_credential_id;
DELETE FROM many.people WHERE rollout_user_id = 'user-2' AND first_name = 'Ann';
SELECT count(*) FROM many.people WHERE rollout_user_id IN ('user-2') AND first_name IN ('Ann', 'Bob');
SELECT error_text($$INSERT INTO many.people (first_name) VALUES ('Nobody')$$);
SELECT error_text($$INSERT INTO own.people (first_name, rollout_user_id) VALUES ('Other', 'user-2')$$);
-- with the settings, a row without a key goes to the settings' user
SET rollout_fdw.user_id = 'user-2';
INSERT INTO many.people (first_name, last_name) VALUES ('Set', 'Setting')
RETURNING rollout_user_id, rollout_credential_id;
DELETE FROM many.people WHERE first_name = 'Set' RETURNING rollout_user_id;
RESET rollout_fdw.user_id;

DROP FUNCTION act_for_customer(text);
DROP USER MAPPING FOR regress_keys_app SERVER many;
REVOKE ALL ON many.people FROM regress_keys_app;
REVOKE ALL ON SCHEMA many FROM regress_keys_app;
REVOKE ALL ON FOREIGN SERVER many FROM regress_keys_app;
DROP ROLE regress_keys_app;
DROP TABLE customers;
DROP SCHEMA own CASCADE;
DROP SCHEMA many CASCADE;
DROP SERVER many CASCADE;
\i :abs_srcdir/sql/teardown.inc

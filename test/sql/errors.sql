-- ===================================================================
-- errors: one class and SQLSTATE per API failure, never a partial
-- result, never a secret in a message
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc

-- === transient 5xx and 429 are retried (the server allows 2 retries)
\! test/emu fault '{"method": "GET", "path": "^/api/people$", "status": 500, "times": 1}'
\! test/emu fault '{"method": "GET", "path": "^/api/people$", "status": 429, "times": 1, "headers": {"Retry-After": "0"}}'
SELECT count(*) AS all_people_despite_faults FROM people;

-- === persistent server error: 58000 after the retries
\! test/emu fault '{"path": "^/api/people$", "status": 503, "body": "{\"errorMessage\": \"upstream down\"}"}'
SELECT count(*) FROM people;
SELECT sqlstate_of('SELECT count(*) FROM people');
\! test/emu faults-clear

-- === persistent rate limiting: 53400
\! test/emu fault '{"path": "^/api/people$", "status": 429, "headers": {"Retry-After": "0"}}'
SELECT count(*) FROM people;
SELECT sqlstate_of('SELECT count(*) FROM people');
\! test/emu faults-clear

-- === bad request: 22023, the API's errorMessage (or errors[]) in DETAIL
\! test/emu fault '{"path": "^/api/people$", "status": 400, "body": "{\"errorMessage\": \"limit must be a number\"}"}'
SELECT count(*) FROM people;
\! test/emu faults-clear
\! test/emu fault '{"path": "^/api/people$", "status": 422, "body": "{\"errors\": [{\"path\": \"/limit\", \"message\": \"must be integer\"}]}", "times": 1}'
SELECT count(*) FROM people;
\! test/emu faults-clear

-- === not found on a list: a resource that does not exist, HV00R
CREATE FOREIGN TABLE nosuch (id text) SERVER rollout OPTIONS (resource 'nosuch');
SELECT * FROM nosuch;
SELECT sqlstate_of('SELECT * FROM nosuch');

-- === not ready (409) past not_ready_timeout_s: 55000
ALTER SERVER rollout OPTIONS (ADD not_ready_timeout_s '1');
\! test/emu not-ready 30
SELECT count(*) FROM people;
SELECT sqlstate_of('SELECT count(*) FROM people');
\! test/emu not-ready 0
ALTER SERVER rollout OPTIONS (DROP not_ready_timeout_s);

-- === authentication: a wrong secret is refused (401), 28000
CREATE SERVER rollout_badauth FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url :'emu_url', auth_url :'emu_url', client_id 'test-client');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout_badauth
  OPTIONS (client_secret 'wrong-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE badauth_people (id text) SERVER rollout_badauth;
\! test/emu log-clear
SELECT * FROM badauth_people;
SELECT sqlstate_of('SELECT * FROM badauth_people');
-- one fresh token and one retry per statement, no more
\! test/emu count GET '^/api/people$'

-- === forbidden: a credential of another user, 42501
ALTER USER MAPPING FOR CURRENT_USER SERVER rollout_badauth
  OPTIONS (SET client_secret 'test-secret', SET credential_id 'cred-2');
SELECT * FROM badauth_people;
SELECT sqlstate_of('SELECT * FROM badauth_people');
ALTER USER MAPPING FOR CURRENT_USER SERVER rollout_badauth
  OPTIONS (SET credential_id 'cred-1');
SELECT count(*) AS works_after_fix FROM badauth_people;

-- === responses that break the contract: 08P01, and zero rows
\! test/emu fault '{"path": "^/api/people$", "not_json": true}'
SELECT count(*) FROM people;
\! test/emu faults-clear
\! test/emu fault '{"path": "^/api/people$", "html": true}'
SELECT count(*) FROM people;
\! test/emu faults-clear
\! test/emu fault '{"path": "^/api/people$", "truncate": true}'
SELECT sqlstate_of('SELECT count(*) FROM people') AS truncated;
\! test/emu faults-clear
\! test/emu fault '{"path": "^/api/people$", "drop_metadata": true}'
SELECT count(*) FROM people;
\! test/emu faults-clear
\! test/emu fault '{"path": "^/api/people$", "drop_list_key": true}'
SELECT count(*) FROM people;
\! test/emu faults-clear
\! test/emu fault '{"path": "^/api/people$", "status": 200, "body": "{\"_metadata\": {\"collection\": \"people\", \"next\": 5}, \"people\": []}"}'
SELECT count(*) FROM people;
\! test/emu faults-clear

-- === a pagination loop is an error, not an endless scan (an API that
-- ignores offset makes the scan follow the cursor)
ALTER FOREIGN TABLE people OPTIONS (ADD page_size '10');
\! test/emu paging '{"offset": "ignored"}'
\! test/emu fault '{"path": "^/api/people$", "loop": true}'
SELECT count(*) FROM people;
\! test/emu faults-clear
\! test/emu paging

-- === a failure after rows were read fails the statement: the scan never
-- ends early as if the list were complete, so no statement sees a part of
-- it (CREATE TABLE AS creates nothing)
\! test/emu fault '{"path": "^/api/people$", "query": "offset=|next=", "status": 500}'
SELECT id FROM people;
CREATE TABLE copied AS SELECT id FROM people;
SELECT count(*) FROM copied;
-- the guarantee is per statement: a cursor gets the rows of the first page
-- (10), then the error at the FETCH that needs the second
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM people;
FETCH 5 FROM c;
FETCH 10 FROM c;
ROLLBACK;
\! test/emu faults-clear
ALTER FOREIGN TABLE people OPTIONS (DROP page_size);

-- === a response larger than max_response_bytes is stopped: 08P01
ALTER SERVER rollout OPTIONS (ADD max_response_bytes '4096');
SELECT count(*) FROM people;
SELECT sqlstate_of('SELECT count(*) FROM people');
ALTER SERVER rollout OPTIONS (DROP max_response_bytes);

-- === network failure: nothing listening, 08006 after the retries
CREATE SERVER rollout_down FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url 'http://127.0.0.1:1/api', auth_url 'http://127.0.0.1:1/api',
           client_id 'test-client', max_retries '1', retry_base_ms '1',
           retry_max_ms '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout_down
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE down_people (id text) SERVER rollout_down;
-- (what follows "failed:" is libcurl's text, which varies between versions)
SELECT regexp_replace(split_part(t, ' | ', 1), 'failed: .*',
                      'failed: <libcurl''s message>') AS message,
       split_part(t, ' | ', 2) AS detail,
       split_part(t, ' | ', 3) AS hint
FROM error_text('SELECT * FROM down_people') AS t \gx
SELECT sqlstate_of('SELECT * FROM down_people');
-- discovery goes through the network too
ALTER USER MAPPING FOR CURRENT_USER SERVER rollout_down OPTIONS (DROP credential_id);
SELECT sqlstate_of('SELECT * FROM down_people');

-- === no secret, token or Authorization header in any of these errors: a
-- wrong secret (401, the mapping broken again here), a resource that does
-- not exist, nothing listening; each statement does fail
ALTER USER MAPPING FOR CURRENT_USER SERVER rollout_badauth
  OPTIONS (SET client_secret 'wrong-secret');
SELECT stmt,
       t <> 'ok' AS failed,
       position('wrong-secret' IN t) = 0 AND position('test-secret' IN t) = 0
         AS no_secret,
       position('eyJ' IN t) = 0 AS no_jwt,
       position('Bearer' IN t) = 0 AS no_bearer
FROM unnest(ARRAY['SELECT * FROM badauth_people', 'SELECT * FROM nosuch',
                  'SELECT * FROM down_people']) AS stmt,
     LATERAL error_text(stmt) AS t;

DROP SERVER rollout_badauth CASCADE;
DROP SERVER rollout_down CASCADE;
DROP FOREIGN TABLE nosuch;

\i :abs_srcdir/sql/teardown.inc

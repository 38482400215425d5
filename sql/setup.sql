-- ===================================================================
-- setup: the extension, a server on the emulator, a mapping, helpers
-- (the emulator's URL comes from the environment: ROLLOUT_TEST_URL)
-- ===================================================================
\getenv emu_url ROLLOUT_TEST_URL
\! test/emu reset
CREATE EXTENSION rollout_fdw;
CREATE SERVER rollout FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url :'emu_url', auth_url :'emu_url', client_id 'test-client',
           retry_base_ms '10', retry_max_ms '40', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id 'user-1');

-- SQLSTATE of a statement, or 'ok'
CREATE FUNCTION sqlstate_of(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;

-- the table most suites read
CREATE FOREIGN TABLE people (
  id text, first_name text, last_name text, emails jsonb, tags text[],
  created timestamptz, updated timestamptz, average_price numeric,
  attrs jsonb OPTIONS (field '*')
) SERVER rollout OPTIONS (resource 'people');

-- a reachable round trip
SELECT count(*) > 0 AS reachable FROM people;

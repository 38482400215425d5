-- ===================================================================
-- options: every object's options validated when set
-- ===================================================================
\getenv emu_url ROLLOUT_TEST_URL

-- === unknown names are rejected with the valid names for that object
CREATE SERVER bad1 FOREIGN DATA WRAPPER rollout_fdw OPTIONS (page_sise '10');
CREATE SERVER ok1 FOREIGN DATA WRAPPER rollout_fdw OPTIONS (client_id 'c');
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1
  OPTIONS (client_secret 's', user_id 'u', colour 'red');
CREATE FOREIGN TABLE bad_t (id text) SERVER ok1 OPTIONS (resourse 'people');
CREATE FOREIGN TABLE bad_c (id text OPTIONS (feild 'id')) SERVER ok1;
CREATE FOREIGN DATA WRAPPER rollout2 HANDLER rollout_fdw_handler
  VALIDATOR rollout_fdw_validator OPTIONS (debug 'on');

-- === the secret is accepted only on a user mapping
CREATE SERVER bad2 FOREIGN DATA WRAPPER rollout_fdw OPTIONS (client_secret 'x');
CREATE FOREIGN TABLE bad_t (id text) SERVER ok1 OPTIONS (client_secret 'x');

-- === a user mapping needs client_secret and user_id
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (user_id 'u');
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (client_secret 's');
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1
  OPTIONS (client_secret 's', user_id 'u', credential_id 'cred-1');
ALTER USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (DROP user_id);

-- === numbers are parsed and range-checked
ALTER SERVER ok1 OPTIONS (ADD page_size '0');
ALTER SERVER ok1 OPTIONS (ADD page_size '1001');
ALTER SERVER ok1 OPTIONS (ADD page_size 'ten');
ALTER SERVER ok1 OPTIONS (ADD page_size '2.5');
ALTER SERVER ok1 OPTIONS (ADD token_ttl_s '59');
ALTER SERVER ok1 OPTIONS (ADD token_ttl_s '3601');
ALTER SERVER ok1 OPTIONS (ADD max_retries '-1');
ALTER SERVER ok1 OPTIONS (ADD rate_limit 'fast');
ALTER SERVER ok1 OPTIONS (ADD page_size '1000', ADD token_ttl_s '60',
  ADD rate_limit '12.5', ADD scan_concurrency '4', ADD timeout_ms '5000',
  ADD connect_timeout_ms '1000', ADD max_retries '0', ADD retry_base_ms '1',
  ADD retry_max_ms '10', ADD not_ready_timeout_s '0', ADD batch_size '50',
  ADD max_response_bytes '1048576');
CREATE FOREIGN TABLE t_ok (id text OPTIONS (field 'id'), email text OPTIONS (field 'emails.0'))
  SERVER ok1 OPTIONS (resource 'smart-lists', page_size '5', batch_size '2');
ALTER FOREIGN TABLE t_ok OPTIONS (SET page_size '0');
ALTER FOREIGN TABLE t_ok ALTER COLUMN id OPTIONS (SET field '');

-- === resources are collection paths, nothing else
ALTER FOREIGN TABLE t_ok OPTIONS (SET resource '../credentials');
ALTER FOREIGN TABLE t_ok OPTIONS (SET resource 'people?x=1');
ALTER FOREIGN TABLE t_ok OPTIONS (SET resource '/people');

-- === URLs are parsed: scheme, no credentials, no query
ALTER SERVER ok1 OPTIONS (ADD api_url 'not a url');
ALTER SERVER ok1 OPTIONS (ADD api_url 'ftp://example.com/api');
ALTER SERVER ok1 OPTIONS (ADD api_url 'https://user:pw@example.com/api');
ALTER SERVER ok1 OPTIONS (ADD api_url 'https://example.com/api?x=1');
ALTER SERVER ok1 OPTIONS (ADD api_url 'https://crm.example.com/api/',
                          ADD auth_url 'http://127.0.0.1:1/api');

-- === non-superusers: no plain-http URL, no ca_file
CREATE ROLE rollout_app LOGIN;
GRANT USAGE ON FOREIGN DATA WRAPPER rollout_fdw TO rollout_app;
SET ROLE rollout_app;
CREATE SERVER app_srv FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url 'http://127.0.0.1:9/api');
CREATE SERVER app_srv FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (client_id 'c', ca_file '/etc/ssl/certs/ca-certificates.crt');
CREATE SERVER app_srv FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (client_id 'c', api_url 'https://crm.example.com/api');
ALTER SERVER app_srv OPTIONS (ADD auth_url 'http://127.0.0.1:9/api');
RESET ROLE;
ALTER SERVER ok1 OPTIONS (ADD ca_file '/etc/ssl/certs/ca-certificates.crt');

-- === the secret never shows in the catalog views other roles read
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname = 'app_srv';
SET ROLE rollout_app;
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'ok1';
RESET ROLE;

-- === client_id must come from somewhere
CREATE SERVER no_client FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url :'emu_url', auth_url :'emu_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER no_client
  OPTIONS (client_secret 'test-secret', user_id 'user-1');
CREATE FOREIGN TABLE nc_people (id text) SERVER no_client;
SELECT * FROM nc_people;
ALTER USER MAPPING FOR CURRENT_USER SERVER no_client OPTIONS (ADD client_id 'test-client');
SELECT count(*) > 0 AS mapping_client_id_works FROM nc_people;

DROP SERVER app_srv CASCADE;
DROP SERVER ok1 CASCADE;
DROP SERVER no_client CASCADE;
REVOKE USAGE ON FOREIGN DATA WRAPPER rollout_fdw FROM rollout_app;
DROP ROLE rollout_app;

/* rollout_fdw--1.0.sql: the Rollout Universal CRM API as foreign tables */

\echo Use "CREATE EXTENSION rollout_fdw" to load this file. \quit

CREATE FUNCTION rollout_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION rollout_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER rollout_fdw
  HANDLER rollout_fdw_handler
  VALIDATOR rollout_fdw_validator;

-- The credentials the current user's mapping for a server can see (USAGE on
-- the server is required, as for a foreign table).
CREATE FUNCTION rollout_fdw_credentials(server name,
    OUT id text, OUT label text, OUT app_key text, OUT created_at text)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

-- Counters per server since the cluster started (since this backend started
-- when rollout_fdw is not in shared_preload_libraries); writes nothing.
CREATE FUNCTION rollout_fdw_stats(
    OUT database text, OUT server text,
    OUT requests bigint, OUT responses_2xx bigint, OUT responses_3xx bigint,
    OUT responses_4xx bigint, OUT responses_5xx bigint,
    OUT network_errors bigint, OUT retries bigint, OUT rate_limited bigint,
    OUT throttled_ms double precision, OUT backoff_ms double precision,
    OUT bytes bigint, OUT last_error_at timestamptz,
    OUT last_error_status integer, OUT last_error_request text,
    OUT shared boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Every database's servers and their failures: for monitoring roles only.
REVOKE ALL ON FUNCTION rollout_fdw_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollout_fdw_stats() TO pg_read_all_stats;

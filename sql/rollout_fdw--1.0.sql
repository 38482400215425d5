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

-- The credentials the current user's mapping for a server can see.
CREATE FUNCTION rollout_fdw_credentials(server name,
    OUT id text, OUT label text, OUT app_key text, OUT created_at text)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

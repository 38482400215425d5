/* rollout_fdw--1.1.sql: the Rollout Universal CRM API as foreign tables
 *
 * What CREATE EXTENSION runs for 1.1.  rollout_fdw--1.0--1.1.sql takes a
 * 1.0 installation to the same objects (test/sql/upgrade.sql checks it).
 */

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

-- The version of the loaded library (e.g. 1.1.0), which can be newer than
-- the extension's SQL objects until ALTER EXTENSION rollout_fdw UPDATE.
CREATE FUNCTION rollout_fdw_version()
RETURNS text
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

-- The credentials a Rollout user can see: the current user's mapping's
-- user, or user_id (another than the mapping's own needs user_id '*' on the
-- mapping).  USAGE on the server is required, as for a foreign table.
CREATE FUNCTION rollout_fdw_credentials(server name, user_id text DEFAULT NULL,
    OUT id text, OUT label text, OUT app_key text, OUT created_at text)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

-- Whether a webhook body is genuine: its X-Rollout-Signature is the
-- HMAC-SHA256, keyed with the client secret of the caller's user mapping for
-- the server, of the raw body or of its base64 encoding (Rollout documents
-- both), written as hex or base64; compared in constant time.
CREATE FUNCTION rollout_fdw_verify_webhook(server name, body bytea,
    signature text)
RETURNS boolean
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT STABLE;

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
    OUT shared boolean, OUT users_skipped bigint, OUT tokens_minted bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Every database's servers and their failures: for monitoring roles only.
REVOKE ALL ON FUNCTION rollout_fdw_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollout_fdw_stats() TO pg_read_all_stats;

-- Every active scan of the cluster (of this backend when rollout_fdw is not
-- in shared_preload_libraries).  pid, database and role for everyone; the
-- rest only for the scan's role, roles it is a member of, and
-- pg_read_all_stats (as pg_stat_progress_* does); writes nothing.
CREATE FUNCTION rollout_fdw_scans(
    OUT pid integer, OUT datid oid, OUT userid oid,
    OUT server text, OUT relid oid, OUT foreign_table text,
    OUT resource text, OUT state text, OUT started timestamptz,
    OUT elapsed interval, OUT pages_done bigint, OUT pages_expected bigint,
    OUT rows bigint, OUT requests bigint, OUT retries bigint,
    OUT throttled interval, OUT remaining interval)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW rollout_fdw_progress AS
  SELECT s.pid, d.datname, r.rolname AS usename, s.server, s.foreign_table,
         s.resource, s.state, s.pages_done, s.pages_expected, s.rows,
         s.requests, s.retries, s.throttled, s.elapsed, s.remaining,
         s.started
  FROM rollout_fdw_scans() s
  LEFT JOIN pg_database d ON d.oid = s.datid
  LEFT JOIN pg_roles r ON r.oid = s.userid;

GRANT SELECT ON rollout_fdw_progress TO PUBLIC;

-- Tags applied to or removed from a person, and people added to or removed
-- from a list, by Rollout itself: POST /people/{id}/tags/apply|delete,
-- POST|DELETE /lists/{id}/people, through the table's server and the
-- caller's user mapping (UPDATE on the table is required).  No
-- read-then-rewrite: a concurrent change is kept.  Each returns the field
-- as Rollout holds it afterwards (the person's tags, the list's
-- peopleParticipantIds), NULL when the record does not exist.
CREATE FUNCTION rollout_fdw_apply_tags(tbl regclass, id text, tags text[])
RETURNS text[]
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION rollout_fdw_remove_tags(tbl regclass, id text, tags text[])
RETURNS text[]
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION rollout_fdw_add_to_list(tbl regclass, list_id text,
                                        person_ids text[])
RETURNS text[]
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION rollout_fdw_remove_from_list(tbl regclass, list_id text,
                                             person_ids text[])
RETURNS text[]
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

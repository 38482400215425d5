-- ===================================================================
-- upgrade: CREATE EXTENSION rollout_fdw VERSION '1.0', then ALTER
-- EXTENSION rollout_fdw UPDATE, ends with the same objects as a fresh
-- CREATE EXTENSION (each member's definition and privileges); a server
-- and a foreign table made at 1.0 keep working across the update, and the
-- 1.0 functions work with the newer library before it
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc

-- every member of the extension: what it is, its definition, its privileges
CREATE TEMP VIEW ext_members AS
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
       CASE d.classid
         WHEN 'pg_proc'::regclass THEN
           (SELECT pg_get_functiondef(p.oid) || ' acl ' || coalesce(p.proacl::text, '-')
            FROM pg_proc p WHERE p.oid = d.objid)
         WHEN 'pg_class'::regclass THEN
           (SELECT c.relkind::text || ' ' || pg_get_viewdef(c.oid) || ' acl ' || coalesce(c.relacl::text, '-')
            FROM pg_class c WHERE c.oid = d.objid)
         WHEN 'pg_foreign_data_wrapper'::regclass THEN
           (SELECT w.fdwhandler::regproc || ' ' || w.fdwvalidator::regproc || ' acl '
                   || coalesce(w.fdwacl::text, '-')
            FROM pg_foreign_data_wrapper w WHERE w.oid = d.objid)
         ELSE 'unchecked'
       END AS definition
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND e.extname = 'rollout_fdw'
  -- a view's row type and its array type: members of their own from
  -- PostgreSQL 17 on, part of the view before; the view stands for them
  AND NOT (d.classid = 'pg_type'::regclass AND EXISTS (
        SELECT FROM pg_type t LEFT JOIN pg_type el ON el.oid = t.typelem
        WHERE t.oid = d.objid AND (t.typrelid <> 0 OR coalesce(el.typrelid, 0) <> 0)));

-- a fresh install (setup.inc made it at the default version)
SELECT extversion FROM pg_extension WHERE extname = 'rollout_fdw';
CREATE TEMP TABLE fresh AS SELECT * FROM ext_members;
SELECT object FROM fresh ORDER BY 1;
SELECT count(*) AS unchecked FROM fresh WHERE definition = 'unchecked';

-- the library's version: the release whose first two numbers are the
-- extension's
SELECT rollout_fdw_version() LIKE extversion || '.%' AS library_matches
FROM pg_extension WHERE extname = 'rollout_fdw';

-- 1.0, as its users have it, with a server and a foreign table of theirs
SET client_min_messages = warning;
DROP EXTENSION rollout_fdw CASCADE;
RESET client_min_messages;
CREATE EXTENSION rollout_fdw VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'rollout_fdw';
SELECT object FROM ext_members ORDER BY 1;
CREATE SERVER rollout FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url :'emu_url', auth_url :'emu_url', client_id 'test-client',
           retry_base_ms '10', retry_max_ms '40', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id 'user-1');
CREATE FOREIGN TABLE people (
  id text, first_name text, last_name text, emails jsonb, tags text[],
  created timestamptz, updated timestamptz, average_price numeric,
  attrs jsonb OPTIONS (field '*')
) SERVER rollout OPTIONS (resource 'people');

-- the 1.0 functions, as 1.0 declared them, run by the newer library
-- (installed before ALTER EXTENSION ... UPDATE is run)
SELECT count(*) > 0 AS credentials FROM rollout_fdw_credentials('rollout');
SELECT count(*) AS credentials_of_null FROM rollout_fdw_credentials(NULL);
SELECT count(*) > 0 AS counted, bool_and(shared) AS shared
FROM rollout_fdw_stats() WHERE server = 'rollout';
SELECT id, first_name FROM people WHERE id = '12';

-- the update: the same objects as the fresh install, nothing more or less
ALTER EXTENSION rollout_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'rollout_fdw';
SELECT coalesce(f.object, u.object) AS object,
       CASE WHEN f.object IS NULL THEN 'only after the update'
            WHEN u.object IS NULL THEN 'only in a fresh install'
            ELSE 'different' END AS difference,
       f.definition AS fresh, u.definition AS updated
FROM fresh f FULL JOIN ext_members u ON u.object = f.object
WHERE f.definition IS DISTINCT FROM u.definition
ORDER BY 1;

-- the user's objects are kept and work with the new functions
SELECT id, first_name FROM people WHERE id = '12';
SELECT count(*) > 0 AS credentials FROM rollout_fdw_credentials('rollout', 'user-1');
SELECT bool_and(users_skipped >= 0) AS skipped, bool_and(tokens_minted >= 0) AS minted
FROM rollout_fdw_stats() WHERE server = 'rollout';

-- no update path past the newest version
ALTER EXTENSION rollout_fdw UPDATE;

DROP VIEW ext_members;
DROP TABLE fresh;
\i :abs_srcdir/sql/teardown.inc

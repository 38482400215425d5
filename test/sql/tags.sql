-- ===================================================================
-- tags: tags and list members changed by Rollout itself, with no
-- read-then-rewrite (rollout_fdw_apply_tags, rollout_fdw_remove_tags,
-- rollout_fdw_add_to_list, rollout_fdw_remove_from_list), and merge_tags
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
CREATE SCHEMA crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (lists, notes) FROM SERVER rollout INTO crm;

-- === apply: POST /people/{id}/tags/apply, then the tags as Rollout holds them
SELECT tags FROM people WHERE id = '11';
\! test/emu log-clear
SELECT rollout_fdw_apply_tags('people', '11', '{vip,"new lead",buyer}');
\! test/emu paths
\! test/emu bodies POST '.'

-- === remove: POST /people/{id}/tags/delete
SELECT rollout_fdw_remove_tags('people', '11', '{vip,absent}');
SELECT tags FROM people WHERE id = '11';

-- === one call per row; an empty array sends no change, only the read
\! test/emu log-clear
SELECT id, rollout_fdw_apply_tags('people', id, '{batch}') AS tags
FROM (VALUES ('12'), ('13')) AS v (id);
SELECT rollout_fdw_apply_tags('people', '12', '{}');
\! test/emu paths

-- === a person Rollout does not find: NULL, as an UPDATE finds no row;
-- === NULL arguments: NULL, nothing sent
\! test/emu log-clear
SELECT rollout_fdw_apply_tags('people', 'nobody', '{x}') IS NULL AS no_person;
SELECT rollout_fdw_apply_tags('people', NULL, '{x}') IS NULL AS no_id;
\! test/emu paths

-- === refused with nothing sent: a NULL tag, a collection without tag
-- === routes, a table that is not a foreign table of rollout_fdw
\! test/emu log-clear
SELECT error_text($$SELECT rollout_fdw_apply_tags('people', '11', '{a,NULL}')$$);
SELECT error_text($$SELECT rollout_fdw_apply_tags('crm.notes', '11', '{a}')$$);
SELECT error_text($$SELECT rollout_fdw_add_to_list('people', '11', '{11}')$$);
CREATE TABLE local_people (id text);
SELECT error_text($$SELECT rollout_fdw_apply_tags('local_people', '11', '{a}')$$);
DROP TABLE local_people;
\! test/emu count POST '.'

-- === the caller needs UPDATE on the table, and uses its own user mapping
CREATE ROLE regress_tagger;
GRANT SELECT ON people TO regress_tagger;
GRANT USAGE ON FOREIGN SERVER rollout TO regress_tagger;
CREATE USER MAPPING FOR regress_tagger SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id 'user-1');
SET ROLE regress_tagger;
SELECT error_text($$SELECT rollout_fdw_apply_tags('people', '11', '{x}')$$);
RESET ROLE;
GRANT UPDATE ON people TO regress_tagger;
SET ROLE regress_tagger;
SELECT rollout_fdw_apply_tags('people', '11', '{granted}');
RESET ROLE;
-- a mapping that is refused (401) fails as a scan would
ALTER USER MAPPING FOR regress_tagger SERVER rollout
  OPTIONS (SET client_secret 'wrong');
SET ROLE regress_tagger;
SELECT sqlstate_of($$SELECT rollout_fdw_apply_tags('people', '11', '{x}')$$);
RESET ROLE;
DROP USER MAPPING FOR regress_tagger SERVER rollout;
DROP OWNED BY regress_tagger;
DROP ROLE regress_tagger;

-- === list members: POST and DELETE /lists/{id}/people, then the list's people
SELECT id, people_participant_ids FROM crm.lists ORDER BY id;
\! test/emu log-clear
SELECT rollout_fdw_add_to_list('crm.lists', id, '{13,14}') AS people
FROM crm.lists WHERE name = 'Newsletter';
SELECT rollout_fdw_remove_from_list('crm.lists', id, '{11,14}') AS people
FROM crm.lists WHERE name = 'Newsletter';
\! test/emu bodies POST '/people$'
\! test/emu bodies DELETE '/people$'
SELECT rollout_fdw_add_to_list('crm.lists', 'no-such-list', '{11}') IS NULL
  AS no_list;

-- === merge_tags: UPDATE ... SET tags sends PUT ?mergeTags=true, which adds
-- === the tags to the person's instead of replacing them
CREATE FOREIGN TABLE people_merge (id text, tags text[])
  SERVER rollout OPTIONS (resource 'people', merge_tags 'true');
EXPLAIN (COSTS OFF) UPDATE people_merge SET tags = '{added}' WHERE id = '15';
SELECT tags FROM people_merge WHERE id = '15';
\! test/emu log-clear
UPDATE people_merge SET tags = '{added}' WHERE id = '15' RETURNING tags;
\! test/emu paths
-- without it, the tags are replaced
ALTER FOREIGN TABLE people_merge OPTIONS (SET merge_tags 'false');
UPDATE people_merge SET tags = '{only}' WHERE id = '15' RETURNING tags;
-- only people takes it; a boolean
SELECT error_text($$ALTER FOREIGN TABLE crm.notes OPTIONS (ADD merge_tags 'true')$$);
SELECT error_text($$ALTER FOREIGN TABLE people_merge OPTIONS (SET resource 'notes', SET merge_tags 'on')$$);
SELECT error_text($$ALTER FOREIGN TABLE people_merge OPTIONS (SET merge_tags 'maybe')$$);
DROP FOREIGN TABLE people_merge;

DROP SCHEMA crm CASCADE;

\i :abs_srcdir/sql/teardown.inc

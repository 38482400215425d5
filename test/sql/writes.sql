-- ===================================================================
-- writes: what the API accepts.  Fields only a request body takes are
-- columns of the imported tables; read-only fields (answered, accepted by
-- no create or update) are never sent
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
SET timezone = 'UTC';
CREATE SCHEMA crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people, teams, appointments, users)
  FROM SERVER rollout INTO crm;

-- === fields of the request schemas only are columns too
SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = 'crm'
  AND column_name IN ('name', 'rating', 'appointment_type_id',
                      'appointment_outcome_id', 'participating_office_ids')
ORDER BY 1, 2;

-- === ... and INSERT sends them; RETURNING reads them NULL, since Rollout's
-- === answers do not carry them (the emulator answers as the snapshot says)
\! test/emu log-clear
INSERT INTO crm.teams (name, email) VALUES ('Closers', 'closers@example.com')
RETURNING name, email;
INSERT INTO crm.appointments (person_id, appointment_type_id,
                              appointment_outcome_id, title, location)
VALUES ('11', 'type-1', 'outcome-2', 'Viewing', 'Main St 1')
RETURNING appointment_type_id, title;
INSERT INTO crm.people (first_name, last_name, rating)
VALUES ('Rita', 'Rated', 4.5)
RETURNING first_name, rating;
\! test/emu bodies POST '^/api/(teams|appointments|people)$'

-- === ... and UPDATE
\! test/emu log-clear
UPDATE crm.people SET rating = 3 WHERE id = '11';
UPDATE crm.users SET participating_office_ids = '{office-1,office-2}'
WHERE id = (SELECT min(id) FROM crm.users);
\! test/emu bodies PUT '.'

-- === an INSERT never sends a read-only field: its NULL columns are left
-- === out, a value is an error naming the column, with nothing sent
\! test/emu log-clear
INSERT INTO crm.people (first_name, last_name) VALUES ('Nora', 'Null');
SELECT error_text($$INSERT INTO crm.people (first_name, last_name, created)
                   VALUES ('Cre', 'Ated', now())$$);
SELECT sqlstate_of($$INSERT INTO crm.people (first_name, last_name, original)
                     VALUES ('Ori', 'Ginal', '{}')$$);
SELECT sqlstate_of($$INSERT INTO crm.people (first_name, last_name, name)
                     VALUES ('Na', 'Me', 'Na Me')$$);
\! test/emu count POST '.'
\! test/emu bodies POST '.'

-- === an UPDATE that sets a read-only column is an error, nothing sent;
-- === NULL included (Rollout cannot clear it either)
\! test/emu log-clear
SELECT error_text($$UPDATE crm.people SET updated = now() WHERE id = '11'$$);
SELECT sqlstate_of($$UPDATE crm.people SET created = NULL WHERE id = '11'$$);
SELECT sqlstate_of($$UPDATE crm.teams SET created = now()
                     WHERE id = (SELECT min(id) FROM crm.teams)$$);
\! test/emu count PUT '.'

-- === a field '*' value read back with the record carries read-only keys:
-- === they are left out, the others sent
\! test/emu log-clear
UPDATE crm.people SET attrs = attrs || '{"jobTitle": "Chef"}' WHERE id = '12';
\! test/emu key PUT '.' jobTitle
\! test/emu key PUT '.' created
\! test/emu key PUT '.' updated
\! test/emu key PUT '.' name
\! test/emu key PUT '.' original
\! test/emu key PUT '.' id
INSERT INTO crm.people (first_name, last_name, attrs)
VALUES ('Atta', 'Chment', '{"created": "2020-01-01T00:00:00Z", "source": "SQL"}');
\! test/emu bodies POST '.'

-- === a hand-written table: decided by the field path, whatever the name
CREATE FOREIGN TABLE people_fields (
  id text, first_name text, last_name text,
  made timestamptz OPTIONS (field 'created'),
  contact jsonb OPTIONS (field 'original.contact'),
  rated numeric OPTIONS (field 'rating')
) SERVER rollout OPTIONS (resource 'people');
SELECT error_text($$UPDATE people_fields SET made = now() WHERE id = '11'$$);
SELECT sqlstate_of($$UPDATE people_fields SET contact = '{}' WHERE id = '11'$$);
\! test/emu log-clear
UPDATE people_fields SET rated = 5 WHERE id = '11';
\! test/emu bodies PUT '.'
-- a collection the snapshot does not list has no read-only fields: sent
-- (here to a path the emulator does not serve: its 404)
ALTER FOREIGN TABLE people_fields OPTIONS (SET resource 'people-elsewhere');
\! test/emu log-clear
SELECT sqlstate_of($$INSERT INTO people_fields (first_name, last_name, made)
                     VALUES ('Else', 'Where', '2020-01-01')$$);
\! test/emu bodies POST '.'
DROP FOREIGN TABLE people_fields;

DROP SCHEMA crm CASCADE;

\i :abs_srcdir/sql/teardown.inc

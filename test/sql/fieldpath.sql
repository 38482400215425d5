-- ===================================================================
-- fieldpath: wildcard field paths (field 'emails[*].value') read one
-- value from each element of an array, as an SQL array; they are never
-- written.  And one odd value (a birthday without a year) does not break
-- the imported people table.
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
\! test/emu people '[{"id": 1, "emails": [], "phones": [{"value": "555-0100", "type": "mobile"}]}, {"id": 2, "emails": [{"value": "ada@example.com", "type": "work"}]}, {"id": 3, "emails": [{"value": "a@x.org"}, {"type": "home"}, {"value": null}, {"value": "b@x.org", "isPrimary": true}, null, "c@x.org", {"value": "d@x.org"}], "phones": []}, {"id": 4, "emails": null}, {"id": 5}, {"id": 6, "emails": [{"value": "Zoë@x.org", "n": {"k": 1}}, {"value": "\u00e9t\u00e9@x.org", "n": {"k": 2.50}}], "birthday": "--03-15"}]'

CREATE FOREIGN TABLE wild (
  id text, first_name text, last_name text,
  email_addresses text[] OPTIONS (field 'emails[*].value'),
  phone_numbers varchar(20)[] OPTIONS (field 'phones[*].value'),
  ks numeric[] OPTIONS (field 'emails[*].n.k'),
  emails jsonb
) SERVER rollout OPTIONS (resource 'people');

-- === 0, 1, several; missing or null values skipped; no array -> NULL
SELECT id, email_addresses, cardinality(email_addresses) AS n, phone_numbers, ks
FROM wild ORDER BY id::int;
-- the array column and the wildcard column over the same key, both read
SELECT id, jsonb_array_length(emails) AS elements, email_addresses
FROM wild WHERE id = '3';
-- what a user joins on
SELECT id FROM wild WHERE 'b@x.org' = ANY (email_addresses);

-- === not an array at the wildcard: an error saying where
\! test/emu people '[{"id": 9, "emails": {"value": "x@y.org"}}]'
SELECT email_addresses FROM wild;
\! test/emu people '[{"id": 9, "emails": "x@y.org"}]'
SELECT sqlstate_of('SELECT email_addresses FROM wild') AS not_an_array;
-- an element whose value does not convert: the column's own error
\! test/emu people '[{"id": 9, "emails": [{"n": {"k": "many"}}]}]'
SELECT ks FROM wild;

-- === the validator
CREATE FOREIGN TABLE bad (a text[] OPTIONS (field 'emails[*]')) SERVER rollout;
CREATE FOREIGN TABLE bad (a text[] OPTIONS (field '[*].value')) SERVER rollout;
CREATE FOREIGN TABLE bad (a text[] OPTIONS (field 'emails[*].value[*].x')) SERVER rollout;
CREATE FOREIGN TABLE bad (a text[] OPTIONS (field 'emails[*]x.value')) SERVER rollout;
CREATE FOREIGN TABLE bad (a text[] OPTIONS (field 'emails[*]..value')) SERVER rollout;
CREATE FOREIGN TABLE bad (a text[] OPTIONS (field 'emails[*].value.')) SERVER rollout;
-- only an array column reads a wildcard: said when the table is used
CREATE FOREIGN TABLE bad (id text, a text OPTIONS (field 'emails[*].value'))
  SERVER rollout OPTIONS (resource 'people');
SELECT a FROM bad;
SELECT id FROM bad LIMIT 1;
DROP FOREIGN TABLE bad;

-- === writes: never sent; a value is refused, NULL is left out
\! test/emu reset
\! test/emu log-clear
INSERT INTO wild (email_addresses) VALUES ('{a@b.org}');
INSERT INTO wild (id, first_name, last_name, emails, email_addresses)
VALUES (NULL, 'Ada', 'Lovelace', '[{"value": "new@b.org"}]', NULL)
RETURNING email_addresses, phone_numbers;
\! test/emu key POST '^/api/people$' emails
\! test/emu key POST '^/api/people$' email_addresses
\! test/emu key POST '^/api/people$' emailAddresses
UPDATE wild SET email_addresses = '{x@y.org}' WHERE 'new@b.org' = ANY (email_addresses);
UPDATE wild SET email_addresses = NULL, emails = '[{"value": "newer@b.org"}]'
WHERE 'new@b.org' = ANY (email_addresses) RETURNING email_addresses;
\! test/emu key PUT '^/api/people/' emails
DELETE FROM wild WHERE 'newer@b.org' = ANY (email_addresses) RETURNING email_addresses;
DROP FOREIGN TABLE wild;

-- === the imported people table: the wildcard columns, a year-less birthday
CREATE SCHEMA crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout INTO crm;
SELECT attname, format_type(atttypid, atttypmod) AS type, attfdwoptions
FROM pg_attribute
WHERE attrelid = 'crm.people'::regclass
  AND attname IN ('emails', 'email_addresses', 'phones', 'phone_numbers', 'birthday')
ORDER BY attnum;
\! test/emu people '[{"id": 21, "firstName": "Ada", "emails": [{"value": "ada@example.com"}, {"value": "ada@work.example"}], "phones": [{"value": "555-0100"}], "birthday": "--03-15"}, {"id": 22, "firstName": "Bob", "birthday": "1990-05-12"}]'
SELECT id, first_name, email_addresses, phone_numbers, birthday
FROM crm.people ORDER BY id;
SELECT count(*) AS rows, sqlstate_of('SELECT p::text FROM crm.people p') AS whole_rows_convert
FROM crm.people p;
DROP SCHEMA crm CASCADE;

\i :abs_srcdir/sql/teardown.inc

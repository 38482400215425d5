-- The rollout_fdw demo: CRM people in SQL, joined with the app's own table.
-- Connection facts come from the environment (see scripts/demo.sh).
\getenv api_url DEMO_API_URL
\getenv auth_url DEMO_AUTH_URL
\getenv client_id DEMO_CLIENT_ID
\getenv secret DEMO_SECRET
\getenv user_id DEMO_USER_ID
\getenv credential_id DEMO_CREDENTIAL_ID

\echo '== 1. the extension, a server for the Rollout tenant, a user mapping'
CREATE EXTENSION rollout_fdw;
CREATE SERVER rollout FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url :'api_url', auth_url :'auth_url', client_id :'client_id');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout
  OPTIONS (client_secret :'secret', user_id :'user_id');
SELECT :'credential_id' <> '' AS has_credential \gset
\if :has_credential
ALTER USER MAPPING FOR CURRENT_USER SERVER rollout
  OPTIONS (ADD credential_id :'credential_id');
\endif

\echo '== 2. the credentials this mapping can use'
SELECT id, label, app_key FROM rollout_fdw_credentials('rollout');

\echo '== 3. IMPORT FOREIGN SCHEMA crm: a typed crm.people table'
CREATE SCHEMA crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER rollout INTO crm;
SELECT count(*) AS crm_people FROM crm.people;

\echo '== 4. the app''s own table: subscriptions of some CRM people'
CREATE TABLE subscriptions (person_id text PRIMARY KEY, plan text, mrr numeric);
INSERT INTO subscriptions
SELECT id, (ARRAY['starter', 'team', 'enterprise'])[1 + (row_number() OVER ()) % 3],
       (ARRAY[49, 199, 990])[1 + (row_number() OVER ()) % 3]
FROM (SELECT id FROM crm.people ORDER BY id LIMIT 5) p;

\echo '== 5. the join: who pays what, with their CRM stage and primary email'
SELECT s.plan, s.mrr, p.first_name, p.last_name, p.stage,
       p.emails->0->>'value' AS email
FROM subscriptions s
JOIN crm.people p ON p.id = s.person_id
ORDER BY s.mrr DESC, p.last_name;

\echo '== 6. one person by id: a single GET /people/{id}'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT first_name FROM crm.people WHERE id = (SELECT min(person_id) FROM subscriptions);

\echo '== 7. a CRM snapshot kept fresh: a materialized view refreshed by pg_cron'
CREATE MATERIALIZED VIEW crm_snapshot AS
  SELECT id, first_name, last_name, stage, tags, updated FROM crm.people;
CREATE UNIQUE INDEX ON crm_snapshot (id);
CREATE EXTENSION pg_cron;
SELECT cron.schedule('refresh-crm-snapshot', '*/5 * * * *',
                     'REFRESH MATERIALIZED VIEW CONCURRENTLY crm_snapshot') AS job_id;
SELECT jobname, schedule, command FROM cron.job;
REFRESH MATERIALIZED VIEW CONCURRENTLY crm_snapshot;
SELECT count(*) AS people_in_snapshot FROM crm_snapshot;

\echo '== 8. a new CRM person: INSERT ... RETURNING the id Rollout assigned'
INSERT INTO crm.people (first_name, last_name, emails, tags)
VALUES ('Ada', 'Lovelace', '[{"value": "ada@example.com", "type": "work"}]', '{demo}')
RETURNING id, name, stage, tags;

\echo '== 9. and gone again: DELETE by any WHERE'
DELETE FROM crm.people WHERE 'demo' = ANY (tags) RETURNING id, name;

-- ===================================================================
-- webhook: rollout_fdw_verify_webhook(server, body, signature), checked
-- against pgcrypto's HMAC (an implementation that is not ours): the raw
-- body or its base64, the digest in hex or base64, constant-time compare
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
CREATE SCHEMA ref;
CREATE EXTENSION pgcrypto SCHEMA ref;
CREATE TABLE hooks (name text, body bytea);
INSERT INTO hooks VALUES
  ('people', convert_to('{"eventId":"e-1","event":"peopleCreated","resourceIds":["p-1"]}', 'UTF8')),
  ('empty', ''::bytea),
  ('binary', '\x00ff10c3a9'::bytea);

-- the four ways Rollout may sign: hex or base64 of the HMAC of the raw body
-- or of its base64 encoding (one line: encode() wraps at 76 characters, the
-- sender does not); each verifies
SELECT name,
  rollout_fdw_verify_webhook('rollout', body,
    encode(ref.hmac(body, 'test-secret', 'sha256'), 'hex')) AS raw_hex,
  rollout_fdw_verify_webhook('rollout', body,
    encode(ref.hmac(body, 'test-secret', 'sha256'), 'base64')) AS raw_base64,
  rollout_fdw_verify_webhook('rollout', body,
    encode(ref.hmac(convert_to(translate(encode(body, 'base64'), E'\n', ''), 'UTF8'), 'test-secret', 'sha256'), 'hex')) AS b64_hex,
  rollout_fdw_verify_webhook('rollout', body,
    encode(ref.hmac(convert_to(translate(encode(body, 'base64'), E'\n', ''), 'UTF8'), 'test-secret', 'sha256'), 'base64')) AS b64_base64
FROM hooks ORDER BY name;

-- hex in capitals, base64 without its padding, spaces around: still the digest
SELECT
  rollout_fdw_verify_webhook('rollout', body,
    upper(encode(ref.hmac(body, 'test-secret', 'sha256'), 'hex'))) AS upper_hex,
  rollout_fdw_verify_webhook('rollout', body,
    rtrim(encode(ref.hmac(body, 'test-secret', 'sha256'), 'base64'), '=')) AS unpadded,
  rollout_fdw_verify_webhook('rollout', body,
    ' ' || encode(ref.hmac(body, 'test-secret', 'sha256'), 'hex') || E'\r\n') AS spaced
FROM hooks WHERE name = 'people';

-- what must not verify: another secret, a changed body, a cut or altered
-- digest, a digest of another hash, garbage, the empty string
SELECT
  rollout_fdw_verify_webhook('rollout', body,
    encode(ref.hmac(body, 'other-secret', 'sha256'), 'hex')) AS other_secret,
  rollout_fdw_verify_webhook('rollout', body || '\x20'::bytea,
    encode(ref.hmac(body, 'test-secret', 'sha256'), 'hex')) AS changed_body,
  rollout_fdw_verify_webhook('rollout', body,
    left(encode(ref.hmac(body, 'test-secret', 'sha256'), 'hex'), 63)) AS cut,
  rollout_fdw_verify_webhook('rollout', body,
    overlay(encode(ref.hmac(body, 'test-secret', 'sha256'), 'hex') placing
      (CASE WHEN substr(encode(ref.hmac(body, 'test-secret', 'sha256'), 'hex'), 64, 1) = '0'
            THEN '1' ELSE '0' END) from 64 for 1)) AS last_digit,
  rollout_fdw_verify_webhook('rollout', body,
    encode(ref.hmac(body, 'test-secret', 'sha1'), 'hex')) AS sha1,
  rollout_fdw_verify_webhook('rollout', body,
    encode(ref.hmac(body, 'test-secret', 'sha512'), 'hex')) AS sha512,
  rollout_fdw_verify_webhook('rollout', body, 'sha256=zz') AS garbage,
  rollout_fdw_verify_webhook('rollout', body, repeat('g', 64)) AS not_hex,
  rollout_fdw_verify_webhook('rollout', body, repeat('A', 43) || '*') AS not_base64,
  rollout_fdw_verify_webhook('rollout', body, '') AS empty
FROM hooks WHERE name = 'people';

-- NULL in, NULL out (STRICT)
SELECT rollout_fdw_verify_webhook('rollout', NULL, 'x') IS NULL AS null_body,
       rollout_fdw_verify_webhook('rollout', 'x', NULL) IS NULL AS null_signature;

-- the secret is the caller's mapping's: another role with another secret
-- verifies with its own, and sends no request either way
CREATE ROLE regress_hook_other;
GRANT USAGE ON FOREIGN SERVER rollout TO regress_hook_other;
CREATE USER MAPPING FOR regress_hook_other SERVER rollout
  OPTIONS (client_secret 'other-secret', user_id 'user-2');
GRANT USAGE ON SCHEMA ref TO regress_hook_other;
GRANT SELECT ON hooks TO regress_hook_other;
\! test/emu log-clear
SET ROLE regress_hook_other;
SELECT
  rollout_fdw_verify_webhook('rollout', body,
    encode(ref.hmac(body, 'other-secret', 'sha256'), 'hex')) AS own_secret,
  rollout_fdw_verify_webhook('rollout', body,
    encode(ref.hmac(body, 'test-secret', 'sha256'), 'hex')) AS another_mapping_secret
FROM hooks WHERE name = 'people';
RESET ROLE;
\! test/emu paths

-- errors: no USAGE on the server, no mapping, a server of another wrapper,
-- an unknown server; no message shows the secret
CREATE ROLE regress_hook_nousage;
SET ROLE regress_hook_nousage;
SELECT error_text($$SELECT rollout_fdw_verify_webhook('rollout', 'x', 'y')$$);
RESET ROLE;
CREATE ROLE regress_hook_nomap;
GRANT USAGE ON FOREIGN SERVER rollout TO regress_hook_nomap;
SET ROLE regress_hook_nomap;
-- (PostgreSQL's own message, which names the server too from 17 on)
SELECT regexp_replace(error_text($$SELECT rollout_fdw_verify_webhook('rollout', 'x', 'y')$$),
                      'not found for user ("[^"]*"), server "[^"]*"', 'not found for \1')
       AS error_text;
RESET ROLE;
CREATE FOREIGN DATA WRAPPER regress_other_fdw;
CREATE SERVER regress_other FOREIGN DATA WRAPPER regress_other_fdw;
SELECT error_text($$SELECT rollout_fdw_verify_webhook('regress_other', 'x', 'y')$$);
SELECT error_text($$SELECT rollout_fdw_verify_webhook('nosuch', 'x', 'y')$$);

DROP SERVER regress_other;
DROP FOREIGN DATA WRAPPER regress_other_fdw;
DROP USER MAPPING FOR regress_hook_other SERVER rollout;
REVOKE USAGE ON FOREIGN SERVER rollout FROM regress_hook_other, regress_hook_nomap;
REVOKE ALL ON SCHEMA ref FROM regress_hook_other;
REVOKE ALL ON hooks FROM regress_hook_other;
DROP ROLE regress_hook_other, regress_hook_nousage, regress_hook_nomap;
DROP TABLE hooks;
DROP EXTENSION pgcrypto;
DROP SCHEMA ref;
\i :abs_srcdir/sql/teardown.inc

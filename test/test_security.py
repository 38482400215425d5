"""Security you can audit: the client secret and the JWT never reach client
output or the server log (at log_min_messages = debug5, with debug_print_plan,
EXPLAIN VERBOSE and provoked errors); other roles cannot read a mapping's
options; redirects are not followed; ids are percent-encoded in URLs; TLS is
verified, with a superuser's ca_file."""

import os
import re
import shutil
import subprocess
import tempfile
import time

from lib import (API, EMU, Checker, fault, log, make_db, psql, psql_script, reset,
                 server_log_text)

DB = "rollout_security"
SECRET = "test-secret"          # the emulator's secret for test-client
OTHER_SECRET = "s3cr3t-Rollout-Client-Key-42"   # of a client it does not know
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")
c = Checker()
reset()



# === the secret and the token never show: debug5 logs, plans, errors
psql(f"DROP DATABASE IF EXISTS {DB}")
psql(f"CREATE DATABASE {DB}")
log_before = len(server_log_text())
script = f"""
\\set VERBOSITY verbose
SET log_min_messages = debug5;
SET client_min_messages = debug5;
SET debug_print_plan = on;
SET log_statement = 'none';
CREATE EXTENSION rollout_fdw;
CREATE SERVER rollout FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url '{API}', auth_url '{API}', client_id 'test-client',
           retry_base_ms '10', retry_max_ms '20', max_retries '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout
  OPTIONS (client_secret '{SECRET}', user_id 'user-1');
CREATE FOREIGN TABLE people (id text, first_name text) SERVER rollout;
CREATE SERVER unknown FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url '{API}', auth_url '{API}', client_id 'unknown-client');
CREATE USER MAPPING FOR CURRENT_USER SERVER unknown
  OPTIONS (client_secret '{OTHER_SECRET}', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE unknown_people (id text) SERVER unknown OPTIONS (resource 'people');
SELECT count(*) FROM people;
SELECT first_name FROM people WHERE id = '11';
EXPLAIN (VERBOSE, ANALYZE) SELECT * FROM people WHERE id = '12';
SELECT * FROM rollout_fdw_credentials('rollout');
\\set ON_ERROR_STOP 0
SELECT * FROM unknown_people;
ALTER USER MAPPING FOR CURRENT_USER SERVER rollout OPTIONS (SET credential_id 'cred-2');
SELECT count(*) FROM people;
ALTER USER MAPPING FOR CURRENT_USER SERVER rollout OPTIONS (SET credential_id 'cred-1');
SELECT count(*) FROM people WHERE id = 'x' || (SELECT 1/0)::text;
"""
# the emulator must know this client's secret: a second emulator client id
env = dict(os.environ)
proc = subprocess.run(["psql", "-X", "-d", DB], input=script, capture_output=True,
                      text=True, env=env, timeout=120)
client = proc.stdout + proc.stderr
time.sleep(0.5)
server = server_log_text()[log_before:]
c.check("the scripted statements ran (401 from an unknown issuer is expected)",
        "HTTP 401" in client, client[-300:])
c.check("debug5 output reached the client", "DEBUG:" in client)
c.check("the scans succeeded", "Isabella" in client, client[-300:])
c.check("no client secret in client output",
        SECRET not in client and OTHER_SECRET not in client)
c.check("no JWT in client output", not JWT.search(client))
c.check("no Authorization header in client output", "Bearer" not in client)
c.check("the server log was read", len(server) > 1000, str(len(server)))
c.check("no client secret in the server log",
        SECRET not in server and OTHER_SECRET not in server)
c.check("no JWT in the server log", not JWT.search(server))
c.check("no Authorization header in the server log", "Bearer" not in server)
c.check("no upstream credential data (credentials' data) anywhere",
        "upstream-secret-do-not-leak" not in client + server)

# === other roles cannot read a mapping's options
rc, out, err, _ = psql_script("""
CREATE ROLE rollout_other;
SET ROLE rollout_other;
SELECT umoptions IS NULL FROM pg_user_mappings WHERE srvname = 'rollout';
RESET ROLE;
DROP ROLE rollout_other;
""", DB)
c.check("pg_user_mappings hides the mapping's options from other roles",
        rc == 0 and "t" in out.splitlines(), out + err)

# === ids and filter values are percent-encoded in the URL
make_db("rollout_security2", "retry_base_ms '10', retry_max_ms '20'")
reset()
psql("SELECT * FROM people WHERE id = '../credentials'", "rollout_security2")
psql("SELECT count(*) FROM people WHERE 'a&b=c/d' = ANY (tags)", "rollout_security2")
paths = [(r["path"], r["query"]) for r in log()]
c.check("WHERE id = '../credentials' reaches /people/..%2Fcredentials",
        ("/api/people/..%2Fcredentials", "") in paths or
        any(p == "/api/people/..%2Fcredentials" for p, _ in paths), str(paths))
c.check("a tags value is encoded", any("tags=a%26b%3Dc%2Fd" in (q or "") for _, q in paths),
        str(paths))

# === redirects are not followed
reset()
fault(path="^/api/people$", status=302, headers={"Location": "http://127.0.0.2:9/steal"})
rc, out, err, _ = psql("SELECT count(*) FROM people", "rollout_security2")
c.check("a redirect is an error, not followed", rc != 0 and "HTTP 302" in err, err)
reset()

# === TLS: verified by default, a superuser's ca_file, a wrong CA fails
work = tempfile.mkdtemp()
os.chmod(work, 0o755)


def openssl(*a):
    subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=work)


for ca in ("ca", "otherca"):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
            "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=rollout test {ca}")
openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1")
with open(os.path.join(work, "ext.cnf"), "w") as f:
    f.write("subjectAltName=IP:127.0.0.1\n")
openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
for f in os.listdir(work):
    os.chmod(os.path.join(work, f), 0o644)
port_file = os.path.join(work, "port")
tls = subprocess.Popen(["python3", os.path.join(os.path.dirname(__file__), "emulator.py"),
                        "--port", "0", "--port-file", port_file, "--quiet",
                        "--tls-cert", os.path.join(work, "srv.pem"),
                        "--tls-key", os.path.join(work, "srv.key")])
for _ in range(100):
    if os.path.exists(port_file):
        break
    time.sleep(0.1)
https = f"https://127.0.0.1:{open(port_file).read().strip()}/api"
psql_script(f"""
CREATE SERVER tls FOREIGN DATA WRAPPER rollout_fdw OPTIONS (
  api_url '{https}', auth_url '{https}', client_id 'test-client', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls OPTIONS (
  client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE tls_people (id text) SERVER tls OPTIONS (resource 'people');
""", "rollout_security2")
rc, out, err, _ = psql("SELECT count(*) FROM tls_people", "rollout_security2")
c.check("verification is on by default: the test CA is not trusted",
        rc != 0 and ("certificate" in err.lower() or "SSL" in err), err)
psql(f"ALTER SERVER tls OPTIONS (ADD ca_file '{work}/otherca.pem')", "rollout_security2")
rc, out, err, _ = psql("SELECT count(*) FROM tls_people", "rollout_security2")
c.check("a wrong CA fails", rc != 0 and ("certificate" in err.lower() or "SSL" in err), err)
psql(f"ALTER SERVER tls OPTIONS (SET ca_file '{work}/ca.pem')", "rollout_security2")
rc, out, err, _ = psql("SELECT count(*) FROM tls_people", "rollout_security2")
c.check("the right CA works", rc == 0 and out == "25", out + err)
tls.terminate()
tls.wait()
shutil.rmtree(work)

# === item 14: upstream text is redacted of tokens before it reaches a message
reset()
log_before = len(server_log_text())
fault(path="^/api/people$", echo_headers=True, times=1)
rc, out, err, _ = psql("SET log_min_messages = 'error'; SET log_min_error_statement = 'error'; "
                       "SELECT count(*) FROM people", "rollout_security2")
MINTED = ("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ0ZXN0LWNsaWVudCJ9."
          "c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1hYmNkZWZnaGlqaw")
fault(path="^/api/people$", status=500, times=10,
      body=f"<html>upstream proxy error; token {MINTED}; Authorization: Bearer opaque-123</html>")
rc2, out2, err2, _ = psql("SELECT count(*) FROM people", "rollout_security2")
fault(path="^/api/people/13$", status=422, times=1,
      body='{"errorMessage": "bad token bearer  abc.def-ghi_jkl"}')
rc3, out3, err3, _ = psql("SELECT count(*) FROM people WHERE id = '13'", "rollout_security2")
time.sleep(0.5)
server = server_log_text()[log_before:]
c.check("an error body echoing the headers is reported (DETAIL kept)",
        rc != 0 and "HTTP 400" in err and "rejected request with headers" in err, err)
c.check("no JWT, Bearer or minted token in client output",
        not JWT.search(err + err2 + err3) and MINTED not in err2 and
        "bearer " not in (err + err2 + err3).lower() and "opaque-123" not in err2 and
        "abc.def-ghi_jkl" not in err3, err + err2 + err3)
c.check("the redaction is visible", "[redacted]" in err and "[redacted]" in err2, err + err2)
c.check("no JWT, Bearer or minted token in the server log",
        not JWT.search(server) and MINTED not in server and "Bearer " not in server and
        "opaque-123" not in server, server[-500:])
reset()

# === item 15: CR/LF in credential_id (option or /credentials) sends nothing
reset()
rc, out, err, _ = psql("ALTER USER MAPPING FOR CURRENT_USER SERVER rollout "
                       "OPTIONS (SET credential_id E'cred-1\\r\\nHost: evil.example')",
                       "rollout_security2")
if rc == 0:
    reset()
    rc, out, err, _ = psql("SELECT count(*) FROM people", "rollout_security2")
    c.check("credential_id with CR/LF: error naming the option, nothing sent",
            rc != 0 and "credential_id" in err and log() == [], err + str(log()))
else:
    c.check("credential_id with CR/LF refused by the validator", "credential_id" in err, err)
psql("ALTER USER MAPPING FOR CURRENT_USER SERVER rollout OPTIONS (DROP credential_id)",
     "rollout_security2")
reset()
fault(path="^/api/credentials$", status=200,
      body='[{"id": "cred-1\\r\\nHost: evil.example", "label": "x"}]')
rc, out, err, _ = psql("SELECT count(*) FROM people", "rollout_security2")
sent = [r for r in log() if r["path"] == "/api/people"]
c.check("a discovered credential id with CR/LF: error naming /credentials, nothing sent",
        rc != 0 and "/credentials" in err and sent == [], err + str(sent))
psql("ALTER USER MAPPING FOR CURRENT_USER SERVER rollout OPTIONS (ADD credential_id 'cred-1')",
     "rollout_security2")
reset()

# === item 16: rollout_fdw_stats() is not for PUBLIC, and keeps no values
reset()
fault(path="^/api/people$", status=500)
psql("SELECT count(*) FROM people WHERE 'zoe.secret@example.com' = ANY (tags)",
     "rollout_security2")
fault(path="^/api/people/", status=500)
psql("SELECT count(*) FROM people WHERE id = 'secret-id-4242'", "rollout_security2")
reset()
_, out, err, _ = psql("SELECT string_agg(last_error_request, ' | ') FROM rollout_fdw_stats()",
                      "rollout_security2")
c.check("last_error_request keeps no filter value or id",
        "zoe.secret" not in out and "secret-id-4242" not in out and "{" in out, out + err)
rc, out, err, _ = psql_script("""
CREATE ROLE rollout_nobody;
CREATE ROLE rollout_monitor IN ROLE pg_monitor;
\\set ON_ERROR_STOP 0
SET ROLE rollout_nobody;
SELECT count(*) >= 0 FROM rollout_fdw_stats();
RESET ROLE;
SET ROLE rollout_monitor;
SELECT 'monitor:' || (count(*) > 0)::text FROM rollout_fdw_stats();
RESET ROLE;
""", "rollout_security2")
c.check("PUBLIC cannot execute rollout_fdw_stats()", "permission denied" in err, out + err)
c.check("pg_monitor can", "monitor:true" in out, out + err)

# rollout_fdw_credentials() checks USAGE on the server
rc, out, err, _ = psql_script("""
CREATE USER MAPPING FOR rollout_nobody SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id 'user-1');
GRANT USAGE ON FOREIGN SERVER rollout TO rollout_monitor;
CREATE USER MAPPING FOR rollout_monitor SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id 'user-1');
\\set ON_ERROR_STOP 0
SET ROLE rollout_nobody;
SELECT count(*) FROM rollout_fdw_credentials('rollout');
RESET ROLE;
SET ROLE rollout_monitor;
SELECT 'creds:' || count(*) FROM rollout_fdw_credentials('rollout');
RESET ROLE;
""", "rollout_security2")
c.check("rollout_fdw_credentials() needs USAGE on the server",
        "permission denied for foreign server rollout" in err, out + err)
c.check("with USAGE it lists the credentials", "creds:" in out, out + err)
# a look-alike handler named rollout_fdw_handler is not ours
rc, out, err, _ = psql_script("""
CREATE SCHEMA lookalike;
CREATE FUNCTION lookalike.rollout_fdw_handler() RETURNS fdw_handler
  AS 'file_fdw', 'file_fdw_handler' LANGUAGE C STRICT;
CREATE FOREIGN DATA WRAPPER lookalike HANDLER lookalike.rollout_fdw_handler;
CREATE SERVER lookalike FOREIGN DATA WRAPPER lookalike;
CREATE USER MAPPING FOR CURRENT_USER SERVER lookalike;
\\set ON_ERROR_STOP 0
SELECT * FROM rollout_fdw_credentials('lookalike');
""", "rollout_security2")
c.check("a look-alike handler's server is refused by function, not name",
        'server "lookalike" does not use rollout_fdw' in err, out + err)
psql_script("""
DROP USER MAPPING FOR rollout_nobody SERVER rollout;
DROP USER MAPPING FOR rollout_monitor SERVER rollout;
REVOKE USAGE ON FOREIGN SERVER rollout FROM rollout_monitor;
DROP ROLE rollout_nobody;
DROP ROLE rollout_monitor;
""", "rollout_security2")

psql(f"DROP DATABASE {DB}")
psql("DROP DATABASE rollout_security2")
c.finish()

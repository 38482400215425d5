"""Helpers for the integration scripts of test/: psql sessions against the
throwaway cluster (PGHOST/PGPORT from pg_virtualenv), the emulator's admin
interface (ROLLOUT_EMU_BASE), and a checker that prints "N passed, N failed".
Python standard library only."""

import glob
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

EMU = os.environ.get("ROLLOUT_EMU_BASE", "")
API = EMU + "/api"


def admin(method, path, body=None):
    """Call the emulator's admin interface; returns the decoded JSON or None."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(EMU + "/_admin/" + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    return json.loads(text) if text.strip() else None


def reset(**kw):
    admin("POST", "reset", kw or {})


def fault(**rule):
    admin("POST", "faults/add", rule)


def log():
    return admin("GET", "log")


def requests_to(path_regex, method="GET"):
    import re
    return [r for r in log() if r["method"] == method and re.search(path_regex, r["path"])]


def psql(sql, db="postgres", timeout=120, app="rollout_test"):
    """Run SQL with psql; returns (rc, stdout, stderr, seconds)."""
    env = dict(os.environ, PGAPPNAME=app)
    start = time.monotonic()
    p = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                       capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.strip(), p.stderr.strip(), time.monotonic() - start


def sql_out(sql, db):
    """Run one statement; its output, or RuntimeError with psql's message."""
    rc, out, err, _ = psql(sql, db)
    if rc != 0:
        raise RuntimeError(f"{sql}: {err}")
    return out


def psql_script(sql, db="postgres", timeout=120):
    """Run a multi-statement script through stdin (one session)."""
    start = time.monotonic()
    p = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db],
                       input=sql, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout.strip(), p.stderr.strip(), time.monotonic() - start


def start_waiting_session(sql, db, app, ready):
    """Start sql in a session of its own; return (process, backend pid) once
    the backend is active and ready() says its request has gone out."""
    proc = subprocess.Popen(["psql", "-X", "-At", "-d", db, "-c", sql],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PGAPPNAME=app))
    pid = ""
    for _ in range(100):
        _, pid, _, _ = psql(f"SELECT pid FROM pg_stat_activity WHERE application_name = "
                            f"'{app}' AND state = 'active'")
        if pid and ready():
            break
        time.sleep(0.05)
    time.sleep(0.3)
    return proc, pid


def readme_sql(heading):
    """The ```sql blocks of the README's section `heading` (its subsections
    included), in order: tests that run a README recipe run it as written."""
    level = len(heading) - len(heading.lstrip("#"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "README.md")) as f:
        lines = f.read().splitlines()
    start = lines.index(heading)
    blocks, block, fence = [], None, False
    for line in lines[start + 1:]:
        if not fence and line.startswith("#") and \
                len(line) - len(line.lstrip("#")) <= level:
            break
        if line.startswith("```"):
            fence = not fence
            if fence and line.strip() == "```sql":
                block = []
            elif not fence and block is not None:
                blocks.append("\n".join(block) + "\n")
                block = None
        elif block is not None:
            block.append(line)
    return blocks


def readme_block(heading, marker):
    """The one SQL block of the README's section `heading` holding marker."""
    found = [b for b in readme_sql(heading) if marker in b]
    if len(found) != 1:
        raise RuntimeError(f"README {heading!r}: {len(found)} SQL blocks hold {marker!r}")
    return found[0]


def make_db(name, server_options="", table_options=""):
    """A fresh database with the extension, a server on the emulator and a
    people table."""
    psql(f"DROP DATABASE IF EXISTS {name}")
    rc, out, err, _ = psql(f"CREATE DATABASE {name}")
    if rc != 0:
        raise RuntimeError(err)
    opts = f"api_url '{API}', auth_url '{API}', client_id 'test-client'"
    if server_options:
        opts += ", " + server_options
    script = f"""
CREATE EXTENSION rollout_fdw;
CREATE SERVER rollout FOREIGN DATA WRAPPER rollout_fdw OPTIONS ({opts});
CREATE USER MAPPING FOR CURRENT_USER SERVER rollout
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE people (id text, first_name text, last_name text,
  tags text[], attrs jsonb OPTIONS (field '*'))
  SERVER rollout OPTIONS (resource 'people'{', ' + table_options if table_options else ''});
CREATE FUNCTION sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $f$;
"""
    rc, out, err, _ = psql_script(script, db=name)
    if rc != 0:
        raise RuntimeError(err)


def server_log_text():
    """The server log so far (pg_virtualenv writes it under its temp dir)."""
    _, path, _, _ = psql("SELECT pg_current_logfile()")
    files = [path] if path and os.path.exists(path) else []
    if not files:
        _, datadir, _, _ = psql("SHOW data_directory")
        files = glob.glob(os.path.join(os.path.dirname(datadir), "log", "*.log"))
        files += glob.glob("/tmp/pg_virtualenv.*/log/*.log")
    return "".join(open(f, errors="replace").read() for f in files if os.path.exists(f))


def rss_anon_kb(pid):
    """A process's anonymous resident memory, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def measured_query(sql, db, warmup="SELECT 1", interval=0.02):
    """Run sql in a fresh session after warmup, sampling the backend's
    anonymous RSS; returns (seconds, first output line, KB grown at peak)."""
    proc = subprocess.Popen(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write("SELECT pg_backend_pid();\n" + warmup + ";\n")
    proc.stdin.flush()
    pid = int(proc.stdout.readline())
    proc.stdout.readline()
    base = rss_anon_kb(pid)
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_kb(pid))
            time.sleep(interval)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    proc.stdin.write(sql + ";\n")
    proc.stdin.flush()
    line = proc.stdout.readline().strip()
    secs = time.monotonic() - start
    done.set()
    sampler.join()
    proc.stdin.close()
    proc.wait()
    return secs, line, peak[0] - base


class Checker:
    """Counts checks; prints each failure and the closing line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, info=""):
        if ok:
            self.passed += 1
            print(f"ok     {name}")
        else:
            self.failed += 1
            print(f"FAILED {name} {info}")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)

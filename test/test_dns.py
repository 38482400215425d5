"""Name resolution never holds a backend: with a resolver that never answers,
statement_timeout, pg_cancel_backend and connect_timeout_ms end the wait on
time.

The black hole: a UDP server on 127.0.0.77:53 that reads queries and never
answers, and a cluster of its own started inside a private mount namespace
(unshare -m) where /etc/resolv.conf is bind-mounted to name only that
server (timeout 30 s, one attempt).  The machine's own resolv.conf is never
touched.  Needs root (as the test command runs)."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from lib import Checker

c = Checker()
BLACKHOLE = "127.0.0.77"

if os.geteuid() != 0 or shutil.which("unshare") is None:
    print("needs root and unshare(1)")
    c.check("can run the DNS black-hole test", False)
    c.finish()

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((BLACKHOLE, 53))
swallowed = []


def swallow():
    while True:
        try:
            swallowed.append(sock.recvfrom(4096)[0])
        except OSError:
            return


threading.Thread(target=swallow, daemon=True).start()

bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
work = tempfile.mkdtemp()
os.chmod(work, 0o777)
with open(os.path.join(work, "resolv.conf"), "w") as f:
    f.write(f"nameserver {BLACKHOLE}\noptions timeout:30 attempts:1\n")
os.chmod(os.path.join(work, "resolv.conf"), 0o644)
port = str(21000 + os.getpid() % 9000)


def as_pg(cmd):
    return subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", cmd],
                          capture_output=True, text=True, timeout=120)


as_pg(f"{bindir}/initdb -D {work}/data -A trust -U postgres")
start = subprocess.run(
    ["unshare", "-m", "--propagation", "private", "sh", "-c",
     f"mount --bind {work}/resolv.conf /etc/resolv.conf && "
     f"su postgres -s /bin/sh -c \"{bindir}/pg_ctl -D {work}/data -w -l {work}/log "
     f"-o \\\"-p {port} -k {work} -c listen_addresses=''\\\" start\""],
    capture_output=True, text=True, timeout=120)
env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
conn = ["psql", "-X", "-At", "-h", work, "-p", port, "-U", "postgres", "-d", "postgres"]


def q(sql, timeout=120):
    t0 = time.monotonic()
    p = subprocess.run(conn + ["-c", sql], capture_output=True, text=True, env=env,
                       timeout=timeout)
    return p.returncode, p.stdout.strip(), p.stderr.strip(), time.monotonic() - t0


try:
    rc, out, err, _ = q("SELECT 1")
    c.check("the cluster in its own mount namespace runs", out == "1", start.stderr + err)
    api = "http://crm.blackhole.invalid:9/api"
    rc, out, err, _ = q(f"""CREATE EXTENSION rollout_fdw;
CREATE SERVER r FOREIGN DATA WRAPPER rollout_fdw
  OPTIONS (api_url '{api}', auth_url '{api}', client_id 'test-client', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER r
  OPTIONS (client_secret 'test-secret', user_id 'user-1', credential_id 'cred-1');
CREATE FOREIGN TABLE p (id text) SERVER r OPTIONS (resource 'people');""")

    # === statement_timeout during name resolution
    rc, out, err, secs = q("SET statement_timeout = '1s'; SELECT count(*) FROM p")
    c.check("the resolver was asked (and never answered)", len(swallowed) > 0)
    c.check("statement_timeout 1 s during DNS ends in < 1.5 s",
            rc != 0 and "statement timeout" in err and secs < 1.5, f"{err} {secs:.2f}s")
    print(f"       statement_timeout 1 s during DNS: ended after {secs:.2f} s")

    # === pg_cancel_backend during name resolution
    proc = subprocess.Popen(conn + ["-c", "SET application_name = 'dns_wait'; "
                                    "SELECT count(*) FROM p"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    pid = ""
    for _ in range(100):
        _, pid, _, _ = q("SELECT pid FROM pg_stat_activity WHERE application_name = 'dns_wait' "
                         "AND state = 'active'")
        if pid:
            break
        time.sleep(0.05)
    time.sleep(0.7)
    t0 = time.monotonic()
    q(f"SELECT pg_cancel_backend({pid})")
    _, perr = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    c.check("pg_cancel_backend during DNS ends in < 0.5 s",
            proc.returncode != 0 and "canceling statement" in perr and took < 0.5,
            f"{perr} {took:.2f}s")
    print(f"       pg_cancel_backend during DNS: ended after {took:.2f} s")

    # === connect_timeout_ms covers name resolution
    q("ALTER SERVER r OPTIONS (ADD connect_timeout_ms '1000')")
    rc, out, err, secs = q("SELECT count(*) FROM p")
    c.check("connect_timeout_ms 1000 during DNS ends near 1 s with a network error",
            rc != 0 and "Rollout request" in err and 0.8 <= secs < 1.5, f"{err} {secs:.2f}s")
    print(f"       connect_timeout_ms 1000 during DNS: ended after {secs:.2f} s")

    # === the backend still works after abandoned lookups
    rc, out, err, secs = q("SET statement_timeout = '1s'; SELECT count(*) FROM p; "
                           "RESET statement_timeout; SELECT 42")
    rc, out, err, secs = q("SELECT 42")
    c.check("the cluster still answers", out == "42", err)
finally:
    as_pg(f"{bindir}/pg_ctl -D {work}/data -m immediate stop")
    sock.close()
    shutil.rmtree(work, ignore_errors=True)
c.finish()

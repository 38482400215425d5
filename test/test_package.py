"""The Debian package: debian/ builds postgresql-15-rollout-fdw with
pg_buildext (dpkg-buildpackage -us -uc -b, from a copy of the tree in a
temporary directory), it declares libjwt's runtime package (libjwt is
loaded with dlopen, so dpkg-shlibdeps cannot see it), dpkg -i installs it,
and CREATE EXTENSION works from the installed files in a cluster of its own
(pg_virtualenv, rollout_fdw preloaded), at 1.1 and from 1.0 by ALTER
EXTENSION ... UPDATE.

The package installs where "make install" did (the test command's build):
afterwards the package is purged and "make install" puts the tree's build
back, so the scripts that follow see what they saw before.  Needs root and
debhelper (scripts/setup.sh installs it)."""

import os
import shutil
import subprocess
import tempfile
import time

from lib import Checker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = "postgresql-15-rollout-fdw"
EXTDIR = "/usr/share/postgresql/15/extension"

c = Checker()


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def copy_tree(dest):
    """The tree as git sees it (tracked and new files, not ignored ones)."""
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                cwd=ROOT, check=True).stdout.split("\0")
    for f in files:
        if not f or f.startswith("test/out/") or not os.path.isfile(os.path.join(ROOT, f)):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(dest, f))


tmp = tempfile.mkdtemp(prefix="rollout_pkg_")
src = os.path.join(tmp, "rollout-fdw")
installed = False
try:
    copy_tree(src)
    start = time.monotonic()
    b = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src)
    build_s = time.monotonic() - start
    debs = [f for f in os.listdir(tmp) if f.startswith(PKG + "_") and f.endswith(".deb")]
    c.check(f"dpkg-buildpackage builds {PKG} ({build_s:.1f} s)",
            b.returncode == 0 and len(debs) == 1, (b.stdout + b.stderr)[-3000:])
    if len(debs) != 1:
        c.finish()
    deb = os.path.join(tmp, debs[0])

    fields = run(["dpkg-deb", "-f", deb, "Version", "Depends"], check=True).stdout
    contents = run(["dpkg-deb", "-c", deb], check=True).stdout
    c.check("its Depends name libjwt0, libcurl4, libjansson4 and postgresql-15",
            all(d in fields for d in ("libjwt0", "libcurl4", "libjansson4", "postgresql-15")),
            fields)
    want = ["/usr/lib/postgresql/15/lib/rollout_fdw.so"] + [
        f"{EXTDIR}/{f}" for f in ("rollout_fdw.control", "rollout_fdw--1.0.sql",
                                  "rollout_fdw--1.0--1.1.sql", "rollout_fdw--1.1.sql")]
    c.check("it holds the library, the control file and every script",
            all("." + w in contents for w in want), contents)

    i = run(["dpkg", "-i", deb])
    installed = i.returncode == 0
    c.check("dpkg -i installs it", installed, i.stdout + i.stderr)
    owner = run(["dpkg", "-S", f"{EXTDIR}/rollout_fdw.control"]).stdout
    verify = run(["dpkg", "-V", PKG])
    c.check("the installed files are the package's (dpkg -S, dpkg -V)",
            owner.startswith(PKG + ":") and verify.returncode == 0 and not verify.stdout,
            owner + verify.stdout)

    # a cluster of its own: the test command's cluster loaded the tree's build
    sql = ("CREATE EXTENSION rollout_fdw;"
           "SELECT extversion || ' ' || rollout_fdw_version() FROM pg_extension"
           " WHERE extname = 'rollout_fdw';"
           "SELECT count(*) FROM rollout_fdw_stats();"
           "DROP EXTENSION rollout_fdw;"
           "CREATE EXTENSION rollout_fdw VERSION '1.0';"
           "ALTER EXTENSION rollout_fdw UPDATE;"
           "SELECT extversion FROM pg_extension WHERE extname = 'rollout_fdw';")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    answers = os.path.join(tmp, "answers.txt")
    p = run(["pg_virtualenv", "-o", "shared_preload_libraries=rollout_fdw",
             "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-o", answers,
             "-c", sql], env=env, cwd=tmp)
    got = open(answers).read().split() if os.path.exists(answers) else []
    c.check("CREATE EXTENSION from the package: 1.1, library 1.1.0; 1.0 updates to 1.1",
            p.returncode == 0 and got == ["1.1", "1.1.0", "0", "1.1"],
            f"{got} {p.stdout} {p.stderr}")
finally:
    if installed:
        r = run(["dpkg", "--purge", PKG])
        c.check("dpkg --purge removes it", r.returncode == 0, r.stdout + r.stderr)
    # the test command's build back where it was
    m = run(["make", "-s", "install"], cwd=ROOT)
    c.check("make install restores the tree's build",
            m.returncode == 0 and os.path.exists(f"{EXTDIR}/rollout_fdw--1.1.sql")
            and run(["dpkg", "-S", f"{EXTDIR}/rollout_fdw.control"]).returncode != 0,
            m.stdout + m.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()

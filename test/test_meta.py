"""META.json is valid PGXN metadata (meta spec 1.0.0: the required keys,
semantic versions, a known license, provides naming files that exist) and
its versions agree with the rest of the release: the Makefile's
ROLLOUT_VERSION (what rollout_fdw_version() answers), rollout_fdw.control's
default_version (its first two numbers) and the SQL scripts (a full script
for the default version, an update path to it from 1.0).
Runs outside the cluster; needs only python3."""
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
LICENSES = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2",
            "bsd", "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2",
            "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0",
            "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0",
            "ssleay", "sun", "zlib", "open_source", "restricted",
            "unrestricted", "unknown"}

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {what}")
    else:
        failed += 1
        print(f"FAIL: {what}")


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


try:
    meta = json.loads(read("META.json"))
    check(True, "META.json parses")
except ValueError as e:
    check(False, f"META.json parses: {e}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1)

missing = [k for k in ("name", "abstract", "version", "maintainer", "license",
                       "provides", "meta-spec") if k not in meta]
check(not missing, f"META.json has the spec's required keys (missing: {missing})")
check(meta.get("meta-spec", {}).get("version") == "1.0.0",
      "meta-spec version is 1.0.0")
check(meta.get("name") == "rollout_fdw", "name is rollout_fdw")
version = meta.get("version", "")
check(bool(SEMVER.match(version)), f"version {version!r} is a semantic version")
maint = meta.get("maintainer")
check(isinstance(maint, str) or (isinstance(maint, list) and maint
                                 and all(isinstance(x, str) for x in maint)),
      "maintainer is a string or a list of strings")
lic = meta.get("license")
lics = [lic] if isinstance(lic, str) else (
    list(lic) if isinstance(lic, (list, dict)) else [])
check(bool(lics) and (isinstance(lic, dict) or all(x in LICENSES for x in lics)),
      f"license {lic!r} is one the spec knows")
provides = meta.get("provides", {})
check(list(provides) == ["rollout_fdw"], "provides the extension rollout_fdw")
for name, p in provides.items():
    check(bool(p.get("file")) and os.path.isfile(os.path.join(ROOT, p["file"])),
          f"provides {name}: file {p.get('file')!r} exists")
    check(p.get("version") == version,
          f"provides {name}: version {p.get('version')!r} is the release's")
pg = meta.get("prereqs", {}).get("runtime", {}).get("requires", {}).get("PostgreSQL")
check(bool(pg) and bool(SEMVER.match(pg)),
      f"prereqs runtime requires PostgreSQL {pg!r}")
for k in ("generated_by", "release_status"):
    check(k not in meta or isinstance(meta[k], str), f"{k} is a string")
check(meta.get("release_status", "stable") in ("stable", "testing", "unstable"),
      "release_status is stable, testing or unstable")

# the rest of the release agrees
mk = re.search(r"^ROLLOUT_VERSION\s*=\s*(\S+)", read("Makefile"), re.M)
check(mk and mk.group(1) == version,
      f"Makefile ROLLOUT_VERSION {mk and mk.group(1)!r} is META.json's version")
ctl = re.search(r"^default_version\s*=\s*'([^']*)'", read("rollout_fdw.control"), re.M)
default = ctl and ctl.group(1)
check(default == ".".join(version.split(".")[:2]),
      f"rollout_fdw.control default_version {default!r} is {version!r}'s first two numbers")
for name, p in provides.items():
    check(p.get("file") == f"sql/rollout_fdw--{default}.sql",
          f"provides {name}: file is the default version's full script")

# from 1.0 an update path reaches the default version
steps = {}
for path in glob.glob(os.path.join(ROOT, "sql", "rollout_fdw--*--*.sql")):
    a, b = re.match(r".*rollout_fdw--(.+)--(.+)\.sql$", path).groups()
    steps.setdefault(a, []).append(b)
seen, todo = set(), ["1.0"]
while todo:
    v = todo.pop()
    if v not in seen:
        seen.add(v)
        todo.extend(steps.get(v, []))
check(os.path.isfile(os.path.join(ROOT, "sql", "rollout_fdw--1.0.sql")),
      "sql/rollout_fdw--1.0.sql, the first release, is kept")
check(default in seen, f"an update path leads from 1.0 to {default!r}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

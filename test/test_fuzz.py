"""The hostile-API fuzz suite (issue 9, "the safety net").

A seeded generator of bad and extreme API answers — structure, every envelope
field with every JSON type, numbers at every edge, strings with every escape,
invalid encodings, bodies cut at random byte offsets, headers, statuses,
stalls and drips — served by test/hostile.py to real SQL statements: scans in
both paging modes (scan1: an API that ignores offset, so the scan follows the
cursor after its first offset page; scan4 and import: overlapping offset
pages, scan_concurrency 4 and 8), by id, by ids, INSERT (with and without
RETURNING), UPDATE, DELETE, ANALYZE and scans of a table made by IMPORT
FOREIGN SCHEMA.  Text cases run in a UTF-8
and in a LATIN1 database.

Each case states its expected outcome — "rows R exactly", "an error", or
"rows R or an error" — and must end within its time budget (its
statement_timeout + 1 s) with it.  Never SQLSTATE XX000, never a crash (the
postmaster's start time never changes, the server log never says
"terminated by signal"), never a silent partial result, and the backend's
peak RSS during the statement (VmHWM, reset before each one) never above
64 MB + 16 x the largest body the case served.

  python3 test/test_fuzz.py [--seed N] [--cases N] [--quick] [--case K]...
      [--kind scan4] [--family env] [-v]

The seed is printed at the start and in every failure line; any failure
replays alone with `python3 test/test_fuzz.py --seed N --case K`.
Prints "N passed, N failed" (one check per case, plus the crash and log
checks) and exits non-zero on failure.
"""

import argparse
import copy
import math
import os
import random
import re
import sys
import time
from decimal import Decimal, InvalidOperation

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "fuzz"))

from hostile import Answer, Api, HostileServer, Num, Obj, Raw, dumps, http  # noqa: E402
from pgwire import BackendGone, Session  # noqa: E402

PAGE = 10                       # page_size of p1 and p4
OVERLAP = max(2, PAGE // 20)    # offset pages repeat this many records of the page before
STEP = PAGE - OVERLAP           # offset page p asks for offset=p*STEP
MB = 1 << 20
RSS_BASE_KB = 64 * 1024         # the RSS bound: 64 MB + 16 x body
RSS_FACTOR = 16
# under valgrind (test/valgrind.sh) a backend's RSS holds valgrind's own
# memory too: the bounds above mean nothing there, memcheck judges memory
UNDER_VALGRIND = bool(os.environ.get("ROLLOUT_FUZZ_UNDER_VALGRIND"))
SLACK_S = 1.0                   # a case may overrun its statement_timeout by this

# ---------------------------------------------------------------------------
# Expected cells: what one column of one row must be
# ---------------------------------------------------------------------------
EXACT, MAYBE, ANY, ERR = "exact", "maybe", "any", "err"


class RawStr(Raw):
    """A JSON string written byte by byte, with what it means: text (the
    decoded string), valid=False (not valid JSON: the answer must be an
    error), lenient=True (no single right reading: rows or an error)."""

    def __new__(cls, data, text=None, valid=True, lenient=False):
        obj = super().__new__(cls, data)
        obj.text, obj.valid, obj.lenient = text, valid, lenient
        return obj


class Deep(Raw):
    """Nested arrays of a given depth."""

    def __new__(cls, depth):
        obj = super().__new__(cls, b"[" * depth + b"]" * depth)
        obj.depth = depth
        return obj


MISSING = object()


def worst(*cells):
    order = {EXACT: 0, MAYBE: 1, ANY: 2, ERR: 3}
    return max(cells, key=lambda c: order[c[0]])


def pg_numeric(text):
    d = Decimal(text)
    if d == 0:
        d = abs(d)
        # PostgreSQL keeps the scale of a zero: 0.00 stays 0.00
    s = format(d, "f")
    return s[1:] if s.startswith("-") and Decimal(s) == 0 else s


def has_bad_text(s, latin1):
    return "\0" in s or (latin1 and any(ord(ch) > 255 for ch in s))


def unwrap(v):
    """The start every cell oracle shares: (a verdict or None, the value)."""
    if v is MISSING or v is None:
        return (EXACT, None), v
    if isinstance(v, RawStr):
        if not v.valid:
            return (ERR,), v
        if v.lenient:
            return (ANY,), v
        return None, v.text
    return None, v


def text_cell(v, latin1):
    if isinstance(v, Deep):
        return (ANY,)
    verdict, v = unwrap(v)
    if verdict:
        return verdict
    if isinstance(v, bool):
        return (EXACT, "true" if v else "false")
    if isinstance(v, (Num, int)):
        return (EXACT, str(v))
    if isinstance(v, str):
        return (ERR,) if has_bad_text(v, latin1) else (EXACT, v)
    return (ANY,)   # objects and arrays: JSON text, spacing not fixed


def numeric_cell(v, latin1):
    verdict, v = unwrap(v)
    if verdict:
        return verdict
    if isinstance(v, bool):
        return (ERR,)
    if isinstance(v, (Num, int)):
        return (EXACT, pg_numeric(str(v)))
    if isinstance(v, str):
        if v == "":
            return (EXACT, None)
        try:
            Decimal(v.strip())
            if not re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", v):
                raise InvalidOperation
            return (MAYBE, pg_numeric(v.strip()))
        except (InvalidOperation, ValueError):
            return (ANY,) if v.strip().lower() in ("nan", "infinity", "-infinity") else (ERR,)
    return (ERR,)


def bigint_cell(v, latin1):
    verdict, v = unwrap(v)
    if verdict:
        return verdict
    if isinstance(v, bool):
        return (ERR,)
    if isinstance(v, (Num, int)):
        s = str(v)
        if re.fullmatch(r"-?\d+", s):
            n = int(s)
            return (EXACT, str(n)) if -2**63 <= n < 2**63 else (ERR,)
        d = Decimal(s)
        if d == d.to_integral_value() and -2**63 <= d < 2**63:
            return (MAYBE, str(int(d)))
        return (ERR,)
    if isinstance(v, str):
        if v == "":
            return (EXACT, None)
        if re.fullmatch(r"\s*[-+]?\d+\s*", v) and -2**63 <= int(v) < 2**63:
            return (MAYBE, str(int(v)))
        return (ERR,)
    return (ERR,)


def pg_array_elem(s):
    if s is None:
        return "NULL"
    if s == "" or s.upper() == "NULL" or re.search(r'[{}",\\\s]', s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def array_cell(v, latin1):
    if v is MISSING or v is None:
        return (EXACT, None)
    if isinstance(v, RawStr):
        return (ERR,) if not v.valid else (ANY,)
    if not isinstance(v, list) or isinstance(v, Obj):
        return (ANY,)
    out, kind = [], EXACT
    for e in v:
        c = text_cell(e, latin1)
        if c[0] == ERR:
            return (ERR,)
        if c[0] == ANY or isinstance(e, (list, dict, Obj)):
            return (ANY,)
        out.append(c[1])
    return (kind, "{" + ",".join(pg_array_elem(s) for s in out) + "}")


def wildcard_cell(v, latin1):
    """email_addresses text[] OPTIONS (field 'emails[*].value')."""
    if v is MISSING or v is None:
        return (EXACT, None)
    if isinstance(v, Deep):
        return (ANY,)
    if not isinstance(v, list) or isinstance(v, (Raw, Obj)):
        return (ERR,)   # not an array at the wildcard (an Obj is a list too)
    out = []
    for e in v:
        x = get(e, "value")
        if x is MISSING or x is None:
            continue    # no value there: nothing added
        c = text_cell(x, latin1)
        if c[0] != EXACT or isinstance(x, (list, dict, Obj)):
            return c if c[0] == ERR else (ANY,)
        out.append(c[1])
    return (EXACT, "{" + ",".join(pg_array_elem(s) for s in out) + "}")


def emails_pool(rng):
    """Values of emails, as email_addresses reads them."""
    def element():
        x = rng.choice(string_pool(rng) + [None, MISSING, 12, Num("1.5"), True,
                                            [1], {"a": 1}, "a@x.org", "b@y.org"])
        return Obj([]) if x is MISSING else Obj([("value", x), ("type", "work")])
    return [[], None, MISSING, "a@x.org", Obj([("value", "a@x.org")]), 5, True,
            RawStr(b'"\\xff"', valid=False), [element() for _ in range(rng.randint(1, 4))],
            [element(), None, "c@x.org", [element()], element()]]


def leaves(v):
    if isinstance(v, (Obj, dict)):
        for k, x in (v if isinstance(v, Obj) else v.items()):
            yield k
            yield from leaves(x)
    elif isinstance(v, list) and not isinstance(v, Raw):
        for x in v:
            yield from leaves(x)
    else:
        yield v


def attrs_cell(record, latin1):
    """attrs jsonb OPTIONS (field '*') IS NOT NULL."""
    cell = (EXACT, "t")
    for x in leaves(record):
        if isinstance(x, Deep):
            cell = worst(cell, (ANY,))
        elif isinstance(x, RawStr):
            cell = worst(cell, (ERR,) if not x.valid else (ANY,) if x.lenient else
                         text_cell(x, latin1)[:1] + ("t",))
        elif isinstance(x, str) and has_bad_text(x, latin1):
            cell = worst(cell, (ERR,))
        elif isinstance(x, Num) and abs(Decimal(str(x))).adjusted() > 100000:
            cell = worst(cell, (ANY,))
    if isinstance(cell, tuple) and cell[0] == EXACT and len(cell) == 1:
        cell = (EXACT, "t")
    return cell


def get(record, key):
    if isinstance(record, Obj):
        found = [v for k, v in record if k == key]
        return found[-1] if found else MISSING
    if isinstance(record, dict):
        return record.get(key, MISSING)
    return MISSING


# the select lists: (column, JSON key, cell model)
P_COLS = [("id", "id", text_cell), ("first_name", "firstName", text_cell),
          ("last_name", "lastName", text_cell), ("price", "price", numeric_cell),
          ("n", "n", bigint_cell), ("tags", "tags", array_cell)]
IMP_COLS = [("id", "id", text_cell), ("first_name", "firstName", text_cell),
            ("last_name", "lastName", text_cell),
            ("average_price", "averagePrice", numeric_cell), ("tags", "tags", array_cell),
            ("email_addresses", "emails", wildcard_cell)]
P_SELECT = "id, first_name, last_name, price, n, tags, attrs IS NOT NULL"
IMP_SELECT = "id, first_name, last_name, average_price, tags, email_addresses"


def row_cells(record, cols, latin1, with_attrs):
    if not isinstance(record, (Obj, dict)):
        return [(ERR,)]
    if any(isinstance(x, RawStr) and not x.valid for x in leaves(record)):
        # the body is not JSON, whichever field holds the bad bytes (even one
        # no column reads, such as an element a wildcard path skips)
        return [(ERR,)]
    cells = [model(get(record, key), latin1) for _, key, model in cols]
    if any(isinstance(v, Deep) and v.depth > 2000 for v in leaves(record)):
        cells = [worst(c, (ANY,)) for c in cells]
    if with_attrs:
        cells.append(attrs_cell(record, latin1))
    return cells


class Expect:
    """rows: list of rows of cells, or None (not checked); error: "must",
    "may" or "never"; tag: the command tag required when no error."""

    def __init__(self, rows=None, error="never", tag=None, note=""):
        self.rows, self.error, self.tag, self.note = rows, error, tag, note
        self.forbid = set()

    @staticmethod
    def from_cells(rows, tag=None):
        flat = [c for r in rows for c in r]
        if any(c[0] == ERR for c in flat):
            return Expect(error="must", note="a value cannot be read")
        kind = "may" if any(c[0] in (MAYBE, ANY) for c in flat) else "never"
        return Expect(rows=rows, error=kind, tag=tag)

    def loosen(self, note=""):
        """The same rows, but an error is acceptable too."""
        if self.error == "never":
            self.error = "may"
        self.note = note or self.note
        return self

    def describe(self):
        if self.error == "must":
            return "an error" + (f" ({self.note})" if self.note else "")
        what = f"{len(self.rows)} row(s)" if self.rows is not None else "any rows"
        if self.tag:
            what += f", tag {self.tag}"
        return what + (" or an error" if self.error == "may" else " exactly") + \
            (f" ({self.note})" if self.note else "")


def rows_match(expected, got):
    if len(expected) != len(got):
        return False
    for erow, grow in zip(expected, got):
        if len(erow) != len(grow):
            return False
        for cell, value in zip(erow, grow):
            if cell[0] in (EXACT, MAYBE) and cell[1] != value:
                return False
    return True


# ---------------------------------------------------------------------------
# Values served
# ---------------------------------------------------------------------------

def number_pool():
    return [Num(s) for s in ("0", "-1", "1", "2147483647", "2147483648", "-2147483649",
                             "9223372036854775807", "9223372036854775808",
                             "-9223372036854775808", "18446744073709551616",
                             "123456789012345678901234567890", "1e400", "-1e400",
                             "1E+2", "-0", "-0.0", "1.5", "0.1", "1234567.123456789012345678",
                             "-1.0e-5", "5e-324", "1.7976931348623157e308")]


def string_pool(rng):
    long_n = rng.choice([1000, 100000, 1000000])
    return [
        "", "12", " 12 ", "abc", "Zoë", "José Ñúñez", "日本語", "emoji 😀", "a\"b\\c/d",
        "line\nbreak\ttab", "x" * long_n, "NaN", "Infinity", "true", "null",
        RawStr(b'"Zo\\u00eb"', "Zoë"), RawStr(b'"\\u65e5"', "日"),
        RawStr(b'"a\\u0000b"', "a\0b"), RawStr(b'"\\ud800"', lenient=True),
        RawStr(b'"x\\udc00y"', lenient=True), RawStr(b'"\\uffff"', "\uffff"),
        RawStr(b'"\\ud83d\\ude00"', "😀"), RawStr(b'"\\/\\"\\\\\\b\\f\\n\\r\\t"', '/"\\\b\f\n\r\t'),
        RawStr(b'"\xff\xfe"', valid=False), RawStr(b'"\xc0\xaf"', valid=False),
        RawStr(b'"\xe0\x80\xaf"', valid=False), RawStr(b'"\xed\xa0\x80"', valid=False),
        RawStr(b'"\xf4\x90\x80\x80"', valid=False), RawStr(b'"ab\xe9cd"', valid=False),
        RawStr(b'"a\x01b"', valid=False), RawStr(b'"\\x41"', valid=False),
        RawStr(b'"\\u12"', valid=False), RawStr(b'"unterminated', valid=False),
    ]


def structure_pool(rng):
    return [[], {}, [1, "a", None], {"a": 1}, Obj([("a", 1), ("a", 2)]),
            ["x"] * rng.choice([10, 1000, 100000]), Deep(10), Deep(1000), Deep(100000),
            [["a", "b"], ["c"]], ["a", None, "b c", ""], [Num("1.5"), True]]


def value_pool(rng):
    return number_pool() + string_pool(rng) + structure_pool(rng) + [True, False, None, MISSING]


FIRST = ["Ada", "Grace", "Zoë", "José", "Ångström", "Linus", "Barbara", "Ken", "Edsger", "Frances"]
LAST = ["Lovelace", "Hopper", "Smith", "O'Hara", "Müller", "van Rossum", "Liskov"]


def honest_records(rng, n, id_style=None):
    id_style = id_style or rng.choice(["int", "str"])
    recs = []
    for i in range(n):
        price = Num(rng.choice(["123.45", "0", "99999.99", "1", "250000"]))
        recs.append(Obj([
            ("id", 100 + i if id_style == "int" else f"p-{100 + i}"),
            ("firstName", FIRST[(i * 7 + n) % len(FIRST)]),
            ("lastName", LAST[(i * 3) % len(LAST)]),
            ("price", price), ("averagePrice", price),
            ("n", i * 7), ("tags", ["buyer", "b c"] if i % 3 == 0 else []),
            ("stage", "Lead")]))
    return recs


def set_key(obj, key, value):
    """A copy of an Obj with key set (MISSING removes it)."""
    out = Obj([(k, v) for k, v in obj if k != key])
    if value is not MISSING:
        pos = [i for i, (k, _) in enumerate(obj) if k == key]
        out.insert(pos[0] if pos else len(out), (key, value))
    return out


def short(b, n=300):
    if isinstance(b, Raw) or isinstance(b, (bytes, bytearray)):
        b = bytes(b)
    else:
        b = dumps(b)
    s = b[:n].decode("utf-8", "backslashreplace")
    return s + (f"... ({len(b)} bytes)" if len(b) > n else "")


def pstr(v):
    if v is MISSING:
        return "<missing>"
    if isinstance(v, RawStr):
        return "raw:" + short(v, 60)
    if isinstance(v, Deep):
        return f"<nested arrays, depth {v.depth}>"
    return short(dumps(v), 80)


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------
KINDS = {          # kind: weight
    "scan1": 20, "scan4": 20, "byid": 10, "byids": 8, "insert": 6, "insert_ret": 6,
    "update": 5, "update_ret": 3, "delete": 5, "analyze": 5, "import": 7}
LIST_KINDS = ("scan1", "scan4", "analyze", "import")
FAMILIES = {"rec": 33, "env": 20, "body": 12, "http": 15, "time": 3, "valid": 17}


class Case:
    def __init__(self, seed, k):
        self.seed, self.k = seed, k
        self.rng = random.Random(seed * 1000003 + k)
        self.db = "utf8"
        self.timeout_ms = 5000
        self.served = ""          # what was served, for failure lines
        self.sql = ""
        self.expect = None
        self.handler = None
        self.max_body = 0
        self.may_have_acted = False  # a write the API may have carried out
        self.post_check = None       # function(requests) -> error text or None
        self.mode = None             # list scans: "cursor" or "offset" paging
        self.pages = []              # list scans: (first record, count) of each page


def list_pages(mode, n):
    """The pages an honest scan of n records asks for, as (index of their
    first record, number of records).  "cursor": page p holds records
    p*PAGE on.  "offset": the first page (no offset), then, when the list
    is longer than a page, offset=p*STEP pages up to the first short one."""
    if mode == "cursor" or n <= PAGE:
        return [(p * PAGE, min(PAGE, n - p * PAGE)) for p in range(max(1, math.ceil(n / PAGE)))]
    pages = [(0, PAGE)]
    while pages[-1][1] == PAGE:
        start = len(pages) * STEP
        pages.append((start, min(PAGE, n - start)))
    return pages


def build_case(seed, k, only_kind=None, only_family=None):
    c = Case(seed, k)
    rng = c.rng
    kind = only_kind or rng.choices(list(KINDS), list(KINDS.values()))[0]
    fams = [f for f in FAMILIES if not (f == "env" and kind not in LIST_KINDS)]
    family = only_family if only_family in fams else \
        rng.choices(fams, [FAMILIES[f] for f in fams])[0]
    c.kind, c.family = kind, family
    if family in ("rec", "valid") and rng.random() < 0.4:
        c.db = "latin1"
    latin1 = c.db == "latin1"

    # the data set and the statement
    if kind in LIST_KINDS:
        n = rng.choice([0, 1, 3, 10, 11, 25, 37])
    else:
        n = rng.choice([3, 5, 12])
    recs = honest_records(rng, n)
    api = Api(recs)
    ids = [str(get(r, "id")) for r in recs]
    targets = []            # ids the statement names
    table, cols, select, with_attrs = "p1", P_COLS, P_SELECT, True
    if kind == "scan4":
        table = "p4"
    if kind == "import":
        table, cols, select, with_attrs = "imp.people", IMP_COLS, IMP_SELECT, False
    if kind in ("scan1", "scan4", "import"):
        c.sql = f"SELECT {select} FROM {table}"
    elif kind == "analyze":
        c.sql = "ANALYZE p1"
    elif kind == "byid":
        targets = [rng.choice(ids)]
        c.sql = f"SELECT {select} FROM p1 WHERE id = '{targets[0]}'"
    elif kind == "byids":
        targets = rng.sample(ids, min(len(ids), rng.choice([2, 3])))
        if rng.random() < 0.3:
            targets.append("nosuch")
        c.sql = f"SELECT {select} FROM p1 WHERE id = ANY ('{{{','.join(targets)}}}')"
    elif kind in ("insert", "insert_ret"):
        first = rng.choice(["Ada", "Zoë", "Ångström"])
        price = rng.choice(["1234567.123456789012345678", "0.1", "42"])
        c.sql = (f"INSERT INTO p1 (first_name, last_name, price) "
                 f"VALUES ('{first}', 'Fuzz', {price})")
        if kind == "insert_ret":
            c.sql += f" RETURNING {P_SELECT}"
        c.post_check = post_body_check(first, price)
        api.inserted = (first, price)
    elif kind in ("update", "update_ret", "delete"):
        targets = [rng.choice(ids)]
        if kind == "delete":
            c.sql = f"DELETE FROM p1 WHERE id = '{targets[0]}'"
        else:
            first = rng.choice(["Ada", "Zoë"])
            c.sql = f"UPDATE p1 SET first_name = '{first}' WHERE id = '{targets[0]}'"
            c.post_check = put_body_check(first)
        if kind == "update_ret":
            c.sql += f" RETURNING {P_SELECT}"

    # the honest outcome
    def outcome(records, answer_records=None):
        """Expected result given the records the statement sees (by id:
        the ones it gets back; writes: the row fetched, then the answer)."""
        if kind == "analyze":
            cells = [row_cells(r, P_COLS, latin1, True) for r in records]
            e = Expect.from_cells(cells, tag="ANALYZE")
            # ANALYZE samples: a bad value need not fail it
            return Expect(rows=None, error="may", tag=None,
                          note="ANALYZE") if e.error != "never" else Expect(rows=None, tag="ANALYZE")
        if kind in ("insert", "insert_ret"):
            ans = answer_records or []
            cells = [row_cells(r, P_COLS, latin1, True) for r in ans]
            if kind == "insert":
                e = Expect.from_cells(cells, tag="INSERT 0 1")
                e.rows = []
                if e.error == "must":   # nothing needs the answer read
                    e.error, e.tag = "may", "INSERT 0 1"
                return e
            return Expect.from_cells(cells, tag="INSERT 0 1")
        if kind in ("update", "update_ret", "delete"):
            fetched = [row_cells(r, P_COLS, latin1, True) for r in records]
            # the row fetched for an UPDATE or DELETE: only its id must be read
            fetched = [[cl[0]] + [(ANY,) if x[0] == ERR else x for x in cl[1:]]
                       for cl in fetched]
            fetched_ok = [r for r, cells in zip(records, fetched)
                          if cells[0][0] == EXACT and cells[0][1] in targets]
            e = Expect.from_cells(fetched)
            if e.error == "must":
                return e
            verb = "DELETE" if kind == "delete" else "UPDATE"
            count = len(fetched_ok) if answer_records is not None else 0
            if kind == "update_ret":
                ans = [row_cells(r, P_COLS, latin1, True) for r in (answer_records or [])]
                e2 = Expect.from_cells(ans, tag=f"{verb} {count}")
                if e.error == "may":
                    e2.loosen()
                return e2
            e.rows, e.tag = [], f"{verb} {count}"
            return e
        cells = [row_cells(r, cols, latin1, with_attrs) for r in records]
        if kind in ("byid", "byids"):
            keep = []
            for r, cl in zip(records, cells):
                idc = cl[0]
                if idc[0] == ERR:
                    return Expect(error="must", note="the id cannot be read")
                if idc[0] in (ANY,):
                    return Expect(rows=None, error="may", note="id unreadable")
                if idc[1] in targets:
                    keep.append((targets.index(idc[1]), cl))
            keep.sort(key=lambda x: x[0])
            return Expect.from_cells([cl for _, cl in keep])
        return Expect.from_cells(cells)

    def seen(recs_now):
        """Records the statement gets from the honest API."""
        if kind in LIST_KINDS:
            return recs_now
        if kind in ("insert", "insert_ret"):
            return []
        return [r for r in recs_now if str(get(r, "id")) in targets]

    # the request a mutation hits
    def list_req(req):
        """("offset", o) for an offset page, ("cursor", o) for the first page
        (o 0) or a cursor page (o its token's offset), None for others."""
        if req.method != "GET" or req.path != "/api/people":
            return None
        if "offset" in req.query:
            try:
                return ("offset", int(req.query["offset"]))
            except ValueError:
                return ("offset", -1)
        if "next" in req.query:
            return ("cursor", api.tokens.get(req.query["next"], -1))
        return ("cursor", 0)

    # how the scan pages (see list_pages): scan1 and ANALYZE by the cursor
    # (scan1's API ignores offset, so the scan falls back to the cursor after
    # its first offset page), scan4 and import by overlapping offset pages
    c.mode = "offset" if kind in ("scan4", "import") else "cursor"
    if kind == "scan1":
        api.ignore_offset = rng.choice(["zero", "silent"])
    c.pages = list_pages(c.mode, n)
    npages = len(c.pages)
    if kind in LIST_KINDS:
        if c.mode == "offset" and npages > 1:
            # offset pages are where the paging decides most: hit them more
            page = rng.randrange(1, npages) if rng.random() < 0.6 else 0
        else:
            page = rng.randrange(npages) if rng.random() < 0.5 else 0
        start = c.pages[page][0]
        if c.mode == "offset" and page > 0:
            target_desc = f"list page {page} (offset {start})"
            want = ("offset", start)
        else:
            target_desc = f"list page {page}"
            want = ("cursor", start)
        matches = lambda req: list_req(req) == want  # noqa: E731
    elif kind in ("byid", "byids"):
        tid = rng.choice([t for t in targets if t != "nosuch"])
        target_desc = f"GET /people/{tid}"
        matches = lambda req: req.method == "GET" and req.path == f"/api/people/{tid}"  # noqa: E731
    elif kind in ("insert", "insert_ret"):
        target_desc = "POST /people"
        matches = lambda req: req.method == "POST"  # noqa: E731
    else:
        verb = "DELETE" if kind == "delete" else "PUT"
        method = rng.choice(["GET", verb])
        target_desc = f"{method} /people/{targets[0]}"
        matches = lambda req: req.method == method and req.path.startswith("/api/people/")  # noqa: E731
    is_write_answer = target_desc.startswith(("POST", "PUT", "DELETE"))

    family_fn = {"rec": fam_rec, "env": fam_env, "body": fam_body, "http": fam_http,
                 "time": fam_time, "valid": fam_valid}[family]
    family_fn(c, rng, api, recs, n, npages, kind, page if kind in LIST_KINDS else None,
              matches, target_desc, is_write_answer, outcome, seen, targets, latin1)
    if getattr(c, "transient", False) and c.expect.error == "must" and \
            not target_desc.startswith("POST"):
        # served once to a read, a PUT or a DELETE: a retry may absorb it
        c.expect = honest_expect(c, kind, outcome, recs, seen, api).loosen("once, retried")
        if kind == "analyze":
            c.expect = Expect(error="may", tag="ANALYZE")
    c.served = f"{family} on {target_desc}: {c.served}"
    return c


def answer_size(ans):
    return len(ans.data) if isinstance(ans, Answer) else 0


def make_handler(c, api, matches, mutate, times=None):
    """Serve honestly, except the requests `matches` picks: those get
    mutate(req) (an Answer), the first `times` of them (all when None)."""
    hits = [0]

    def handler(req):
        if matches(req) and (times is None or hits[0] < times):
            hits[0] += 1
            ans = mutate(req)
        else:
            ans = api.answer(req)
        c.max_body = max(c.max_body, answer_size(ans))
        return ans
    return handler


def fam_rec(c, rng, api, recs, n, npages, kind, page, matches, target_desc,
            is_write_answer, outcome, seen, targets, latin1):
    """One field of one record gets a value from the pools."""
    keys = ["firstName", "lastName", "price", "n", "tags", "id", "averagePrice"]
    if kind == "import":
        keys = ["firstName", "lastName", "averagePrice", "tags", "id", "emails"]
    if kind in ("update", "delete", "update_ret") or (kind == "byid" and rng.random() < 0.7):
        keys = [k for k in keys if k != "id"]
    key = rng.choice(keys)
    value = rng.choice(emails_pool(rng) if key == "emails" else value_pool(rng))
    if c.db == "latin1" and rng.random() < 0.6:
        key = rng.choice(["firstName", "lastName"])
        value = rng.choice(string_pool(rng))
    if kind in LIST_KINDS and n == 0:
        n = 1
        recs.append(honest_records(rng, 1)[0])
        api.records = list(recs)
    c.served = f"record field {key} = {pstr(value)}"

    if kind in ("insert", "insert_ret") or (is_write_answer and kind != "delete"):
        def mutate(req):
            status, body = api.honest(req)
            if isinstance(body, (Obj, dict)):
                body = set_key(Obj(list(body.items()) if isinstance(body, dict) else body),
                               key, value)
            return Answer(http(status, body), mode="close")
        c.handler = make_handler(c, api, matches, mutate)
        if kind in ("insert", "insert_ret"):
            base = honest_answer_for_insert(api)
            c.expect = outcome([], [set_key(base, key, value)])
            if kind == "insert_ret" and key == "id" and value in (None, MISSING):
                # RETURNING asked for the id the answer does not give: an
                # error saying the record was created is as good as NULL
                c.expect.loosen("the answer has no id")
            c.may_have_acted = True
        else:
            fetched = seen(recs)
            base = Obj(list(fetched[0])) if fetched else Obj([])
            answer = set_key(base, "firstName", first_of(c.sql)) if kind != "delete" else base
            c.expect = outcome(fetched, [set_key(answer, key, value)])
            c.may_have_acted = True
        return
    # reads (and the GET of an UPDATE/DELETE): mutate the record in the data
    if kind in ("byid", "byids", "update", "update_ret", "delete"):
        idx = [i for i, r in enumerate(recs) if str(get(r, "id")) in targets]
        i = rng.choice(idx)
    else:
        i = rng.randrange(len(recs))
    recs[i] = set_key(recs[i], key, value)
    api.records = list(recs)
    c.served += f" in record {i}"
    c.handler = make_handler(c, api, lambda req: False, None)
    if kind in ("update", "update_ret", "delete"):
        fetched = seen(recs)
        answer = [set_key(Obj(list(fetched[0])), "firstName", first_of(c.sql))] \
            if kind != "delete" else [Obj([])]
        c.expect = outcome(fetched, answer)
    else:
        c.expect = outcome(seen(recs))
    c.max_body = len(dumps(recs)) + 200


def first_of(sql):
    m = re.search(r"first_name = '([^']*)'", sql)
    return m.group(1) if m else None


def honest_answer_for_insert(api):
    """The 201 answer of the honest API to the case's INSERT."""
    first, price = api.inserted
    return Obj([("firstName", first), ("lastName", "Fuzz"), ("price", Num(price)),
                ("id", api.next_id + 1), ("stage", "Lead")])


def post_body_check(first, price):
    def check(reqs):
        posts = [r for r in reqs if r.method == "POST"]
        for r in posts:
            try:
                text = r.body.decode("utf-8")
            except UnicodeDecodeError:
                return f"POST body is not valid UTF-8: {r.body[:200]!r}"
            if f'"{first}"' not in text:
                return f"POST body lacks firstName {first!r}: {text[:200]}"
            if price not in text:
                return f"POST body lacks the exact price {price}: {text[:200]}"
        return None
    return check


def put_body_check(first):
    def check(reqs):
        for r in reqs:
            if r.method == "PUT":
                try:
                    text = r.body.decode("utf-8")
                except UnicodeDecodeError:
                    return f"PUT body is not valid UTF-8: {r.body[:200]!r}"
                if f'"{first}"' not in text:
                    return f"PUT body lacks firstName {first!r}: {text[:200]}"
        return None
    return check


ENV_FIELDS = ["total", "limit", "offset", "next", "collection", "nextLink"]


def fam_env(c, rng, api, recs, n, npages, kind, page, matches, target_desc,
            is_write_answer, outcome, seen, targets, latin1):
    """An envelope field of one list page, or the envelope's shape."""
    honest = outcome(seen(recs))
    what = rng.choice(ENV_FIELDS * 3 + ["_metadata", "list", "root", "records", "extra"])
    edge = number_pool() + [True, None, "12", "", "abc", [], {}, Obj([("a", 1)]), MISSING]
    expect = None
    if what in ENV_FIELDS:
        value = rng.choice(edge)
        if what == "next" and rng.random() < 0.4:
            value = rng.choice(["LOOP", "WEIRD"])
        if what == "total" and rng.random() < 0.3:
            value = rng.choice([n + 2 * PAGE + 5, 2345, n - 1 if n else 0, n])
        if what == "limit" and rng.random() < 0.3:
            value = rng.choice([2**31, 2**63 - 1, PAGE + 1, PAGE, 1])
        desc = f"_metadata.{what} = {pstr(value)}"

        def edit(env, offset, req):
            meta = get(env, "_metadata")
            v = value
            if v == "LOOP":
                v = api.cursor(offset)
            elif v == "WEIRD":
                v = weird_cursor
                api.tokens[weird_cursor] = offset + PAGE
                if offset + PAGE >= len(api.records):
                    v = None
            return set_key(env, "_metadata", set_key(meta, what, v))
        weird_cursor = rng.choice(["a b&c=d?e#f%", "c/../../x", "x" * 10000, "é€😀",
                                   "line\r\nX-Injected: 1", "\u0000nul"])
        expect = env_expect(what, value, c, n, page, honest, weird_cursor)
    elif what == "_metadata":
        value = rng.choice([None, [], "x", 1, MISSING])
        desc = f"_metadata = {pstr(value)}"

        def edit(env, offset, req):
            return set_key(env, "_metadata", value)
        expect = Expect(error="must", note="no _metadata object")
    elif what == "list":
        value = rng.choice([None, {}, "x", 1, MISSING, True])
        desc = f"list key = {pstr(value)}"

        def edit(env, offset, req):
            return set_key(env, "people", value)
        expect = Expect(error="must", note="no list array")
    elif what == "root":
        value = rng.choice([[], "x", 1, None, [Obj([])]])
        desc = f"body = {pstr(value)}"

        def edit(env, offset, req):
            return value
        expect = Expect(error="must", note="the body is not an object")
    elif what == "records":
        value = rng.choice(["empty", "nonobject", "extra"])
        junk_record = rng.choice([1, "x", None, []])
        extra = Obj([("id", "extra-1"), ("firstName", "Extra")])
        desc = f"records: {value}"

        def edit(env, offset, req):
            lst = get(env, "people")
            if value == "empty":
                lst = []
            elif value == "nonobject":
                lst = list(lst) + [junk_record]
            else:
                lst = list(lst) + [extra]
            return set_key(env, "people", lst)
        page_len = c.pages[page][1]
        if value == "nonobject":
            expect = Expect(error="must", note="a record is not an object")
        elif value == "empty":
            if page_len == 0:
                expect = honest
            elif c.mode == "offset" and page > 0:
                # shares no record with the page before: the scan rewinds,
                # then follows the cursor from the start
                expect = honest
            else:
                expect = Expect(error="must", note="the list ends short of total")
        elif page_len + 1 > PAGE:
            expect = Expect(error="must", note="more records than the limit")
        else:
            # a short last page with one record more: a record created
            # while the list is read, returned at the end
            expect = outcome(seen(recs) + [extra])
    else:
        desc = "unknown keys and whitespace"

        def edit(env, offset, req):
            env = Obj(list(env) + [("zzz", Obj([("_metadata", 1)]))])
            meta = get(env, "_metadata")
            return set_key(env, "_metadata", Obj(list(meta) + [("unknown", [1, {}])]))
        expect = honest
    if kind == "analyze":
        expect = Expect(error="may" if expect.error != "never" else "never", tag="ANALYZE")
    c.served = desc

    def mutate(req):
        p = api.list_page(req)
        if p is None:
            return api.answer(req)
        env = edit(api.envelope(*p), p[0], req)
        return Answer(http(200, env), mode="close")
    c.handler = make_handler(c, api, matches, mutate)
    c.expect = expect


BAD = object()


def meta_count(v):
    """What a _metadata number means: None (absent or null), an int >= 0,
    or BAD (anything else breaks the list contract)."""
    if v is MISSING or v is None:
        return None
    if isinstance(v, bool):
        return BAD
    if isinstance(v, Num):
        if v == "-0":
            return 0
        return int(v) if re.fullmatch(r"\d+", v) and int(v) < 2**63 else BAD
    if isinstance(v, int):
        return v if 0 <= v < 2**63 else BAD
    return BAD


def env_expect(what, value, c, n, page, honest, weird):
    """The outcome of one _metadata field set to value on list page `page`
    (c.mode's paging; see list_pages)."""
    loose = Expect(honest.rows, "may" if honest.error == "never" else honest.error,
                   note=f"_metadata.{what} odd")
    must = Expect(error="must", note=f"_metadata.{what} breaks the contract")
    npages = len(c.pages)
    last = page == npages - 1
    page_len = c.pages[page][1]
    offset_page = c.mode == "offset" and page > 0
    # the first page starts offset paging (then next is not followed)
    starts_offsets = c.mode == "offset" and n > PAGE
    is_str = isinstance(value, str) and not isinstance(value, Num)
    if what in ("total", "limit", "offset"):
        v = meta_count(value)
        if v is BAD:
            return must
    if what == "total":
        if v is None or page > 0:
            # cursor pages: a later total only lowers what must come (by at
            # most the churn allowance); offset pages: only the short page's
            # own total is checked, and a page short of it falls back to
            # the cursor
            return honest
        if starts_offsets and v > PAGE:
            return honest      # offset pages: the short one ends the list
        if npages == 1:
            return must if n < v else honest   # the list ends short of total
        return must if v - n > max(10, v // 100) else honest
    if what == "limit":
        if v is None:
            return honest
        if v > PAGE:
            return must        # issue 9.1: a limit above what was asked
        if offset_page:
            return honest      # offset pages only check the limit asked
        return must if v < page_len else honest   # more records than limit
    if what == "offset":
        # cursor pages ignore it; an offset page at another offset falls
        # back to the cursor
        return honest
    if what == "next":
        if value == "WEIRD":
            if weird.startswith("\u0000"):
                return loose
            if last or offset_page or (page == 0 and starts_offsets):
                return honest  # none on the last page, or not followed
            return honest if (weird.isascii() and len(weird) < 1000) else loose
        if value == "LOOP":
            if offset_page or (page == 0 and starts_offsets):
                return honest  # not followed
            return must        # the cursor of the page itself again
        if not (is_str or value is None or value is MISSING):
            return must        # neither a string nor null
        if offset_page:
            return honest      # offset pages ignore next
        if value in (None, MISSING, ""):
            return honest if last else must   # the list stops short of total
        if page == 0 and starts_offsets:
            return honest      # any cursor starts offset paging
        return must            # a cursor the API does not know (400)
    if what == "collection":
        # names the list array: another name finds none
        return must if is_str and value != "people" else honest
    return honest              # nextLink: not read


def fam_body(c, rng, api, recs, n, npages, kind, page, matches, target_desc,
             is_write_answer, outcome, seen, targets, latin1):
    """The bytes of one answer: cut, invalid UTF-8, duplicate keys, deep,
    huge."""
    honest = honest_expect(c, kind, outcome, recs, seen, api)
    what = rng.choice(["cut", "cut", "badutf8", "dupkeys", "deep", "huge_empty",
                       "huge_array", "bom", "trailing", "nul"])
    note = ""
    if what in ("huge_empty", "huge_array") and kind not in LIST_KINDS:
        what = "cut"
    offset_choice = rng.random()

    def body_of(req):
        status, body = api.honest(req)
        return status, dumps(body)

    if what == "cut":
        mode = rng.choice(["cl_cut", "close_mid", "cl_short"])

        def mutate(req):
            status, body = body_of(req)
            cut = int(offset_choice * len(body)) if len(body) > 1 else 0
            if mode == "cl_cut":       # a consistent Content-Length, the JSON cut
                return Answer(http(status, body[:cut]), mode="close")
            if mode == "cl_short":     # Content-Length shorter than the body
                return Answer(http(status, body, content_length=cut), mode="close")
            data = http(status, body)   # the connection closes mid-body
            return Answer(data, mode="cut", cut=len(data) - len(body) + cut)
        c.served = f"body cut at {offset_choice:.3f} of its length ({mode})"
        expect = Expect(error="must", note="truncated body")
        if mode == "close_mid":
            # a GET cut by the network may be retried: then the rows are exact
            c.transient = rng.random() < 0.5
            c.handler = make_handler(c, api, matches, mutate, times=1 if c.transient else None)
        else:
            c.handler = make_handler(c, api, matches, mutate)
        if is_write_answer:
            expect = Expect(error="must", note="truncated answer to a write",
                            tag=None)
            if kind in ("insert", "delete", "update"):
                expect.error = "may"
                expect.rows = [] if kind != "insert_ret" else None
            c.may_have_acted = True
        if kind == "analyze":
            expect.error = "may"
        c.expect = expect
        return
    if what == "badutf8":
        junk = rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80\x80"])

        def mutate(req):
            status, body = body_of(req)
            pos = body.find(b'"', int(offset_choice * len(body)))
            if pos < 0:
                pos = body.find(b'"')
            body = body[:pos + 1] + junk + body[pos + 1:] if pos >= 0 else junk + body
            return Answer(http(status, body), mode="close")
        c.served = f"invalid UTF-8 {junk!r} inside a string at {offset_choice:.3f}"
        expect = Expect(error="must", note="invalid UTF-8")
    elif what == "nul":
        def mutate(req):
            status, body = body_of(req)
            pos = int(offset_choice * len(body))
            return Answer(http(status, body[:pos] + b"\0" + body[pos:]), mode="close")
        c.served = f"a raw NUL byte at {offset_choice:.3f}"
        expect = Expect(error="must", note="a NUL in the body")
    elif what == "dupkeys":
        def mutate(req):
            status, body = api.honest(req)
            if isinstance(body, Obj):
                body = Obj(list(body) + [(k, v) for k, v in body if k != "people"])
            return Answer(http(status, body), mode="close")
        c.served = "every key but the list repeated"
        expect = honest.loosen("duplicate keys")
    elif what == "deep":
        depth = rng.choice([100, 10000, 100000])

        def mutate(req):
            status, body = body_of(req)
            return Answer(http(status, b"[" * depth + body + b"]" * depth), mode="close")
        c.served = f"the answer wrapped in {depth} arrays"
        expect = Expect(error="must", note="not an object")
    elif what == "huge_empty":
        count = rng.choice([100000, 1000000])
        # _metadata.limit: the count (above the limit asked: a contract
        # error) or null (the whole list in one page, read)
        limit = rng.choice([count, None])
        recs[:] = [Obj([]) for _ in range(count)]
        api.records = list(recs)
        api.max_limit = 10**7
        c.served = f"{count} empty records in one page, _metadata.limit {limit}"

        def mutate(req):
            env = api.envelope(0, limit, api.records, None)
            return Answer(http(200, env), mode="close")
        matches2 = lambda req: req.method == "GET" and req.path == "/api/people"  # noqa: E731
        c.handler = make_handler(c, api, matches2, mutate)
        if limit is not None:
            c.expect = Expect(error="must", note="a limit above what was asked")
        elif kind == "analyze":
            c.expect = Expect(tag="ANALYZE")
        else:
            c.sql = c.sql.replace(c.sql.split(" FROM ")[0], "SELECT count(*), count(id)")
            c.expect = Expect(rows=[[(EXACT, str(count)), (EXACT, "0")]])
        return
    elif what == "huge_array":
        size = rng.choice([100000, 1000000])

        def mutate(req):
            p = api.list_page(req)
            env = api.envelope(*p)
            return Answer(http(200, set_key(env, "padding", [0] * size)), mode="close")
        c.served = f"an extra key holding {size} numbers"
        expect = honest
    elif what == "bom":
        def mutate(req):
            status, body = body_of(req)
            return Answer(http(status, b"\xef\xbb\xbf" + body), mode="close")
        c.served = "a UTF-8 byte order mark first"
        expect = honest.loosen("BOM")
    else:
        junk = rng.choice([b" \r\n\t ", b"x", b"{}", b",", b"\0"])

        def mutate(req):
            status, body = body_of(req)
            return Answer(http(status, body + junk), mode="close")
        c.served = f"trailing {junk!r} after the JSON"
        expect = honest if junk.strip(b" \r\n\t") == b"" else Expect(error="must", note="trailing data")
    if is_write_answer and expect.error == "must":
        c.may_have_acted = True
        if kind in ("insert", "update", "delete"):
            expect = Expect(rows=[], error="may")
    if kind == "analyze" and expect.error == "must":
        expect = Expect(error="may")
    c.handler = make_handler(c, api, matches, mutate)
    c.expect = expect


def honest_expect(c, kind, outcome, recs, seen, api):
    if kind in ("insert", "insert_ret"):
        return outcome([], [honest_answer_for_insert(api)])
    if kind in ("update", "update_ret", "delete"):
        fetched = seen(recs)
        answer = [set_key(Obj(list(fetched[0])), "firstName", first_of(c.sql))] \
            if kind != "delete" else [Obj([])]
        return outcome(fetched, answer)
    return outcome(seen(recs))


def fam_http(c, rng, api, recs, n, npages, kind, page, matches, target_desc,
             is_write_answer, outcome, seen, targets, latin1):
    """Statuses, status lines and headers."""
    honest = honest_expect(c, kind, outcome, recs, seen, api)
    transient = rng.random() < 0.4
    what = rng.choice(["status", "status", "status", "retry_after", "header", "header",
                       "length", "statusline", "interim"])
    is_get = not is_write_answer
    c.transient = transient
    must = Expect(error="must")
    expect = None
    c.timeout_ms = 5000

    def with_body(req, acts=True):
        """The honest answer's body; when the status served says the API did
        nothing (a 4xx: 401, 429, ...), it is computed without its effect,
        so a retry finds the data as it was."""
        if acts:
            return api.honest(req)
        saved = (copy.deepcopy(api.records), api.next_id, dict(api.tokens))
        try:
            return api.honest(req)
        finally:
            api.records, api.next_id, api.tokens = saved

    if what == "status":
        status = rng.choice([100, 101, 199, 201, 202, 203, 204, 206, 301, 302, 303, 304, 307,
                             308, 400, 401, 403, 404, 405, 409, 410, 418, 422, 429, 451, 499,
                             500, 501, 502, 503, 504, 599, 600, 999, 0])
        body_kind = rng.choice(["honest", "error", "empty", "html"])
        c.served = f"status {status} ({body_kind} body){' once' if transient else ''}"
        headers = [("Location", "http://127.0.0.1:1/api/people")] if 300 <= status < 400 else []

        def mutate(req):
            # the honest answer only when it is served: a POST creates a record
            st, body = with_body(req, not 400 <= status < 500) if body_kind == "honest" \
                else (status, None)
            if body_kind == "error":
                body = {"errorMessage": "fuzz says no", "errors": ["a", 1]}
            elif body_kind == "empty":
                body = b""
            elif body_kind == "html":
                body = b"<html><body>oops</body></html>"
            if 100 <= status < 200:   # an interim status alone, then close
                return Answer(f"HTTP/1.1 {status} X\r\n\r\n".encode(), mode="close")
            return Answer(http(status, body, headers=headers), mode="close")
        retried = status in (429, 500, 502, 503, 504) or (status == 401)
        if status in (400, 422) and c.mode == "offset" and page > 0:
            # an offset refused: the scan follows the cursor from the start
            expect = honest
        elif status == 404 and target_desc.startswith("GET /people/"):
            expect = outcome_without(c, kind, outcome, recs, seen, targets,
                                     target_desc.split("/")[-1], api)
            if expect is None:
                expect = Expect(rows=None, error="may")
        elif status == 404 and target_desc.startswith(("PUT", "DELETE")):
            verb = "DELETE" if kind == "delete" else "UPDATE"
            expect = Expect(rows=[] if kind != "update_ret" else [], error="may",
                            tag=f"{verb} 0", note="404 on the write")
        elif status in (200, 201, 202, 203, 206) and body_kind == "honest":
            expect = Expect(honest.rows, "may", honest.tag, "2xx not 200")
        elif 200 <= status < 300 and body_kind == "error" and target_desc.startswith("GET /"):
            expect = Expect(rows=None, error="may", note="a 2xx without the record")
        elif transient and retried and (is_get or status in (429, 401) or
                                        target_desc.startswith(("PUT", "DELETE"))):
            expect = Expect(honest.rows, "may" if status == 401 else honest.error,
                            honest.tag, "retried")
            if target_desc.startswith(("PUT", "DELETE")) or status == 401:
                expect.loosen()
        else:
            expect = must
            if status in (201, 202, 203, 206) and body_kind == "empty":
                expect = Expect(rows=None, error="may")
            if is_write_answer and (status >= 500 or 200 <= status < 300 or status == 0
                                    or status >= 600):
                c.may_have_acted = True
                if 200 <= status < 300 and kind in ("insert", "update", "delete"):
                    expect = Expect(rows=[], error="may")
    elif what == "retry_after":
        status = rng.choice([429, 503])
        ra = rng.choice(["0", "1", "-1", "1.5", "abc", "", "99999999999999999999",
                         "9223372036854775807", "2147483648",
                         "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
                         "1, 2", " 1 ", "0x10", "1e3"])
        c.served = f"{status} Retry-After: {ra!r}{' once' if transient else ''}"
        c.timeout_ms = 3000

        def mutate(req):
            return Answer(http(status, {"errorMessage": "slow down"},
                               headers=[("Retry-After", ra)]), mode="close")
        if transient and (is_get or status == 429 or target_desc.startswith(("PUT", "DELETE"))):
            expect = Expect(honest.rows, "may", honest.tag, "retried after Retry-After")
        else:
            expect = must
            if is_write_answer and status == 503:
                c.may_have_acted = True
    elif what == "header":
        h = rng.choice(["2mb", "crlf", "lf_only", "many", "fold", "nocolon", "nul",
                        "utf8", "ce_gzip", "chunked_ok", "chunked_bad", "te_cl"])
        c.served = f"header mutation {h}"
        big = rng.choice([200 * 1024, 2 * MB])

        def mutate(req):
            st, body = with_body(req)
            b = dumps(body)
            if h == "2mb":
                return Answer(http(st, b, headers=[("X-Big", "a" * big)]), mode="close")
            if h == "crlf":
                return Answer(http(st, b, headers=[b"X-A: a\r\r\nX-B: b\rc"]), mode="close")
            if h == "lf_only":
                data = http(st, b).replace(b"\r\n", b"\n")
                return Answer(data, mode="close")
            if h == "many":
                return Answer(http(st, b, headers=[(f"X-{i}", "v") for i in range(5000)]),
                              mode="close")
            if h == "fold":
                return Answer(http(st, b, headers=[b"X-Fold: a\r\n b\r\n\tc"]), mode="close")
            if h == "nocolon":
                return Answer(http(st, b, headers=[b"this is not a header"]), mode="close")
            if h == "nul":
                return Answer(http(st, b, headers=[b"X-Nul: a\0b"]), mode="close")
            if h == "utf8":
                return Answer(http(st, b, headers=[("X-Name", "Zoë\udcff")]), mode="close")
            if h == "ce_gzip":
                return Answer(http(st, b, headers=[("Content-Encoding", "gzip")]), mode="close")
            if h == "chunked_ok":
                chunks = b"".join(b"%x\r\n%s\r\n" % (len(b[i:i + 7]), b[i:i + 7])
                                  for i in range(0, len(b), 7)) + b"0\r\n\r\n"
                return Answer(http(st, chunks, content_length=None,
                                   headers=[("Transfer-Encoding", "chunked")]), mode="send")
            if h == "chunked_bad":
                chunks = b"zz\r\n" + b + b"\r\n0\r\n\r\n"
                return Answer(http(st, chunks, content_length=None,
                                   headers=[("Transfer-Encoding", "chunked")]), mode="close")
            return Answer(http(st, b, headers=[("Transfer-Encoding", "chunked")]), mode="close")
        if h in ("chunked_ok",):
            expect = honest
        elif h in ("chunked_bad",):
            expect = must
            if is_write_answer:
                c.may_have_acted = True
                if kind in ("insert", "update", "delete"):
                    expect = Expect(rows=[], error="may")
        else:
            expect = Expect(honest.rows, "may", honest.tag, "odd header")
            if h == "2mb":
                expect.forbid = {"53200"}   # issue 9.20: not "out of memory"
        c.max_body = max(c.max_body, big if h == "2mb" else 0)
    elif what == "length":
        cl = rng.choice(["longer_close", "longer_hold", "garbage", "negative", "huge",
                         "twice", "none_close"])
        c.served = f"Content-Length {cl}"
        if cl == "longer_hold":
            c.timeout_ms = 1000

        def mutate(req):
            st, body = with_body(req)
            b = dumps(body)
            if cl == "longer_close":
                return Answer(http(st, b, content_length=len(b) + 100), mode="close")
            if cl == "longer_hold":
                return Answer(http(st, b, content_length=len(b) + 100), mode="hold")
            if cl == "garbage":
                return Answer(http(st, b, content_length="12abc"), mode="close")
            if cl == "negative":
                return Answer(http(st, b, content_length=-5), mode="close")
            if cl == "huge":
                return Answer(http(st, b, content_length=2**64), mode="close")
            if cl == "twice":
                return Answer(http(st, b, headers=[("Content-Length", str(len(b) - 3))]),
                              mode="close")
            return Answer(http(st, b, content_length=None), mode="close")
        if cl == "none_close":
            expect = honest
        elif cl in ("longer_close", "longer_hold"):
            expect = must
            if transient and is_get and cl == "longer_close":
                expect = Expect(honest.rows, "may", honest.tag, "retried")
        else:
            expect = Expect(honest.rows, "may", honest.tag, "odd Content-Length")
        if is_write_answer and expect.error == "must":
            c.may_have_acted = True
            if kind in ("insert", "update", "delete"):
                expect = Expect(rows=[], error="may")
    elif what == "statusline":
        line = rng.choice([b"HTTP/1.0 200 OK", b"HTTP/1.1 200", b"HTTP/1.1 200 \xff\xfe",
                           b"HTTP/2 200", b"HTTP/1.1 2000 OK", b"HTTP/1.1 -200 OK",
                           b"HTTP/1.1 20 OK", b"ICY 200 OK", b"garbage", b"",
                           b"HTTP/1.1 200 OK" + b"x" * 100000, b"HTTP/9.9 200 OK"])
        c.served = f"status line {short(line, 60)!s}"

        def mutate(req):
            st, body = with_body(req)
            return Answer(http(st, body, status_line=line), mode="close")
        ok_lines = (b"HTTP/1.0 200 OK", b"HTTP/1.1 200")
        if line in ok_lines and target_desc.startswith(("GET /people?", "list", "GET")) and \
                not is_write_answer:
            expect = honest
        else:
            expect = Expect(honest.rows, "may", honest.tag, "odd status line")
    else:
        interim = rng.choice([b"HTTP/1.1 100 Continue\r\n\r\n",
                              b"HTTP/1.1 102 Processing\r\n\r\n",
                              b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n",
                              b"HTTP/1.1 100 Continue\r\n\r\n" * 50])
        c.served = f"interim {short(interim, 40)} then the answer"

        def mutate(req):
            st, body = with_body(req)
            return Answer(interim + http(st, body), mode="close")
        expect = Expect(honest.rows, "may", honest.tag, "interim responses")
    if not getattr(expect, "forbid", None):
        expect.forbid = set()
    if kind == "analyze" and expect.error == "must":
        expect = Expect(error="may")
    c.handler = make_handler(c, api, matches, mutate, times=1 if transient else None)
    c.expect = expect


def outcome_without(c, kind, outcome, recs, seen, targets, tid, api):
    """The honest outcome when the record tid does not exist (a 404)."""
    rest = [r for r in recs if str(get(r, "id")) != tid]
    if kind in ("byid", "byids"):
        return outcome(seen(rest))
    if kind in ("update", "update_ret", "delete"):
        verb = "DELETE" if kind == "delete" else "UPDATE"
        return Expect(rows=[], tag=f"{verb} 0")
    return None


def fam_time(c, rng, api, recs, n, npages, kind, page, matches, target_desc,
             is_write_answer, outcome, seen, targets, latin1):
    """Stalls and drips, under a statement_timeout."""
    what = rng.choice(["stall", "stall_headers", "drip", "drip_body"])
    c.timeout_ms = rng.choice([500, 1000])
    c.served = f"{what}, statement_timeout {c.timeout_ms} ms"

    def mutate(req):
        st, body = api.honest(req)
        data = http(st, body)
        if what == "stall":
            return Answer(b"", mode="stall")
        if what == "stall_headers":
            head = data[:data.index(b"\r\n\r\n") + 4]
            return Answer(head, mode="hold")
        if what == "drip":
            return Answer(data, mode="drip", interval=0.1)
        head = data[:data.index(b"\r\n\r\n") + 4]
        return Answer(head + b"{" + b" " * 100000, mode="drip", interval=0.1)
    c.handler = make_handler(c, api, matches, mutate)
    c.expect = Expect(error="must", note="never answered in time")
    if is_write_answer:
        c.may_have_acted = True
        c.expect.forbid = set()


def fam_valid(c, rng, api, recs, n, npages, kind, page, matches, target_desc,
              is_write_answer, outcome, seen, targets, latin1):
    """Valid but extreme answers: the exact rows are known."""
    what = rng.choice(["numbers", "text", "page60", "empty", "long", "escapes", "reorder"])
    if kind not in LIST_KINDS and what in ("page60", "empty"):
        what = "numbers"
    if what == "page60" and kind == "scan4":
        what = "numbers"
    if what == "numbers":
        key = "averagePrice" if kind == "import" else rng.choice(["price", "n", "firstName"])
        pool = ["1234567.123456789012345678", "0.1", "1e400", "-0", "1E+2",
                "123456789012345678901234567890.000000000000000000001", "-1.5e-7"]
        if key == "n":
            pool = ["9223372036854775807", "-9223372036854775808", "0", "-0", "2147483648"]
        value = Num(rng.choice(pool))
        c.served = f"{key} = {value}"
    elif what == "text":
        key = rng.choice(["firstName", "lastName"])
        value = rng.choice(["Zoë", "Ærøskøbing", RawStr(b'"Zo\\u00eb"', "Zoë"),
                            "ÿ", "Ñ" * 1000] + ([] if latin1 else ["😀", "日本語", "\uffff"]))
        c.served = f"{key} = {pstr(value)}"
    elif what == "long":
        key = rng.choice(["firstName", "lastName"])
        value = rng.choice(["é", "x"]) * rng.choice([10000, 1000000, 5000000])
        c.served = f"{key} = a string of {len(value)} characters"
    elif what == "escapes":
        key = rng.choice(["firstName", "lastName"])
        value = RawStr(b'"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9"', '"\\/\b\f\n\r\tAé')
        c.served = f"{key} = every escape"
    else:
        key, value = None, None
    if what == "page60":
        recs[:] = honest_records(rng, rng.choice([59, 60, 61, 150]))
        api.records = list(recs)
        c.sql = c.sql.replace("FROM p1", "FROM p60")
        if kind == "analyze":
            c.sql = "ANALYZE p60"
        c.served = f"{len(recs)} records, pages of 60"
    elif what == "empty":
        recs[:] = []
        api.records = []
        c.served = "no records, total 0"
    elif what == "reorder":
        api_envelope = api.envelope

        def envelope(offset, limit, page_recs, nxt):
            env = api_envelope(offset, limit, page_recs, nxt)
            return Obj(list(reversed([(k, Obj(list(reversed(v))) if isinstance(v, Obj) else v)
                                      for k, v in env])))
        api.envelope = envelope
        recs[:] = [Obj(list(reversed(r))) for r in recs]
        api.records = list(recs)
        c.served = "every object's keys in reverse order"
    elif key is not None:
        if kind in ("insert", "insert_ret"):
            c.served += " (in the 201 answer)"

            def mutate(req):
                st, body = api.honest(req)
                return Answer(http(st, set_key(Obj(list(body.items())), key, value)))
            c.handler = make_handler(c, api, matches, mutate)
            c.expect = outcome([], [set_key(honest_answer_for_insert(api), key, value)])
            c.max_body = len(dumps(value)) + 500
            return
        if kind in LIST_KINDS:
            idx = list(range(len(recs)))
            if not idx:
                recs.append(honest_records(rng, 1)[0])
                idx = [0]
        else:
            idx = [i for i, r in enumerate(recs) if str(get(r, "id")) in targets]
        for i in rng.sample(idx, min(len(idx), 3)):
            recs[i] = set_key(recs[i], key, value)
        api.records = list(recs)
    c.handler = make_handler(c, api, lambda req: False, None)
    c.expect = honest_expect(c, kind, outcome, recs, seen, api)
    c.max_body = len(dumps(api.records[:60])) + 500


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------

def server_log_path(admin):
    """The cluster's log file: pg_current_logfile(), else the one
    pg_virtualenv writes beside the data directory."""
    import glob
    env = os.environ.get("ROLLOUT_FUZZ_SERVER_LOG")
    if env:
        return env
    current = admin.value("SELECT pg_current_logfile()")
    datadir = admin.value("SHOW data_directory")
    if current:
        return current if current.startswith("/") else os.path.join(datadir, current)
    m = re.match(r"(/tmp/pg_virtualenv\.[^/]+)/", datadir)
    cands = glob.glob(m.group(1) + "/log/*.log") if m else \
        glob.glob("/var/log/postgresql/postgresql-15-regress.log")
    return cands[0] if cands else None


def setup_db(name, encoding, base, worker):
    admin = Session("postgres")
    admin.query(f"DROP DATABASE IF EXISTS {name}")
    extra = "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" \
        if encoding == "latin1" else ""
    r = admin.query(f"CREATE DATABASE {name} {extra}")
    if r.error:
        raise RuntimeError(r.error.text())
    admin.close()
    s = Session(name)
    cols = ("id text, first_name text, last_name text, price numeric, n bigint, "
            "tags text[], attrs jsonb OPTIONS (field '*')")
    script = f"""
CREATE EXTENSION rollout_fdw;
CREATE SERVER fz FOREIGN DATA WRAPPER rollout_fdw OPTIONS (
  api_url '{base}', auth_url '{base}', client_id 'fuzz-{name}',
  retry_base_ms '10', retry_max_ms '50', max_retries '1', not_ready_timeout_s '0',
  rate_limit '0', timeout_ms '20000', connect_timeout_ms '2000');
CREATE USER MAPPING FOR CURRENT_USER SERVER fz
  OPTIONS (client_secret 'fuzz-secret', user_id 'fuzz-user', credential_id 'cred-1');
CREATE FOREIGN TABLE p1 ({cols}) SERVER fz
  OPTIONS (resource 'people', page_size '{PAGE}', scan_concurrency '1');
CREATE FOREIGN TABLE p4 ({cols}) SERVER fz
  OPTIONS (resource 'people', page_size '{PAGE}', scan_concurrency '4');
CREATE FOREIGN TABLE p60 ({cols}) SERVER fz
  OPTIONS (resource 'people', page_size '60', scan_concurrency '1');
CREATE SCHEMA imp;
IMPORT FOREIGN SCHEMA crm LIMIT TO (people) FROM SERVER fz INTO imp;
ALTER FOREIGN TABLE imp.people OPTIONS (ADD page_size '{PAGE}');
"""
    r = s.query(script)
    if r.error:
        raise RuntimeError(f"setting up {name}: {r.error.text()}")
    s.close()


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS", "RssAnon"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def reset_peak(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Runner:
    def __init__(self, args):
        self.args = args
        self.server = HostileServer()
        self.dbs = {"utf8": "rollout_fuzz_utf8", "latin1": "rollout_fuzz_latin1"}
        for enc, name in self.dbs.items():
            setup_db(name, enc, self.server.base, 0)
        self.sessions = {}
        self.admin = Session("postgres")
        self.start_time = self.admin.value("SELECT pg_postmaster_start_time()")
        self.failures = []
        self.rotations = 0
        self.passed = 0
        self.crashes = 0
        self.peak_kb = 0
        self.peak_case = None
        self.log_path = server_log_path(self.admin)
        self.log_offset = os.path.getsize(self.log_path) if self.log_path and \
            os.path.exists(self.log_path) else 0

    def session(self, db):
        s = self.sessions.get(db)
        if s is None:
            for _ in range(120):
                try:
                    s = Session(self.dbs[db])
                    break
                except (OSError, RuntimeError, BackendGone):
                    time.sleep(0.5)
            self.sessions[db] = s
        return s

    def fail(self, c, what):
        line = (f"FAILED seed={c.seed} case={c.k} [{c.family}/{c.kind}/{c.db}] {what}\n"
                f"       statement: {c.sql[:300]}\n"
                f"       served: {c.served[:400]}\n"
                f"       expected: {c.expect.describe()}\n"
                f"       replay: python3 test/test_fuzz.py --seed {c.seed} --case {c.k}")
        self.failures.append((c, what))
        print(line, flush=True)

    def run_case(self, c):
        s = self.session(c.db)
        s.query(f"SET statement_timeout = {c.timeout_ms}")
        self.server.begin(c.handler)
        rss_reset = reset_peak(s.pid)
        before = proc_status(s.pid)
        t0 = time.monotonic()
        gone = None
        res = None
        try:
            res = s.query(c.sql)
        except BackendGone as e:
            gone = str(e)
        secs = time.monotonic() - t0
        after = proc_status(s.pid) if gone is None else {}
        reqs = self.server.end()
        verdicts = []
        if self.server.errors:
            verdicts.append("suite error: " + "; ".join(self.server.errors))
            self.server.errors.clear()
        if gone is not None:
            self.sessions.pop(c.db, None)
            verdicts.append(f"the backend died ({gone})")
            self.check_postmaster(verdicts)
        else:
            s.query("RESET statement_timeout")
            verdicts += self.judge(c, res)
            bound = RSS_BASE_KB + RSS_FACTOR * c.max_body // 1024
            # growth of the backend's resident memory during the statement
            # (its peak, VmHWM, was reset to the current RSS just before)
            peak = after.get("VmHWM", 0) - before.get("VmRSS", 0) if rss_reset else 0
            held = after.get("RssAnon", 0) - before.get("RssAnon", 0)
            if peak > self.peak_kb:
                self.peak_kb, self.peak_case = peak, c.k
            if peak > bound and not UNDER_VALGRIND:
                verdicts.append(f"RSS grew by {peak // 1024} MB at peak, over the bound "
                                f"{bound // 1024} MB (largest body {c.max_body} bytes)")
            if held > bound and not UNDER_VALGRIND:
                verdicts.append(f"{held // 1024} MB more anonymous memory held after the "
                                f"statement, over {bound // 1024} MB")
        if gone is None and "429" in c.served:
            # a 429 may pause the whole client id for up to 60 s (README,
            # "One rate limit for the whole cluster"): later cases use another
            self.rotations += 1
            self.session(c.db).query(
                f"ALTER SERVER fz OPTIONS (SET client_id 'fuzz-{c.db}-{self.rotations}')")
        budget = c.timeout_ms / 1000 + SLACK_S
        if secs > budget:
            verdicts.append(f"took {secs:.2f} s, over its budget of {budget:.1f} s")
        if c.post_check and gone is None:
            msg = c.post_check(reqs)
            if msg:
                verdicts.append(msg)
        if verdicts:
            got = "backend died" if gone else (res.error.text()[:300] if res.error else
                                              f"{len(res.rows)} row(s) {res.tags}")
            seen_reqs = ", ".join(repr(r)[:80] for r in reqs[:6]) + \
                (f", ... ({len(reqs)} requests)" if len(reqs) > 6 else "")
            self.fail(c, " ; ".join(verdicts) + f"\n       got: {got}\n       requests: {seen_reqs}")
        else:
            self.passed += 1
            if self.args.verbose:
                print(f"ok     case={c.k} [{c.family}/{c.kind}/{c.db}] {secs:.2f}s {c.served[:100]}")

    def check_postmaster(self, verdicts):
        for _ in range(120):
            try:
                self.admin = Session("postgres")
                now = self.admin.value("SELECT pg_postmaster_start_time()")
                break
            except (OSError, RuntimeError, BackendGone):
                time.sleep(0.5)
        else:
            verdicts.append("the server did not come back")
            return
        if now != self.start_time:
            self.crashes += 1
            verdicts.append("the postmaster restarted (a backend crashed)")
            self.start_time = now
        self.sessions.clear()

    def judge(self, c, res):
        e = c.expect
        out = []
        err = res.error
        if err is not None:
            if err.sqlstate == "XX000":
                out.append("SQLSTATE XX000 (internal error)")
            if err.sqlstate in getattr(e, "forbid", set()):
                out.append(f"SQLSTATE {err.sqlstate} is the wrong class here")
            if e.error == "never":
                out.append("an error where rows were expected")
            if c.may_have_acted and c.kind in ("insert", "insert_ret") and \
                    not re.search(r"HTTP 4\d\d", err.message) and \
                    not re.search(r"creat|may have|might have", err.all_text(), re.I):
                out.append("the error does not say the record may have been created")
            return out
        if e.error == "must":
            what = f"{len(res.rows)} row(s)" + (" (a silent empty result)" if not res.rows else "")
            out.append(f"no error: {what} {res.tags}")
            return out
        if e.tag and (not res.tags or res.tags[-1] != e.tag):
            out.append(f"command tag {res.tags} instead of {e.tag}")
        if e.rows is not None and not rows_match(e.rows, res.rows):
            out.append("wrong rows: " + rows_diff(e.rows, res.rows))
        return out

    def finish(self):
        for s in self.sessions.values():
            s.close()
        checks = []
        try:
            now = Session("postgres").value("SELECT pg_postmaster_start_time()")
        except Exception as e:   # noqa: BLE001
            now = f"unreachable: {e}"
        checks.append(("the postmaster never restarted", now == self.start_time and
                       self.crashes == 0, f"{self.crashes} restart(s)"))
        if self.log_path and os.path.exists(self.log_path):
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                text = f.read().decode("utf-8", "replace")
            bad = [line[:300] for line in text.splitlines() if "terminated by signal" in line]
            checks.append(("the server log has no 'terminated by signal'", not bad,
                           "; ".join(bad[:5])))
        return checks


def rows_diff(expected, got):
    if len(expected) != len(got):
        return f"{len(got)} row(s) instead of {len(expected)}" + (
            f"; first got {shorten(got[0])}" if got else "")
    for i, (erow, grow) in enumerate(zip(expected, got)):
        for j, (cell, value) in enumerate(zip(erow, grow)):
            if cell[0] in (EXACT, MAYBE) and cell[1] != value:
                return (f"row {i} column {j}: {shorten(value)} instead of {shorten(cell[1])}")
    return "?"


def shorten(v, n=120):
    s = repr(v)
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--cases", type=int, default=2400)
    ap.add_argument("--quick", action="store_true", help="300 cases")
    ap.add_argument("--case", type=int, action="append", help="run only case K (repeatable)")
    ap.add_argument("--kind", choices=list(KINDS))
    ap.add_argument("--family", choices=list(FAMILIES))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(os.environ.get(
        "ROLLOUT_FUZZ_SEED", random.SystemRandom().randrange(1, 10**9)))
    count = 300 if args.quick else int(os.environ.get("ROLLOUT_FUZZ_CASES", args.cases))
    cases = args.case or range(count)
    print(f"fuzz: seed {seed}, {len(cases)} case(s); replay with "
          f"python3 test/test_fuzz.py --seed {seed} [--case K]", flush=True)
    print(f"fuzz: RSS bound per statement: the backend's resident memory grows by at most "
          f"{RSS_BASE_KB // 1024} MB + {RSS_FACTOR} x the largest body served (peak: VmHWM "
          f"reset before each statement; held after: RssAnon)", flush=True)
    runner = Runner(args)
    t0 = time.monotonic()
    for k in cases:
        c = build_case(seed, k, args.kind, args.family)
        runner.run_case(c)
    secs = time.monotonic() - t0
    checks = runner.finish()
    failed = len(runner.failures)
    passed = runner.passed
    for name, ok, info in checks:
        if ok:
            passed += 1
            print(f"ok     {name}")
        else:
            failed += 1
            print(f"FAILED seed={seed} {name}: {info}")
    kinds = {}
    for c, what in runner.failures:
        key = f"{c.family}/{c.kind}: " + re.sub(r"\d+", "N", what.split("\n")[0])[:90]
        kinds.setdefault(key, c.k)
    if kinds:
        print("fuzz: failure kinds (first case of each):")
        for key, k in sorted(kinds.items()):
            print(f"  case {k}: {key}")
    print(f"fuzz: {len(cases)} cases in {secs:.1f} s ({len(cases) / max(secs, 0.001):.1f}/s), "
          f"seed {seed}, largest RSS growth {runner.peak_kb // 1024} MB (case {runner.peak_case})")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

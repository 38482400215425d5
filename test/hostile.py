"""A hostile Rollout API for the fuzz suite (test/test_fuzz.py).

Raw sockets, byte-exact: every answer is the bytes a case chose, so it can be
anything — invalid UTF-8, a body cut at any byte, a wrong Content-Length,
a 2 MB or CR/LF-laden header, any status line, a stall (never answer), a
drip (one byte per 100 ms), a connection closed mid-body.  It speaks enough
of the API for rollout_fdw to work (the JWT is not checked):

  GET    {base}/people?limit=N[&next=cursor][&offset=o]   list envelope
                                                (offset ignored if asked)
  GET    {base}/people/{id}                                a record, or 404
  POST   {base}/people                                     201 + the record
  PUT    {base}/people/{id}                                200 + the record
  DELETE {base}/people/{id}                                200 []
  GET    {base}/credentials                                one credential

It runs in a thread of the test: `server.begin(handler)` sets, for the next
requests, a function Request -> Answer (Api(records).answer is the honest
one); `server.end()` releases stalled connections and returns the requests
seen.  Python standard library only.
"""

import json
import socket
import threading
import time
import urllib.parse


# --- JSON with byte-exact control ---------------------------------------

class Num(str):
    """A JSON number kept as written ("1e400", "-0", "1234567.1234567890123")."""


class Raw(bytes):
    """Bytes spliced into a JSON text as they are."""


class Obj(list):
    """A JSON object as a list of (key, value) pairs: keys may repeat."""


def dumps(v):
    """Serialize a value made of None, bool, int, Num, str, Raw, list, dict
    and Obj to bytes (non-ASCII characters as raw UTF-8)."""
    out = []
    _dump(v, out)
    return b"".join(out)


def _dump(v, out):
    if v is None:
        out.append(b"null")
    elif v is True:
        out.append(b"true")
    elif v is False:
        out.append(b"false")
    elif isinstance(v, Raw):
        out.append(bytes(v))
    elif isinstance(v, Num):
        out.append(str(v).encode())
    elif isinstance(v, int):
        out.append(str(v).encode())
    elif isinstance(v, float):
        out.append(repr(v).encode())
    elif isinstance(v, str):
        out.append(json.dumps(v, ensure_ascii=False).encode("utf-8"))
    elif isinstance(v, (Obj, dict)):
        items = v if isinstance(v, Obj) else list(v.items())
        out.append(b"{")
        for i, (k, val) in enumerate(items):
            if i:
                out.append(b",")
            _dump(k, out)
            out.append(b":")
            _dump(val, out)
        out.append(b"}")
    elif isinstance(v, (list, tuple)):
        out.append(b"[")
        for i, item in enumerate(v):
            if i:
                out.append(b",")
            _dump(item, out)
        out.append(b"]")
    else:
        raise TypeError(type(v))


# --- HTTP answers ---------------------------------------------------------

REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content",
           301: "Moved Permanently", 302: "Found", 304: "Not Modified",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 409: "Conflict", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


def http(status=200, body=b"", headers=(), content_length="auto",
         status_line=None, content_type="application/json"):
    """The bytes of one HTTP/1.1 response.  headers: (name, value) pairs or
    raw header lines (bytes) sent as they are."""
    if not isinstance(body, (bytes, bytearray)):
        body = dumps(body)
    if status_line is None:
        status_line = f"HTTP/1.1 {status} {REASONS.get(status, 'Whatever')}".encode()
    lines = [status_line]
    if content_type:
        lines.append(b"Content-Type: " + content_type.encode())
    if content_length == "auto":
        lines.append(b"Content-Length: " + str(len(body)).encode())
    elif content_length is not None:
        lines.append(b"Content-Length: " + str(content_length).encode())
    for h in headers:
        if isinstance(h, (bytes, bytearray)):
            lines.append(bytes(h))
        else:
            lines.append(f"{h[0]}: {h[1]}".encode("utf-8", "surrogateescape"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + bytes(body)


class Answer:
    """What to do with one request.
    mode: "send" (then keep the connection for the next request),
          "close" (send, then close),
          "cut" (send data[:cut], then close),
          "hold" (send, then never close until the case ends),
          "stall" (send nothing until the case ends),
          "drip" (one byte per `interval` seconds until done or the case ends),
          "reset" (close with a TCP RST, sending nothing)."""

    def __init__(self, data=b"", mode="send", cut=None, interval=0.1):
        self.data = data
        self.mode = mode
        self.cut = cut
        self.interval = interval


class Request:
    def __init__(self, method, target, headers, body):
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        parts = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(parts.path)
        self.raw_path = parts.path
        self.query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        self.seq = -1               # order within the case

    def __repr__(self):
        return f"{self.method} {self.target}"


# --- the honest API -----------------------------------------------------------

class Api:
    """An honest Rollout API over a list of records (dicts or Obj, values as
    in dumps()).  envelope() and record_answer() are separate so a case can
    serve a mutated version of what the honest API would have said."""

    def __init__(self, records, base="/api", max_limit=100, collection="people",
                 ignore_offset=None):
        self.records = list(records)
        # an API that ignores the offset parameter: answers from offset 0,
        # saying so in _metadata.offset ("zero") or leaving it out ("silent")
        self.ignore_offset = ignore_offset
        self.base = base
        self.max_limit = max_limit
        self.collection = collection
        self.tokens = {}
        self.next_id = 1000

    def cursor(self, offset):
        token = f"c{offset}"
        self.tokens[token] = offset
        return token

    def list_page(self, req):
        """(offset, limit, records, next) of a list request, or None if bad;
        offset is None when the envelope must not say it (ignore_offset
        "silent")."""
        try:
            limit = int(req.query.get("limit", "10"))
        except ValueError:
            return None
        limit = max(0, min(limit, self.max_limit))
        if "next" in req.query:
            if req.query["next"] not in self.tokens:
                return None
            offset = self.tokens[req.query["next"]]
        else:
            try:
                offset = int(req.query.get("offset", "0"))
            except ValueError:
                return None
            if "offset" in req.query and self.ignore_offset:
                offset = 0
        page = self.records[offset:offset + limit]
        nxt = self.cursor(offset + limit) if offset + limit < len(self.records) and limit else None
        if "offset" in req.query and self.ignore_offset == "silent":
            offset = None
        return offset, limit, page, nxt

    def envelope(self, offset, limit, page, nxt):
        meta = [("collection", self.collection), ("offset", offset), ("limit", limit),
                ("total", len(self.records)), ("next", nxt), ("nextLink", None)]
        return Obj([("_metadata", Obj([(k, v) for k, v in meta
                                       if not (k == "offset" and v is None)])),
                    (self.collection, page)])

    def find(self, rid):
        for i, r in enumerate(self.records):
            if record_id_text(r) == rid:
                return i
        return None

    def answer(self, req):
        return Answer(http(*self.honest(req)))

    def honest(self, req):
        """(status, body) the honest API gives."""
        coll = f"{self.base}/{self.collection}"
        if req.path == f"{self.base}/credentials":
            return 200, [{"id": "cred-1", "label": "Fuzz", "appKey": "fub",
                          "createdAt": "2025-01-01T00:00:00Z"}]
        if req.method == "GET" and req.path == coll:
            page = self.list_page(req)
            if page is None:
                return 400, {"errorMessage": "bad paging parameters"}
            return 200, self.envelope(*page)
        if req.method == "POST" and req.path == coll:
            try:
                sent = json.loads(req.body or b"{}", parse_float=Num, parse_int=Num)
            except ValueError:
                return 400, {"errorMessage": "body is not JSON"}
            if not isinstance(sent, dict):
                return 400, {"errorMessage": "body is not an object"}
            self.next_id += 1
            rec = dict(sent)
            rec["id"] = self.next_id
            rec.pop("attrs", None)
            rec.setdefault("stage", "Lead")
            self.records.append(rec)
            return 201, rec
        if req.path.startswith(coll + "/"):
            rid = req.path[len(coll) + 1:]
            i = self.find(rid)
            if i is None:
                return 404, {"errorMessage": f"person {rid} not found"}
            if req.method == "GET":
                return 200, self.records[i]
            if req.method == "PUT":
                try:
                    sent = json.loads(req.body or b"{}", parse_float=Num, parse_int=Num)
                except ValueError:
                    return 400, {"errorMessage": "body is not JSON"}
                rec = dict(plain(self.records[i]))
                rec.update(sent)
                self.records[i] = rec
                return 200, rec
            if req.method == "DELETE":
                del self.records[i]
                return 200, []
        return 404, {"errorMessage": "no such endpoint"}


def plain(record):
    return dict(record) if isinstance(record, Obj) else record


def record_id_text(record):
    items = record if isinstance(record, Obj) else (
        list(record.items()) if isinstance(record, dict) else [])
    for k, v in items:
        if k == "id":
            return None if v is None or isinstance(v, (list, dict, Raw)) else str(v)
    return None


# --- the server ---------------------------------------------------------------

class HostileServer:
    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.handler = None
        self.requests = []
        self.release = threading.Event()
        self.held = set()
        self.errors = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}/api"

    def begin(self, handler):
        with self.lock:
            self.handler = handler
            self.requests = []
            self.release = threading.Event()

    def end(self):
        """Release stalls and drips, close the connections they held; return
        the requests of the case."""
        with self.lock:
            self.release.set()
            held = list(self.held)
            self.held.clear()
            reqs = self.requests
            self.requests = []
        for s in held:
            try:
                s.close()
            except OSError:
                pass
        return reqs

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                req, buf = self._read_request(conn, buf)
                if req is None:
                    return
                with self.lock:
                    req.seq = len(self.requests)
                    self.requests.append(req)
                    handler = self.handler
                    release = self.release
                try:
                    ans = handler(req) if handler else Answer(http(503, b"no case"))
                except Exception as e:     # a bug of the suite: say so, answer 599
                    self.errors.append(f"handler raised {e!r} on {req}")
                    ans = Answer(http(599, b"suite error"), mode="close")
                if not self._execute(conn, ans, release):
                    return
        except OSError:
            return
        finally:
            with self.lock:
                self.held.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    @staticmethod
    def _read_request(conn, buf):
        conn.settimeout(120)
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
            if len(buf) > 1 << 20:
                return None, b""
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        n = int(headers.get("content-length", "0") or 0)
        while len(buf) < n:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
        return Request(method, target, headers, buf[:n]), buf[n:]

    def _execute(self, conn, ans, release):
        """Carry out an answer; True to keep serving the connection."""
        if ans.mode == "send":
            conn.sendall(ans.data)
            return True
        if ans.mode == "close":
            conn.sendall(ans.data)
            return False
        if ans.mode == "cut":
            conn.sendall(ans.data[:ans.cut])
            return False
        if ans.mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            return False
        if ans.mode in ("hold", "stall"):
            with self.lock:
                self.held.add(conn)
            if ans.mode == "hold":
                conn.sendall(ans.data)
            release.wait(300)
            return False
        if ans.mode == "drip":
            with self.lock:
                self.held.add(conn)
            for i in range(len(ans.data)):
                if release.wait(ans.interval):
                    return False
                conn.sendall(ans.data[i:i + 1])
            return False
        raise ValueError(ans.mode)


if __name__ == "__main__":
    # a manual look: python3 test/hostile.py, then curl the printed URL
    srv = HostileServer()
    api = Api([{"id": i, "firstName": f"P{i}"} for i in range(1, 26)])
    srv.begin(api.answer)
    print(srv.base, flush=True)
    while True:
        time.sleep(3600)

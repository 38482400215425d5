"""A minimal PostgreSQL client (protocol 3, simple query) for the fuzz suite:
one persistent session, every field of an error (SQLSTATE, message, detail,
hint, context), the backend's pid, and a clear signal when the backend dies.
Trust, cleartext, md5 and SCRAM-SHA-256 authentication; TCP or Unix socket.
Python standard library only: psql through pipes cannot tell which error
belongs to which statement, nor a crash from an error, fast enough for
thousands of statements."""

import base64
import hashlib
import hmac
import os
import socket
import struct


class BackendGone(Exception):
    """The connection ended: the backend exited or crashed."""


class PgError:
    def __init__(self, fields):
        self.fields = fields
        self.sqlstate = fields.get("C", "")
        self.message = fields.get("M", "")

    def text(self):
        f = self.fields
        parts = [f"{f.get('S', 'ERROR')} {self.sqlstate}: {self.message}"]
        for key, name in (("D", "DETAIL"), ("H", "HINT"), ("W", "CONTEXT")):
            if key in f:
                parts.append(f"{name}: {f[key]}")
        return " | ".join(parts)

    def all_text(self):
        return " ".join(self.fields.get(k, "") for k in "MDHW")


class Result:
    """What one query string gave: rows (lists of str or None), command tags,
    the first error (or None), notices."""

    def __init__(self):
        self.rows = []
        self.tags = []
        self.error = None
        self.notices = []


class Session:
    def __init__(self, dbname, host=None, port=None, user=None, password=None,
                 connect_timeout=30, options=None):
        host = host or os.environ.get("PGHOST", "/var/run/postgresql")
        port = int(port or os.environ.get("PGPORT", "5432"))
        user = user or os.environ.get("PGUSER", "postgres")
        self.password = password if password is not None else os.environ.get("PGPASSWORD")
        if host.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(connect_timeout)
            self.sock.connect(os.path.join(host, f".s.PGSQL.{port}"))
        else:
            self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.settimeout(None)
        self.buf = b""
        self.user = user
        self.pid = None
        self.params = {}
        startup = {"user": user, "database": dbname, "client_encoding": "UTF8",
                   "application_name": "rollout_fuzz"}
        startup.update(options or {})
        body = struct.pack("!I", 196608)
        for k, v in startup.items():
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        self.sock.sendall(struct.pack("!I", len(body) + 4) + body)
        self._authenticate()

    # --- framing
    def _recv(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:
                raise BackendGone(str(e))
            if not chunk:
                raise BackendGone("connection closed by the server")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _message(self):
        head = self._recv(5)
        kind = head[:1]
        length = struct.unpack("!I", head[1:])[0]
        return kind, self._recv(length - 4)

    def _send(self, kind, payload):
        try:
            self.sock.sendall(kind + struct.pack("!I", len(payload) + 4) + payload)
        except OSError as e:
            raise BackendGone(str(e))

    @staticmethod
    def _fields(payload):
        fields = {}
        for part in payload.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return fields

    # --- authentication
    def _authenticate(self):
        scram = None
        while True:
            kind, payload = self._message()
            if kind == b"R":
                code = struct.unpack("!I", payload[:4])[0]
                if code == 0:
                    continue
                if code == 3:
                    self._send(b"p", (self.password or "").encode() + b"\0")
                elif code == 5:
                    salt = payload[4:8]
                    inner = hashlib.md5(((self.password or "") + self.user).encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + salt).hexdigest()
                    self._send(b"p", b"md5" + outer.encode() + b"\0")
                elif code == 10:
                    scram = _Scram(self.password or "")
                    first = scram.client_first()
                    self._send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
                elif code == 11:
                    self._send(b"p", scram.client_final(payload[4:]))
                elif code == 12:
                    scram.verify(payload[4:])
                else:
                    raise RuntimeError(f"unsupported authentication method {code}")
            elif kind == b"E":
                raise RuntimeError(PgError(self._fields(payload)).text())
            elif kind == b"K":
                self.pid = struct.unpack("!I", payload[:4])[0]
            elif kind == b"S":
                k, v = payload.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif kind == b"Z":
                return

    # --- queries
    def query(self, sql):
        """Run a query string (one or more statements); returns a Result.
        Raises BackendGone if the backend died."""
        self._send(b"Q", sql.encode("utf-8") + b"\0")
        res = Result()
        while True:
            kind, payload = self._message()
            if kind == b"D":
                n = struct.unpack("!H", payload[:2])[0]
                pos = 2
                row = []
                for _ in range(n):
                    ln = struct.unpack("!i", payload[pos:pos + 4])[0]
                    pos += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(payload[pos:pos + ln].decode("utf-8", "replace"))
                        pos += ln
                res.rows.append(row)
            elif kind == b"C":
                res.tags.append(payload.rstrip(b"\0").decode())
            elif kind == b"E":
                if res.error is None:
                    res.error = PgError(self._fields(payload))
            elif kind == b"N":
                res.notices.append(PgError(self._fields(payload)))
            elif kind == b"Z":
                return res
            elif kind in (b"T", b"I", b"S", b"A", b"1", b"2", b"3", b"n", b"s"):
                continue
            elif kind in (b"G", b"H"):
                # COPY is never used by the suite; refuse it
                self._send(b"f", b"no COPY in the fuzz suite\0")

    def value(self, sql):
        res = self.query(sql)
        if res.error:
            raise RuntimeError(res.error.text())
        return res.rows[0][0] if res.rows else None

    def close(self):
        try:
            self._send(b"X", b"")
        except BackendGone:
            pass
        self.sock.close()


class _Scram:
    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()

    def client_first(self):
        self.first_bare = f"n=,r={self.nonce}"
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        final_bare = f"c=biws,r={attrs['r']}"
        auth_msg = f"{self.first_bare},{server_first},{final_bare}".encode()
        sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_sig = hmac.new(server_key, auth_msg, hashlib.sha256).digest()
        return (final_bare + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify(self, server_final):
        attrs = dict(kv.split("=", 1) for kv in server_final.decode().split(","))
        if base64.b64decode(attrs["v"]) != self.server_sig:
            raise RuntimeError("SCRAM server signature mismatch")

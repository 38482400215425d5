"""The emulator's list pages, fetched as the extension fetches them.

fetch_pages(resource) returns the raw bodies (bytes) of every page of
GET /api/<resource>?limit=100, following _metadata.next, with one
kept-alive connection and an HS512 JWT: the bodies the extension decodes
during a full scan."""

import base64
import hashlib
import hmac
import http.client
import json
import time
import urllib.parse

from lib import EMU


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt():
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    body = b64(json.dumps({"iss": "test-client", "sub": "user-1",
                           "iat": now, "exp": now + 900}).encode())
    sig = hmac.new(b"test-secret", f"{head}.{body}".encode(), hashlib.sha512).digest()
    return f"{head}.{body}.{b64(sig)}"


def fetch_pages(resource="people", limit=100):
    url = urllib.parse.urlparse(EMU)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    headers = {"Authorization": "Bearer " + jwt(), "X-Rollout-Credential-Id": "cred-1",
               "Accept": "application/json"}
    bodies, cursor = [], None
    while True:
        path = f"/api/{resource}?limit={limit}" + (
            f"&next={urllib.parse.quote(cursor, safe='')}" if cursor else "")
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body[:200])
        bodies.append(body)
        cursor = json.loads(body)["_metadata"].get("next")
        if not cursor:
            conn.close()
            return bodies

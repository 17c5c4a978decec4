"""Robots' lib.get/post/put/delete, through the outbound guard: a real HTTP server on loopback that the
operator allowed, one that was not allowed (also reached by a redirect), and the guard's address rules."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sharelake.outbound.guard import Allow, Refused, forbidden, resolve_checked
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.worker import Worker
from tests.helpers import Tenant
from tests.services.test_robots import errors_of, made, records, tts


@dataclass
class Echo:
    """A loopback HTTP server that answers every request with what it received, as JSON (or, with
    `redirect_to`, a 302 there)."""

    port: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)
    redirect_to: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def echo_server() -> Iterator[Echo]:
    echo = Echo()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else None
            echo.seen.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
            )
            if echo.redirect_to is not None:
                self.send_response(302)
                self.send_header("Location", echo.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            out = json.dumps({"method": self.command, "path": self.path, "body": body}).encode()
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Echo", "yes")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    echo.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield echo
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def allowed() -> Iterator[Echo]:
    with echo_server() as echo:
        yield echo


@pytest.fixture
def forbidden_server() -> Iterator[Echo]:
    with echo_server() as echo:
        yield echo


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], allowed: Echo) -> Settings:
    return settings_factory(robot_http_allow=f"127.0.0.1:{allowed.port}")


SCRIPT = """
function main(text, auth) {
  var record = lib.parseMsg(text).objs[0];
  var got = lib.get('%(url)s/things?n=1', {'X-Api-Key': 'k1'});
  var posted = lib.post('%(url)s/things', {'X-Api-Key': 'k1'}, {fCnt: record.uplink.fCnt});
  var put = lib.put('%(url)s/things/1', {'Content-Type': 'text/plain'}, 'plain text');
  var gone = lib.delete('%(url)s/things/1', {});
  lib.writeShare(auth, 'io.lab.answers', {
    get: [got.status, JSON.parse(got.body).path, got.headers['x-echo']],
    post: [posted.status, JSON.parse(posted.body).body],
    put: JSON.parse(put.body).body, del: JSON.parse(gone.body).method
  });
}"""


def test_a_robot_calls_an_allowed_server(tenant: Tenant, lake: Lake, allowed: Echo) -> None:
    made(tenant, "io.lab.up", SCRIPT % {"url": allowed.url})
    tenant.post("io.lab.up", tts("0167FFD7", 9))
    assert Worker(lake).drain() == 1
    (answer,) = records(tenant, "io.lab.answers")
    assert answer["data"] == {
        "get": [200, "/things?n=1", "yes"],
        "post": [201, '{"fCnt":9}'],
        "put": "plain text",
        "del": "DELETE",
    }
    # Each request was made once, though the robot ran again after each answer.
    assert [(s["method"], s["path"]) for s in allowed.seen] == [
        ("GET", "/things?n=1"),
        ("POST", "/things"),
        ("PUT", "/things/1"),
        ("DELETE", "/things/1"),
    ]
    post = allowed.seen[1]
    assert post["headers"]["X-Api-Key"] == "k1"
    assert post["headers"]["Content-Type"] == "application/json"
    assert post["headers"]["Host"] == f"127.0.0.1:{allowed.port}"
    assert allowed.seen[2]["headers"]["Content-Type"] == "text/plain"


CATCH = """
function main(text, auth) {
  var out = [];
  var urls = %(urls)s;
  for (var i = 0; i < urls.length; i++) {
    try { lib.get(urls[i], {}); out.push('reached'); } catch (e) { out.push(String(e.message)); }
  }
  lib.writeShare(auth, 'io.lab.refusals', {out: out});
}"""


def test_private_addresses_and_redirects_to_them_are_refused(
    tenant: Tenant, lake: Lake, allowed: Echo, forbidden_server: Echo
) -> None:
    allowed.redirect_to = f"{forbidden_server.url}/secret"
    urls = [
        f"{forbidden_server.url}/direct",  # loopback, another port: not allowed
        f"{allowed.url}/hop",  # allowed, but redirects to the forbidden one
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:1/",
        "ftp://example.com/",
    ]
    made(tenant, "io.lab.up", CATCH % {"urls": json.dumps(urls)})
    tenant.post("io.lab.up", tts("0167FFD7", 1))
    assert Worker(lake).drain() == 1
    (answer,) = records(tenant, "io.lab.refusals")
    direct, hop, metadata, local, ftp = answer["data"]["out"]
    assert "a loopback address" in direct
    assert "SHARELAKE_ROBOT_HTTP_ALLOW" in direct
    assert "a loopback address" in hop
    assert f"127.0.0.1:{forbidden_server.port}" in hop
    assert "link-local" in metadata
    assert "loopback" in local
    assert "http:// or https://" in ftp
    assert forbidden_server.seen == []  # never reached, directly or by the redirect
    assert [s["path"] for s in allowed.seen] == ["/hop"]


def test_an_uncaught_refusal_is_the_runs_error(tenant: Tenant, lake: Lake, forbidden_server: Echo) -> None:
    script = "function main(text, auth) { lib.post('" + forbidden_server.url + "/x', {}, {a: 1}); }"
    doc = made(tenant, "io.lab.up", script)
    tenant.post("io.lab.up", tts("0167FFD7", 2))
    assert Worker(lake).drain() == 1
    (error,) = errors_of(tenant, doc)
    assert "lib.post" in error
    assert "a loopback address" in error
    assert forbidden_server.seen == []


def test_bad_arguments_throw_in_the_script(tenant: Tenant, lake: Lake) -> None:
    script = """
    function main(text, auth) {
      var out = [];
      var calls = [function () { lib.get(42); }, function () { lib.get('http://x.example', 'h'); },
                   function () { lib.get('http://x.example', {a: {}}); }];
      for (var i = 0; i < calls.length; i++) { try { calls[i](); } catch (e) { out.push(e.message); } }
      lib.writeShare(auth, 'io.lab.bad', {out: out});
    }"""
    made(tenant, "io.lab.up", script)
    tenant.post("io.lab.up", tts("0167FFD7", 3))
    assert Worker(lake).drain() == 1
    (answer,) = records(tenant, "io.lab.bad")
    assert answer["data"]["out"] == [
        "lib.get: url must be an http:// or https:// URL (a string)",
        "lib.get: headers must be an object of strings",
        'lib.get: header "a" must be a string',
    ]


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("fd12::1", "private"),
        ("100.100.100.200", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unicast"),
        ("224.0.0.1", "unicast"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_the_address_rules(address: str, refused: str | None) -> None:
    reason = forbidden(ipaddress.ip_address(address))
    assert (reason is None) if refused is None else (refused in (reason or ""))


def test_the_allow_list() -> None:
    allow = Allow.parse(" broker.lan, 10.0.0.5:8080 ,192.168.10.0/24, [::1]:9000 ")
    assert allow.permits("broker.lan", 1883)
    assert allow.permits("BROKER.lan", 443)
    assert allow.permits("10.0.0.5", 8080)
    assert not allow.permits("10.0.0.5", 8081)
    assert allow.permits("any.name", 80, ipaddress.ip_address("192.168.10.7"))
    assert not allow.permits("any.name", 80, ipaddress.ip_address("192.168.11.7"))
    assert allow.permits("[::1]", 9000)
    assert resolve_checked("10.0.0.5", 8080, allow) == ipaddress.ip_address("10.0.0.5")
    with pytest.raises(Refused, match="private"):
        resolve_checked("10.0.0.5", 8081, allow)
    with pytest.raises(Refused, match="loopback"):
        resolve_checked("localhost", 80, Allow())
    for bad in ("10.0.0.0/33", "host:http", "host:70000"):
        with pytest.raises(ValueError, match="not a"):
            Allow.parse(bad)


def test_a_bad_allow_list_is_a_settings_error(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="not a CIDR"):
        settings_factory(robot_http_allow="10.0.0.0/99")

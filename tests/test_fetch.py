"""Server-side URL fetching against a real local HTTP server (threads, loopback)."""

from __future__ import annotations

import io
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from cam_core.errors import ImageRejectedError, UrlRejectedError
from cam_core.intake.fetch import FetchConfig, check_address, fetch_bytes, fetch_image

PNG = io.BytesIO()
Image.new("RGB", (32, 24), (250, 10, 10)).save(PNG, format="PNG")
PNG_BYTES = PNG.getvalue()
BIG = bytes(range(256)) * 1000  # several read chunks


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        return

    def _head(self, status: int, kind: str, length: int | None, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()

    def _send(
        self, status: int, body: bytes, kind: str, extra: dict[str, str] | None = None
    ) -> None:
        self._head(status, kind, len(body), extra or {})
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path
        if path == "/cat.png":
            self._send(200, PNG_BYTES, "image/png")
        elif path == "/page.html":
            self._send(200, b"<html><body>a page</body></html>", "text/html; charset=utf-8")
        elif path == "/octet.html":
            self._send(200, b"<!doctype html><html></html>", "application/octet-stream")
        elif path == "/huge-declared":
            self._head(200, "image/png", 10**10, {})
        elif path == "/huge-streamed":
            self._head(200, "image/png", None, {})
            chunk = b"\x89PNG" + b"\x00" * 65532
            for _ in range(40):
                self.wfile.write(chunk)
        elif path == "/slow":
            self._head(200, "image/png", 100_000, {})
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        elif path.startswith("/redirect/"):
            hops = int(path.rsplit("/", 1)[1])
            target = "/cat.png" if hops == 0 else f"/redirect/{hops - 1}"
            self._send(302, b"", "text/plain", {"Location": target})
        elif path == "/headers":
            seen = {
                key: self.headers[key]
                for key in ("Host", "Accept", "Accept-Encoding", "User-Agent")
            }
            self._send(200, json.dumps(seen).encode(), "application/json")
        elif path == "/no-type":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PNG_BYTES)))
            self.end_headers()
            self.wfile.write(PNG_BYTES)
        elif path == "/big.bin":
            self._send(200, BIG, "application/octet-stream")
        elif path == "/silent":
            time.sleep(2.0)
            self._send(200, PNG_BYTES, "image/png")
        elif path == "/to-internal":
            self._send(302, b"", "text/plain", {"Location": "http://internal.example/cat.png"})
        elif path == "/no-location":
            self._send(302, b"", "text/plain")
        elif path == "/to-ftp":
            self._send(302, b"", "text/plain", {"Location": "ftp://example.com/x.png"})
        elif path == "/500":
            self._send(500, b"boom", "text/plain")
        else:
            self._send(404, b"missing", "text/plain")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up early (size and time limits) are expected here."""


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


LOCAL = FetchConfig(allow_private=True)


def test_good_image(base_url: str) -> None:
    img = fetch_image(f"{base_url}/cat.png", LOCAL)
    assert img.size == (32, 24) and img.getpixel((0, 0)) == (250, 10, 10)


def test_loopback_is_refused_without_the_option(base_url: str) -> None:
    with pytest.raises(UrlRejectedError, match="127.0.0.1 is loopback"):
        fetch_bytes(f"{base_url}/cat.png")


def test_html_is_refused_as_a_page_or_as_bytes(base_url: str) -> None:
    with pytest.raises(UrlRejectedError, match="web page"):
        fetch_image(f"{base_url}/page.html", LOCAL)
    with pytest.raises(ImageRejectedError, match=f"^{base_url}/octet.html: HTML"):
        fetch_image(f"{base_url}/octet.html", LOCAL)


def test_oversized_bodies(base_url: str) -> None:
    with pytest.raises(UrlRejectedError, match=f"^{base_url}/huge-declared: .*over the 20 MiB"):
        fetch_bytes(f"{base_url}/huge-declared", LOCAL)
    small = FetchConfig(allow_private=True, max_bytes=1024 * 1024)
    with pytest.raises(UrlRejectedError, match="over the 1 MiB limit"):
        fetch_bytes(f"{base_url}/huge-streamed", small)


def test_slow_body_hits_the_total_deadline(base_url: str) -> None:
    cfg = FetchConfig(allow_private=True, read_timeout=2.0, total_timeout=1.5)
    # Bytes keep arriving every 0.3 s, so no read ever times out: only the deadline can stop it
    # (the whole body would take 30 s).
    with pytest.raises(UrlRejectedError, match="took longer than 2 s"):
        fetch_bytes(f"{base_url}/slow", cfg)


def test_redirects_are_followed_by_hand_and_limited(base_url: str) -> None:
    assert fetch_bytes(f"{base_url}/redirect/2", LOCAL) == PNG_BYTES  # three redirects
    with pytest.raises(UrlRejectedError, match="more than 3 redirects"):
        fetch_bytes(f"{base_url}/redirect/3", LOCAL)
    with pytest.raises(UrlRejectedError, match="only http and https"):
        fetch_bytes(f"{base_url}/to-ftp", LOCAL)


def test_http_errors(base_url: str) -> None:
    with pytest.raises(UrlRejectedError, match="HTTP 404"):
        fetch_bytes(f"{base_url}/nothing", LOCAL)
    with pytest.raises(UrlRejectedError, match="HTTP 500"):
        fetch_bytes(f"{base_url}/500", LOCAL)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.com/a.png", "only http and https"),
        ("http://user:secret@example.com/a.png", "credentials"),
        ("http:///nohost.png", "no host"),
        ("http://example.com:99999/a.png", "not a valid URL"),
    ],
)
def test_url_form_is_checked_before_any_lookup(url: str, message: str) -> None:
    with pytest.raises(UrlRejectedError, match=message):
        fetch_bytes(url)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    shown = ipaddress.ip_address(address)  # as Python writes it (IPv4-mapped in hex)
    with pytest.raises(UrlRejectedError, match=f"^address {shown} is {kind}; "):
        check_address(ipaddress.ip_address(address))


def test_public_addresses_pass() -> None:
    check_address(ipaddress.ip_address("93.184.216.34"))
    check_address(ipaddress.ip_address("2606:4700::1111"))


def test_host_names_resolving_to_private_addresses_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(UrlRejectedError, match="10.0.0.5 is private"):
        fetch_bytes("http://intranet.example/cat.png")


def test_the_validated_address_is_the_one_connected_to(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One DNS answer per hop; a rebinding second answer would never be asked for."""
    port = int(base_url.rsplit(":", 1)[1])
    calls: list[str] = []
    real = socket.getaddrinfo

    def counting(host: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(host)
        if host == "pets.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    data = fetch_bytes(f"http://pets.example:{port}/cat.png", LOCAL)
    assert data == PNG_BYTES
    assert calls.count("pets.example") == 1


def test_a_redirect_from_a_public_host_to_a_private_one_is_refused(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """public.example resolves to a public address, internal.example to a private one (both
    connections are routed to the local test server); the first redirects to the second."""
    from requests.adapters import HTTPAdapter

    from cam_core.intake import fetch

    port = int(base_url.rsplit(":", 1)[1])
    names = {"public.example": "93.184.216.34", "internal.example": "10.0.0.5"}
    real_resolve = socket.getaddrinfo

    def resolve(host: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], args[0]))]
        return real_resolve(host, *args, **kwargs)  # type: ignore[arg-type]

    sent: list[str] = []

    def send(self: HTTPAdapter, request, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(str(request.url))
        local = str(request.url).replace("93.184.216.34", "127.0.0.1")
        request.url = local.replace("10.0.0.5/", f"127.0.0.1:{port}/")
        return HTTPAdapter.send(self, request, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(fetch._PinnedAdapter, "send", send)
    # the route works for a plain image: the request went to the checked address
    assert fetch_bytes(f"http://public.example:{port}/cat.png") == PNG_BYTES
    assert sent == [f"http://93.184.216.34:{port}/cat.png"]
    with pytest.raises(UrlRejectedError, match="10.0.0.5 is private"):
        fetch_bytes(f"http://public.example:{port}/to-internal")
    assert sent[-1] == f"http://93.184.216.34:{port}/to-internal"  # never connected inside
    # a trusted intranet may follow it
    assert fetch_bytes(f"http://public.example:{port}/to-internal", LOCAL) == PNG_BYTES
    assert sent[-1] == "http://10.0.0.5/cat.png"


def test_pinned_urls_keep_the_host_for_tls_and_the_header() -> None:
    from urllib.parse import urlsplit

    from cam_core.intake.fetch import _pinned_url, is_url

    v4 = ipaddress.ip_address("93.184.216.34")
    v6 = ipaddress.ip_address("2606:4700::1111")
    assert _pinned_url(urlsplit("https://pets.example/a/b.png?x=1"), v4) == (
        "https://93.184.216.34/a/b.png?x=1",
        "pets.example",
    )
    assert _pinned_url(urlsplit("http://pets.example:8080"), v6) == (
        "http://[2606:4700::1111]:8080/",
        "pets.example:8080",
    )
    assert is_url("HTTPS://x") and is_url("http://x") and not is_url("ftp://x")
    assert not is_url("/data/http://x.png")


def test_private_addresses_pass_only_where_allowed() -> None:
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1", "::1"):
        check_address(ipaddress.ip_address(address), allow_private=True)
    for address in ("224.0.0.1", "0.0.0.0", "240.0.0.1"):  # never, even when allowed
        with pytest.raises(UrlRejectedError):
            check_address(ipaddress.ip_address(address), allow_private=True)


def test_the_byte_limit_is_inclusive(
    base_url: str,
) -> None:
    assert (
        fetch_bytes(
            f"{base_url}/cat.png", FetchConfig(allow_private=True, max_bytes=len(PNG_BYTES))
        )
        == PNG_BYTES
    )
    with pytest.raises(UrlRejectedError, match="over the"):
        fetch_bytes(
            f"{base_url}/cat.png", FetchConfig(allow_private=True, max_bytes=len(PNG_BYTES) - 1)
        )


def test_the_request_names_the_host_and_asks_for_an_image_without_proxies(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    real = socket.getaddrinfo

    def resolve(host: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if host == "pets.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    # a proxy in the environment is ignored: the connection goes to the checked address
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    seen = json.loads(fetch_bytes(f"http://pets.example:{port}/headers", LOCAL))
    assert seen["Host"] == f"pets.example:{port}"
    assert seen["Accept"] == "image/*" and seen["Accept-Encoding"] == "identity"
    assert seen["User-Agent"].startswith("cam-lens/")
    assert fetch_bytes(f"{base_url}/no-type", LOCAL) == PNG_BYTES
    assert fetch_bytes(f"{base_url}/big.bin", LOCAL) == BIG


def test_a_server_that_stays_silent_times_out(base_url: str) -> None:
    cfg = FetchConfig(allow_private=True, read_timeout=0.5, total_timeout=10.0)
    with pytest.raises(UrlRejectedError, match="did not answer in time"):
        fetch_bytes(f"{base_url}/silent", cfg)


def test_https_names_and_user_only_credentials_and_zone_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {"secure.example": "10.1.1.1", "zoned.example": "fe80::1%eth0"}

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    # https is allowed: the refusal is the address's, not the scheme's
    with pytest.raises(UrlRejectedError, match="10.1.1.1 is private"):
        fetch_bytes("https://secure.example/cat.png")
    with pytest.raises(UrlRejectedError, match="address fe80::1 is link-local"):
        fetch_bytes("http://zoned.example/cat.png")
    with pytest.raises(UrlRejectedError, match="credentials"):
        fetch_bytes("http://user@secure.example/cat.png")


def test_a_redirect_without_a_location_is_an_http_error(base_url: str) -> None:
    with pytest.raises(UrlRejectedError, match="HTTP 302 Found"):
        fetch_bytes(f"{base_url}/no-location", LOCAL)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_connection_to_the_pinned_address_checks_tls_for_the_host_name(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request goes to the checked IP, but certificate and SNI still name the host: each
    scheme's adapter gives the pool the host name as ``server_hostname`` and
    ``assert_hostname`` (no HTTPS server is reachable offline, so the adapter's answer is
    faked after the pool is configured)."""
    import requests

    from cam_core.intake import fetch

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        assert host == "pets.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    seen: list[tuple[str, dict[str, object]]] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        pool = self.poolmanager.connection_pool_kw
        seen.append((str(request.url), dict(pool)))
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "image/png"
        response.raw = io.BytesIO(PNG_BYTES)
        response.url = request.url
        return response

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(fetch._PinnedAdapter, "send", send)
    assert fetch_bytes(f"{scheme}://pets.example/cat.png") == PNG_BYTES
    ((url, pool),) = seen
    assert url == f"{scheme}://93.184.216.34/cat.png"
    assert pool["server_hostname"] == "pets.example"
    assert pool["assert_hostname"] == "pets.example"
    assert pool["block"] is False  # requests' own pool settings are kept

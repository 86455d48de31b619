"""Server-side image fetching that cannot be turned against the server's own network.

Rules: http/https only, no credentials, every resolved address must be public (unless
``allow_private``), the connection goes to the address that was checked (no second DNS lookup),
redirects are followed by hand (at most 3, each hop checked), connect/read timeouts plus a total
deadline, a byte cap checked against ``Content-Length`` up front and while streaming.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from PIL import Image
from requests.adapters import HTTPAdapter

from cam_core import __version__
from cam_core.errors import UrlRejectedError
from cam_core.intake.images import decode_image

__all__ = ["FetchConfig", "check_address", "fetch_bytes", "fetch_image", "is_url"]

log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchConfig:
    """Limits of one fetch.

    Attributes:
        allow_private: also allow loopback/private/link-local addresses (trusted intranets and
            tests only).
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds one read may wait for data.
        total_timeout: seconds the whole fetch (all hops) may take.
        max_bytes: largest body accepted.
        max_redirects: redirects followed at most.
    """

    allow_private: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 5.0
    total_timeout: float = 15.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 3


def is_url(text: str) -> bool:
    """True when ``text`` looks like an http(s) URL rather than a file path."""
    return text.lower().startswith(("http://", "https://"))


def _address_problem(ip: IpAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _address_problem(ip.ipv4_mapped) or None
    for flag, name in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, flag):
            return name
    if not ip.is_global:
        return "non-public"
    return None


def check_address(ip: IpAddress, allow_private: bool = False) -> None:
    """Refuse addresses a public fetch must never reach.

    Raises:
        UrlRejectedError: loopback, private, link-local (incl. 169.254.169.254), multicast,
            reserved, unspecified or otherwise non-global, also when IPv4-mapped in IPv6.
    """
    problem = _address_problem(ip)
    if problem is None:
        return
    if allow_private and problem in ("loopback", "private", "link-local", "non-public"):
        return
    raise UrlRejectedError(
        f"address {ip} is {problem}; only public addresses may be fetched "
        "(use --allow-private-urls on a trusted intranet)"
    )


def _validate(url: str, cfg: FetchConfig) -> tuple[Any, IpAddress]:
    """Check a URL's form and resolve it once; returns the split URL and the pinned address."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise UrlRejectedError(f"{url!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UrlRejectedError(f"{url!r}: only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UrlRejectedError(f"{url!r}: URLs with credentials are not allowed")
    host = parts.hostname
    if not host:
        raise UrlRejectedError(f"{url!r} has no host name")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRejectedError(f"{url!r}: cannot resolve host {host!r} ({exc})") from None
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        check_address(ip, cfg.allow_private)
        addresses.append(ip)
    if not addresses:
        raise UrlRejectedError(f"{url!r}: host {host!r} has no address")
    return parts, addresses[0]


class _PinnedAdapter(HTTPAdapter):
    """Connects to a fixed IP while TLS still checks the certificate for the host name."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


def _pinned_url(parts: Any, ip: IpAddress) -> tuple[str, str]:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{host}:{parts.port}" if parts.port else host
    default_port = parts.port is None
    host_header = parts.hostname if default_port else f"{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header


def _read_body(response: requests.Response, url: str, cfg: FetchConfig, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > cfg.max_bytes:
        raise UrlRejectedError(
            f"{url}: {int(declared) / 2**20:.1f} MiB is over the "
            f"{cfg.max_bytes / 2**20:.0f} MiB limit"
        )
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind.startswith("text/"):
        raise UrlRejectedError(
            f"{url} returned a web page ({kind}), not an image; use the image's own address"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise UrlRejectedError(f"{url}: download took longer than {cfg.total_timeout:.0f} s")
        chunk = response.raw.read1(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > cfg.max_bytes:
            raise UrlRejectedError(f"{url}: body is over the {cfg.max_bytes / 2**20:.0f} MiB limit")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_bytes(url: str, cfg: FetchConfig = FetchConfig()) -> bytes:
    """Download a URL under every rule in this module's docstring.

    Raises:
        UrlRejectedError: a refused URL or address, HTTP error, timeout or oversized body.
    """
    deadline = time.monotonic() + cfg.total_timeout
    current = url
    for _hop in range(cfg.max_redirects + 1):
        parts, ip = _validate(current, cfg)
        pinned, host_header = _pinned_url(parts, ip)
        with requests.Session() as session:
            session.trust_env = False
            session.mount("http://", _PinnedAdapter(parts.hostname))
            session.mount("https://", _PinnedAdapter(parts.hostname))
            try:
                response = session.get(
                    pinned,
                    headers={
                        "Host": host_header,
                        "Accept-Encoding": "identity",
                        "Accept": "image/*",
                        "User-Agent": f"cam-lens/{__version__}",
                    },
                    stream=True,
                    allow_redirects=False,
                    timeout=(cfg.connect_timeout, cfg.read_timeout),
                )
                with response:
                    if response.is_redirect:
                        location = response.headers.get("Location", "")
                        current = urljoin(current, location)
                        log.info("redirected to %s", current)
                        continue
                    if response.status_code != 200:
                        raise UrlRejectedError(
                            f"{url}: the server answered HTTP {response.status_code} "
                            f"{response.reason or ''}".rstrip()
                        )
                    return _read_body(response, url, cfg, deadline)
            except requests.Timeout:
                raise UrlRejectedError(f"{url}: the server did not answer in time") from None
            except requests.RequestException as exc:
                raise UrlRejectedError(f"{url}: download failed ({type(exc).__name__})") from None
    raise UrlRejectedError(f"{url}: more than {cfg.max_redirects} redirects")


def fetch_image(url: str, cfg: FetchConfig = FetchConfig()) -> Image.Image:
    """Download a URL and decode it through the safe image path.

    Raises:
        UrlRejectedError: see :func:`fetch_bytes`.
        ImageRejectedError: the bytes are not an acceptable image.
    """
    return decode_image(fetch_bytes(url, cfg), name=url)

"""Real local counterparts for the job types: an SMTP server and a signature-checking web server."""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the verification example documented in the README (kept verbatim) ---
def verify(secret: bytes, headers: Mapping[str, str], body: bytes, tolerance: int = 300) -> bool:
    fields = dict(part.split("=", 1) for part in headers["X-Cron-Signature"].split(","))
    t = int(fields["t"])
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - t) <= tolerance and hmac.compare_digest(expected, fields["v1"])


# --------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    """One message as the SMTP server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class SmtpSink:
    """aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=default_policy)
        self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        self.arrived.set()
        return "250 Message accepted for delivery"


@dataclass
class ReceivedRequest:
    """One HTTP request as the web server got it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class WebServer:
    """A threaded HTTP server on 127.0.0.1 whose behaviour is chosen by the request path.

    /ok -> 200; /status/<code> -> that status; .../redirect?to=<url>&status=<code>;
    /big -> an endless body (counts bytes written); /slow?seconds=<s> -> waits first.
    """

    secret: bytes
    tls: ssl.SSLContext | None = None
    requests: list[ReceivedRequest] = field(default_factory=list)
    big_bytes_sent: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _handler_for(web: WebServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name: value for name, value in self.headers.items()}
            ok = "X-Cron-Signature" in headers and verify(web.secret, headers, body)
            web.requests.append(ReceivedRequest(self.command, self.path, headers, body, ok))
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            if url.path.endswith("/redirect"):  # also under a base path (/hooks/redirect)
                self._answer(int(query.get("status", 302)), b"", {"Location": query["to"]})
            elif url.path.startswith("/status/"):
                code = int(url.path.rsplit("/", 1)[1])
                self._answer(code, f"boom {code}\nsecond line".encode())
            elif url.path == "/big":
                self._endless()
            else:
                time.sleep(float(query.get("seconds", 0)))
                self._answer(200, b"ok:" + body)

        def _answer(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _endless(self) -> None:
            self.send_response(200)
            self.end_headers()
            chunk = b"x" * 65_536
            try:
                for _ in range(1024):  # 64 MiB at most
                    self.wfile.write(chunk)
                    web.big_bytes_sent += len(chunk)
            except OSError:
                return

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler

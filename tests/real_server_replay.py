"""Replay answers captured from real GeoReport v2 servers on a loopback HTTP server.

The captures (tests/fixtures/real-servers, copied from the project's reference/real-servers)
are ``curl -i`` transcripts: the command, the status line, the headers, the body. `Replay`
serves them on 127.0.0.1, rewriting the captured server's own address in headers (6aika's
``X-Next-Page-URL``) to the replay's, and records every request it gets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import attrs

CAPTURES = Path(__file__).parent / "fixtures" / "real-servers"

#: The addresses the captured servers ran on (INDEX.md): A = 6aika, B = open311-adapter.
CAPTURED_HOSTS = ("127.0.0.1:8311", "127.0.0.1:8312")


@attrs.frozen
class Captured:
    """One captured answer: status, headers and body as the real server sent them."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def load(name: str) -> Captured:
    """Read the capture *name* (a file in tests/fixtures/real-servers)."""
    raw = (CAPTURES / name).read_bytes()
    _command, _, rest = raw.partition(b"\n\n")
    head, _, body = rest.partition(b"\r\n\r\n") if b"\r\n\r\n" in rest else rest.partition(b"\n\n")
    lines = head.decode("latin-1").splitlines()
    status = int(lines[0].split()[1])
    headers = tuple(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)
    )
    return Captured(status, headers, body)


#: Picks the answer for (method, path, query pairs); None: a 404.
Router = Callable[[str, str, list[tuple[str, str]]], Captured | None]


@attrs.define
class Seen:
    """One request the replay server got."""

    method: str
    path: str
    query: list[tuple[str, str]]
    body: bytes


@contextmanager
def replay(router: Router) -> Iterator[tuple[str, list[Seen]]]:
    """Serve *router*'s captures on 127.0.0.1; yield the base URL and the requests seen."""
    seen: list[Seen] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            query = parse_qsl(parts.query, keep_blank_values=True)
            seen.append(Seen(self.command, parts.path, query, body))
            answer = router(self.command, parts.path, query)
            if answer is None:
                answer = Captured(404, (("Content-Type", "text/plain"),), b"not captured")
            here = f"127.0.0.1:{server.server_address[1]}"
            self.send_response(answer.status)
            for key, value in answer.headers:
                if key.lower() in ("content-length", "date", "server", "connection"):
                    continue
                for host in CAPTURED_HOSTS:
                    value = value.replace(host, here)
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = _answer
        do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

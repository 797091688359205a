"""A JSON-over-HTTP server on 127.0.0.1 (a free port, its own thread) that answers
each request with ``answer(request)``: a status and a JSON document."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    body: dict[str, Any]  # the JSON object sent ({} for none)
    headers: dict[str, str]  # names lower-cased


Answer = Callable[[Request], tuple[int, Any]]
STOP_TIMEOUT = 5.0  # seconds to wait for the server thread after shutdown


class JsonServer:
    """Start with ``start()``, stop with ``stop()``; ``url`` has no trailing slash.

    Requests are served one thread each; ``answer`` guards its own state.
    """

    def __init__(self, answer: Answer) -> None:
        class Reply(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    status, reply = 400, {"error": {"message": "the body is not JSON"}}
                else:
                    status, reply = answer(Request(
                        self.command, urlsplit(self.path).path,
                        body if isinstance(body, dict) else {"body": body},
                        {k.lower(): v for k, v in self.headers.items()}))
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up waiting (a timeout): nobody to answer

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the examples' output stays about the examples

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Reply)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> JsonServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(STOP_TIMEOUT)

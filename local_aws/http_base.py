"""What the local HTTP stand-ins share: a threaded server and a handler for any method.

The strict front (`aws_front`) and the keep-alive moto server (`keep_alive_moto`) both serve many
clients at once (a fleet connects all together), answer whatever method a client sends in one
place, keep connections open as botocore's pool expects, send small answers at once, and log
nothing (test and benchmark output shows results, not requests).
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalHTTPServer(ThreadingHTTPServer):
    """A thread per connection; threads that never stop the process from exiting."""

    daemon_threads = True
    # Connections the kernel queues before the server accepts them. socketserver's default, 5,
    # drops the rest, and a client then waits a second for its attempt to be sent again: a fleet
    # of 50 processes flushing at exit behind the front did.
    request_queue_size = 128


class AnyMethodHandler(BaseHTTPRequestHandler):
    """Send GET, POST, PUT, DELETE and HEAD alike to `_serve`, over keep-alive connections."""

    protocol_version = "HTTP/1.1"  # keep-alive unless the client says otherwise
    # A reply written in parts would otherwise wait (Nagle's algorithm) for the client's delayed
    # acknowledgement of the first part: up to 40 ms an answer.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        raise NotImplementedError

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""

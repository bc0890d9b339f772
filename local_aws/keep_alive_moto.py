"""moto's application served over HTTP/1.1 with keep-alive, as CloudWatch Logs serves its clients.

`python -m moto.server` runs moto on werkzeug's development server, which answers every request
with ``Connection: close``: a client then opens a new connection for every call. CloudWatch Logs
keeps connections open, and botocore's pool reuses them, so a benchmark against werkzeug would
charge every handler a connect and a close per call that no AWS user pays (and, for a handler
whose sender shares the caller's GIL, the extra waits for the GIL that those calls bring).

This server runs moto's own WSGI application in a thread per connection and keeps each connection
open between requests. It reads a request body exactly by its ``Content-Length`` (a body without
one is refused with 411, as a client that wants keep-alive must send one) and answers with a
``Content-Length``, so one request never runs into the next.

With ``--defer-puts`` it answers each PutLogEvents call to a stream made through it at once, as
moto would (``{}``), and hands the calls to moto only before it serves any other call, in the
order they came; a call to any other stream goes to moto at once, to be refused if it must. moto
spends about 100 ms of CPU on a 10,000-event batch; CloudWatch Logs does that work on AWS's
machines, not on the host of the process measured (on a 2-vCPU VM, moto's share even shows as time
stolen from both CPUs). A benchmark that reads back what was delivered still sees every event.

`python -m local_aws.keep_alive_moto --host 127.0.0.1 --port N [--defer-puts]`
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, ClassVar, cast
from urllib.parse import unquote

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from local_aws.atomic_logs import make_logs_writes_atomic
from local_aws.http_base import AnyMethodHandler, LocalHTTPServer

_PARENT_CHECK_S = 0.5
_IDLE_TIMEOUT_S = 60.0
"""An idle connection is closed after this long, so that no thread waits on it forever."""


class KeepAliveWSGIHandler(AnyMethodHandler):
    """Serve one connection: as many requests as the client sends on it, each through the app."""

    timeout = _IDLE_TIMEOUT_S
    app: Any = None
    """The WSGI application, set on the subclass `serve` makes."""
    deferred: ClassVar[list[dict[str, Any]] | None] = None
    """PutLogEvents calls answered but not yet handed to moto (None: none is deferred)."""
    deferred_lock: ClassVar[threading.Lock]
    made_streams: ClassVar[set[tuple[str, str]]]
    """(group, stream) of each stream created through this server since the last deletion."""

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "a body needs a Content-Length on this server")
            self.close_connection = True
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.deferred is not None:
            status, headers, chunks = self._deferring(body)
        else:
            status, headers, chunks = self._call_app(self._environ(body))
        payload = b"".join(chunks)
        code, _, reason = status.partition(" ")
        lines = [f"HTTP/1.1 {code} {reason}"]
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(payload)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write for the whole reply: written in two, the second part would wait (Nagle's
        # algorithm) for the client to acknowledge the first, which it delays by up to 40 ms.
        self.wfile.write(head if self.command == "HEAD" else head + payload)

    def _deferring(self, body: bytes) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
        """Answer a PutLogEvents call to a stream made through this server at once and keep it;
        hand moto every kept call, in order, before any other call (so that what a reader asks
        for next is all there). A call to any other stream goes to moto now, so that a client
        that creates its stream when told it is missing (watchtower) is told so."""
        assert self.deferred is not None
        environ = self._environ(body)
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        names = _names(body) if operation in ("PutLogEvents", "CreateLogStream") else None
        with self.deferred_lock:
            if operation == "PutLogEvents" and names in self.made_streams:
                self.deferred.append(environ)
                return "200 OK", [("Content-Type", "application/x-amz-json-1.1")], [b"{}"]
            for kept in self.deferred:
                status, _, chunks = self._call_app(kept)
                if not status.startswith("200"):  # its caller was told 200: say it here
                    print(
                        f"a deferred PutLogEvents failed: {status} {b''.join(chunks)!r}",
                        file=sys.stderr,
                    )
            self.deferred.clear()
            status, headers, chunks = self._call_app(environ)
            if operation == "CreateLogStream" and names is not None and status.startswith("200"):
                self.made_streams.add(names)
            elif operation.startswith("Delete") or "reset" in environ["PATH_INFO"]:
                self.made_streams.clear()  # whatever went, no stream is taken for granted
            return status, headers, chunks

    def _call_app(
        self, environ: dict[str, Any]
    ) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
        answer: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            answer.update(status=status, headers=headers)
            return lambda data: answer.setdefault("written", []).append(data)

        result = self.app(environ, start_response)
        try:
            chunks = [*answer.get("written", []), *result]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return answer["status"], answer["headers"], chunks

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = cast("tuple[str, int]", self.server.server_address)[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": self.path,
            "REQUEST_URI": self.path,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ


_NAMES = tuple(
    re.compile(rb'"' + field + rb'": ?("(?:[^"\\]|\\.)*")')
    for field in (b"logGroupName", b"logStreamName")
)


def _names(body: bytes) -> tuple[str, str] | None:
    """The group and stream a CreateLogStream or PutLogEvents body names, read from its start
    (botocore writes them before the events) without parsing a 1 MB body; None if not there."""
    head = body[:4096]
    group, stream = (pattern.search(head) for pattern in _NAMES)
    if group is None or stream is None:
        return None
    return json.loads(group.group(1)), json.loads(stream.group(1))


def serve(host: str, port: int, defer_puts: bool = False) -> LocalHTTPServer:
    """Return a server for moto's application on ``host``:``port`` (not yet serving);
    ``defer_puts``: answer PutLogEvents at once and apply it before the next other call."""
    make_logs_writes_atomic()

    class MotoHandler(KeepAliveWSGIHandler):
        app = DomainDispatcherApplication(create_backend_app)
        deferred = [] if defer_puts else None
        deferred_lock = threading.Lock()
        made_streams: ClassVar[set[tuple[str, str]]] = set()

    return LocalHTTPServer((host, port), MotoHandler)


def _stop_when_orphaned(server: LocalHTTPServer, parent: int) -> None:
    """Stop ``server`` once the process that started it is gone (killed outright, it could not
    stop it), so that no server outlives its benchmark."""
    while os.getppid() == parent:  # bounded by the parent's life
        time.sleep(_PARENT_CHECK_S)
    server.shutdown()


def main(argv: list[str] | None = None) -> None:
    """Serve moto on loopback until SIGTERM or SIGINT, or until the parent process is gone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--defer-puts", action="store_true", help="answer PutLogEvents at once, apply it later"
    )
    args = parser.parse_args(argv)
    server = serve(args.host, args.port, defer_puts=args.defer_puts)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.Thread(target=_stop_when_orphaned, args=(server, os.getppid()), daemon=True).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

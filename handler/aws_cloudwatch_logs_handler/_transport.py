"""Sending the sender's own PutLogEvents requests on the client's connections, with little work.

botocore signs a request and hands it to its HTTP session: urllib3 over ``http.client``. For one
batch that session's own work (each header through ``http.client``, the reply's headers parsed by
the ``email`` package, the reply wrapped twice and read through three layers) is 0.6 to 1.2 ms of
the sender's CPU holding the GIL, in two stretches with no hook of botocore's inside: a logging
call that comes in meanwhile waits for the whole stretch (`bench.sender_stretches`).

`LeanSession` stands in for the client's session. The sender's PutLogEvents requests (marked
by the sender's hooks, `_logs_api`, from ``before-call`` to ``before-send``) it writes itself,
HTTP/1.1 with a ``Content-Length``, on a connection taken from the session's own urllib3 pool, so
that the TLS context and its checks (``verify``, the CA bundle, a client certificate), the socket
options and the connect and read timeouts are the client's, applied where urllib3 opens the
connection; and it reads the reply with the least work. Every other request goes through the
session it wraps, unchanged, and so do ours whenever a proxy applies, a per-request timeout is
set, or the request is not plain bytes with plain framing. Failures are raised as botocore's
session raises them (`EndpointConnectionError`, `ConnectTimeoutError`, `ReadTimeoutError`,
`ConnectionClosedError`, `SSLError`), so they are classified and retried as before.

It is installed only on botocore's `URLLib3Session` under urllib3 2, whose parts it uses; should a
later version lack one, or preparing a request fail for any other reason, the session sends the
plain way from then on and says why (`LeanSession.declined`).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

_READ_BYTES: Final = 65_536
_MAX_HEAD_LINE: Final = 65_536
"""A reply line longer than this is not a CloudWatch reply: the exchange is broken off."""
_MAX_HEAD_LINES: Final = 200
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_NOT_OURS_TO_FRAME: Final = frozenset({"host", "expect", "transfer-encoding"})
_SESSION_PARTS: Final = ("_manager", "_proxy_config", "_setup_ssl_cert", "_verify")
"""What `LeanSession` uses of botocore's `URLLib3Session` (besides `send`)."""
_POOL_PARTS: Final = ("_get_conn", "_put_conn", "_validate_conn", "timeout", "pool")
"""What it uses of a urllib3 connection pool."""


class _BadReplyError(Exception):
    """The peer closed the connection, or answered with something that is not HTTP/1.x."""


class _Body:
    """A reply's body as botocore's `AWSResponse` reads it: ``raw.stream()``."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class _Reader:
    """Reads an HTTP reply from a socket: lines, exact lengths, or up to the close."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._start = 0

    def _fill(self) -> None:
        chunk = self._sock.recv(_READ_BYTES)
        if not chunk:
            raise _BadReplyError("the connection closed before the reply was complete")
        self._buffer += chunk

    def line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n", self._start)) < 0:
            if len(self._buffer) - self._start > _MAX_HEAD_LINE:
                raise _BadReplyError("a reply line without an end")
            self._fill()
        line = bytes(self._buffer[self._start : end])
        self._start = end + 2
        return line

    def exact(self, size: int) -> bytes:
        while len(self._buffer) - self._start < size:
            self._fill()
        data = bytes(self._buffer[self._start : self._start + size])
        self._start += size
        return data

    def to_close(self) -> bytes:
        with_more = True
        while with_more:
            chunk = self._sock.recv(_READ_BYTES)
            self._buffer += chunk
            with_more = bool(chunk)
        data = bytes(self._buffer[self._start :])
        self._start = len(self._buffer)
        return data

    def drained(self) -> bool:
        return self._start == len(self._buffer)


def _read_head(reader: _Reader) -> tuple[str, int, list[tuple[str, str]]]:
    """The status line and headers of one reply: (version, status, headers)."""
    version, _, rest = reader.line().decode("latin-1").partition(" ")
    status = rest.partition(" ")[0]
    if not version.startswith("HTTP/1.") or not status.isdigit():
        raise _BadReplyError(f"not an HTTP/1.x status line: {version} {rest}")
    headers: list[tuple[str, str]] = []
    while line := reader.line():
        if len(headers) >= _MAX_HEAD_LINES:
            raise _BadReplyError("too many reply headers")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise _BadReplyError(f"a reply header without a colon: {name}")
        headers.append((name.strip(), value.strip()))
    return version, int(status), headers


def _read_chunked(reader: _Reader) -> bytes:
    parts = []
    while size := int(reader.line().partition(b";")[0], 16):
        parts.append(reader.exact(size))
        if reader.exact(2) != b"\r\n":
            raise _BadReplyError("a chunk longer than its size")
    while reader.line():  # trailers, up to the blank line that ends the body
        pass
    return b"".join(parts)


def read_reply(sock: socket.socket) -> tuple[int, list[tuple[str, str]], bytes, bool]:
    """Read one reply: (status, headers, body, whether the connection can carry another)."""
    reader = _Reader(sock)
    version, status, headers = _read_head(reader)
    while 100 <= status < 200:  # interim replies (100 Continue): the final one follows
        version, status, headers = _read_head(reader)
    fields = {name.lower(): value for name, value in headers}
    framed = True
    if status in (204, 304):
        body = b""
    elif "chunked" in fields.get("transfer-encoding", "").lower():
        body = _read_chunked(reader)
    elif (length := fields.get("content-length", "")).isdigit():
        body = reader.exact(int(length))
    else:
        body, framed = reader.to_close(), False
    reusable = (
        framed
        and version == "HTTP/1.1"
        and fields.get("connection", "").lower() != "close"
        and reader.drained()
    )
    return status, headers, body, reusable


def send_request(sock: socket.socket, head: bytes, body: bytes) -> None:
    """Write the request: the head, then the body as it is (no copy of a megabyte to join them;
    urllib3 sets TCP_NODELAY, so the head does not wait for an acknowledgement)."""
    try:
        sock.sendall(head)
        sock.sendall(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # as urllib3: the peer may have answered, then closed; the read will tell


def _host_header(url: SplitResult) -> str:
    """The Host header as botocore's signer signed it: the port only when it is not the
    scheme's own, an IPv6 address in brackets."""
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if url.port is not None and url.port != _DEFAULT_PORTS.get(url.scheme):
        host = f"{host}:{url.port}"
    return host


def request_head(request: Any) -> bytes | None:
    """The request line and headers of ``request``, or None if it is not ours to write: a
    header that would need ``http.client``'s checks or framing (a line break in a name or
    value, ``Expect``, ``Transfer-Encoding``, a ``Host`` of its own)."""
    url = urlsplit(request.url)
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    pairs = [
        (name, value if type(value) is bytes else str(value).encode("latin-1"))
        for name, value in request.headers.items()
    ]
    names = {name.lower() for name, _ in pairs}
    if names & _NOT_OURS_TO_FRAME or any(":" in name for name in names):
        return None
    lines = [f"{request.method} {target} HTTP/1.1\r\nHost: {_host_header(url)}\r\n".encode()]
    lines += [b"%s: %s\r\n" % (name.encode("latin-1"), value) for name, value in pairs]
    if "content-length" not in names:
        lines.append(b"Content-Length: %d\r\n" % len(request.body))
    lines.append(b"\r\n")
    head = b"".join(lines)
    # Each line ends in CRLF and none holds another CR or LF: no header smuggles in a line.
    ends = len(lines) + 1  # the first item holds two lines
    if head.count(b"\n") != ends or head.count(b"\r") != ends:
        return None
    return head


class LeanSession:
    """botocore's HTTP session for a client, writing the sender's own requests itself.

    A request of ours is prepared (its head written, its pool found) in `prepare_ahead`, a
    ``before-send`` hook that runs right after the signature, with the caches still warm; the
    sender then lets logging threads run (its own ``before-send`` checkpoint), and `send` has
    little left to do before the socket takes the body and the GIL goes.
    """

    def __init__(self, session: Any, is_ours: Callable[[], bool]) -> None:
        import botocore.awsrequest
        import botocore.exceptions
        import urllib3.exceptions

        # Held here, not imported in `_exchange`: looked up cold after each sleep, imports cost.
        self._response = botocore.awsrequest.AWSResponse
        self._aws = botocore.exceptions
        self._url3 = urllib3.exceptions
        self._session = session
        self._is_ours = is_ours
        self._ready = threading.local()
        """The request `prepare_ahead` prepared on this thread, and what it prepared."""
        self._last_pool: tuple[str, Any] | None = None
        self.declined: str | None = None
        """Why the lean path stopped, for good (set once): an unforeseen urllib3 or botocore."""
        self.sent = 0
        """Requests this session wrote itself."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)  # everything but `send` is the wrapped session's

    def prepare_ahead(self, request: Any = None, **_: Any) -> None:
        """``before-send``: prepare ``request`` if it is ours, for `send` to write."""
        if self.declined is None and request is not None and self._is_ours():
            self._ready.pair = (request, self._prepare(request))

    def send(self, request: Any) -> Any:
        ready, prepared = getattr(self._ready, "pair", None) or (None, None)
        self._ready.pair = None
        if ready is request and prepared is not None:
            return self._exchange(request, *prepared)
        return self._session.send(request)

    def _prepare(self, request: Any) -> tuple[Any, Any, bytes] | None:
        """(pool, timeout, head) for sending ``request`` the lean way, or None to send it
        through the wrapped session."""
        body = request.body
        if not isinstance(body, bytes) or getattr(request, "stream_output", False):
            return None
        session = self._session
        try:
            if session._proxy_config.proxy_url_for(request.url):
                return None  # the proxy's forms and tunnels are urllib3's to get right
            if (getattr(request, "context", None) or {}).get("read_timeout") is not None:
                return None  # a per-request timeout: botocore resolves it
            head = request_head(request)
            if head is None:
                return None
            pool = self._pool_for(request.url)
            session._setup_ssl_cert(pool, request.url, session._verify)
            timeout = pool.timeout.clone()
        except Exception as error:
            self.declined = f"{type(error).__name__}: {error}"
            return None
        return pool, timeout, head

    def _pool_for(self, url: str) -> Any:
        """The session's pool for ``url``: the last one while it is open (finding it costs
        urllib3 a URL parse and a keyed lookup, 0.1 to 0.2 ms traced on a busy host)."""
        last = self._last_pool
        if last is not None and last[0] == url and last[1].pool is not None:  # not closed
            return last[1]
        pool = self._session._manager.connection_from_url(url)
        if not all(hasattr(pool, part) for part in _POOL_PARTS):
            raise AttributeError(f"{type(pool).__name__} lacks one of {_POOL_PARTS}")
        self._last_pool = (url, pool)
        return pool

    def _exchange(self, request: Any, pool: Any, timeout: Any, head: bytes) -> Any:
        """Send ``request`` on a connection of ``pool`` and read the reply, failing as
        botocore's own session fails."""
        aws, url3 = self._aws, self._url3
        url = request.url
        conn = None
        reusable = False
        try:
            conn = pool._get_conn()
            timeout.start_connect()
            conn.timeout = timeout.resolve_default_timeout(timeout.connect_timeout)
            pool._validate_conn(conn)  # HTTPS: connects and verifies, as urllib3 does
            if conn.sock is None:
                conn.connect()
            sock = conn.sock
            send_request(sock, head, request.body)
            sock.settimeout(timeout.read_timeout)
            status, headers, body, reusable = read_reply(sock)
        except (url3.SSLError, ssl.SSLError, ssl.CertificateError) as error:
            raise aws.SSLError(endpoint_url=url, error=error) from error
        except (url3.NewConnectionError, socket.gaierror) as error:
            raise aws.EndpointConnectionError(endpoint_url=url, error=error) from error
        except url3.ConnectTimeoutError as error:
            raise aws.ConnectTimeoutError(endpoint_url=url, error=error) from error
        except TimeoutError as error:
            raise aws.ReadTimeoutError(endpoint_url=url, error=error) from error
        except (OSError, _BadReplyError, ValueError) as error:
            raise aws.ConnectionClosedError(
                error=error, request=request, endpoint_url=url
            ) from error
        except Exception as error:  # as botocore's session wraps what it did not foresee
            raise aws.HTTPClientError(error=error) from error
        finally:
            if conn is not None:
                if not reusable:
                    conn.close()
                pool._put_conn(conn if reusable else None)
        self.sent += 1
        fields: Any = headers  # AWSResponse takes any mapping or pairs (typed as HTTPHeaders)
        return self._response(url, status, fields, _Body(body))


def install_lean_session(
    client: Any, before_send: str, is_ours: Callable[[], bool]
) -> LeanSession | None:
    """Put a `LeanSession` in front of ``client``'s HTTP session, preparing on ``before_send``
    (an event name) the requests for which ``is_ours()`` holds then; None where it cannot go: not
    botocore's urllib3 session (a test double) or not urllib3 2. A client shared by several
    handlers gets one. moto's in-process mock answers in a ``before-send`` hook, before any
    session sends: it never reaches this one."""
    endpoint = getattr(client, "_endpoint", None)
    session = getattr(endpoint, "http_session", None)
    if isinstance(session, LeanSession):
        return session
    try:
        import urllib3
        from botocore.httpsession import URLLib3Session
    except ImportError:
        return None
    urllib3_2 = getattr(urllib3, "__version__", "").startswith("2.")
    if type(session) is not URLLib3Session or not urllib3_2:
        return None
    if not all(hasattr(session, part) for part in _SESSION_PARTS):
        return None
    lean = LeanSession(session, is_ours)
    # First: before the sender's own checkpoint on the same event lets the caches go cold.
    client.meta.events.register_first(
        before_send, lean.prepare_ahead, unique_id="aws-cloudwatch-logs-handler-lean-session"
    )
    endpoint.http_session = lean  # type: ignore[union-attr]
    return lean

"""A TCP proxy on 127.0.0.1 that can cut, reset or blackhole the connections it carries.

Tests put it between the handler and an HTTP endpoint to imitate a bad network on demand: a cut
(the endpoint is gone: new connections are reset as soon as they arrive, open ones are dropped), a
reset of the open connections only (a load balancer recycling them), or a blackhole (connections
are accepted and never answered, as behind a dead route). Standard library only: threads and
sockets, every loop bounded by a short poll so that `stop()` always ends them.

It can also stand where TLS or an HTTP proxy stands: with ``tls`` it terminates TLS (an HTTPS
endpoint in front of a plain one), with ``http_connect`` it is an HTTP proxy that tunnels what a
client asks it to ``CONNECT`` to, always to its own upstream.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from local_aws.lifecycle import StartStop

_POLL_S = 0.05
"""How long a worker waits on its sockets before it looks at the proxy's mode again."""
_CHUNK = 65_536
_JOIN_S = 5.0
"""Bound on waiting for one connection's worker to end after it was told to."""


class Mode(Enum):
    """What the proxy does with the traffic it receives."""

    PASS = "pass"
    CUT = "cut"
    BLACKHOLE = "blackhole"


@dataclass(frozen=True)
class ProxyCounters:
    """A snapshot of what the proxy did, so tests can check a fault really met the client."""

    accepted: int
    """Connections accepted and forwarded upstream."""
    refused: int
    """Connections reset on arrival because the proxy was cut."""
    dropped: int
    """Open connections torn down by `cut()`, `reset()` or `restore()` after a blackhole."""
    blackholed: int
    """Connections accepted while blackholed (never answered)."""
    bytes_up: int
    bytes_down: int
    tunnels: tuple[str, ...] = ()
    """What clients asked to ``CONNECT`` to (``http_connect`` only), in order."""


def _abort(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST instead of a FIN, as a crashed peer or middlebox would."""
    # SO_LINGER on with a zero timeout makes close() discard unsent data and send RST; OSError
    # means the peer already closed it, so there is nothing left to reset.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Connection:
    """One client connection and its upstream twin, pumped by one worker thread."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, blackholed: bool) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.blackholed = blackholed
        # Set by the controlling thread; only the worker closes the sockets, so a socket is
        # never closed while another thread is selecting on it.
        self.kill = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fault-proxy-conn", daemon=True)

    def _run(self) -> None:
        try:
            if self.proxy.tls is not None:
                self.client.settimeout(_JOIN_S)  # bounded: a client that never shakes hands
                self.client = self.proxy.tls.wrap_socket(self.client, server_side=True)
                self.client.settimeout(None)
            tunnel_to = self._read_connect() if self.proxy.http_connect else None
            if not self.blackholed:
                self.upstream = socket.create_connection(self.proxy.upstream, timeout=_JOIN_S)
                # Relay each chunk as it comes: Nagle plus delayed ACKs would add 40 ms per hop.
                self.upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tunnel_to is not None:
                self.proxy._note_tunnel(tunnel_to)
                self.client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._pump()
        except OSError:
            pass  # either side went away: the client sees whatever the close gives it
        finally:
            if self.kill.is_set():
                _abort(self.client)
            else:
                self.client.close()
            if self.upstream is not None:
                self.upstream.close()
            self.proxy._forget(self)

    def _read_connect(self) -> str:
        """Read a ``CONNECT host:port`` request's head; returns what it asked for."""
        self.client.settimeout(_JOIN_S)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < _CHUNK:
            data = self.client.recv(_CHUNK)
            if not data:
                raise ConnectionResetError("the client left before asking to CONNECT")
            head += data
        self.client.settimeout(None)
        method, _, rest = head.decode("latin-1").partition(" ")
        if method != "CONNECT":
            raise ConnectionResetError(f"not a CONNECT request: {method}")
        return rest.partition(" ")[0]

    def _pump(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.client, selectors.EVENT_READ)
            if self.upstream is not None:
                selector.register(self.upstream, selectors.EVENT_READ)
            # Bounded: ends on EOF from either side, on kill, or when the proxy stops.
            while not self.kill.is_set() and not self.proxy._stopping.is_set():
                for key, _ in selector.select(_POLL_S):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = sock.recv(_CHUNK)
                    while isinstance(sock, ssl.SSLSocket) and sock.pending():
                        data += sock.recv(_CHUNK)  # decrypted already: select would not see it
                    if not data:
                        return
                    if self.blackholed or self.proxy.mode is Mode.BLACKHOLE:
                        continue  # swallow requests and answers alike: the peer hears nothing
                    if key.fileobj is self.client:
                        assert self.upstream is not None
                        self.upstream.sendall(data)
                        self.proxy._count(up=len(data))
                    else:
                        self.client.sendall(data)
                        self.proxy._count(down=len(data))


class FaultProxy(StartStop):
    """Forward TCP from a free port on 127.0.0.1 to ``upstream``, with faults on demand.

    Use as a context manager (or call `start()` / `stop()`); ``url`` is ``http://127.0.0.1:PORT``.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        tls: ssl.SSLContext | None = None,
        http_connect: bool = False,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.tls = tls
        """Terminate TLS with this server context: clients speak HTTPS to the proxy."""
        self.http_connect = http_connect
        """Act as an HTTP proxy: each connection starts with a ``CONNECT`` request."""
        self._tunnels: list[str] = []
        self.mode = Mode.PASS
        self._lock = threading.Lock()
        self._opened = threading.Condition(self._lock)
        """Notified when a connection is admitted or forgotten, for `wait_open` and `wait_idle`."""
        self._connections: set[_Connection] = set()
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._accepted = self._refused = self._dropped = self._blackholed = 0
        self._bytes_up = self._bytes_down = 0

    @property
    def url(self) -> str:
        """The endpoint URL clients should use instead of the upstream's (or, with
        ``http_connect``, the proxy URL)."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Start accepting connections; returns self for chaining."""
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for every worker thread to end."""
        self._stopping.set()
        if self._acceptor.is_alive():
            self._acceptor.join(_JOIN_S)
        self._listener.close()
        self._drop_all(count=False)

    def cut(self) -> None:
        """Cut the link: reset open connections now and every new one as soon as it arrives."""
        self._drop_all(new_mode=Mode.CUT)

    def reset(self) -> None:
        """Reset (RST) the open connections but keep accepting new ones."""
        self._drop_all()

    def blackhole(self) -> None:
        """Accept and read everything from now on, answer nothing (a dead route, not a refusal)."""
        with self._lock:
            self.mode = Mode.BLACKHOLE

    def restore(self) -> None:
        """Forward normally again; connections left hanging by a blackhole are reset first."""
        with self._lock:
            was, self.mode = self.mode, Mode.PASS
        if was is Mode.BLACKHOLE:
            # Their HTTP exchanges are half-swallowed: resuming them would desynchronise both ends.
            self._drop_all()

    def wait_open(self, count: int, timeout_s: float = 5.0) -> bool:
        """Wait until at least ``count`` connections are open through the proxy (or time out).

        Connections are admitted by the proxy's own thread; a test that wants to fault a
        connection it just opened must first know the proxy holds it.
        """
        with self._opened:
            return self._opened.wait_for(lambda: len(self._connections) >= count, timeout_s)

    def wait_idle(self, timeout_s: float = 5.0) -> bool:
        """Wait until no connection is open through the proxy (or time out).

        The proxy forgets a connection on its own thread once either end closes it; a test that
        counts the connections a fault drops must first let earlier exchanges finish closing.
        """
        with self._opened:
            return self._opened.wait_for(lambda: not self._connections, timeout_s)

    def counters(self) -> ProxyCounters:
        """Return a consistent snapshot of the proxy's counters."""
        with self._lock:
            return ProxyCounters(
                accepted=self._accepted,
                refused=self._refused,
                dropped=self._dropped,
                blackholed=self._blackholed,
                bytes_up=self._bytes_up,
                bytes_down=self._bytes_down,
                tunnels=tuple(self._tunnels),
            )

    def _accept(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():  # bounded by stop()
                if not selector.select(_POLL_S):
                    continue
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    continue  # the client gave up between select() and accept()
                self._admit(client)

    def _admit(self, client: socket.socket) -> None:
        # Mode and connection set change together under the lock, so a connection admitted
        # while cut() runs is either refused or seen (and dropped) by it, never missed.
        with self._lock:
            mode = self.mode
            connection: _Connection | None = None
            if mode is Mode.CUT:
                self._refused += 1
            else:
                connection = _Connection(self, client, blackholed=mode is Mode.BLACKHOLE)
                self._connections.add(connection)
                if mode is Mode.BLACKHOLE:
                    self._blackholed += 1
                else:
                    self._accepted += 1
                # Started under the lock: _drop_all() may join any thread it finds in the set.
                connection.thread.start()
                self._opened.notify_all()
        if connection is None:
            _abort(client)

    def _drop_all(self, *, count: bool = True, new_mode: Mode | None = None) -> None:
        """Tell every worker to reset its client and wait until they all have."""
        with self._lock:
            if new_mode is not None:
                self.mode = new_mode
            connections = list(self._connections)
            if count:
                self._dropped += len(connections)
        for connection in connections:
            connection.kill.set()
        for connection in connections:
            connection.thread.join(_JOIN_S)

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)
            self._opened.notify_all()

    def _note_tunnel(self, target: str) -> None:
        with self._lock:
            self._tunnels.append(target)

    def _count(self, *, up: int = 0, down: int = 0) -> None:
        with self._lock:
            self._bytes_up += up
            self._bytes_down += down


@contextlib.contextmanager
def fault_proxy(upstream_url: str) -> Iterator[FaultProxy]:
    """Run a `FaultProxy` in front of ``http://host:port`` for the duration of the block."""
    host, _, port = upstream_url.removeprefix("http://").rstrip("/").partition(":")
    with FaultProxy(host, int(port)) as proxy:
        yield proxy

"""A Redis server on 127.0.0.1 for the RQ tests: fakeredis's, which speaks Redis's protocol over
TCP, so that RQ's worker and the test talk to it as to a real one (no Redis to install).

Run as a script: it prints the port it listens on, then serves until it is killed.

One mend: fakeredis 2.41 writes a client's address in ``CLIENT INFO`` as a Python tuple
(``addr=('127.0.0.1', 5000)``), where Redis writes ``addr=127.0.0.1:5000``. redis-py 8.2 skips
the part it cannot read; 8.1 and earlier (the last for Python 3.10) raise, and RQ's worker, which
asks for its own address when it starts, stops there. So each connection's addresses are handed
to fakeredis already written as Redis writes them.
"""

from __future__ import annotations

import socket
from typing import Any

from fakeredis import TcpFakeServer
from fakeredis._clients._tcp_server import TCPFakeRequestHandler


class _AddressesAsRedisWritesThem:
    """A connection whose addresses read as ``host:port``; the rest is the socket's own."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection

    def getpeername(self) -> str:
        host, port = self._connection.getpeername()[:2]
        return f"{host}:{port}"

    def getsockname(self) -> str:
        host, port = self._connection.getsockname()[:2]
        return f"{host}:{port}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _RequestHandler(TCPFakeRequestHandler):
    def setup(self) -> None:
        # socketserver's setup takes the connection from ``self.request``; fakeredis's reads
        # its addresses there. The socket itself is put back once both are done.
        request = self.request
        self.request = _AddressesAsRedisWritesThem(request)
        try:
            super().setup()
        finally:
            self.request = self.connection = request


def main() -> None:
    server = TcpFakeServer(("127.0.0.1", 0))
    server.RequestHandlerClass = _RequestHandler
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

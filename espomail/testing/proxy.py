"""A TCP proxy for tests that cuts connections: the IMAP server "dropping" at a chosen byte.

``CuttingProxy(port, limit)`` forwards 127.0.0.1:proxy.port to 127.0.0.1:port and closes
both sides once ``limit`` bytes have come from the server on a connection (``None``: never).
``limit`` may be a callable returning the limit for each new connection (the campaigns draw
a random one). ``connections`` counts the connections accepted and ``cuts`` those cut.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class CuttingProxy:
    def __init__(self, port: int, limit: int | None | Callable[[], int | None]) -> None:
        self.target = port
        self._limit = limit if callable(limit) else (lambda: limit)
        self.connections = 0
        self.cuts = 0
        self._lock = threading.Lock()
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self._limit()), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: limit - sent])
                    with self._lock:
                        self.cuts += 1
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

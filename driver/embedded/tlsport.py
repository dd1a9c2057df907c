"""One TCP port that speaks only TLS, and answers plain HTTP the way Go's net/http server does.

kube-apiserver answers a plain-HTTP request on its TLS port with ``400 Bad Request`` and the body "Client sent an
HTTP request to an HTTPS server." (net/http checks whether the first bytes look like an HTTP method instead of a
TLS record). asyncio's TLS server would only fail the handshake and close, which leaves ``curl http://...`` or a
kubeconfig with ``http://`` hanging on an empty reply. So each accepted connection's first bytes are peeked (not
read): a TLS handshake record goes to the HTTPS protocol unchanged, an HTTP method gets the 400, anything else is
closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable

PLAIN_HTTP_REPLY = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
FIRST_BYTES_TIMEOUT = 10.0
"""A connection that sends nothing for this long is closed (as a TLS handshake timeout would)."""
_TLS_HANDSHAKE = 0x16
_HTTP_METHODS = (b"GET ", b"HEAD", b"POST", b"PUT ", b"PATC", b"DELE", b"OPTI", b"CONN", b"TRAC")


class TlsOnlyListener:
    """Accepts on ``host:port`` and hands TLS connections to ``protocol_factory`` (an aiohttp ``Server``)."""

    def __init__(self, protocol_factory: Callable[[], asyncio.BaseProtocol], ssl_context: ssl.SSLContext,
                 host: str, port: int) -> None:
        self._factory = protocol_factory
        self._ssl = ssl_context
        self._host = host
        self._port = port
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1]) if self._sock is not None else self._port

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.create_server((self._host, self._port), family=family, backlog=128)
        sock.setblocking(False)
        self._sock = sock
        self._accepting = asyncio.create_task(self._accept_loop(), name="apiserver-accept")

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError:  # e.g. EMFILE: keep serving the connections we have
                await asyncio.sleep(0.1)
                continue
            task = asyncio.create_task(self._route(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _route(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        try:
            first = await asyncio.wait_for(_peek(loop, conn, 4), FIRST_BYTES_TIMEOUT)
        except (TimeoutError, OSError):
            conn.close()
            return
        if first[:1] == bytes([_TLS_HANDSHAKE]):
            try:
                await loop.connect_accepted_socket(self._factory, conn, ssl=self._ssl,
                                                   ssl_handshake_timeout=FIRST_BYTES_TIMEOUT)
            except (OSError, ssl.SSLError, TimeoutError):
                conn.close()
            return
        try:
            if first.startswith(_HTTP_METHODS):
                _drain(conn)  # unread request bytes would turn the close into a reset the client sees first
                await loop.sock_sendall(conn, PLAIN_HTTP_REPLY)
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            conn.close()


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes at the head of the connection, left unread; b"" when the peer closed early."""
    while True:
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(conn.fileno(), _set_once, ready)
        try:
            await ready
        finally:
            loop.remove_reader(conn.fileno())
        try:
            data = conn.recv(size, socket.MSG_PEEK)
        except BlockingIOError:
            continue
        if len(data) >= size or not data or not data[:1].isalpha():
            return data
        await asyncio.sleep(0.01)  # a method split across packets: wait for the rest of it


def _set_once(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _drain(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while conn.recv(65536):
            pass

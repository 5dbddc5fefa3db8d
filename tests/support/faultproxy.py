"""A TCP proxy that tests can cut and restore, to take a database or Redis away from a running bot process.

``FaultProxy`` listens on 127.0.0.1 and forwards every connection to a target. ``cut()`` aborts every open
connection (the peer sees a reset, as when a server dies or a network path drops) and then, until
``restore()``:

- ``mode="reset"``: every new connection is accepted and reset at once: connecting fails immediately, like a
  refused connection, but the port stays ours so nothing else can take it meanwhile;
- ``mode="blackhole"``: new connections are accepted and never answered (bytes are read and dropped), like a
  network partition: the client waits on its own timeouts. They are reset on ``restore()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Literal, Self

__all__ = ["FaultProxy"]

Mode = Literal["reset", "blackhole"]
_CHUNK = 64 * 1024


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than a graceful FIN: the peer learns at once that the connection is gone."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``; cut and restore on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.cut_mode: Mode | None = None
        self.accepted = 0
        """Connections accepted so far (forwarded or not)."""
        self.refused = 0
        """Connections accepted while cut and never forwarded."""
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def is_cut(self) -> bool:
        return self.cut_mode is not None

    async def start(self) -> int:
        """Start listening on a free port and return it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._abort_all()
        for writer in list(self._held):
            _abort(writer)
        self._held.clear()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def cut(self, mode: Mode = "reset") -> None:
        """Drop every connection now; until `restore()`, new ones are reset (or held unanswered)."""
        self.cut_mode = mode
        self._abort_all()

    def restore(self) -> None:
        """Forward new connections again; connections held by a blackhole are reset."""
        self.cut_mode = None
        for writer in list(self._held):
            _abort(writer)
        self._held.clear()

    def _abort_all(self) -> None:
        for writer in list(self._open):
            _abort(writer)
        self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            _abort(writer)  # the proxy is stopping; the handler ends quietly
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.cut_mode == "reset":
            self.refused += 1
            _abort(writer)
            return
        if self.cut_mode == "blackhole":
            self.refused += 1
            self._held.add(writer)
            with contextlib.suppress(OSError):
                while await reader.read(_CHUNK):
                    pass
            self._held.discard(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _abort(writer)
            return
        if self.cut_mode is not None:  # cut while we were connecting upstream
            _abort(up_writer)
            _abort(writer)
            return
        self._open.update((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        for side in (writer, up_writer):
            if side in self._open:
                self._open.discard(side)
                _abort(side)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until EOF or an error; an EOF is passed on as a half-close."""
        try:
            while chunk := await reader.read(_CHUNK):
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            return

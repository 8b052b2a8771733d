"""A small TCP proxy for fault tests: put it between the server and Redis or RabbitMQ, then cut or stall the link.

proxy = TcpProxy("127.0.0.1", 6379)
await proxy.start()              # listens on 127.0.0.1:<proxy.port>
await proxy.cut()                # drops every connection and refuses new ones
await proxy.restore()            # accepts connections again
proxy.stall(); proxy.unstall()   # keeps connections open but forwards nothing (a hung dependency)
proxy.cut_after(b"COMMIT")       # once: forwards the client's next chunk holding it, then drops that connection
await proxy.close()
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, listen_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.connections_accepted = 0
        self._cut_after: bytes | None = None
        self.cuts_after = 0

    async def start(self) -> None:
        """Listens on a free port (the same port again after `restore`)."""
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"{self.listen_host}:{self.port}"

    async def cut(self) -> None:
        """Stops listening and resets every open connection, like a dependency going away."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._links):
            task.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)
        self._links.clear()

    async def restore(self) -> None:
        """Listens again on the same port."""
        if self._server is None:
            await self.start()

    def stall(self) -> None:
        """Connections stay open but no byte moves: a hung dependency."""
        self._flowing.clear()

    def unstall(self) -> None:
        self._flowing.set()

    def cut_after(self, pattern: bytes) -> None:
        """The next chunk a client sends that holds `pattern` reaches the upstream, then that one connection is
        dropped before any answer comes back: the client cannot know what the upstream did with it."""
        self._cut_after = pattern

    async def close(self) -> None:
        self.unstall()
        await self.cut()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            self._links.discard(task)
            return
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer, client=client_writer),
                self._pipe(upstream_reader, client_writer),
            )
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                _abort(writer)
            self._links.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: asyncio.StreamWriter | None = None
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await self._flowing.wait()
            writer.write(data)
            await writer.drain()
            if client is not None and self._cut_after is not None and self._cut_after in data:
                self._cut_after = None
                self.cuts_after += 1
                _abort(client)  # before any answer can come back
                writer.close()  # the upstream gets every byte, then the end of the stream
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                raise ConnectionResetError("cut after the pattern")
        with contextlib.suppress(OSError):
            writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    with contextlib.suppress(Exception):
        transport.abort()

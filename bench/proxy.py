"""A counting TCP proxy in front of the database: client requests (wire messages) by command."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter
from dataclasses import dataclass, field

import bson

OP_MSG = 2013
OP_QUERY = 2004
OP_COMPRESSED = 2012
_HEADER = struct.Struct("<iiii")
_HELLO_COMMANDS = frozenset({"ismaster", "isMaster", "hello"})


@dataclass
class CommandCounts:
    """Requests seen since the last reset, by command name (first key of the OP_MSG body)."""

    by_command: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Every request message, handshakes and server monitoring included."""
        return sum(self.by_command.values())

    @property
    def data_commands(self) -> int:
        """Requests other than handshakes/monitoring (`isMaster`/`hello`)."""
        return sum(n for name, n in self.by_command.items() if name not in _HELLO_COMMANDS)

    def snapshot(self) -> dict[str, int]:
        """A copy, for reports."""
        return dict(self.by_command.most_common())


def command_name(opcode: int, body: bytes) -> str:
    """The command a request carries: the first key of its body document."""
    if opcode == OP_MSG:
        # flagBits (4 bytes), then sections; a kind-0 section holds the command document.
        offset = 4
        while offset < len(body):
            kind = body[offset]
            offset += 1
            if kind == 0:
                length = struct.unpack_from("<i", body, offset)[0]
                document = bson.decode(body[offset : offset + length])
                return next(iter(document), "?")
            # kind 1: a document sequence, prefixed by its own int32 size
            offset += struct.unpack_from("<i", body, offset)[0]
        return "?"
    if opcode == OP_QUERY:
        return "legacy-query"
    if opcode == OP_COMPRESSED:
        return "compressed"
    return f"opcode-{opcode}"


class CountingProxy:
    """Forwards 127.0.0.1:<port> to the upstream server and counts each client request."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.counts = CommandCounts()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on a free port; return it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def uri(self) -> str:
        """A connection string pointing at the proxy."""
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def reset(self) -> CommandCounts:
        """Start a new counting window; return the counts of the previous one."""
        previous, self.counts = self.counts, CommandCounts()
        return previous

    async def stop(self) -> None:
        """Close the listener and every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_r, server_w = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        replies = asyncio.create_task(_pipe(server_r, client_w))
        try:
            await self._requests(client_r, server_w)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            replies.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await replies
            for writer in (client_w, server_w):
                writer.close()
            self._tasks.discard(task)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await reader.readexactly(_HEADER.size)
            length, _request_id, _response_to, opcode = _HEADER.unpack(header)
            body = await reader.readexactly(length - _HEADER.size)
            self.counts.by_command[command_name(opcode, body)] += 1
            writer.write(header + body)
            await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass

"""A counting TCP proxy in front of the database: client requests (wire messages) by command."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import bson

OP_MSG = 2013
OP_QUERY = 2004
OP_COMPRESSED = 2012
_HEADER = struct.Struct("<iiii")
_HELLO_COMMANDS = frozenset({"ismaster", "isMaster", "hello"})


@dataclass(frozen=True)
class Request:
    """What one request message asks for."""

    command: str
    collection: str = ""
    # Statements carried (documents to insert, updates, deletes); 1 for anything else.
    statements: int = 1

    @property
    def target(self) -> str:
        """`command collection`, e.g. `update cron_runs`."""
        return f"{self.command} {self.collection}".strip()


@dataclass
class CommandCounts:
    """Requests seen since the last reset, by command name (first key of the OP_MSG body)."""

    by_command: Counter[str] = field(default_factory=Counter)
    by_target: Counter[str] = field(default_factory=Counter)
    statements: Counter[str] = field(default_factory=Counter)
    # Seconds between a request leaving the proxy and its reply arriving, summed per target.
    server_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, request: Request) -> None:
        """Count one request."""
        self.by_command[request.command] += 1
        self.by_target[request.target] += 1
        self.statements[request.target] += request.statements

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

    def server_time(self) -> dict[str, dict[str, float]]:
        """Per command and collection: requests, statements, total and mean server seconds."""
        return {
            target: {
                "requests": self.by_target[target],
                "statements": self.statements[target],
                "server_s": round(seconds, 2),
                "mean_ms": round(seconds / max(self.by_target[target], 1) * 1000, 2),
            }
            for target, seconds in sorted(self.server_seconds.items(), key=lambda kv: -kv[1])
        }


_STATEMENT_ARRAYS = {"insert": "documents", "update": "updates", "delete": "deletes"}


def parse_request(opcode: int, body: bytes) -> Request:
    """The command a request carries (first key of its body document), its collection and size."""
    if opcode == OP_QUERY:
        return Request("legacy-query")
    if opcode == OP_COMPRESSED:
        return Request("compressed")
    if opcode != OP_MSG:
        return Request(f"opcode-{opcode}")
    document: dict[str, object] = {}
    sequenced = 0
    # flagBits (4 bytes), then sections: kind 0 holds the command document, kind 1 a
    # document sequence (e.g. the statements of a bulk write) prefixed by its int32 size.
    offset = 4
    while offset < len(body):
        kind = body[offset]
        offset += 1
        size = struct.unpack_from("<i", body, offset)[0]
        if kind == 0:
            document = bson.decode(body[offset : offset + size])
        else:
            sequenced += _count_documents(body[offset + 4 : offset + size])
        offset += size
    if not document:
        return Request("?")
    command = next(iter(document))
    target = document[command] if isinstance(document[command], str) else ""
    if command == "getMore":
        target = str(document.get("collection", ""))
    embedded = document.get(_STATEMENT_ARRAYS.get(command, ""), [])
    statements = sequenced or (len(embedded) if isinstance(embedded, list) else 0) or 1
    return Request(command, str(target), statements)


def _count_documents(sequence: bytes) -> int:
    # The sequence starts with its identifier (a C string), then back-to-back BSON documents.
    offset = sequence.index(0) + 1
    count = 0
    while offset < len(sequence):
        offset += struct.unpack_from("<i", sequence, offset)[0]
        count += 1
    return count


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
        pending: dict[int, tuple[str, float]] = {}
        replies = asyncio.create_task(self._replies(server_r, client_w, pending))
        try:
            await self._requests(client_r, server_w, pending)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            replies.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await replies
            for writer in (client_w, server_w):
                writer.close()
            self._tasks.discard(task)

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: dict[int, tuple[str, float]],
    ) -> None:
        while True:
            header = await reader.readexactly(_HEADER.size)
            length, request_id, _response_to, opcode = _HEADER.unpack(header)
            body = await reader.readexactly(length - _HEADER.size)
            request = parse_request(opcode, body)
            self.counts.add(request)
            pending[request_id] = (request.target, time.perf_counter())
            writer.write(header + body)
            await writer.drain()

    async def _replies(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: dict[int, tuple[str, float]],
    ) -> None:
        try:
            while True:
                header = await reader.readexactly(_HEADER.size)
                length, _request_id, response_to, _opcode = _HEADER.unpack(header)
                body = await reader.readexactly(length - _HEADER.size)
                sent = pending.pop(response_to, None)
                if sent is not None:
                    self.counts.server_seconds[sent[0]] += time.perf_counter() - sent[1]
                writer.write(header + body)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass

"""Handlers by job-type name; each module exposes `async def handle(ctx, payload)`."""

from worker.context import Handler
from worker.handlers import noop

HANDLERS: dict[str, Handler] = {
    "noop": noop.handle,
}

"""Handler of the `noop` canary type."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.job_types.noop import NoopPayload
from worker.handlers.context import HandlerError, RunContext


async def handle(ctx: RunContext, payload: NoopPayload) -> dict[str, Any] | None:
    """Wait `sleepSeconds`, then fail if this attempt is within `failAttempts`, else succeed."""
    if payload.sleep_seconds:
        await asyncio.sleep(payload.sleep_seconds)
    if ctx.attempt <= payload.fail_attempts:
        raise HandlerError(f"deliberate failure of attempt {ctx.attempt}")
    return {"slept": payload.sleep_seconds}

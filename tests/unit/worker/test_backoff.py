"""Backoff delays and the retry-until-stopped helper used through database outages."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure
from structlog.testing import CapturingLogger

from worker import backoff as backoff_module
from worker.backoff import Backoff, Stopped, brief, is_transient, persist


def test_delays_grow_and_are_capped() -> None:
    backoff = Backoff(first=1, ceiling=4)
    delays = [backoff.next_delay() for _ in range(5)]
    assert 0.5 <= delays[0] <= 1
    assert 1 <= delays[1] <= 2
    assert all(2 <= delay <= 4 for delay in delays[2:])
    backoff.reset()
    assert backoff.next_delay() <= 1


def test_only_the_first_failure_of_an_outage_warns_at_once() -> None:
    backoff = Backoff()
    assert backoff.should_warn()
    backoff.next_delay()
    assert not backoff.should_warn()


def test_connection_problems_are_transient_and_server_refusals_are_not() -> None:
    assert is_transient(AutoReconnect("connection closed"))
    assert not is_transient(OperationFailure("bad query"))
    assert not is_transient(DuplicateKeyError("E11000"))


async def test_persist_retries_through_an_outage() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise AutoReconnect("down")
        return "done"

    assert await persist(flaky, what="test") == "done"
    assert calls == 3


async def test_persist_does_not_retry_a_refusal() -> None:
    async def refused() -> None:
        raise OperationFailure("no")

    with pytest.raises(OperationFailure):
        await persist(refused, what="test")


async def test_persist_gives_up_when_stopping() -> None:
    stop = asyncio.Event()

    async def down() -> None:
        stop.set()
        raise AutoReconnect("down")

    with pytest.raises(Stopped):
        await persist(down, what="test", stop=stop)


def test_errors_are_logged_briefly() -> None:
    error = AutoReconnect(
        "127.0.0.1:1: connection refused, Timeout: 0.5s, Topology Description: <long>\nmore"
    )
    assert brief(error) == "127.0.0.1:1: connection refused"
    assert brief(OperationFailure("")) == "OperationFailure"


async def test_an_outage_is_logged_when_it_starts_and_when_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chaos finding 5: every `db.unavailable` is followed by a `db.available`."""
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise AutoReconnect("down")
        return "done"

    # The module's logger itself (whatever logging configuration an earlier test left).
    capturing = CapturingLogger()
    monkeypatch.setattr(backoff_module, "log", capturing)
    await persist(flaky, what="claim")
    events = [(call.args[0], call.kwargs["operation"]) for call in capturing.calls]
    assert events == [("db.unavailable", "claim"), ("db.available", "claim")]

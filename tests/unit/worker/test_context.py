"""Running one attempt: handler lookup, payload validation, timeout, errors and cancellation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import pytest
from bson import ObjectId
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.db import Database
from shared.model import JobStatus, RunStatus, RunTrigger
from shared.registry import JobType, JobTypeRegistry
from shared.runs import scheduled_run, utc_now
from shared.settings import load_settings
from worker.claiming import Claimed
from worker.handlers.context import (
    Executor,
    HandlerError,
    PermanentHandlerError,
    RunContext,
    error_message,
    first_problem,
    summary_of,
)
from worker.store import parse_job, parse_run


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: int = 0


seen: list[RunContext] = []


async def succeed(ctx: RunContext, payload: Payload) -> dict[str, Any]:
    seen.append(ctx)
    return {"doubled": payload.value * 2}


async def refuse(ctx: RunContext, payload: Payload) -> None:
    raise HandlerError("mailbox full\nsecond line is dropped")


async def refuse_for_good(ctx: RunContext, payload: Payload) -> None:
    raise PermanentHandlerError("redirect with an unusable Location 'http://a.test:abc/'")


async def crash(ctx: RunContext, payload: Payload) -> None:
    raise KeyError("missing")


async def hang(ctx: RunContext, payload: Payload) -> None:
    await asyncio.sleep(30)


async def own_timeout(ctx: RunContext, payload: Payload) -> None:
    raise TimeoutError("upstream took too long")


HANDLERS = {
    "succeed": succeed,
    "refuse": refuse,
    "refuseForGood": refuse_for_good,
    "crash": crash,
    "hang": hang,
    "ownTimeout": own_timeout,
}
REGISTRY = JobTypeRegistry(
    [JobType(name, Payload, name) for name in [*HANDLERS, "noHandler", "switchedOff"]],
    disabled=["switchedOff"],
)


@pytest.fixture
def executor() -> Executor:
    settings = load_settings({}, max_timeout_seconds=1, default_timeout_seconds=1)
    return Executor(settings, REGISTRY, HANDLERS, cast(Database, None))


def claim(type_name: str, payload: dict[str, Any] | None = None, attempt: int = 1) -> Claimed:
    now = utc_now()
    slot = now.replace(microsecond=0)
    job = {
        "_id": ObjectId(),
        "ownerId": "owner-1",
        "name": "job",
        "type": type_name,
        "cron": "* * * * *",
        "payload": payload or {},
        "createdAt": now,
        "updatedAt": now,
        "timeoutSeconds": 60,
        "retry": {"maxAttempts": 2, "backoffSeconds": 1, "backoffMaxSeconds": 1},
    }
    view = parse_job(job)
    run = scheduled_run(view, slot, now=now, start_deadline=None)
    run.update(
        status="running",
        attempt=attempt,
        workerId="w",
        leaseExpiresAt=now + timedelta(seconds=30),
        startedAt=now,
    )
    return Claimed(parse_run(run), view)


async def test_success_keeps_the_result_and_hands_over_the_context(executor: Executor) -> None:
    item = claim("succeed", {"value": 21})
    outcome = await executor.execute(item)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result == {"doubled": 42}
    context = seen[-1]
    assert context.run_id == str(item.run_id)
    assert context.idempotency_key == f"{item.job_id}:{item.run.slot}"
    assert context.attempt == 1
    assert context.trigger is RunTrigger.SCHEDULE


async def test_a_handler_error_fails_the_attempt_with_its_first_line(executor: Executor) -> None:
    outcome = await executor.execute(claim("refuse"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == "mailbox full"
    assert outcome.retry is not None  # 1 of 2 attempts


async def test_a_permanent_handler_error_is_not_retried(executor: Executor) -> None:
    outcome = await executor.execute(claim("refuseForGood"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == "redirect with an unusable Location 'http://a.test:abc/'"
    assert outcome.retry is None  # attempt 1 of 2, yet no retry


async def test_an_unexpected_exception_names_its_class(executor: Executor) -> None:
    outcome = await executor.execute(claim("crash", attempt=2))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == "KeyError: 'missing'"
    assert outcome.retry is None
    assert outcome.job_status is JobStatus.FAILED


async def test_the_timeout_cancels_the_handler(executor: Executor) -> None:
    # The job asks for 60 s; CRON_MAX_TIMEOUT_SECONDS=1 caps it.
    outcome = await executor.execute(claim("hang"))
    assert outcome.status is RunStatus.TIMEOUT
    assert outcome.error == "timed out after 1 s"
    assert 900 <= outcome.duration_ms < 5000


async def test_a_timeout_raised_by_the_handler_is_an_ordinary_failure(executor: Executor) -> None:
    outcome = await executor.execute(claim("ownTimeout"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == "TimeoutError: upstream took too long"


@pytest.mark.parametrize(
    ("type_name", "message"),
    [
        ("unknownType", "job type 'unknownType' is unknown or disabled (allowed: "),
        ("switchedOff", "job type 'switchedOff' is unknown or disabled (allowed: "),
        ("noHandler", "no handler is registered for job type 'noHandler'"),
    ],
)
async def test_an_unusable_type_fails_for_good(
    executor: Executor, type_name: str, message: str
) -> None:
    outcome = await executor.execute(claim(type_name))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith(message)
    assert outcome.retry is None


async def test_an_invalid_payload_fails_for_good(executor: Executor) -> None:
    outcome = await executor.execute(claim("succeed", {"value": "many", "extra": 1}))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith("invalid payload: value: Input should be a valid integer")
    assert outcome.retry is None


async def test_cancellation_is_recorded_as_abandoned_and_retried_at_once(
    executor: Executor,
) -> None:
    task = asyncio.create_task(executor.execute(claim("hang")))
    await asyncio.sleep(0.1)
    task.cancel()
    outcome = await task
    assert outcome.status is RunStatus.ABANDONED
    assert outcome.error == "worker shutdown"
    assert outcome.retry is not None
    assert outcome.retry["notBefore"] == outcome.ended_at


def test_timeout_of_prefers_the_job_then_the_default_and_caps_both() -> None:
    settings = load_settings({}, default_timeout_seconds=30, max_timeout_seconds=100)
    executor = Executor(settings, REGISTRY, HANDLERS, cast(Database, None))

    def timeout_of(stored: dict[str, Any]) -> float:
        return executor.timeout_of(parse_job({"_id": ObjectId(), **stored}))

    assert timeout_of({"timeoutSeconds": 5}) == 5
    assert timeout_of({"timeoutSeconds": None}) == 30
    assert timeout_of({}) == 30
    assert timeout_of({"timeoutSeconds": 500}) == 100


def test_error_messages_never_carry_a_traceback() -> None:
    assert error_message(HandlerError("a\nb")) == "a"
    assert error_message(ValueError()) == "ValueError"
    assert len(error_message(HandlerError("x" * 2000))) == 500


def test_first_problem_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Payload.model_validate({"value": []})
    assert first_problem(caught.value).startswith("value: ")


def test_results_are_kept_small_and_storable() -> None:
    assert summary_of(None) is None
    assert summary_of({"a": 1}) == {"a": 1}
    assert summary_of(42) == {"value": "42"}
    assert summary_of({"big": "x" * 20_000}) == {"truncated": True, "bytes": 20_015}
    unstorable = summary_of({"bad": object()})
    assert unstorable is not None
    assert "unstorable" in unstorable

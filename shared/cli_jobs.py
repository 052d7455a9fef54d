"""`cronjobs jobs ...` and `cronjobs runs list`: an operator's view of every owner's jobs."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from shared import backfill, jobs_repo
from shared.cli_db import CliError, job_id_argument, with_db
from shared.cli_output import Output, key_values
from shared.db import Database
from shared.model import JobDocument, JobOptions, JobStatus, RunStatus, RunTrigger
from shared.settings import Settings

JOB_COLUMNS = (
    "_id",
    "ownerId",
    "name",
    "type",
    "cron",
    "every",
    "runAt",
    "timezone",
    "status",
    "nextRunAt",
)
# The scheduling options' stored names (JobDocument puts them first; `jobs show` last).
OPTION_FIELDS = tuple(field.alias or name for name, field in JobOptions.model_fields.items())
RUN_COLUMNS = (
    "_id",
    "scheduledFor",
    "trigger",
    "attempt",
    "status",
    "notBefore",
    "startedAt",
    "durationMs",
    "error",
)


async def _get_job(db: Database, job_id: ObjectId) -> JobDocument:
    job = await jobs_repo.get_job(db, job_id)
    if job is None:
        raise jobs_repo.JobNotFoundError(job_id)
    return job


async def jobs_list(args: argparse.Namespace, settings: Settings) -> Output:
    """`jobs list`: filtered by owner, type and status."""

    async def action(db: Database) -> Output:
        jobs = await jobs_repo.list_jobs(
            db,
            owner_id=args.owner,
            limit=args.limit,
            job_type=args.job_type,
            status=None if args.status is None else JobStatus(args.status),
        )
        return Output([_document(job) for job in jobs], JOB_COLUMNS)

    return await with_db(settings, action)


async def jobs_delete(args: argparse.Namespace, settings: Settings) -> Output:
    """`jobs delete`: the job goes, its history stays until retention."""
    job_id = job_id_argument(args.id)

    async def action(db: Database) -> Output:
        job = await jobs_repo.delete_job(db, job_id)
        data = {"deleted": job_id, "ownerId": job.owner_id, "name": job.name}
        return Output(data, text=f"deleted job {job_id} ({job.name!r} of {job.owner_id})")

    return await with_db(settings, action)


async def runs_list(args: argparse.Namespace, settings: Settings) -> Output:
    """`runs list`: a job's (or a deleted job's) runs, newest first."""
    job_id = job_id_argument(args.id)
    which = jobs_repo.RunFilter(
        statuses=tuple(RunStatus(status) for status in args.status or ()),
        trigger=None if args.trigger is None else RunTrigger(args.trigger),
    )

    async def action(db: Database) -> Output:
        runs = await jobs_repo.list_runs(db, job_id, limit=args.limit, which=which)
        if not runs and await jobs_repo.get_job(db, job_id) is None:
            raise jobs_repo.JobNotFoundError(job_id)
        rows = [run.model_dump(by_alias=True) for run in runs]
        return Output(rows, RUN_COLUMNS)

    return await with_db(settings, action)


async def jobs_show(args: argparse.Namespace, settings: Settings) -> Output:
    """`jobs show`."""
    job_id = job_id_argument(args.id)

    async def action(db: Database) -> Output:
        return _job_output(await _get_job(db, job_id))

    return await with_db(settings, action)


async def jobs_pause(args: argparse.Namespace, settings: Settings) -> Output:
    """`jobs pause`."""
    return await _set_enabled(args, settings, enabled=False)


async def jobs_resume(args: argparse.Namespace, settings: Settings) -> Output:
    """`jobs resume`."""
    return await _set_enabled(args, settings, enabled=True)


async def _set_enabled(args: argparse.Namespace, settings: Settings, *, enabled: bool) -> Output:
    job_id = job_id_argument(args.id)

    async def action(db: Database) -> Output:
        return _job_output(await jobs_repo.set_enabled(db, job_id, enabled=enabled))

    return await with_db(settings, action)


async def jobs_run_now(args: argparse.Namespace, settings: Settings) -> Output:
    """`jobs run-now`."""
    job_id = job_id_argument(args.id)

    async def action(db: Database) -> Output:
        run_id = await jobs_repo.queue_run_now(db, await _get_job(db, job_id))
        data = {"runId": run_id, "jobId": job_id, "status": "pending"}
        return Output(data, text=f"queued run {run_id} of job {job_id}")

    return await with_db(settings, action)


async def jobs_test(args: argparse.Namespace, settings: Settings) -> Output:
    """`jobs test`: one real run that leaves the job's bookkeeping alone."""
    job_id = job_id_argument(args.id)

    async def action(db: Database) -> Output:
        job = await _get_job(db, job_id)
        run_id = await jobs_repo.queue_run_now(db, job, trigger=RunTrigger.TEST)
        data = {"runId": run_id, "jobId": job_id, "status": "pending"}
        return Output(data, text=f"queued test run {run_id} of job {job_id}")

    return await with_db(settings, action)


async def jobs_backfill(args: argparse.Namespace, settings: Settings) -> Output:
    """`jobs backfill`: queue the slots of a past window, once per slot."""
    job_id = job_id_argument(args.id)

    async def action(db: Database) -> Output:
        job = await _get_job(db, job_id)
        if not job.enabled:
            raise CliError(f"job {job_id} is paused: resume it, then backfill")
        try:
            slots = backfill.window_slots(
                jobs_repo.stored_schedule(job), args.start, args.end, datetime.now(UTC)
            )
        except backfill.WindowError as error:
            raise CliError(f"--{error.field}: {error.message}") from None
        result = await backfill.queue_backfill(db, job, slots)
        data = {
            "jobId": job_id,
            "slots": result.slots,
            "queued": result.queued,
            "alreadyPresent": result.already_present,
        }
        text = (
            f"job {job_id}: {result.queued} of {result.slots} slots queued "
            f"({result.already_present} queued before)"
        )
        return Output(data, text=text)

    return await with_db(settings, action)


def _job_output(job: JobDocument) -> Output:
    document = _document(job)
    return Output(document, text=key_values(document))


def _document(job: JobDocument) -> dict[str, Any]:
    """A job as stored (camelCase field names), identity first and scheduling options last."""
    stored = job.model_dump(by_alias=True)
    options = {name: stored.pop(name) for name in OPTION_FIELDS}
    return {**stored, **options}

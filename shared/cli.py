"""`cronjobs`: the operator's command line (indexes, jobs, test tokens, worker heartbeats)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from bson import ObjectId
from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError

from shared import jobs_repo
from shared.cli_output import Output, key_values, render
from shared.db import WORKERS, Database, create_client, ensure_indexes, get_database
from shared.logging import configure_logging
from shared.model import JobDocument, JobOptions
from shared.settings import Settings, SettingsError, load_settings
from shared.tokens import TokenError, mint_token

PROG = "cronjobs"
LIST_LIMIT_MAX = 1000
JOB_COLUMNS = (
    "_id",
    "ownerId",
    "name",
    "type",
    "cron",
    "every",
    "timezone",
    "status",
    "nextRunAt",
)
# The scheduling options' stored names (JobDocument puts them first; `jobs show` last).
OPTION_FIELDS = tuple(field.alias or name for name, field in JobOptions.model_fields.items())
WORKER_COLUMNS = ("name", "host", "pid", "version", "mode", "lastSeenAt", "runsInFlight", "state")
# Failures an operator can act on: reported as one line, exit status 1.
EXPECTED_ERRORS = (
    SettingsError,
    TokenError,
    jobs_repo.JobNotFoundError,
    jobs_repo.VersionConflictError,
    jobs_repo.RunInProgressError,
)


class CliError(Exception):
    """A failure reported as one line on stderr with exit status 1."""


Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, Output]]
DbAction = Callable[[Database], Awaitable[Output]]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run one command; return the exit status (0 ok, 1 error, 2 usage)."""
    args = build_parser().parse_args(argv)
    command: Command = args.command
    try:
        settings = load_settings(environ)
        configure_logging(settings, "cli")
        # Own loop, no global event-loop side effects (callable from tests and other tools).
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            output = runner.run(command(args, settings))
    except (CliError, *EXPECTED_ERRORS) as error:
        return _fail(str(error))
    except PyMongoError as error:
        return _fail(_database_problem(error))
    render(output, as_json=args.json, out=sys.stdout)
    return 0


def _database_problem(error: PyMongoError) -> str:
    """One line: what went wrong with the database, without the topology dump."""
    lines = str(error).splitlines() or [type(error).__name__]
    detail = re.split(r" \(configured timeouts|, Timeout: ", lines[0], maxsplit=1)[0]
    if isinstance(error, ConnectionFailure):
        return f"cannot reach MongoDB (CRON_MONGODB_URI): {detail}"
    return f"database error: {detail}"


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: `cronjobs <group> <command> [options]`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable JSON output")
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Administer cronjobs. Configuration comes from CRON_* environment variables.",
    )
    groups = parser.add_subparsers(title="commands", metavar="<group>", required=True)

    db = _group(groups, "db", "database maintenance")
    _leaf(db, "init", "create or update the indexes (idempotent)", common, _db_init)

    jobs = _group(groups, "jobs", "inspect and control jobs (as an operator, all owners)")
    listing = _leaf(jobs, "list", "list jobs, oldest first", common, _jobs_list)
    listing.add_argument("--owner", help="only this owner's jobs")
    listing.add_argument("--limit", type=_limit, default=50, help="at most N jobs (default 50)")
    for name, help_text, handler in (
        ("show", "show one job", _jobs_show),
        ("pause", "disable a job (it keeps its definition)", _jobs_pause),
        (
            "resume",
            "enable a job: a cron continues from now; an interval continues on its grid "
            "(the slots it skipped while paused are recorded missed)",
            _jobs_resume,
        ),
        ("run-now", "queue a manual run (the schedule does not move)", _jobs_run_now),
    ):
        _leaf(jobs, name, help_text, common, handler).add_argument("id", help="job id")

    token = _group(groups, "token", "test tokens (HS256, needs CRON_JWT_SECRET)")
    create = _leaf(token, "create", "print a signed token", common, _token_create)
    create.add_argument("--sub", required=True, help="subject: the owner id")
    create.add_argument("--roles", default="", help="comma-separated roles, e.g. admin")
    create.add_argument("--ttl", type=_positive_int, default=3600, help="lifetime in seconds")

    workers = _group(groups, "workers", "worker processes")
    _leaf(
        workers,
        "list",
        "worker processes of the last 7 days: running, stopped (cleanly) or stale (silent)",
        common,
        _workers_list,
    )
    return parser


SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _group(groups: SubParsers, name: str, help_text: str) -> SubParsers:
    parser = groups.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(title="commands", metavar="<command>", required=True)


def _leaf(
    commands: SubParsers,
    name: str,
    help_text: str,
    common: argparse.ArgumentParser,
    handler: Command,
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
    parser.set_defaults(command=handler)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _limit(text: str) -> int:
    value = _positive_int(text)
    if value > LIST_LIMIT_MAX:
        raise argparse.ArgumentTypeError(f"must be at most {LIST_LIMIT_MAX}, got {value}")
    return value


def _job_id(text: str) -> ObjectId:
    if not ObjectId.is_valid(text):
        raise CliError(f"invalid job id {text!r}: expected 24 hexadecimal characters")
    return ObjectId(text)


async def _get_job(db: Database, job_id: ObjectId) -> JobDocument:
    job = await jobs_repo.get_job(db, job_id)
    if job is None:
        raise jobs_repo.JobNotFoundError(job_id)
    return job


async def _with_db(settings: Settings, action: DbAction) -> Output:
    try:
        client = create_client(settings)
    except (ValueError, ConfigurationError) as error:  # the URI itself is malformed
        raise CliError(f"invalid CRON_MONGODB_URI: {error}") from None
    try:
        return await action(get_database(client, settings))
    finally:
        await client.close()


async def _db_init(args: argparse.Namespace, settings: Settings) -> Output:
    async def action(db: Database) -> Output:
        await ensure_indexes(db, settings)
        data = {"database": settings.db_name, "indexes": "ok"}
        return Output(data, text=f"indexes of database {settings.db_name!r} are up to date")

    return await _with_db(settings, action)


async def _jobs_list(args: argparse.Namespace, settings: Settings) -> Output:
    async def action(db: Database) -> Output:
        jobs = await jobs_repo.list_jobs(db, owner_id=args.owner, limit=args.limit)
        return Output([_document(job) for job in jobs], JOB_COLUMNS)

    return await _with_db(settings, action)


async def _jobs_show(args: argparse.Namespace, settings: Settings) -> Output:
    job_id = _job_id(args.id)

    async def action(db: Database) -> Output:
        return _job_output(await _get_job(db, job_id))

    return await _with_db(settings, action)


async def _jobs_pause(args: argparse.Namespace, settings: Settings) -> Output:
    return await _set_enabled(args, settings, enabled=False)


async def _jobs_resume(args: argparse.Namespace, settings: Settings) -> Output:
    return await _set_enabled(args, settings, enabled=True)


async def _set_enabled(args: argparse.Namespace, settings: Settings, *, enabled: bool) -> Output:
    job_id = _job_id(args.id)

    async def action(db: Database) -> Output:
        return _job_output(await jobs_repo.set_enabled(db, job_id, enabled=enabled))

    return await _with_db(settings, action)


async def _jobs_run_now(args: argparse.Namespace, settings: Settings) -> Output:
    job_id = _job_id(args.id)

    async def action(db: Database) -> Output:
        run_id = await jobs_repo.queue_run_now(db, await _get_job(db, job_id))
        data = {"runId": run_id, "jobId": job_id, "status": "pending"}
        return Output(data, text=f"queued run {run_id} of job {job_id}")

    return await _with_db(settings, action)


async def _token_create(args: argparse.Namespace, settings: Settings) -> Output:
    roles = [role.strip() for role in args.roles.split(",") if role.strip()]
    issued = datetime.now(UTC)
    token = mint_token(settings, args.sub, roles, args.ttl, now=issued.timestamp())
    expires = issued.replace(microsecond=0) + timedelta(seconds=args.ttl)
    data = {"token": token, "sub": args.sub, "roles": roles, "expiresAt": expires}
    return Output(data, text=token)


async def _workers_list(args: argparse.Namespace, settings: Settings) -> Output:
    async def action(db: Database) -> Output:
        now = datetime.now(UTC)
        stale_after = timedelta(seconds=settings.worker_stale_seconds)
        rows = []
        async for worker in db[WORKERS].find({}).sort([("name", 1), ("lastSeenAt", -1)]):
            last_seen = worker.get("lastSeenAt")
            worker["stale"] = last_seen is None or now - last_seen > stale_after
            # A process that stopped cleanly says so; one that went quiet without it is stale.
            if worker.get("stoppedAt") is not None:
                worker["state"] = "stopped"
            else:
                worker["state"] = "stale" if worker["stale"] else "running"
            rows.append(worker)
        return Output(rows, WORKER_COLUMNS)

    return await _with_db(settings, action)


def _job_output(job: JobDocument) -> Output:
    document = _document(job)
    return Output(document, text=key_values(document))


def _document(job: JobDocument) -> dict[str, Any]:
    """A job as stored (camelCase field names), identity first and scheduling options last."""
    stored = job.model_dump(by_alias=True)
    options = {name: stored.pop(name) for name in OPTION_FIELDS}
    return {**stored, **options}


if __name__ == "__main__":
    sys.exit(main())

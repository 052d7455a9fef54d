"""`cronjobs`: the operator's command line (indexes, jobs, quotas, tokens, worker heartbeats)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import structlog
from pymongo.errors import ConnectionFailure, PyMongoError

from shared import cli_jobs, jobs_repo, quota
from shared.cli_db import CliError, with_db
from shared.cli_output import Output, render
from shared.db import (
    WORKERS,
    Database,
    IndexSetupError,
    ensure_indexes,
)
from shared.logging import configure_logging
from shared.model import JobStatus, RunStatus, RunTrigger
from shared.settings import Settings, SettingsError, load_settings
from shared.tokens import TokenError, mint_token

log = structlog.get_logger(__name__)

PROG = "cronjobs"
JSON_HELP = "machine-readable JSON output (before or after the command)"
LIST_LIMIT_MAX = 1000
QUOTA_COLUMNS = ("ownerId", "was", "jobs")
WORKER_COLUMNS = ("name", "host", "pid", "version", "mode", "lastSeenAt", "runsInFlight", "state")
# Failures an operator can act on: reported as one line, exit status 1.
EXPECTED_ERRORS = (
    SettingsError,
    TokenError,
    jobs_repo.JobNotFoundError,
    jobs_repo.VersionConflictError,
    jobs_repo.RunInProgressError,
)


Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, Output]]


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
    except IndexSetupError as error:
        return _fail(_first_line(error))
    except Exception as error:  # anything else: one line, the traceback only in the debug log
        log.debug("cli.unexpected_error", exc_info=True)
        return _fail(f"unexpected {type(error).__name__}: {_first_line(error)}")
    render(output, as_json=args.json, out=sys.stdout)
    return 0


def _database_problem(error: PyMongoError) -> str:
    """One line: what went wrong with the database, without the topology dump."""
    lines = str(error).splitlines() or [type(error).__name__]
    detail = re.split(r" \(configured timeouts|, Timeout: ", lines[0], maxsplit=1)[0]
    if isinstance(error, ConnectionFailure):
        return f"cannot reach MongoDB (CRON_MONGODB_URI): {detail}"
    return f"database error: {detail}"


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: `cronjobs <group> <command> [options]`."""
    # `--json` is accepted before or after the command; a later position must not reset an
    # earlier one to False, hence SUPPRESS below the top level.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Administer cronjobs. Configuration comes from CRON_* environment variables.",
    )
    parser.add_argument("--json", action="store_true", default=False, help=JSON_HELP)
    groups = parser.add_subparsers(title="commands", metavar="<group>", required=True)

    db = _group(groups, "db", "database maintenance")
    _leaf(db, "init", "create or update the indexes (idempotent)", common, _db_init)

    jobs = _group(groups, "jobs", "inspect and control jobs (as an operator, all owners)")
    listing = _leaf(jobs, "list", "list jobs, oldest first", common, cli_jobs.jobs_list)
    listing.add_argument("--owner", help="only this owner's jobs")
    listing.add_argument("--type", dest="job_type", help="only jobs of this type")
    listing.add_argument(
        "--status", choices=[status.value for status in JobStatus], help="only jobs in this state"
    )
    listing.add_argument("--limit", type=_limit, default=50, help="at most N jobs (default 50)")
    for name, help_text, handler in (
        ("show", "show one job", cli_jobs.jobs_show),
        ("delete", "delete a job (queued runs are skipped; history kept)", cli_jobs.jobs_delete),
        ("pause", "disable a job (it keeps its definition)", cli_jobs.jobs_pause),
        (
            "resume",
            "enable a job: a cron continues from now; an interval continues on its grid "
            "(the slots it skipped while paused are recorded missed); a job with no slot left "
            "(past endAt, maxRuns reached, a one-off past runAt) is completed",
            cli_jobs.jobs_resume,
        ),
        ("run-now", "queue a manual run (the schedule does not move)", cli_jobs.jobs_run_now),
        (
            "test",
            "queue a test run: one real attempt that leaves the job's status, lastRunAt, "
            "counters and notifications alone",
            cli_jobs.jobs_test,
        ),
    ):
        _leaf(jobs, name, help_text, common, handler).add_argument("id", help="job id")
    backfill = _leaf(
        jobs,
        "backfill",
        "queue the job's slots in [--from, --to) again (past only, at most 1000, once per slot)",
        common,
        cli_jobs.jobs_backfill,
    )
    backfill.add_argument("id", help="job id")
    backfill.add_argument(
        "--from", dest="start", required=True, type=_instant, help="window start, with offset"
    )
    backfill.add_argument(
        "--to", dest="end", required=True, type=_instant, help="window end (exclusive)"
    )

    runs = _group(groups, "runs", "run history of a job (also of a deleted one)")
    run_listing = _leaf(runs, "list", "a job's runs, newest first", common, cli_jobs.runs_list)
    run_listing.add_argument("id", help="job id")
    run_listing.add_argument(
        "--status",
        choices=[status.value for status in RunStatus],
        action="append",
        help="only runs in this state (repeat for several)",
    )
    run_listing.add_argument(
        "--trigger",
        choices=[trigger.value for trigger in RunTrigger],
        help="only runs started this way",
    )
    run_listing.add_argument("--limit", type=_limit, default=20, help="at most N runs (default 20)")

    quotas = _group(groups, "quota", "per-owner job quota counters")
    recount = _leaf(
        quotas,
        "recount",
        "recompute the job counters from the jobs (after a crash or a restore)",
        common,
        _quota_recount,
    )
    recount.add_argument("--owner", help="only this owner (default: every owner)")

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
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)
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


def _instant(text: str) -> datetime:
    """An ISO 8601 instant with a UTC offset (`Z` accepted)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 instant, got {text!r}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset (e.g. ...T00:00:00Z)")
    return value


def _limit(text: str) -> int:
    value = _positive_int(text)
    if value > LIST_LIMIT_MAX:
        raise argparse.ArgumentTypeError(f"must be at most {LIST_LIMIT_MAX}, got {value}")
    return value


async def _db_init(args: argparse.Namespace, settings: Settings) -> Output:
    async def action(db: Database) -> Output:
        await ensure_indexes(db, settings)
        data = {"database": settings.db_name, "indexes": "ok"}
        return Output(data, text=f"indexes of database {settings.db_name!r} are up to date")

    return await with_db(settings, action)


async def _quota_recount(args: argparse.Namespace, settings: Settings) -> Output:
    async def action(db: Database) -> Output:
        changes = await quota.recount(db, args.owner)
        rows = [{"ownerId": owner, "was": old, "jobs": new} for owner, old, new in changes]
        return Output(rows, QUOTA_COLUMNS)

    return await with_db(settings, action)


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

    return await with_db(settings, action)


if __name__ == "__main__":
    sys.exit(main())

"""What every `cronjobs` command shares: its one-line failure and a database for one action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bson import ObjectId
from pymongo.errors import ConfigurationError

from shared.cli_output import Output
from shared.db import Database, create_client, get_database
from shared.settings import Settings

DbAction = Callable[[Database], Awaitable[Output]]


class CliError(Exception):
    """A failure reported as one line on stderr with exit status 1."""


def job_id_argument(text: str) -> ObjectId:
    """A job id given on the command line; CliError if it is not one."""
    if not ObjectId.is_valid(text):
        raise CliError(f"invalid job id {text!r}: expected 24 hexadecimal characters")
    return ObjectId(text)


async def with_db(settings: Settings, action: DbAction) -> Output:
    """Run `action` on the configured database with a client closed afterwards."""
    try:
        client = create_client(settings)
    except (ValueError, ConfigurationError) as error:  # the URI itself is malformed
        raise CliError(f"invalid CRON_MONGODB_URI: {error}") from None
    try:
        return await action(get_database(client, settings))
    finally:
        await client.close()

"""Handlers by job-type name; each module exposes `async def handle(ctx, payload)`."""

from worker.handlers import generate_report, http_request, noop, purge_sessions, send_email
from worker.handlers.context import Handler

HANDLERS: dict[str, Handler] = {
    "noop": noop.handle,
    "sendEmail": send_email.handle,
    "purgeSessions": purge_sessions.handle,
    "generateReport": generate_report.handle,
    "httpRequest": http_request.handle,
}

"""Delivering a notice: email over the `sendEmail` SMTP path, a webhook through the signed,
SSRF-guarded client of `httpRequest` (same signature headers, redirect policy and resolver
guard). Each raises DeliveryError with a one-line reason the job's owner may read."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib
import structlog

from shared.db import Database
from shared.job_types.http_request import HttpRequestPayload
from shared.model import JobDocument, RunTrigger
from shared.runs import error_summary
from shared.settings import Settings
from worker.handlers import http_request
from worker.handlers.context import HandlerError, RunContext
from worker.handlers.send_email import _reason, _smtp_options
from worker.notify_templates import Notice, render_email, webhook_body

WEBHOOK_TIMEOUT_SECONDS = 10


class DeliveryError(Exception):
    """A channel did not take the notice; the message says why, in one line."""


def build_email(notice: Notice, sender: str, to: str) -> EmailMessage:
    """The multipart (text + HTML) notice email."""
    rendered = render_email(notice)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid("cronjobs-notice", domain=domain)
    # RFC 3834: keeps vacation responders from answering a machine.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Cron-Job-Id"] = notice.job_id
    message["X-Cron-Notice"] = notice.kind.value
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


async def send_email(settings: Settings, notice: Notice, to: str) -> None:
    """Hand the notice to the service's SMTP server (CRON_SMTP_*, its timeout)."""
    message = build_email(notice, settings.smtp_from, to)
    try:
        refused, _ = await aiosmtplib.send(message, **_smtp_options(settings))
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        structlog.get_logger("worker.notify").warning(
            "notify.smtp_failed",
            job_id=notice.job_id,
            owner_id=notice.owner_id,
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            error=error_summary(error),
        )
        raise DeliveryError(f"the mail server did not take the notice: {_reason(error)}") from None
    if refused:
        raise DeliveryError("the mail server refused the recipient")


async def send_webhook(
    settings: Settings,
    db: Database,
    job: JobDocument,
    notice: Notice,
    *,
    url: str,
    run_id: str,
    resolver: http_request.Resolver = http_request.system_resolver,
) -> None:
    """POST the notice's JSON through the `httpRequest` client; a non-2xx answer fails it.

    Notices never use the admin host exemption (`payloadByAdmin` off), as validated.
    """
    payload = HttpRequestPayload.model_validate(
        {"url": url, "method": "POST", "body": webhook_body(notice)}
        | {"timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS}
    )
    context = RunContext(
        job=job.model_copy(update={"payload_by_admin": False}),
        run_id=run_id,
        scheduled_for=notice.scheduled_for,
        attempt=1,
        trigger=RunTrigger.SCHEDULE,
        idempotency_key=f"{notice.job_id}:notice:{notice.kind.value}:{notice.at.isoformat()}",
        log=structlog.get_logger("worker.notify").bind(
            job_id=notice.job_id, run_id=run_id, owner_id=notice.owner_id
        ),
        db=db,
        settings=settings,
    )
    try:
        await http_request.call(context, payload, resolver=resolver)
    except HandlerError as error:
        raise DeliveryError(str(error)) from None

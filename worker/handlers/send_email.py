"""Handler of `sendEmail`: render the template and send a multipart message over SMTP."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import aiosmtplib

from shared.job_types import email_message, email_templates
from shared.job_types.send_email import SendEmailPayload
from shared.runs import error_summary
from shared.settings import Settings
from worker.handlers.context import HandlerError, RunContext


async def handle(ctx: RunContext, payload: SendEmailPayload) -> dict[str, Any] | None:
    """Send the message; the result keeps its Message-ID and the accepted recipient count."""
    settings = ctx.settings
    try:
        rendered = email_templates.render(settings.templates_dir, payload.template, payload.params)
    except email_templates.TemplateRenderError as error:
        raise HandlerError(str(error)) from None
    message = build_message(ctx, payload, rendered)
    try:
        refused, _ = await aiosmtplib.send(message, **_smtp_options(settings))
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        # The operator's detail (server, port, error) goes to the log; the run record, which the
        # job's owner reads, says what happened without naming the service's infrastructure.
        ctx.log.warning(
            "send_email.smtp_failed",
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            error=error_summary(error),
        )
        raise HandlerError(f"the mail server did not take the message: {_reason(error)}") from None
    accepted = len(payload.to) - len(refused)
    ctx.log.info("send_email.sent", message_id=message["Message-ID"], recipients=accepted)
    result: dict[str, Any] = {"messageId": message["Message-ID"], "recipients": accepted}
    if refused:
        result["refused"] = len(refused)
    return result


def _reason(error: BaseException) -> str:
    """What the owner may see: the server's own answer, or that it could not be reached."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        answer = f"{error.code} {error.message}".strip().splitlines()
        return answer[0] if answer else str(error.code)
    unreachable = (
        aiosmtplib.SMTPConnectError,
        aiosmtplib.SMTPServerDisconnected,
        aiosmtplib.SMTPTimeoutError,
        OSError,
        TimeoutError,
    )
    if isinstance(error, unreachable):
        return "it could not be reached"
    return error_summary(error, with_class=False)


def build_message(
    ctx: RunContext, payload: SendEmailPayload, rendered: email_templates.RenderedEmail
) -> EmailMessage:
    """The message of this run (shared with the dry-run: `shared.job_types.email_message`)."""
    return email_message.build_message(
        ctx.identity, ctx.settings, payload.to, payload.subject, rendered
    )


def _smtp_options(settings: Settings) -> dict[str, Any]:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return {
        "hostname": settings.smtp_host,
        "port": settings.smtp_port,
        "username": settings.smtp_username or None,
        "password": password if settings.smtp_username else None,
        "use_tls": settings.smtp_security == "tls",
        # False, not None: "none" must not upgrade opportunistically either.
        "start_tls": settings.smtp_security == "starttls",
        "timeout": settings.smtp_timeout_seconds,
    }

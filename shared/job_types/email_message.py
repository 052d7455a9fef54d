"""The message a `sendEmail` run sends: rendered bodies and identity headers, built without I/O.

The worker's handler sends what `build_message` returns; a dry-run shows the same message
(`preview`), so what an owner previews is what the handler would send.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from shared.job_types import email_templates
from shared.run_identity import RunIdentity
from shared.settings import Settings


def build_message(
    identity: RunIdentity,
    settings: Settings,
    to: list[str],
    subject: str,
    rendered: email_templates.RenderedEmail,
) -> EmailMessage:
    """multipart/alternative with the text and HTML bodies and the run's identity headers."""
    sender = settings.smtp_from
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(identity.idempotency_key, sender)
    # RFC 3834: keeps vacation responders from answering a machine.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Cron-Job-Id"] = identity.job_id
    message["X-Cron-Run-Id"] = identity.run_id
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def message_id(idempotency_key: str, sender: str) -> str:
    """Stable across retries of one slot, so a resent message can be recognised as the same."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}.cronjobs@{domain}>"


def describe(
    identity: RunIdentity,
    settings: Settings,
    to: list[str],
    subject: str,
    rendered: email_templates.RenderedEmail,
) -> dict[str, Any]:
    """The message as a dry-run shows it: headers, subject, text and HTML (nothing sent)."""
    message = build_message(identity, settings, to, subject, rendered)
    headers = {name: str(value) for name, value in message.items() if name.lower() != "date"}
    return {
        "kind": "email",
        "from": settings.smtp_from,
        "to": list(to),
        "subject": subject,
        "headers": headers,
        "text": rendered.text,
        "html": rendered.html,
    }

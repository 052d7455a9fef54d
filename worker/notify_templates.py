"""The built-in notice: email subject, text and HTML, and the webhook's JSON body (pure).

No links: the notice names the job and slot; the owner opens the app themselves.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from worker.notify_policy import NoticeKind

MAX_ERROR_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice about one job."""

    kind: NoticeKind
    job_id: str
    job_name: str
    owner_id: str
    slot: str
    scheduled_for: datetime
    at: datetime
    error: str | None = None
    # Failed slots since the last failure notice (this one's included).
    failures: int = 0
    # Consecutive failed slots now (0 for a recovery).
    consecutive: int = 0
    paused_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedNotice:
    """The email parts of a notice."""

    subject: str
    text: str
    html: str


def _when(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def headline(notice: Notice) -> str:
    """What happened, in one sentence."""
    name = _one_line(notice.job_name)
    if notice.kind is NoticeKind.RECOVERY:
        return f'Job "{name}" succeeded again'
    if notice.kind is NoticeKind.PAUSED:
        return f'Job "{name}" was paused after {notice.consecutive} consecutive failures'
    return f'Job "{name}" failed'


def facts(notice: Notice) -> list[tuple[str, str]]:
    """The notice's details as (label, value) lines."""
    lines = [
        ("Job", _one_line(notice.job_name)),
        ("Job id", notice.job_id),
        ("Slot", notice.slot),
        ("Scheduled for", _when(notice.scheduled_for)),
    ]
    if notice.kind is not NoticeKind.RECOVERY:
        error = (notice.error or "unknown error")[:MAX_ERROR_CHARS]
        lines.append(("Error", error))
        lines.append(("Consecutive failed slots", str(notice.consecutive)))
        if notice.failures > 1:
            lines.append(("Failures since the last notice", str(notice.failures)))
    if notice.paused_reason:
        lines.append(("Paused", f"{notice.paused_reason}; resume it once the cause is fixed"))
    return lines


def summary(notice: Notice) -> str:
    """The headline with the count of failures the notice covers."""
    text = headline(notice)
    if notice.kind is NoticeKind.FAILURE and notice.failures > 1:
        text += f" ({notice.failures} failures since the last notice)"
    return text


def render_email(notice: Notice) -> RenderedNotice:
    """Subject, plain text and HTML of the notice email."""
    subject = f"[cronjobs] {summary(notice)}"
    details = facts(notice)
    text = "\n".join([summary(notice) + ".", "", *(f"{k}: {v}" for k, v in details)]) + "\n"
    rows = "".join(
        f'<tr><th align="left">{html.escape(k)}</th><td>{html.escape(v)}</td></tr>'
        for k, v in details
    )
    body = f'<p>{html.escape(summary(notice))}.</p><table cellpadding="4">{rows}</table>'
    return RenderedNotice(
        subject=subject[:200], text=text, html=f"<html><body>{body}</body></html>"
    )


def webhook_body(notice: Notice) -> dict[str, Any]:
    """The JSON a notice webhook receives."""
    return {
        "kind": notice.kind.value,
        "summary": summary(notice),
        "jobId": notice.job_id,
        "jobName": notice.job_name,
        "ownerId": notice.owner_id,
        "slot": notice.slot,
        "scheduledFor": notice.scheduled_for.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "at": notice.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "error": notice.error[:MAX_ERROR_CHARS] if notice.error else None,
        "failuresSinceLastNotice": notice.failures,
        "consecutiveFailures": notice.consecutive,
        "pausedReason": notice.paused_reason,
    }

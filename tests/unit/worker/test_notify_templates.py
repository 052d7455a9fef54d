"""The built-in notice: email subject, text and HTML, and the webhook body (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.notify_delivery import build_email
from worker.notify_policy import NoticeKind
from worker.notify_templates import Notice, render_email, webhook_body

AT = datetime(2026, 5, 1, 8, 0, 3, tzinfo=UTC)
SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def notice(kind: NoticeKind = NoticeKind.FAILURE, **fields: object) -> Notice:
    base: dict[str, object] = {
        "kind": kind,
        "job_id": "6740a1f2c3d4e5f601234567",
        "job_name": "nightly <export>",
        "owner_id": "alice",
        "slot": "2026-05-01T08:00:00Z",
        "scheduled_for": SLOT,
        "at": AT,
        "error": "HTTP 503 <Service Unavailable>",
        "failures": 1,
        "consecutive": 1,
    }
    return Notice(**(base | fields))  # type: ignore[arg-type]


def test_failure_email_names_job_slot_error_and_streak() -> None:
    rendered = render_email(notice(consecutive=4))
    assert rendered.subject == '[cronjobs] Job "nightly <export>" failed'
    for part in (
        "Job id: 6740a1f2c3d4e5f601234567",
        "Slot: 2026-05-01T08:00:00Z",
        "Error: HTTP 503 <Service Unavailable>",
        "Consecutive failed slots: 4",
    ):
        assert part in rendered.text
    assert "Failures since the last notice" not in rendered.text


def test_counted_failures_are_named_in_the_next_notice() -> None:
    rendered = render_email(notice(failures=3, consecutive=3))
    assert "(3 failures since the last notice)" in rendered.subject
    assert "Failures since the last notice: 3" in rendered.text


def test_html_escapes_and_has_no_links() -> None:
    rendered = render_email(notice())
    assert "nightly &lt;export&gt;" in rendered.html
    assert "&lt;Service Unavailable&gt;" in rendered.html
    assert "<export>" not in rendered.html
    for text in (rendered.text, rendered.html):
        assert "http://" not in text and "https://" not in text and "<a " not in text


def test_recovery_and_pause_notices() -> None:
    recovery = render_email(notice(NoticeKind.RECOVERY, error=None, consecutive=0))
    assert recovery.subject == '[cronjobs] Job "nightly <export>" succeeded again'
    assert "Error" not in recovery.text
    paused = render_email(
        notice(NoticeKind.PAUSED, consecutive=3, paused_reason="auto: 3 consecutive failures")
    )
    assert "was paused after 3 consecutive failures" in paused.subject
    assert "Paused: auto: 3 consecutive failures" in paused.text


def test_a_multiline_name_stays_one_subject_line() -> None:
    rendered = render_email(notice(job_name="a\r\nBcc: x@example.com"))
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_webhook_body() -> None:
    body = webhook_body(notice(failures=2, consecutive=5))
    assert body == {
        "kind": "failure",
        "summary": 'Job "nightly <export>" failed (2 failures since the last notice)',
        "jobId": "6740a1f2c3d4e5f601234567",
        "jobName": "nightly <export>",
        "ownerId": "alice",
        "slot": "2026-05-01T08:00:00Z",
        "scheduledFor": "2026-05-01T08:00:00Z",
        "at": "2026-05-01T08:00:03Z",
        "error": "HTTP 503 <Service Unavailable>",
        "failuresSinceLastNotice": 2,
        "consecutiveFailures": 5,
        "pausedReason": None,
    }


def test_email_message_is_multipart_with_identity_headers() -> None:
    message = build_email(notice(), "cron@jobs.example", "alice@example.com")
    assert message["To"] == "alice@example.com"
    assert message["X-Cron-Notice"] == "failure"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@jobs.example>")
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]

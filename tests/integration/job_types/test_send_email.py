"""sendEmail handler against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from shared.job_types.send_email import SendEmailPayload
from shared.settings import Settings
from tests.integration.job_types.conftest import ContextFactory, configure
from tests.integration.job_types.servers import SmtpSink, free_port
from worker.handlers import send_email
from worker.handlers.context import HandlerError

PAYLOAD: dict[str, Any] = {
    "to": ["ada@example.com", "grace@example.org"],
    "subject": "Plants · Reminder",
    "template": "reminder",
    "params": {"title": "Water <the> plants", "message": "Both & all of them"},
}


def _smtp(settings: Settings, port: int, **changes: Any) -> Settings:
    return configure(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="Cron Jobs <cron@jobs.example>",
        smtp_timeout_seconds=5,
        **changes,
    )


async def test_message_arrives_multipart_with_escaped_html(
    make_context: ContextFactory, settings: Settings, smtp_server: tuple[Controller, SmtpSink]
) -> None:
    controller, sink = smtp_server
    ctx = make_context("sendEmail", PAYLOAD, settings_=_smtp(settings, controller.port))
    result = await send_email.handle(ctx, SendEmailPayload.model_validate(PAYLOAD))

    assert result is not None
    assert result["recipients"] == 2
    assert len(sink.messages) == 1
    received = sink.messages[0]
    assert received.mail_from == "cron@jobs.example"
    assert received.rcpt_tos == ["ada@example.com", "grace@example.org"]
    message = received.message
    assert message["Message-ID"] == result["messageId"]
    assert message["Subject"] == "Plants · Reminder"
    assert message["To"] == "ada@example.com, grace@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Cron-Run-Id"] == ctx.run_id
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "Reminder: Water <the> plants" in text.get_content()
    assert "Both & all of them" in text.get_content()
    assert "Water &lt;the&gt; plants" in html.get_content()
    assert "Both &amp; all of them" in html.get_content()


async def test_message_id_is_stable_per_slot(
    make_context: ContextFactory, settings: Settings, smtp_server: tuple[Controller, SmtpSink]
) -> None:
    controller, sink = smtp_server
    ctx = make_context("sendEmail", PAYLOAD, settings_=_smtp(settings, controller.port))
    payload = SendEmailPayload.model_validate(PAYLOAD)
    first = await send_email.handle(ctx, payload)
    again = await send_email.handle(ctx, payload)  # a retry of the same slot
    other = await send_email.handle(
        make_context("sendEmail", PAYLOAD, settings_=ctx.settings), payload
    )
    assert first is not None and again is not None and other is not None
    assert first["messageId"] == again["messageId"] != other["messageId"]
    assert [m.message["Message-ID"] for m in sink.messages] == [
        first["messageId"],
        first["messageId"],
        other["messageId"],
    ]
    assert first["messageId"].endswith("@jobs.example>")


async def test_smtp_down_fails_with_one_line(
    make_context: ContextFactory, settings: Settings
) -> None:
    port = free_port()
    ctx = make_context("sendEmail", PAYLOAD, settings_=_smtp(settings, port))
    with pytest.raises(HandlerError) as error:
        await send_email.handle(ctx, SendEmailPayload.model_validate(PAYLOAD))
    message = str(error.value)
    # The owner reads this in the run record: no server name or port of the service (issue 11).
    assert message == "the mail server did not take the message: it could not be reached"
    assert "127.0.0.1" not in message and str(port) not in message


async def test_starttls_required_but_not_offered_sends_nothing(
    make_context: ContextFactory, settings: Settings, smtp_server: tuple[Controller, SmtpSink]
) -> None:
    controller, sink = smtp_server
    configured = _smtp(settings, controller.port, smtp_security="starttls")
    ctx = make_context("sendEmail", PAYLOAD, settings_=configured)
    with pytest.raises(HandlerError, match="STARTTLS"):
        await send_email.handle(ctx, SendEmailPayload.model_validate(PAYLOAD))
    assert sink.messages == []


async def test_missing_template_params_fail_the_attempt(
    make_context: ContextFactory, settings: Settings, smtp_server: tuple[Controller, SmtpSink]
) -> None:
    controller, sink = smtp_server
    payload = {**PAYLOAD, "params": {"message": "no title"}}
    ctx = make_context("sendEmail", payload, settings_=_smtp(settings, controller.port))
    with pytest.raises(HandlerError, match="template 'reminder': 'title' is undefined"):
        await send_email.handle(ctx, SendEmailPayload.model_validate(payload))
    assert sink.messages == []


class _Accounts:
    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        ok = auth.login == b"cron" and auth.password == b"s3cret"
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def auth_smtp_server() -> Iterator[tuple[Controller, SmtpSink]]:
    """aiosmtpd that requires AUTH (over plain TCP: acceptable on loopback in a test)."""
    sink = SmtpSink()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_Accounts(),
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield controller, sink
    finally:
        controller.stop()


# aiosmtpd warns (in its server thread, per connection) about AUTH without TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_smtp_auth_from_settings(
    make_context: ContextFactory, settings: Settings, auth_smtp_server: tuple[Controller, SmtpSink]
) -> None:
    controller, sink = auth_smtp_server
    good = _smtp(settings, controller.port, smtp_username="cron", smtp_password="s3cret")
    result = await send_email.handle(
        make_context("sendEmail", PAYLOAD, settings_=good), SendEmailPayload.model_validate(PAYLOAD)
    )
    assert result is not None and len(sink.messages) == 1

    bad = _smtp(settings, controller.port, smtp_username="cron", smtp_password="wrong")
    with pytest.raises(HandlerError, match="535"):
        await send_email.handle(
            make_context("sendEmail", PAYLOAD, settings_=bad),
            SendEmailPayload.model_validate(PAYLOAD),
        )
    assert len(sink.messages) == 1

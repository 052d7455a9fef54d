"""`sendEmail`: a templated multipart (text + HTML) message; the payload and creation rules."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, EmailStr, Field

from shared.job_types import email_message, email_templates
from shared.job_types.limits import MAX_PARAMS_BYTES, bounded_json
from shared.registry import JobType, PayloadContext, PayloadRuleError
from shared.run_identity import RunIdentity
from shared.settings import Settings

MAX_RECIPIENTS = 50
MAX_SUBJECT_LENGTH = 200
# Cc covers C0, DEL and C1 (U+0085 NEL among them); Zl/Zp are U+2028/U+2029. The email
# header folding treats all of these as line breaks, so such a subject fails every send.
_LINE_BREAKING_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _distinct(addresses: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append(address)
    return unique


def _check_subject(subject: str) -> str:
    if any(unicodedata.category(char) in _LINE_BREAKING_CATEGORIES for char in subject):
        raise ValueError(
            "must be one line (no CR, LF, NUL, other control characters or Unicode line "
            "or paragraph separators)"
        )
    if not subject.strip():
        raise ValueError("must not be blank")
    return subject


Recipients = Annotated[
    list[EmailStr],
    BeforeValidator(
        _as_list,
        json_schema_input_type=EmailStr
        | Annotated[list[EmailStr], Field(min_length=1, max_length=MAX_RECIPIENTS)],
    ),
    Field(min_length=1, max_length=MAX_RECIPIENTS),
    AfterValidator(_distinct),
]


class SendEmailPayload(BaseModel):
    """Recipients, a one-line subject, a template name and the template's params."""

    # Only the documented (alias) names: a Python name such as `sleep_seconds` is refused.
    model_config = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False)

    to: Recipients = Field(
        description=f"One address or a list of 1..{MAX_RECIPIENTS} addresses (duplicates "
        "are sent once)."
    )
    subject: Annotated[str, AfterValidator(_check_subject)] = Field(
        min_length=1, max_length=MAX_SUBJECT_LENGTH, description="One line, 1..200 characters."
    )
    template: str = Field(
        pattern=email_templates.TEMPLATE_NAME.pattern,
        description="A template name listed by the service (e.g. reminder, digest, report-ready).",
    )
    params: Annotated[dict[str, Any], AfterValidator(bounded_json(MAX_PARAMS_BYTES))] = Field(
        default_factory=dict,
        description=f"Values for the template (JSON object, at most {MAX_PARAMS_BYTES} bytes); "
        "HTML output escapes them.",
    )


def check_template(payload: SendEmailPayload, context: PayloadContext) -> None:
    """Creation-time rule: the template exists and renders with these params."""
    templates_dir = context.settings.templates_dir
    available = email_templates.available_templates(templates_dir)
    if payload.template not in available:
        raise PayloadRuleError(
            "template", f"unknown template {payload.template!r}; available: {', '.join(available)}"
        )
    try:
        email_templates.render(templates_dir, payload.template, payload.params)
    except email_templates.TemplateRenderError as error:
        raise PayloadRuleError("params", str(error)) from None


def preview(identity: RunIdentity, payload: SendEmailPayload, settings: Settings) -> dict[str, Any]:
    """The message a run would send: rendered subject, text and HTML, and its headers."""
    rendered = email_templates.render(settings.templates_dir, payload.template, payload.params)
    return email_message.describe(identity, settings, payload.to, payload.subject, rendered)


JOB_TYPE = JobType(
    name="sendEmail",
    payload_model=SendEmailPayload,
    description="Sends a templated email (text and HTML) through the service's SMTP server.",
    rules=(check_template,),
    variants=lambda settings: email_templates.params_schemas(settings.templates_dir),
    preview=preview,
)

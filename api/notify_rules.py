"""Creation-time rules of a job's notice webhook: those of an `httpRequest` URL.

The address is checked by the request model (`EmailStr`, as a `sendEmail` recipient); the
webhook here by the very rule an `httpRequest` job's URL passes (not the API itself, an allowed
host, no non-public IP literal), always under non-admin rules: the worker sends notices without
the admin exemption, so an admin's job may not name a host a notice could never reach.
"""

from __future__ import annotations

from pydantic import ValidationError

from api.errors import field_error, plain_message
from api.schemas.common import FieldError
from shared.job_types.http_request import HttpRequestPayload, check_target
from shared.model import NotifyPolicy
from shared.registry import PayloadContext, PayloadRuleError
from shared.settings import Settings

WEBHOOK_FIELD = "notify.webhook"


def check_webhook(policy: NotifyPolicy | None, settings: Settings) -> list[FieldError]:
    """The problem with the webhook as a field error naming `notify.webhook`, if any."""
    if policy is None or policy.webhook is None:
        return []
    try:
        payload = HttpRequestPayload.model_validate({"url": policy.webhook})
        check_target(payload, PayloadContext(settings, False))
    except ValidationError as error:
        return [field_error(WEBHOOK_FIELD, plain_message(error.errors()[0]["msg"]))]
    except PayloadRuleError as error:
        return [field_error(WEBHOOK_FIELD, error.message)]
    return []

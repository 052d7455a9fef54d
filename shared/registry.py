"""The whitelist of job types: payload model, description, admin flag, and settings-aware rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from shared.run_identity import RunIdentity
from shared.settings import Settings


@dataclass(frozen=True)
class PayloadContext:
    """What a type's extra rules may consult: the settings and who is asking."""

    settings: Settings
    is_admin: bool


class PayloadRuleError(ValueError):
    """A payload breaks a rule that needs configuration (e.g. a host not on the allow-list)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


PayloadRule = Callable[[Any, PayloadContext], None]
# What one run would do, for a dry-run: pure (no I/O), from the run's identity, the validated
# payload and the settings, as JSON. Next to each type's payload model; the handler shares its
# rendering (see shared/job_types/email_message.py, http_call.py).
RunPreview = Callable[[RunIdentity, Any, Settings], dict[str, Any]]
# Named variants a payload picks from (e.g. sendEmail templates) -> the JSON Schema each needs.
VariantSchemas = Callable[[Settings], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class JobType:
    """One whitelisted type. Its handler lives in the worker, registered under the same name."""

    name: str
    payload_model: type[BaseModel]
    description: str
    admin_only: bool = False
    # Checks that need settings or the caller's role; raise PayloadRuleError.
    rules: tuple[PayloadRule, ...] = field(default=())
    # For the catalogue: the params each template (variant) of this type accepts.
    variants: VariantSchemas | None = None
    # What a run would do (dry-run); None: the type's description stands for it.
    preview: RunPreview | None = None

    def describe_run(
        self, identity: RunIdentity, payload: Any, settings: Settings
    ) -> dict[str, Any]:
        """What a run with this (validated) payload would do, without doing any of it."""
        if self.preview is None:
            return {"kind": self.name, "description": self.description}
        return self.preview(identity, payload, settings)

    def json_schema(self) -> dict[str, Any]:
        """The payload's JSON Schema (by alias, as clients send it)."""
        return self.payload_model.model_json_schema(by_alias=True)


class UnknownJobTypeError(ValueError):
    """The requested type is not on the whitelist (or is disabled)."""

    def __init__(self, name: str, allowed: list[str]) -> None:
        super().__init__(f"unknown job type {name!r}; allowed: {', '.join(allowed)}")
        self.name = name
        self.allowed = allowed


class JobTypeRegistry:
    """The enabled job types by name."""

    def __init__(self, types: Iterable[JobType], disabled: Iterable[str] = ()) -> None:
        switched_off = set(disabled)
        self._types: dict[str, JobType] = {}
        for job_type in types:
            if job_type.name in self._types:
                raise ValueError(f"job type {job_type.name!r} registered twice")
            if job_type.name not in switched_off:
                self._types[job_type.name] = job_type

    def __iter__(self) -> Iterator[JobType]:
        return iter(self._types.values())

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        """Enabled type names, sorted."""
        return sorted(self._types)

    def get(self, name: str) -> JobType:
        """The type called `name`, or UnknownJobTypeError listing the allowed ones."""
        try:
            return self._types[name]
        except KeyError:
            raise UnknownJobTypeError(name, self.names()) from None

    def validate_payload(self, name: str, payload: Any, context: PayloadContext) -> BaseModel:
        """Validate `payload` for `name`: the model (pydantic ValidationError), then its rules."""
        job_type = self.get(name)
        model = job_type.payload_model.model_validate(payload)
        for rule in job_type.rules:
            rule(model, context)
        return model


def build_registry(settings: Settings) -> JobTypeRegistry:
    """The built-in types minus `CRON_DISABLED_TYPES`."""
    from shared.job_types import BUILTIN_TYPES

    return JobTypeRegistry(BUILTIN_TYPES, disabled=settings.disabled_types)

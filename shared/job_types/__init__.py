"""The built-in job types' payload models; add a type with a module here and one line below."""

from shared.job_types import generate_report, http_request, noop, purge_sessions, send_email
from shared.registry import JobType

BUILTIN_TYPES: tuple[JobType, ...] = (
    noop.JOB_TYPE,
    send_email.JOB_TYPE,
    purge_sessions.JOB_TYPE,
    generate_report.JOB_TYPE,
    http_request.JOB_TYPE,
)

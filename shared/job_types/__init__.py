"""The built-in job types' payload models; add a type with a module here and one line below."""

from shared.job_types import noop
from shared.registry import JobType

BUILTIN_TYPES: tuple[JobType, ...] = (noop.JOB_TYPE,)

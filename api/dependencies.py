"""What handlers get injected: the service state, the database, the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from pymongo import AsyncMongoClient

from api.auth import Principal
from api.validation import JobValidator
from shared.db import Database, Document
from shared.registry import JobTypeRegistry
from shared.settings import Settings

STATE_KEY = "cronjobs"


@dataclass(frozen=True)
class Services:
    """Process-wide objects built once by `create_app`."""

    settings: Settings
    client: AsyncMongoClient[Document]
    db: Database
    registry: JobTypeRegistry
    validator: JobValidator


def services_of(state: State) -> Services:
    """The Services stored on the application state."""
    services: Services = state[STATE_KEY]
    return services


def provide_services(state: State) -> Services:
    """Dependency: the Services."""
    return services_of(state)


def provide_db(state: State) -> Database:
    """Dependency: the service database (named by CRON_DB_NAME)."""
    return services_of(state).db


def provide_caller(request: Request[Any, Any, Any]) -> Principal:
    """Dependency: the authenticated caller (the guard has checked it is one)."""
    user: Principal = request.user
    return user


# Handler parameter annotations for the injected values (matched by parameter name).
ServicesDep = NamedDependency[Services]
DatabaseDep = NamedDependency[Database]
CallerDep = NamedDependency[Principal]

DEPENDENCIES = {
    "services": Provide(provide_services, sync_to_thread=False),
    "db": Provide(provide_db, sync_to_thread=False),
    "caller": Provide(provide_caller, sync_to_thread=False),
}

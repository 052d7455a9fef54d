"""The dashboard's process-wide objects, injected into its handlers as `dashboard`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from litestar.di import NamedDependency

from api.auth import TokenVerifier
from api.dashboard.overview import OverviewCache
from api.dashboard.session import SessionCodec
from api.dependencies import Services


@dataclass(frozen=True)
class Dashboard:
    """Session codec, token verifier and the overview's shared snapshot."""

    codec: SessionCodec
    verifier: TokenVerifier
    overview: OverviewCache

    @classmethod
    def of(cls, services: Services) -> Dashboard:
        """Built once by `dashboard_router`."""
        settings = services.settings
        stale_after = timedelta(seconds=settings.worker_stale_seconds)
        return cls(
            codec=SessionCodec.of(settings),
            verifier=TokenVerifier(settings),
            overview=OverviewCache(services.db, stale_after),
        )


DashboardDep = NamedDependency[Dashboard]

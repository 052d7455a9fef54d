"""The worker's Prometheus metrics: one registry, an HTTP exporter, intention-named recorders.

Every recorder is in-memory only (a counter increment or a histogram observation): no I/O on
the hot path. Gauges that describe the present (in-flight runs, free capacity, heartbeat age)
are read when Prometheus scrapes. The due backlog and the pending-queue depth are the only
values that need the database: `sample_backlog` counts them with bounded queries at most every
BACKLOG_SAMPLE_SECONDS. Label values come from closed sets (job types of the registry, run
triggers, run statuses, reason kinds, operation kinds), never from ids or free text.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)
from pymongo.errors import PyMongoError

from shared import __version__
from shared.job_types import BUILTIN_TYPES
from shared.model import RunStatus, RunTrigger
from shared.runs import RunReason
from shared.settings import Settings

# Counting the backlog costs three bounded count queries per worker: at most this often. The
# shipped scrape interval (deploy/prometheus/prometheus.yml): a fresher sample is never seen.
BACKLOG_SAMPLE_SECONDS: Final = 15.0
# Counts stop at this many documents (a gauge at the cap reads "at least this many").
BACKLOG_COUNT_CAP: Final = 10_000
OTHER: Final = "other"
TRIGGERS: Final = tuple(trigger.value for trigger in RunTrigger)
OUTCOMES: Final = (
    RunStatus.SUCCEEDED.value,
    RunStatus.FAILED.value,
    RunStatus.TIMEOUT.value,
    RunStatus.ABANDONED.value,
)
MODES: Final = ("streams", "polling")
DB_ERROR_KINDS: Final = ("claim", "finish", "heartbeat", "stream", "sample")
# Why a slot (or a queued run) was recorded without running: the `RunReason` a run's `error`
# holds, labelled by its member name (`superseded`, `overlap`, ...). Which status each has is
# decided by `worker.claiming.judge` and `worker.scheduling` (the one start path).
REASON_KINDS: Final = {reason.value: reason.name.lower() for reason in RunReason}
SLOT_REASONS: Final = {
    RunStatus.MISSED.value: tuple(
        reason.name.lower()
        for reason in (
            RunReason.SUPERSEDED,
            RunReason.SUMMARISED,
            RunReason.MISFIRE_SKIP,
            RunReason.MISFIRE_GRACE,
        )
    ),
    RunStatus.SKIPPED.value: tuple(
        reason.name.lower()
        for reason in (
            RunReason.OVERLAP,
            RunReason.PAUSED,
            RunReason.RESCHEDULED,
            RunReason.JOB_DELETED,
        )
    ),
}
RECORDED_STATUSES: Final = tuple(SLOT_REASONS)
LAG_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

log = structlog.get_logger("worker.metrics")
# `*_created` timestamps double the series and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

BacklogCounter = Callable[[int], Awaitable[tuple[int, int]]]


def reason_kind(reason: str | None) -> str:
    """The bounded reason label for a run's `error` text: its `RunReason` name, else "other"."""
    return REASON_KINDS.get(reason or "", OTHER)


class WorkerMetrics:
    """The metric families of one worker process, in their own registry."""

    def __init__(
        self, job_types: Iterable[str] | None = None, registry: CollectorRegistry | None = None
    ) -> None:
        if job_types is None:
            job_types = [job_type.name for job_type in BUILTIN_TYPES]
        self.registry = registry if registry is not None else CollectorRegistry()
        self.job_types = frozenset(job_types)
        self._last_heartbeat: float | None = None
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        # Label children by (bounded) label values: `.labels()` costs more than the update.
        self._finished: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._lags: dict[str, Any] = {}
        self._define(self.registry)
        self._initialise_series()
        ProcessCollector(registry=self.registry)  # CPU seconds, memory, open files

    def _define(self, registry: CollectorRegistry) -> None:
        def counter(name: str, text: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"cronjobs_{name}", text, labels, registry=registry)

        def gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"cronjobs_{name}", text, labels, registry=registry)

        self.runs = counter(
            "runs_finished", "Attempts ended, by job type, trigger and outcome.",
            ("type", "trigger", "outcome"),
        )  # fmt: skip
        self.duration = Histogram(
            "cronjobs_run_duration_seconds", "Attempt duration by job type.", ("type",),
            buckets=DURATION_BUCKETS, registry=registry,
        )  # fmt: skip
        self.lag = Histogram(
            "cronjobs_fire_lag_seconds", "Handler start minus when the run was due, by trigger.",
            ("trigger",), buckets=LAG_BUCKETS, registry=registry,
        )  # fmt: skip
        self.slots = counter(
            "slots_recorded", "Slots or queued runs recorded without running, by reason.",
            ("status", "reason"),
        )  # fmt: skip
        self.retries = counter("retries_queued", "Retries queued after a failed attempt.")
        self.reaped = counter(
            "runs_reaped", "Runs of dead workers or expired leases, recorded abandoned."
        )
        self.conflicts = counter("claim_conflicts", "Pending runs another worker acquired first.")
        self.resyncs = counter("stream_resyncs", "Change streams restarted from a fresh state.")
        self.db_errors = counter("db_errors", "Database errors, by operation.", ("kind",))
        self.in_flight = gauge("runs_in_flight", "Handlers running in this worker.")
        self.free = gauge("free_capacity", "Handlers this worker may still start.")
        self.backlog = gauge(
            "due_backlog",
            "Runs due and not started: due jobs not yet queued and due pending runs (sampled).",
        )
        self.pending = gauge(
            "pending_runs", "Pending runs: queued slots, run-now requests and retries (sampled)."
        )
        self.mode = gauge("worker_mode", "1 for the worker's current mode.", ("mode",))
        self.heartbeat_age = gauge("heartbeat_age_seconds", "Seconds since the last heartbeat.")
        self.info = gauge("worker_info", "Constant 1, labelled with the version.", ("version",))

    def _initialise_series(self) -> None:
        """Create every labelled series at zero, so rates and alerts see them from the start."""
        for job_type in (*sorted(self.job_types), OTHER):
            self.duration.labels(job_type)
            for trigger in TRIGGERS:
                for outcome in OUTCOMES:
                    self.runs.labels(job_type, trigger, outcome)
        for trigger in TRIGGERS:
            self.lag.labels(trigger)
        for status, kinds in SLOT_REASONS.items():
            for kind in kinds:
                self.slots.labels(status, kind)
        for kind in DB_ERROR_KINDS:
            self.db_errors.labels(kind)
        self.info.labels(__version__).set(1)
        self.heartbeat_age.set_function(self._heartbeat_age)
        self.backlog.set(float("nan"))
        self.pending.set(float("nan"))

    # --- recorders (hot path: memory only) -----------------------------------------------

    def _type(self, job_type: object) -> str:
        return job_type if isinstance(job_type, str) and job_type in self.job_types else OTHER

    @staticmethod
    def _trigger(trigger: object) -> str:
        return trigger if isinstance(trigger, str) and trigger in TRIGGERS else OTHER

    def run_finished(
        self, job_type: object, trigger: object, outcome: str, duration_s: float
    ) -> None:
        """An attempt this worker executed ended with `outcome` (a final run status)."""
        status = outcome if outcome in OUTCOMES else OTHER
        key = (self._type(job_type), self._trigger(trigger), str(status))
        children = self._finished.get(key)
        if children is None:
            children = (self.runs.labels(*key), self.duration.labels(key[0]))
            self._finished[key] = children
        children[0].inc()
        children[1].observe(max(0.0, duration_s))

    def fire_lag(self, trigger: object, seconds: float) -> None:
        """A handler started `seconds` after its run was due (`runner.due_at`)."""
        key = self._trigger(trigger)
        child = self._lags.get(key)
        if child is None:
            child = self._lags[key] = self.lag.labels(key)
        child.observe(max(0.0, seconds))

    def slot_recorded(self, status: str, reason: str | None, count: int = 1) -> None:
        """`count` runs recorded `missed` or `skipped` with this reason text."""
        if count > 0:
            self.slots.labels(status, reason_kind(reason)).inc(count)

    def records_inserted(
        self, documents: Sequence[Mapping[str, Any]], refused: Collection[int] = ()
    ) -> None:
        """Run documents inserted (but those at `refused` indexes, another worker's records):
        the `missed` and `skipped` ones are counted."""
        for index, document in enumerate(documents):
            if index not in refused and document.get("status") in RECORDED_STATUSES:
                self.slot_recorded(document["status"], document.get("error"))

    def retry_queued(self) -> None:
        """A failed attempt queued its next attempt."""
        self.retries.inc()

    def run_reaped(self, job_type: object, trigger: object, *, retried: bool) -> None:
        """This worker's reaper recorded an expired run `abandoned` (and queued a retry)."""
        self.reaped.inc()
        self.runs.labels(self._type(job_type), self._trigger(trigger), "abandoned").inc()
        if retried:
            self.retries.inc()

    def claim_conflict(self, count: int = 1) -> None:
        """Another worker won `count` slots or pending runs this worker tried to claim."""
        if count > 0:
            self.conflicts.inc(count)

    def watch_capacity(self, in_flight: Callable[[], int], capacity: int) -> None:
        """Report in-flight handlers and free capacity when scraped (read, never pushed)."""
        self.in_flight.set_function(lambda: float(in_flight()))
        self.free.set_function(lambda: float(capacity - in_flight()))

    def set_mode(self, mode: str) -> None:
        """The worker watches change streams (`streams`) or polls (`polling`)."""
        for known in MODES:
            self.mode.labels(known).set(1 if known == mode else 0)

    def resync(self) -> None:
        """A change stream lost its place and the worker re-reads the state."""
        self.resyncs.inc()

    def db_error(self, kind: str) -> None:
        """A database operation of `kind` failed (one of DB_ERROR_KINDS)."""
        self.db_errors.labels(kind if kind in DB_ERROR_KINDS else OTHER).inc()

    def heartbeat(self) -> None:
        """The worker's heartbeat document was written."""
        self._last_heartbeat = time.monotonic()

    def set_backlog(self, due: int, pending: int) -> None:
        """The sampled due backlog and pending-queue depth."""
        self.backlog.set(due)
        self.pending.set(pending)

    def _heartbeat_age(self) -> float:
        if self._last_heartbeat is None:
            return float("nan")
        return time.monotonic() - self._last_heartbeat

    # --- the backlog sampler and the exporter ------------------------------------------------

    async def sample_backlog(self, count: BacklogCounter, stop: asyncio.Event) -> None:
        """Every BACKLOG_SAMPLE_SECONDS until `stop`: the due backlog and pending depth."""
        while not stop.is_set():
            try:
                self.set_backlog(*await count(BACKLOG_COUNT_CAP))
            except PyMongoError:
                self.db_error("sample")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), BACKLOG_SAMPLE_SECONDS)

    def serve(self, host: str, port: int) -> bool:
        """Serve /metrics on host:port in a thread; False (logged) if the port is unusable."""
        try:
            self._server, self._thread = start_http_server(port, host, self.registry)
        except OSError as error:
            log.warning("metrics.unavailable", host=host, port=port, error=str(error))
            return False
        log.info("metrics.serving", host=host, port=self._server.server_port, path="/metrics")
        return True

    @property
    def port(self) -> int | None:
        """The port /metrics is served on (None when not serving)."""
        return self._server.server_port if self._server is not None else None

    def close(self) -> None:
        """Stop serving /metrics."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class NullMetrics(WorkerMetrics):
    """Metrics switched off (CRON_METRICS_PORT=0, and in-process tests): every recorder is free."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.job_types = frozenset()

    def run_finished(
        self, job_type: object, trigger: object, outcome: str, duration_s: float
    ) -> None:
        """Nothing."""

    def fire_lag(self, trigger: object, seconds: float) -> None:
        """Nothing."""

    def slot_recorded(self, status: str, reason: str | None, count: int = 1) -> None:
        """Nothing."""

    def records_inserted(
        self, documents: Sequence[Mapping[str, Any]], refused: Collection[int] = ()
    ) -> None:
        """Nothing."""

    def retry_queued(self) -> None:
        """Nothing."""

    def run_reaped(self, job_type: object, trigger: object, *, retried: bool) -> None:
        """Nothing."""

    def claim_conflict(self, count: int = 1) -> None:
        """Nothing."""

    def watch_capacity(self, in_flight: Callable[[], int], capacity: int) -> None:
        """Nothing."""

    def set_mode(self, mode: str) -> None:
        """Nothing."""

    def resync(self) -> None:
        """Nothing."""

    def db_error(self, kind: str) -> None:
        """Nothing."""

    def heartbeat(self) -> None:
        """Nothing."""

    def set_backlog(self, due: int, pending: int) -> None:
        """Nothing."""

    async def sample_backlog(self, count: BacklogCounter, stop: asyncio.Event) -> None:
        """Nothing (returns at once)."""

    def serve(self, host: str, port: int) -> bool:
        """Nothing."""
        return False

    @property
    def port(self) -> int | None:
        """Never serving."""
        return None

    def close(self) -> None:
        """Nothing."""


NULL_METRICS: Final[WorkerMetrics] = NullMetrics()


def metrics_for(settings: Settings) -> WorkerMetrics:
    """The worker's metrics as configured: NullMetrics when CRON_METRICS_PORT is 0."""
    return NullMetrics() if settings.metrics_port == 0 else WorkerMetrics()

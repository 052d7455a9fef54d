"""API load: create, get, list (50) and patch under 1, 16 and 64 concurrent clients."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import RAW_DIR, ROOT, JobSpec
from bench.ours import job_document
from bench.procs import Child, spawn
from bench.stats import percentile
from shared.db import JOBS, create_client, ensure_indexes
from shared.settings import load_settings
from shared.tokens import mint_token

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
OWNERS = 64
JOBS_PER_OWNER = 60
PREFIX = "/api/cron"
# A job a mobile user would create: a signed call to a path under the service's base URL.
JOB_TYPE = "httpRequest"
PAYLOAD = {"url": "/hooks/bench", "method": "POST"}
CRON = "0 8 * * 1-5"
API_ENV = {
    # Relative job URLs need a base URL (there is no default); nothing calls it (no worker).
    "CRON_HTTP_BASE_URL": "https://backend.example.com",
    "CRON_RATE_LIMIT": "1000000/second",
    "CRON_MAX_JOBS_PER_OWNER": "1000000",
    "CRON_LOG_LEVEL": "WARNING",
}

Operation = Callable[[httpx.AsyncClient, "Client"], Awaitable[httpx.Response]]


@dataclass
class Client:
    """One simulated user: its token and the ids of its jobs."""

    owner: str
    headers: dict[str, str]
    job_ids: list[str] = field(default_factory=list)
    created: itertools.count[int] = field(default_factory=itertools.count)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _create(http: httpx.AsyncClient, client: Client) -> httpx.Response:
    body = {
        "name": f"bench-created-{next(client.created)}-{random.getrandbits(32):08x}",
        "type": JOB_TYPE,
        "cron": CRON,
        "timezone": "Europe/Berlin",
        "payload": PAYLOAD,
    }
    return await http.post(f"{PREFIX}/jobs", json=body, headers=client.headers)


async def _get(http: httpx.AsyncClient, client: Client) -> httpx.Response:
    job_id = random.choice(client.job_ids)
    return await http.get(f"{PREFIX}/jobs/{job_id}", headers=client.headers)


async def _list(http: httpx.AsyncClient, client: Client) -> httpx.Response:
    return await http.get(f"{PREFIX}/jobs", params={"limit": 50}, headers=client.headers)


async def _patch(http: httpx.AsyncClient, client: Client) -> httpx.Response:
    job_id = random.choice(client.job_ids)
    body = {"timeoutSeconds": random.randint(10, 300)}
    return await http.patch(f"{PREFIX}/jobs/{job_id}", json=body, headers=client.headers)


OPERATIONS: dict[str, Operation] = {
    "create": _create,
    "get": _get,
    "list (50)": _list,
    "patch": _patch,
}


async def _measure(
    base_url: str, clients: list[Client], operation: Operation, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[int | str, int] = {}
    limits = httpx.Limits(max_connections=len(clients), max_keepalive_connections=len(clients))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as http:
        deadline = time.perf_counter() + seconds

        async def user(client: Client) -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await operation(http, client)
                except httpx.TransportError as error:
                    # A connection reset under load is an error of that line, not the end of
                    # the scenario (one ReadError at 64 clients once cost a run its API table).
                    outcome: int | str = type(error).__name__
                else:
                    outcome = response.status_code
                latencies.append(time.perf_counter() - started)
                if isinstance(outcome, str) or outcome >= 300:
                    errors[outcome] = errors.get(outcome, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(user(client) for client in clients))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": sum(errors.values()),
        "error_statuses": errors,
        "rps": len(ordered) / elapsed,
        "p50_ms": round(percentile(ordered, 0.5) * 1000, 1),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 1),
    }


async def _rate_limit_hits(uri: str, db_name: str, clients: int, seconds: float) -> dict[str, Any]:
    """What the rate limit costs per request: `hit` latency and throughput, `clients` at once."""
    from api.rate_limit_store import MongoRateLimitStore

    settings = load_settings({}, mongodb_uri=uri, db_name=db_name, jwt_secret=SECRET)
    mongo = create_client(settings)
    store = MongoRateLimitStore(mongo[db_name])
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller(index: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await store.hit(f"bench:{index}", 60)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    try:
        await asyncio.gather(*(caller(index) for index in range(clients)))
    finally:
        await mongo.close()
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "hits": len(ordered),
        "hits_per_s": len(ordered) / elapsed,
        "p50_ms": round(percentile(ordered, 0.5) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
    }


async def _seed(uri: str, db_name: str) -> list[Client]:
    """64 users with 60 jobs each (stored directly), so get/list/patch have data to read."""
    settings = load_settings({}, mongodb_uri=uri, db_name=db_name, jwt_secret=SECRET)
    mongo = create_client(settings)
    database = mongo[db_name]
    await ensure_indexes(database, settings)
    now = datetime.now(UTC)
    clients = []
    documents = []
    for index in range(OWNERS):
        owner = f"bench-user-{index}"
        token = mint_token(settings, owner, ttl_seconds=7200)
        client = Client(owner, {"Authorization": f"Bearer {token}"})
        for number in range(JOBS_PER_OWNER):
            spec = JobSpec(f"seeded-{number}", CRON)
            document = job_document(spec, now, owner=owner, job_type=JOB_TYPE, payload=PAYLOAD)
            client.job_ids.append(str(document["_id"]))
            documents.append(document)
        clients.append(client)
    await database[JOBS].insert_many(documents, ordered=False)
    await mongo.close()
    return clients


def _start_api(uri: str, db_name: str, port: int) -> Child:
    env = {
        **API_ENV,
        "CRON_MONGODB_URI": uri,
        "CRON_DB_NAME": db_name,
        "CRON_JWT_SECRET": SECRET,
        "CRON_API_PORT": str(port),
        "CRON_API_HOST": "127.0.0.1",
    }
    command = [str(ROOT / ".venv" / "bin" / "cronjobs-api")]
    if not (ROOT / ".venv" / "bin" / "cronjobs-api").exists():
        command = [sys.executable, "-m", "api"]
    return spawn("api", command, RAW_DIR / f"{db_name}-api.log", env=env, cwd=ROOT)


async def _wait_up(base_url: str, api: Child) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as http:
        for _ in range(300):
            if not api.alive():
                break
            try:
                await http.get(f"{PREFIX}/jobs")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"cronjobs-api did not come up; see {api.log_path}")


async def run(uri: str, seconds: float, concurrency: tuple[int, ...]) -> dict[str, Any]:
    """Every operation at every concurrency, `seconds` each, against one API process."""
    db_name = "bench_api"
    clients = await _seed(uri, db_name)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    api = _start_api(uri, db_name, port)
    rows = []
    try:
        await _wait_up(base_url, api)
        await _measure(base_url, clients[:4], _get, 1.0)  # warm-up, not reported
        for name, operation in OPERATIONS.items():
            for count in concurrency:
                users = [clients[i % OWNERS] for i in range(count)]
                figures = await _measure(base_url, users, operation, seconds)
                rows.append({"operation": name, "clients": count, **figures})
        usage = api.usage()
        limiter = [
            {"clients": count, **await _rate_limit_hits(uri, db_name, count, seconds)}
            for count in concurrency
        ]
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}", "rows": rows}
    finally:
        api.stop()
    return {
        "rows": rows,
        "rate_limit_rows": limiter,
        "api_cpu_s": usage.cpu_seconds,
        "api_peak_rss_mb": usage.peak_rss_mb,
        "notes": [
            f"{seconds:g} s per line; {OWNERS} users with {JOBS_PER_OWNER} jobs each stored first; "
            f"clients are spread over the users; jobs are `{JOB_TYPE}` with a relative URL.",
            "CRON_RATE_LIMIT=1000000/second and CRON_MAX_JOBS_PER_OWNER=1000000 so that neither "
            "limit shapes the figures; log level WARNING.",
            "The load generator (one Python process), the API (one process) and the database "
            "share the same 2 cores, so these are lower bounds for a deployment.",
            "Every request above is counted by the MongoDB-backed rate limit (one findAndModify "
            "per request). The rate-limit table measures that call alone: the store's `hit` "
            "from this process, one window per client, as the API makes it.",
        ],
    }

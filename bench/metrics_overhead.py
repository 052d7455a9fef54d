"""`python -m bench.metrics_overhead`: worker CPU per 1,000 steady runs, metrics on vs off.

Runs the steady scenario of `make bench` (N jobs every minute at staggered seconds, one
worker, a fixed window) alternately with CRON_METRICS_PORT=0 (NullMetrics: nothing recorded,
no exporter) and with metrics on while /metrics is scraped every `--scrape-seconds` (default
15 s: Prometheus' default and deploy/prometheus/prometheus.yml's interval). The order
alternates per repetition so that drift in the machine's load hits both sides. Prints every
figure, the medians and their ratio.

    .venv/bin/python -m bench.metrics_overhead [--reps 4] [--jobs 1000] [--seconds 60]
        [--scrape-seconds 15] [--paired]

`--paired` runs each off/on pair at the same time (two workers, two databases, one server), so
that the noise of a shared machine hits both sides alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
from typing import Any

import httpx

from bench.ours import OurSystem
from bench.proxy import CountingProxy
from bench.scenarios import steady
from tools.local_mongo import LocalMongo

SCRAPE_SECONDS = 15.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _scrape(url: str, seen: dict[str, float], every: float) -> None:
    """GET /metrics every `every` seconds; remember the runs the worker reported finished."""
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                text = (await client.get(url)).text
                seen["scrapes"] = seen.get("scrapes", 0) + 1
                seen["runs"] = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("cronjobs_runs_finished_total{")
                )
            await asyncio.sleep(every)


async def _one(
    uri: str, proxy: CountingProxy, label: str, rep: int, jobs: int, seconds: float, every: float
) -> dict[str, Any]:
    port = _free_port() if label == "on" else 0
    system = OurSystem(env={"CRON_METRICS_PORT": str(port)})
    seen: dict[str, float] = {}
    scraper = asyncio.create_task(_scrape(f"http://127.0.0.1:{port}/metrics", seen, every))
    try:
        figures = await steady(system, uri, proxy, jobs, seconds, f"metrics_{label}_{rep}")
    finally:
        scraper.cancel()
        await asyncio.gather(scraper, return_exceptions=True)
    if label == "on" and not seen.get("runs"):
        raise RuntimeError("metrics were meant to be on, but /metrics reported no runs")
    return {
        "label": label,
        "rep": rep,
        "started": figures["started"],
        "cpu_s": figures["worker_cpu_s"],
        "cpu_s_per_1000_runs": figures["worker_cpu_s_per_1000_runs"],
        "lag_p99_ms": figures["lag_ms"]["p99"],
        "scrapes": int(seen.get("scrapes", 0)),
    }


async def main(reps: int, jobs: int, seconds: float, every: float, paired: bool) -> None:
    with LocalMongo() as server:
        proxy = CountingProxy("127.0.0.1", server.port)
        await proxy.start()
        rows = []
        try:
            for rep in range(reps):
                if paired:
                    # Both at once, each on its own database: the machine's noise hits both.
                    pair = await asyncio.gather(
                        *(
                            _one(server.uri, proxy, label, rep, jobs, seconds, every)
                            for label in ("off", "on")
                        )
                    )
                else:
                    order = ("off", "on") if rep % 2 == 0 else ("on", "off")
                    pair = [
                        await _one(server.uri, proxy, label, rep, jobs, seconds, every)
                        for label in order
                    ]
                for row in pair:
                    print(json.dumps(row), flush=True)
                rows.extend(pair)
        finally:
            await proxy.stop()
    _summarise(rows)


def _summarise(rows: list[dict[str, Any]]) -> None:
    medians = {}
    for label in ("off", "on"):
        values = [row["cpu_s_per_1000_runs"] for row in rows if row["label"] == label]
        medians[label] = statistics.median(values)
        print(f"{label}: CPU s per 1,000 runs {values} median {medians[label]:.2f}")
    by_rep: dict[int, dict[str, float]] = {}
    for row in rows:
        by_rep.setdefault(row["rep"], {})[row["label"]] = row["cpu_s_per_1000_runs"]
    ratios = [pair["on"] / pair["off"] for pair in by_rep.values() if len(pair) == 2]
    print(f"on / off (medians): {medians['on'] / medians['off']:.3f}")
    if ratios:
        print(f"on / off per pair: {[round(ratio, 3) for ratio in ratios]}")
        print(f"median of the pairs' ratios: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scrape-seconds", type=float, default=SCRAPE_SECONDS)
    parser.add_argument(
        "--paired", action="store_true", help="run each off/on pair at the same time"
    )
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.reps,
            arguments.jobs,
            arguments.seconds,
            arguments.scrape_seconds,
            arguments.paired,
        )
    )

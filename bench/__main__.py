"""`python -m bench`: run every benchmark against one local server, write results, page and plot."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench import api_load, plot, report, targets
from bench.agenda_side import AgendaSystem
from bench.common import RAW_DIR, RESULTS_DIR, ROOT, System
from bench.machine import machine_facts
from bench.ours import OurSystem
from bench.proxy import CountingProxy
from bench.scenarios import herd, idle, lone, steady
from tools.local_mongo import LocalMongo

SCENARIOS = ("herd", "steady", "lone", "idle", "api", "profile")


@dataclass(frozen=True)
class Scale:
    """Sizes and durations: what `make bench` runs (about 20 minutes on 2 cores)."""

    herd_sizes: tuple[int, ...] = (1000, 10_000)
    herd_workers: tuple[int, ...] = (1, 2)
    steady_jobs: int = 1000
    steady_seconds: float = 90.0
    lone_seconds: float = 30.0
    idle_stored: tuple[int, ...] = (1000, 100_000)
    idle_seconds: float = 60.0
    api_seconds: float = 5.0
    api_clients: tuple[int, ...] = (1, 16, 64)
    profile_herd: int = 10_000


QUICK = Scale(
    herd_sizes=(200,),
    herd_workers=(1, 2),
    steady_jobs=120,
    steady_seconds=15.0,
    lone_seconds=8.0,
    idle_stored=(500, 5000),
    idle_seconds=10.0,
    api_seconds=1.5,
    api_clients=(1, 8),
    profile_herd=500,
)


def _log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


async def _both(
    systems: list[tuple[str, System]], label: str, run: Any
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for tag, system in systems:
        _log(f"{label}: {system.name}")
        started = time.monotonic()
        try:
            results[tag] = await run(tag, system)
        except Exception as error:  # a failing side is a finding, not a crash of the harness
            results[tag] = {"error": f"{type(error).__name__}: {error}"}
            _log(f"{label}: {system.name} FAILED: {error}")
        results[tag]["elapsed_s"] = round(time.monotonic() - started, 1)
    return results


async def run_all(
    scale: Scale, only: set[str], systems: list[tuple[str, System]], mongodb_uri: str | None
) -> dict[str, Any]:
    """Every scenario in `only`, each system in turn, against one server and one proxy."""
    results: dict[str, Any] = {"scale": asdict(scale), "server": mongodb_uri or "local stand-in"}
    with contextlib.ExitStack() as stack:
        uri = mongodb_uri or stack.enter_context(LocalMongo()).uri
        parsed = urlparse(uri)
        proxy = CountingProxy(parsed.hostname or "127.0.0.1", parsed.port or 27017)
        await proxy.start()
        # Command monitoring costs a little CPU per command: only where commands are counted.
        monitored = [
            (tag, OurSystem(wrapper_args=["--commands"]) if tag == "ours" else system)
            for tag, system in systems
        ]
        try:
            if "lone" in only:
                results["lone"] = await _both(
                    systems, "lone job", lambda t, s: lone(s, uri, scale.lone_seconds, t)
                )
            if "herd" in only:
                results["herd"] = {}
                for n in scale.herd_sizes:
                    for count in scale.herd_workers:
                        key = f"{n}x{count}"
                        results["herd"][key] = await _both(
                            systems,
                            f"herd N={n} workers={count}",
                            lambda t, s, n=n, c=count: herd(s, uri, n, c, t),
                        )
            if "steady" in only:
                results["steady"] = await _both(
                    monitored,
                    "steady state",
                    lambda t, s: steady(s, uri, proxy, scale.steady_jobs, scale.steady_seconds, t),
                )
            if "idle" in only:
                results["idle"] = {}
                for stored in scale.idle_stored:
                    results["idle"][str(stored)] = await _both(
                        monitored,
                        f"idle with {stored} stored",
                        lambda t, s, k=stored: idle(s, uri, proxy, k, scale.idle_seconds, t),
                    )
            if "api" in only:
                _log("API load")
                results["api"] = await api_load.run(uri, scale.api_seconds, scale.api_clients)
            if "profile" in only:
                _log(f"profiling our worker under a herd of {scale.profile_herd}")
                profiled = OurSystem(wrapper_args=["--profile"])
                n = scale.profile_herd
                profile = RAW_DIR / f"bench_profiled_herd_{n}_1-ours-herd{n}-1.profile.txt"
                profile.unlink(missing_ok=True)
                # The profile is written when the worker exits: give its shutdown time.
                results["profile"] = await herd(
                    profiled, uri, n, 1, "profiled", proxy, watch_seconds=60.0, stop_seconds=90.0
                )
                results["profile"].pop("lags_ms", None)
                if profile.exists():
                    shutil.copyfile(profile, RESULTS_DIR / "profile-herd.txt")
        finally:
            await proxy.stop()
    return results


def main() -> None:
    """Parse options, run, write bench/results/latest.json, docs/benchmarks.md and the plot."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--skip-agenda", action="store_true")
    parser.add_argument(
        "--mongodb-uri",
        help="run against this server (a replica set, for change streams) instead of the stand-in",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--render", action="store_true", help="only rebuild the page and plot from --out"
    )
    args = parser.parse_args()
    plot_path = args.page.parent / "benchmarks-lag.png"
    if args.render:
        results = json.loads(args.out.read_text())
        raw_lags = json.loads((RAW_DIR / "lags.json").read_text())
        plot.lag_plot(raw_lags, plot_path)
        args.page.write_text(report.render(results, plot_path.name))
        return
    scale = QUICK if args.quick else Scale()
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    agenda = AgendaSystem()
    systems: list[tuple[str, System]] = [("ours", OurSystem())]
    if not args.skip_agenda:
        agenda.install()
        systems.append(("agenda", agenda))
    started = time.monotonic()
    load_before = os.getloadavg()
    only = set(args.only.split(","))
    results = asyncio.run(run_all(scale, only, systems, args.mongodb_uri))
    raw_lags = _split_lags(results)
    results["meta"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench" + (" (--quick)" if args.quick else ""),
        "total_seconds": round(time.monotonic() - started, 1),
        "machine": machine_facts(),
        # Other processes on the machine (e.g. test runs) show up here and in every figure.
        "load_average_1_5_15_before": [round(x, 2) for x in load_before],
        "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        "agenda_versions": agenda.versions,
        "knobs": {tag: system.knobs() for tag, system in systems},
    }
    results["targets"] = targets.evaluate(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    (RAW_DIR / "lags.json").write_text(json.dumps(raw_lags))
    plot.lag_plot(raw_lags, plot_path)
    args.page.write_text(report.render(results, plot_path.name))
    _log(f"wrote {args.out}, {args.page} and {plot_path} in {results['meta']['total_seconds']} s")


def _split_lags(results: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Move the per-start lag lists out of the results (they go to raw/lags.json and the plot)."""
    lags: dict[str, dict[str, list[float]]] = {}
    for scenario in ("herd", "steady"):
        section = results.get(scenario, {})
        cases = section.items() if scenario == "herd" else [("", section)]
        for case, by_system in cases:
            for tag, figures in by_system.items():
                if isinstance(figures, dict) and "lags_ms" in figures:
                    name = f"{scenario} {case}".strip()
                    lags.setdefault(name, {})[tag] = figures.pop("lags_ms")
    return lags


if __name__ == "__main__":
    main()

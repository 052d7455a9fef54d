"""docs/benchmarks.md from the results dictionary (numbers are never typed in by hand)."""

from __future__ import annotations

import json
import math
from typing import Any

from bench.common import BENCH_DIR, RESULTS_DIR

ANALYSIS = BENCH_DIR / "analysis.md"
PROFILE = RESULTS_DIR / "profile-herd.txt"


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _advantage(ours: Any, agenda: Any, higher_is_better: bool) -> str:
    if not isinstance(ours, int | float) or not isinstance(agenda, int | float):
        return "—"
    if ours <= 0 or agenda <= 0:
        return "—"
    ratio = ours / agenda if higher_is_better else agenda / ours
    return f"{ratio:,.1f}x"


def _get(node: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _row(label: str, section: Any, path: tuple[str, ...], higher: bool, digits: int = 1) -> str:
    ours, agenda = _get(section, "ours", *path), _get(section, "agenda", *path)
    return (
        f"| {label} | {_num(ours, digits)} | {_num(agenda, digits)} | "
        f"{_advantage(ours, agenda, higher)} |"
    )


def headline(results: dict[str, Any]) -> list[str]:
    """The side-by-side table: one row per figure, advantage = how many times better we are."""
    lines = [
        "| figure | cronjobs | Agenda 6 | cronjobs advantage |",
        "|---|---:|---:|---:|",
    ]
    for case, section in (results.get("herd") or {}).items():
        n, workers = case.split("x")
        where = f"herd {int(n):,} jobs, {workers} worker(s)"
        lines += [
            _row(f"{where}: fires/s", section, ("fires_per_s",), True, 0),
            _row(
                f"{where}: slot → last start (s)", section, ("last_start_after_slot_s",), False, 2
            ),
            _row(f"{where}: lag p50 (ms)", section, ("lag_ms", "p50"), False),
            _row(f"{where}: lag p99 (ms)", section, ("lag_ms", "p99"), False),
            _row(f"{where}: duplicates / not started in time", section, ("dup_missing",), False),
        ]
    steady = results.get("steady") or {}
    lines += [
        _row("steady: lag p50 (ms)", steady, ("lag_ms", "p50"), False),
        _row("steady: lag p99 (ms)", steady, ("lag_ms", "p99"), False),
        _row(
            "steady: worker CPU s per 1,000 runs", steady, ("worker_cpu_s_per_1000_runs",), False, 2
        ),
        _row("steady: worker peak RSS (MB)", steady, ("worker_peak_rss_mb",), False),
        _row(
            "steady: DB requests per run (wire, all)", steady, ("wire_requests_per_run",), False, 2
        ),
        _row(
            "steady: DB commands per run (wire, no handshakes)",
            steady,
            ("wire_data_commands_per_run",),
            False,
            2,
        ),
    ]
    lone = results.get("lone") or {}
    lines += [
        _row("lone job: lag p50 (ms)", lone, ("lag_ms", "p50"), False),
        _row("lone job: lag p99 (ms)", lone, ("lag_ms", "p99"), False),
    ]
    for stored, section in (results.get("idle") or {}).items():
        where = f"idle, {int(stored):,} stored"
        lines += [
            _row(f"{where}: worker CPU s/min", section, ("worker_cpu_s_per_min",), False, 2),
            _row(f"{where}: DB requests/min", section, ("wire_requests_per_min",), False),
            _row(f"{where}: worker RSS (MB)", section, ("worker_rss_mb",), False),
        ]
    return lines


def _add_dup_missing(results: dict[str, Any]) -> None:
    for section in (results.get("herd") or {}).values():
        for figures in section.values():
            if isinstance(figures, dict) and "duplicates" in figures:
                figures["dup_missing"] = f"{figures['duplicates']} / {figures['missing']}"


def herd_details(results: dict[str, Any]) -> list[str]:
    """Every herd figure, both systems."""
    lines = [
        "| case | system | started | dup | not started | first start (s) | last start (s) "
        "| fires/s | lag p50 | p95 | p99 | max (ms) | CPU s (herd) | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, section in (results.get("herd") or {}).items():
        for tag, f in section.items():
            if "error" in f:
                lines.append(f"| {case} | {tag} | failed: {f['error']} |" + " |" * 11)
                continue
            lag = f.get("lag_ms", {})
            lines.append(
                f"| {case} | {tag} | {_num(f.get('started'))} | {f.get('duplicates')} | "
                f"{f.get('missing')} | {_num(f.get('first_start_after_slot_s'), 2)} | "
                f"{_num(f.get('last_start_after_slot_s'), 2)} | {_num(f.get('fires_per_s'), 0)} | "
                f"{_num(lag.get('p50'))} | {_num(lag.get('p95'))} | {_num(lag.get('p99'))} | "
                f"{_num(lag.get('max'))} | {_num(f.get('worker_cpu_s_herd'), 2)} | "
                f"{_num(f.get('worker_peak_rss_mb'))} |"
            )
    return lines


def api_table(results: dict[str, Any]) -> list[str]:
    """Requests/s and latency per operation and concurrency."""
    api = results.get("api") or {}
    lines = []
    if "error" in api:
        lines = [f"API benchmark stopped: `{api['error']}`; the lines measured before it:", ""]
    lines += [
        "| operation | clients | requests | errors | req/s | p50 (ms) | p99 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in api.get("rows", []):
        lines.append(
            f"| {row['operation']} | {row['clients']} | {_num(row['requests'])} | "
            f"{_num(row['errors'])} | {_num(row['rps'], 0)} | {_num(row['p50_ms'])} | "
            f"{_num(row['p99_ms'])} |"
        )
    limiter = api.get("rate_limit_rows") or []
    if limiter:
        lines += [
            "",
            "Rate limit alone (MongoDB-backed store, one `findAndModify` per request):",
            "",
            "| clients | hits | hits/s | p50 (ms) | p99 (ms) |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in limiter:
            lines.append(
                f"| {row['clients']} | {_num(row['hits'])} | {_num(row['hits_per_s'], 0)} | "
                f"{row['p50_ms']} | {row['p99_ms']} |"
            )
    return lines


def _targets(results: dict[str, Any]) -> list[str]:
    lines = ["| target | status | measured |", "|---|---|---|"]
    for verdict in results.get("targets", []):
        status = verdict["status"]
        mark = {"met": "**met**", "not met": "**NOT met**"}.get(status, status)
        lines.append(f"| {verdict['target']} | {mark} | {verdict['measured']} |")
    return lines


def _commands(results: dict[str, Any]) -> list[str]:
    lines = []
    for tag in ("ours", "agenda"):
        wire = _get(results, "steady", tag, "wire_requests_by_command")
        runs = _get(results, "steady", tag, "started")
        if wire and runs:
            per_run = {name: round(count / runs, 2) for name, count in wire.items()}
            lines.append(
                f"- {tag}, wire requests in the steady window ({runs:,} runs): "
                f"`{json.dumps(wire)}`; per run: `{json.dumps(per_run)}`"
            )
    for tag in ("ours", "agenda"):
        server = _get(results, "steady", tag, "server_time_by_command")
        if server:
            lines += ["", f"Steady state, {tag}: server time by command", "", *server_table(server)]
    if lines:
        lines.append("")
    monitored = _get(results, "steady", "ours", "pymongo_commands_by_name")
    if monitored:
        per_run = _get(results, "steady", "ours", "pymongo_commands_per_run")
        lines.append(
            f"- ours, PyMongo command monitoring (same window): `{json.dumps(monitored)}` "
            f"= {per_run} per run"
        )
    for stored, section in (results.get("idle") or {}).items():
        for tag in ("ours", "agenda"):
            wire = _get(section, tag, "wire_requests_by_command")
            if wire:
                lines.append(f"- {tag}, idle with {int(stored):,} stored: `{json.dumps(wire)}`")
    return lines


def server_table(server: dict[str, dict[str, float]]) -> list[str]:
    """Requests, statements and server time per command and collection."""
    return [
        "| command, collection | requests | statements | server time (s) | mean (ms) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {_num(row['requests'])} | {_num(row.get('statements'))} | "
            f"{_num(row['server_s'], 2)} | {_num(row['mean_ms'], 2)} |"
            for name, row in server.items()
        ),
    ]


def _profile(results: dict[str, Any]) -> list[str]:
    if not PROFILE.exists():
        return ["(no profile in this run)"]
    text = PROFILE.read_text().splitlines()
    excerpt = [line for line in text if line.strip()][:60]
    summary = results.get("profile", {})
    server = summary.get("server_time_by_command") or {}
    table = [
        "",
        "Server time by command during that herd (from the counting proxy: request sent to",
        "reply received, summed over all connections, so concurrent requests overlap):",
        "",
        *server_table(server),
    ]
    return [
        f"Our worker under a herd of {_num(summary.get('n'))} jobs, one worker, pyinstrument "
        f"attached (so slower than the unprofiled run: {_num(summary.get('fires_per_s'), 0)} "
        "fires/s). The first lines of the call tree (whole profile: "
        "`bench/results/profile-herd.txt`):",
        "",
        "```",
        *excerpt,
        "```",
        *(table if server else []),
    ]


def render(results: dict[str, Any], plot_name: str) -> str:
    """The whole results page."""
    _add_dup_missing(results)
    meta = results.get("meta", {})
    machine = meta.get("machine", {})
    knobs = meta.get("knobs", {})
    scale = results.get("scale", {})
    analysis = ANALYSIS.read_text().strip() if ANALYSIS.exists() else ""
    lines = [
        "# Benchmarks: cronjobs vs Agenda 6",
        "",
        "Generated by `make bench` (`python -m bench`) from `bench/results/latest.json`; do not",
        "edit the numbers by hand. Both systems ran in the same harness run against the same local",
        "MongoDB stand-in (mongo-java-server, in memory, started by `tools/local_mongo.py`),",
        "separate databases, one after the other, on this machine:",
        "",
        f"- run: {meta.get('date')}, `{meta.get('command')}`, {_num(meta.get('total_seconds'))} s",
        f"- database server: {results.get('server', 'local stand-in')}",
        f"- machine: {machine.get('cores')} cores ({machine.get('cpu_model')}), "
        f"{machine.get('memory_gib')} GiB memory, {machine.get('os')}",
        f"- load average (1/5/15 min) before / after the run: "
        f"{meta.get('load_average_1_5_15_before')} / {meta.get('load_average_1_5_15_after')}",
        f"- runtimes: Python {machine.get('python')}, Node {machine.get('node')}, "
        f"{machine.get('java')}",
        f"- Agenda side: {json.dumps(meta.get('agenda_versions', {}))}",
        f"- scale (shortened for a 2-core machine): `{json.dumps(scale)}`",
        "",
        "## Headline",
        "",
        '"cronjobs advantage" is how many times better this project is on that line (throughput:',
        "ours ÷ Agenda; lag, CPU, memory, requests: Agenda ÷ ours); below 1.0x Agenda is better.",
        "",
        *headline(results),
        "",
        "## Targets (issue 7)",
        "",
        *_targets(results),
        "",
        *([analysis, ""] if analysis else []),
        "## Fire-lag distribution",
        "",
        f"![fire lag, cronjobs vs Agenda]({plot_name})",
        "",
        "## Thundering herd, all figures",
        "",
        'Lag is handler start minus the slot; "first/last start" are seconds after the slot;',
        '"not started" counts jobs without a start when the watch ended (90 s after the slot),',
        "i.e. late, not necessarily lost: the workers are stopped then. Lag percentiles are over",
        "the runs that started; the plot counts against all due jobs.",
        "",
        *herd_details(results),
        "",
        "## API (one `cronjobs-api` process)",
        "",
        *api_table(results),
        "",
        *_api_notes(results),
        "## Database requests by command",
        "",
        *_commands(results),
        "",
        "## Settings used",
        "",
        f"- cronjobs worker: `{json.dumps(knobs.get('ours', {}))}` (log level WARNING for both "
        "sides' per-run output: Agenda logs nothing per run either)",
        f"- Agenda: `{json.dumps(knobs.get('agenda', {}))}`",
        "",
        "## Profile of our worker under the herd",
        "",
        *_profile(results),
        "",
        *_method(),
    ]
    return "\n".join(lines) + "\n"


def _api_notes(results: dict[str, Any]) -> list[str]:
    notes = (results.get("api") or {}).get("notes") or []
    return [*(f"- {note}" for note in notes), ""] if notes else []


def _method() -> list[str]:
    return [
        "## How each figure is measured",
        "",
        "- **Herd**: the worker processes start first against an empty database; then N jobs are",
        "  created with a one-shot seconds cron (`S M H D Mo *`) whose slot lies a few seconds",
        "  ahead (ours: `insert_many` of the documents the API would store; Agenda:",
        "  `create('noop', {key}).repeatEvery(cron, {timezone: 'UTC', skipImmediate: true})`",
        "  `.save()`).",
        "  A start for Agenda is its no-op handler's invocation (a line it prints with",
        "  `Date.now()`); Agenda keeps no run history, so its slot is the job's latest cron time",
        "  at or before the start. For ours it is the run's `startedAt` and `scheduledFor` in",
        "  `cron_runs`: the worker sets `startedAt` when it claims the slot and takes the lease,",
        "  just before it hands the run to its (32-wide) executor, so queueing inside the worker",
        "  after the claim is not included (measuring it needs a hook in the worker).",
        "  Duplicates: more than one start for a (job, slot); missing: expected (job, slot) pairs",
        "  without a start within the watched time (90 s after the slot; the profiled run 60 s).",
        "  fires/s = distinct jobs started ÷ (last start - slot). While a herd runs the harness",
        "  counts our started runs with one `count_documents` per second (Agenda's: its output).",
        "- **Steady**: one worker, jobs `s * * * * *` with s = i mod 60 (every minute, staggered",
        "  over the seconds), measured over a fixed window after the jobs exist.",
        "- **Database cost**: each worker connects through a counting asyncio TCP proxy",
        "  (`bench/proxy.py`) that counts every request message (OP_MSG) by command name,",
        '  monitoring (`isMaster`/`hello`) included in "all" and excluded in "no handshakes".',
        "  For ours PyMongo command monitoring counts the same window (`bench/worker_wrapper.py`",
        "  registers a listener and then runs the unchanged worker entry point).",
        "- **Idle**: jobs stored with their only slot 6 hours ahead; 5 s to settle after start,",
        "  then CPU (from /proc) and proxy counts over the window, normalised to one minute.",
        "- **Lone job**: one job `* * * * * *`, one worker, lag per slot over the window.",
        "- CPU seconds and peak RSS (VmHWM) come from /proc for the worker processes only; the",
        "  database server, the proxy and the harness share the same 2 cores.",
        "",
    ]

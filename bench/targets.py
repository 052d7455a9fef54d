"""The issue's targets, judged from the measured results (met / not met / not measured)."""

from __future__ import annotations

from typing import Any


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _verdict(name: str, met: bool | None, measured: str) -> dict[str, Any]:
    status = "not measured" if met is None else ("met" if met else "not met")
    return {"target": name, "status": status, "measured": measured}


def _largest_herd(results: dict[str, Any]) -> str | None:
    herds = results.get("herd") or {}
    single = [key for key in herds if key.endswith("x1")]
    return max(single, key=lambda key: int(key.split("x")[0]), default=None)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One verdict per target of issue 7."""
    verdicts = []
    key = _largest_herd(results)
    ours = _get(results, "herd", key or "", "ours", "fires_per_s")
    agenda = _get(results, "herd", key or "", "agenda", "fires_per_s")
    if ours and agenda:
        ratio = ours / agenda
        verdicts.append(
            _verdict(
                f"herd N={key}: fire throughput >= 5x Agenda's",
                ratio >= 5,
                f"{ours:,.0f} vs {agenda:,.0f} fires/s = {ratio:.1f}x",
            )
        )
    else:
        verdicts.append(_verdict("herd: fire throughput >= 5x Agenda's", None, "missing data"))
    verdicts.append(
        _verdict(
            f"herd N={key}: >= 1,000 fires/s with one worker",
            None if ours is None else ours >= 1000,
            "missing data" if ours is None else f"{ours:,.0f} fires/s",
        )
    )
    ours_cost = _get(results, "steady", "ours", "wire_data_commands_per_run")
    agenda_cost = _get(results, "steady", "agenda", "wire_data_commands_per_run")
    if ours_cost is not None and agenda_cost:
        verdicts.append(
            _verdict(
                "database commands per successful run <= 3 and <= half of Agenda's",
                ours_cost <= 3 and ours_cost <= agenda_cost / 2,
                f"{ours_cost} vs {agenda_cost} per run (wire, steady state)",
            )
        )
    else:
        verdicts.append(_verdict("database commands per run", None, "missing data"))
    p99 = _get(results, "lone", "ours", "lag_ms", "p99")
    verdicts.append(
        _verdict(
            "lone job fire lag p99 < 50 ms",
            None if p99 is None else p99 < 50,
            "missing data" if p99 is None else f"p99 {p99} ms",
        )
    )
    verdicts.append(_idle_verdict(results))
    verdicts.append(_rss_verdict(results))
    return verdicts


def _idle_verdict(results: dict[str, Any]) -> dict[str, Any]:
    idle = results.get("idle") or {}
    rates = {
        int(stored): _get(by_system, "ours", "wire_requests_per_min")
        for stored, by_system in idle.items()
    }
    rates = {stored: rate for stored, rate in rates.items() if rate is not None}
    name = "idle: database commands per minute independent of the number of stored jobs"
    if len(rates) < 2:
        return _verdict(name, None, "needs two stored sizes")
    low, high = min(rates), max(rates)
    # Timers and heartbeats jitter by a few requests a minute; 20% (or 5 requests) is the bar.
    tolerance = max(5.0, 0.2 * rates[low])
    return _verdict(
        name,
        abs(rates[high] - rates[low]) <= tolerance,
        f"{rates[low]}/min with {low:,} jobs vs {rates[high]}/min with {high:,} jobs",
    )


def _rss_verdict(results: dict[str, Any]) -> dict[str, Any]:
    idle = results.get("idle") or {}
    if not idle:
        return _verdict("worker RSS with 100,000 jobs stored < 150 MB", None, "missing data")
    largest = max(idle, key=int)
    rss = _get(idle, largest, "ours", "worker_peak_rss_mb")
    return _verdict(
        f"worker RSS with {int(largest):,} jobs stored < 150 MB",
        None if rss is None else rss < 150,
        "missing data" if rss is None else f"peak {rss} MB",
    )

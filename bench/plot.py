"""The fire-lag plot: one cumulative distribution panel per scenario, both systems on each."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LABELS = {"ours": "cronjobs (this project)", "agenda": "Agenda 6"}
COLOURS = {"ours": "tab:blue", "agenda": "tab:orange"}


def lag_plot(lags: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Write a PNG with the empirical CDF of fire lag (ms, log scale) per scenario."""
    panels = _panels(lags)
    if not panels:
        return
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for axis, name in zip(axes[0], panels, strict=True):
        for tag, values in sorted(lags[name].items(), reverse=True):
            if not values:
                continue
            ordered = sorted(max(value, 0.1) for value in values)
            # Herd panels count against every due job, so jobs not started stay visible.
            total = _herd_size(name) or len(ordered)
            fractions = [(index + 1) / total for index in range(len(ordered))]
            axis.step(
                ordered, fractions, where="post", label=LABELS.get(tag, tag), color=COLOURS.get(tag)
            )
        axis.set_xscale("log")
        axis.set_title(_title(name), fontsize=10)
        axis.set_xlabel("fire lag: start - scheduled (ms, log)")
        axis.set_ylim(0, 1.01)
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("fraction of due runs started")
    axes[0][0].legend(loc="lower right", fontsize=8)
    figure.suptitle("Fire lag (start - scheduled), same machine, same local server", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _panels(lags: dict[str, dict[str, list[float]]]) -> list[str]:
    """The largest herd with 1 and 2 workers, the smallest herd with 1, and the steady state."""
    herds = [name for name in lags if name.startswith("herd ")]

    def size(name: str) -> tuple[int, int]:
        n, workers = name.split()[1].split("x")
        return int(n), int(workers)

    chosen: list[str] = []
    if herds:
        largest = max(size(name)[0] for name in herds)
        smallest = min(size(name)[0] for name in herds)
        chosen = sorted((n for n in herds if size(n)[0] == largest), key=size)[:2]
        chosen += [n for n in herds if size(n) == (smallest, 1) and n not in chosen]
    return chosen + [name for name in lags if name == "steady"]


def _herd_size(name: str) -> int:
    return int(name.split()[1].split("x", maxsplit=1)[0]) if name.startswith("herd ") else 0


def _title(name: str) -> str:
    if name.startswith("herd "):
        n, workers = name.split()[1].split("x")
        return f"herd: {int(n):,} jobs due at once, {workers} worker(s), 90 s watched"
    return "steady: staggered every-minute jobs, 1 worker"

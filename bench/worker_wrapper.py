"""Run `cronjobs-worker` unchanged, with PyMongo command monitoring and/or pyinstrument attached.

    python -m bench.worker_wrapper --out PREFIX [--commands] [--profile]

`--commands` registers a global PyMongo CommandListener before the worker creates its client and
writes cumulative counts by command name to PREFIX.commands.json twice a second; `--profile`
writes a pyinstrument profile to PREFIX.profile.txt / .html when the worker exits (SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import Counter
from pathlib import Path

from pymongo import monitoring


class CommandCounter(monitoring.CommandListener):
    """Counts commands the driver sends, by name."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self._lock:
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def write(self, path: Path) -> None:
        """Replace `path` atomically with the current counts."""
        with self._lock:
            data = dict(self.counts)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        temporary.replace(path)


def _dump_periodically(counter: CommandCounter, path: Path, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        counter.write(path)


def main() -> None:
    """Parse our options, then hand over to the worker's own entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--commands", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args, rest = parser.parse_known_args()
    prefix = Path(args.out)
    counter, stop = CommandCounter(), threading.Event()
    if args.commands:
        monitoring.register(counter)
        threading.Thread(
            target=_dump_periodically,
            args=(counter, Path(f"{prefix}.commands.json"), stop),
            daemon=True,
        ).start()
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    from worker.__main__ import main as worker_main

    try:
        code = worker_main(rest)
    finally:
        stop.set()
        if args.commands:
            counter.write(Path(f"{prefix}.commands.json"))
        if profiler is not None:
            profiler.stop()
            Path(f"{prefix}.profile.txt").write_text(
                profiler.output_text(unicode=True, color=False, show_all=False)
            )
            Path(f"{prefix}.profile.html").write_text(profiler.output_html())
    sys.exit(code)


if __name__ == "__main__":
    main()

"""Child processes of the harness: start, sample CPU time and peak RSS from /proc, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """CPU seconds (user + system) and peak resident set size of one process."""

    cpu_seconds: float
    peak_rss_mb: float
    rss_mb: float


def read_usage(pid: int) -> Usage:
    """Usage of a live process (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces; fields after the closing parenthesis are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    memory = {line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith("Vm")}
    return Usage(
        cpu_seconds=(utime + stime) / _CLOCK_TICKS,
        peak_rss_mb=round(memory.get("VmHWM", 0) / 1024, 1),
        rss_mb=round(memory.get("VmRSS", 0) / 1024, 1),
    )


@dataclass
class Child:
    """A started process whose output goes to a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    usage_at_end: Usage | None = field(default=None)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def usage(self) -> Usage:
        """Current usage (the last sample taken before it stopped, once stopped)."""
        if self.process.poll() is None:
            return read_usage(self.pid)
        if self.usage_at_end is None:
            raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
        return self.usage_at_end

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0, sig: int = signal.SIGTERM) -> int | None:
        """Sample usage, then stop it (signal, SIGKILL after `timeout`); return the exit code."""
        if self.process.poll() is None:
            self.usage_at_end = read_usage(self.pid)
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def spawn(
    name: str,
    command: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start `command` with stdout and stderr written to `log_path` (truncated first)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    return Child(name, process, log_path)


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Poll `predicate()` until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())

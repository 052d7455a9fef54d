"""`make run`'s stop request survives signals at any moment (no lock in the signal handler).

Setting a threading.Event from a handler can deadlock when the signal lands while the main thread
holds the event's lock; `make run` then ignored Ctrl-C and SIGTERM for good.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.process.stack import ROOT

pytestmark = pytest.mark.process

STORM = """
import signal, time
from tools.run_local import StopRequest
stop = StopRequest()
signal.signal(signal.SIGALRM, stop.handle)
signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)  # a signal every 100 microseconds
end = time.monotonic() + 2
while time.monotonic() < end:
    stop.wait(0)
signal.setitimer(signal.ITIMER_REAL, 0)
print("stop requested" if stop.is_set() and stop.count > 10 else "lost signals", flush=True)
"""


def test_a_storm_of_signals_never_blocks_the_stop_request() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STORM],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "stop requested"

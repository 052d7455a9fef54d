"""Start and stop mongo-java-server (the local MongoDB stand-in) from Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "tools" / "local-mongo"
LIB_DIR = ROOT / ".local" / "mongo-lib"
CLASSES_DIR = ROOT / ".local" / "mongo-classes"
START_TIMEOUT_SECONDS = 60.0


def ensure_installed() -> None:
    """Fetch the jars with Maven and compile the launcher, once."""
    if not (LIB_DIR / ".fetched").exists():
        fetched = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "--no-transfer-progress",
                "-f",
                str(SOURCE_DIR / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={LIB_DIR}",
            ],
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if fetched.returncode != 0:
            raise RuntimeError(f"fetching mongo-java-server with Maven failed:\n{fetched.stdout}")
        (LIB_DIR / ".fetched").touch()
    source = SOURCE_DIR / "LocalMongo.java"
    compiled = CLASSES_DIR / "LocalMongo.class"
    if not compiled.exists() or compiled.stat().st_mtime < source.stat().st_mtime:
        CLASSES_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["javac", "-nowarn", "-cp", f"{LIB_DIR}/*", "-d", str(CLASSES_DIR), str(source)],
            check=True,
            stdin=subprocess.DEVNULL,
        )


class LocalMongo:
    """One mongo-java-server process on 127.0.0.1; in memory, or on disk with `data_file`."""

    def __init__(self, port: int = 0, data_file: Path | None = None) -> None:
        self.port = port
        self.data_file = data_file
        self.uri = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        """Start the server, wait until it answers `ping`, return its connection string."""
        ensure_installed()
        java = shutil.which("java") or "java"
        command = [
            java,
            "-Xss2m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            f"{CLASSES_DIR}{os.pathsep}{LIB_DIR}/*",
            "LocalMongo",
            "--port",
            str(self.port),
        ]
        if self.data_file is not None:
            command += ["--data", str(self.data_file)]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("mongodb://"):
            self.stop()
            raise RuntimeError(f"local MongoDB server did not start: {line!r}")
        self.uri = line
        self.port = int(line.split(":")[2].split("/")[0])
        self._wait_for_ping()
        return self.uri

    def _wait_for_ping(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client: MongoClient[dict[str, object]] = MongoClient(self.uri, serverSelectionTimeoutMS=500)
        try:
            while True:
                try:
                    client.admin.command("ping")
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process else None

    def __enter__(self) -> LocalMongo:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    """`python -m tools.local_mongo [--port N] [--data FILE]`: run until interrupted."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    server = LocalMongo(args.port, args.data)
    sys.stdout.write(server.start() + "\n")
    sys.stdout.flush()
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    server.stop()


if __name__ == "__main__":
    main()

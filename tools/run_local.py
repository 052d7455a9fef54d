"""`make run`: local MongoDB stand-in, `cronjobs db init`, the API and one worker, until Ctrl-C."""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import httpx

from api.__main__ import port_problem
from shared.cli import main as cli_main
from shared.settings import Settings, SettingsError, load_settings
from shared.tokens import mint_token
from tools.local_mongo import ROOT, LocalMongo

READY_TIMEOUT_SECONDS = 60.0
TOKEN_TTL_SECONDS = 24 * 3600
# Extra time after the worker's grace period before a child is killed.
STOP_MARGIN_SECONDS = 5.0
PERSIST_FILE = ROOT / ".local" / "data" / "cronjobs.mv.db"
# What a second shell needs (`set -a; . .local/run.env; set +a`): the banner's variables and the
# generated secrets, so that `make token` and the CLI sign and connect like the running stack.
RUN_ENV_FILE = ROOT / ".local" / "run.env"
DEMO_USER = "demo-user"
ADMIN_USER = "admin"


class StopRequest:
    """Counts SIGINT/SIGTERM: the first asks for a clean stop, the second for an immediate one.

    The handler only increments a counter: taking a lock there (threading.Event.set) can
    deadlock when the signal arrives while the main thread holds that same lock.
    """

    POLL_SECONDS = 0.05

    def __init__(self) -> None:
        self.count = 0

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler."""
        self.count += 1

    def is_set(self) -> bool:
        """Whether a stop was requested."""
        return self.count > 0

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, less if a stop is requested; whether one was."""
        deadline = time.monotonic() + timeout
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(self.POLL_SECONDS, left))
        return self.is_set()


def main() -> int:
    """Run the stack until SIGINT/SIGTERM; 0 if every process stopped cleanly."""
    environ = dict(os.environ)
    stop = StopRequest()
    signal.signal(signal.SIGTERM, stop.handle)
    try:
        settings = load_settings(_child_environment(environ, "mongodb://127.0.0.1/"))
        problem = port_problem(settings.api_host, settings.api_port)
        if problem:  # before anything starts: nothing to stop
            _say(f"run_local: {problem}")
            return 2
        with _database(environ) as (mongodb_uri, mongodb_pid):
            signal.signal(signal.SIGINT, stop.handle)
            child_environ = {**_child_environment(environ, mongodb_uri), **_secrets(settings)}
            settings = load_settings(child_environ)
            if cli_main(["db", "init"], child_environ) != 0:
                return 1
            # What the admin CLI needs in another shell.
            cli_environ = {
                name: child_environ[name]
                for name in (*_SECRET_NAMES, "CRON_MONGODB_URI", "CRON_DB_NAME")
                if child_environ.get(name)
            }
            return _run_services(settings, child_environ, stop, (mongodb_pid, cli_environ))
    except SettingsError as error:
        _say(f"run_local: {error}")
        return 2


@contextmanager
def _database(environ: Mapping[str, str]) -> Iterator[tuple[str, int | None]]:
    """(URI, pid of the local stand-in or None) of the configured or a freshly started MongoDB."""
    configured = environ.get("CRON_MONGODB_URI")
    if configured:
        yield configured, None
        return
    persist = environ.get("CRON_LOCAL_PERSIST", "") in {"1", "true", "yes"}
    data_file = PERSIST_FILE if persist else None
    if data_file is not None:
        data_file.parent.mkdir(parents=True, exist_ok=True)
    server = LocalMongo(data_file=data_file)
    # Started with SIGINT ignored (inherited by the JVM): a terminal Ctrl-C reaches only this
    # process, which stops the database last, after the API and the worker have finished.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        _say(f"local MongoDB stand-in: {server.uri}" + (f" (data: {data_file})" if persist else ""))
        yield server.uri, server.pid
    finally:
        server.stop()


_SECRET_NAMES = ("CRON_JWT_SECRET", "CRON_HTTP_SIGNING_SECRET")


def _child_environment(environ: Mapping[str, str], mongodb_uri: str) -> dict[str, str]:
    """The caller's environment plus local defaults; never relaxes the SSRF rules."""
    child = dict(environ)
    child["CRON_MONGODB_URI"] = mongodb_uri
    child.setdefault("CRON_LOG_JSON", "false")
    child.setdefault("PYTHONUNBUFFERED", "1")
    return child


def _secrets(settings: Settings) -> dict[str, str]:
    """Random local secrets for what the caller left unset or at the shipped default.

    Made up once per `make run`: the JWT secret unless a key is configured, and the httpRequest
    signing secret unless the caller changed it (the worker's warning about the default stays
    for real deployments that forgot it).
    """
    made: dict[str, str] = {}
    if settings.jwt_secret is None and settings.jwt_public_key is None:
        made["CRON_JWT_SECRET"] = "dev-" + secrets.token_urlsafe(32)
    signing = settings.http_signing_secret.get_secret_value()
    default = Settings.model_fields["http_signing_secret"].default.get_secret_value()
    if signing == default:
        made["CRON_HTTP_SIGNING_SECRET"] = "dev-" + secrets.token_urlsafe(32)
    return made


def _run_services(
    settings: Settings,
    environ: dict[str, str],
    stop: StopRequest,
    database: tuple[int | None, dict[str, str]],
) -> int:
    """Start the API and the worker, print the banner once ready, run until stopped."""
    mongodb_pid, cli_environ = database
    children: dict[str, subprocess.Popen[bytes]] = {}
    outcome = 0
    try:
        for name in ("cronjobs-api", "cronjobs-worker"):
            if stop.is_set():
                break
            # Own process group: a terminal Ctrl-C must not reach them twice (a second signal
            # makes the worker exit at once); this process forwards one SIGTERM instead.
            children[name] = subprocess.Popen(
                [_script(name)], env=environ, stdin=subprocess.DEVNULL, process_group=0
            )
        if _wait_until_ready(settings, children, stop):
            pids = {name: process.pid for name, process in children.items()}
            if mongodb_pid is not None:
                pids["local-mongodb"] = mongodb_pid
            banner_values = _banner_values(settings)
            _write_run_env({**banner_values, **cli_environ})
            _say(_banner(settings, banner_values, cli_environ) + "\nprocesses: " + _pairs(pids))
            failed = _wait_for_stop(children, stop)
            if failed:
                _say(f"run_local: {failed} exited unexpectedly; stopping the stack")
                outcome = 1
        elif not stop.is_set():
            outcome = 1
    finally:
        clean = _stop_children(children, settings, stop)
        RUN_ENV_FILE.unlink(missing_ok=True)
    if not clean:
        _say("run_local: not every process stopped cleanly")
    return outcome if clean else 1


def _script(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"run_local: {name} not found; run `make install` first")
    return found


def _api_base(settings: Settings) -> str:
    host = settings.api_host
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - a wildcard bind is reached on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api_port}/api/cron"


def _wait_until_ready(
    settings: Settings, children: Mapping[str, subprocess.Popen[bytes]], stop: StopRequest
) -> bool:
    url = _api_base(settings) + "/readyz"
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline and not stop.is_set():
            exited = _first_exited(children)
            if exited:
                _say(f"run_local: {exited} exited during start-up")
                return False
            try:
                if client.get(url).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            stop.wait(0.2)
    if not stop.is_set():
        _say(f"run_local: {url} did not answer 200 within {READY_TIMEOUT_SECONDS:.0f} s")
    return False


def _first_exited(children: Mapping[str, subprocess.Popen[bytes]]) -> str | None:
    for name, process in children.items():
        if process.poll() is not None:
            return f"{name} (exit status {process.returncode})"
    return None


def _wait_for_stop(children: Mapping[str, subprocess.Popen[bytes]], stop: StopRequest) -> str:
    """Block until a stop signal ('') or a child's unexpected exit (its description)."""
    while not stop.wait(0.5):
        exited = _first_exited(children)
        if exited:
            return exited
    return ""


def _stop_children(
    children: Mapping[str, subprocess.Popen[bytes]], settings: Settings, stop: StopRequest
) -> bool:
    """SIGTERM all, wait up to the grace period (a second signal: at once), then kill."""
    running = {name: p for name, p in children.items() if p.poll() is None}
    if running:
        _say(f"run_local: stopping {', '.join(running)}")
    for process in running.values():
        process.send_signal(signal.SIGTERM)
    signals_seen = stop.count
    deadline = time.monotonic() + settings.shutdown_grace_seconds + STOP_MARGIN_SECONDS
    while any(p.poll() is None for p in running.values()):
        if time.monotonic() > deadline or stop.count > signals_seen:
            break
        time.sleep(0.1)
    clean = True
    for name, process in children.items():
        if process.poll() is None:
            _say(f"run_local: killing {name}")
            process.kill()
            process.wait()
            clean = False
        elif process.returncode != 0:
            _say(f"run_local: {name} exited with status {process.returncode}")
            clean = False
    return clean


def _banner_values(settings: Settings) -> dict[str, str]:
    """API and, with a JWT secret, a user's and an admin's token (24 h)."""
    values = {"API": _api_base(settings)}
    if settings.jwt_secret is not None:
        values["USER_TOKEN"] = mint_token(settings, DEMO_USER, (), TOKEN_TTL_SECONDS)
        values["ADMIN_TOKEN"] = mint_token(settings, ADMIN_USER, ("admin",), TOKEN_TTL_SECONDS)
    return values


def _write_run_env(values: Mapping[str, str]) -> None:
    """`.local/run.env` for `. .local/run.env` in another shell; only the owner may read it."""
    RUN_ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())
    descriptor = os.open(RUN_ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("# Written by `make run` for this run; removed when it stops.\n" + lines)


def _banner(settings: Settings, values: Mapping[str, str], cli_environ: Mapping[str, str]) -> str:
    base = values["API"]
    auth = '-H "Authorization: Bearer $ADMIN_TOKEN"'
    body = '{"name": "hello", "type": "noop", "cron": "*/30 * * * * *", "payload": {}}'
    exports = "\n".join(f"export {name}={shlex.quote(value)}" for name, value in values.items())
    if settings.jwt_secret is None:
        exports += "\nTokens: none printed (CRON_JWT_PUBLIC_KEY is set: use your auth server's)."
    return f"""
cronjobs is running. Ctrl-C stops the API, the worker and the database.

  API      {base}
  OpenAPI  {base}/schema  (JSON: {base}/schema/openapi.json)
  Dashboard {base.removesuffix("/api/cron")}/dashboard/  (sign in with the admin token below)

In another shell, load the variables below and the stack's secrets (tokens valid 24 h):
  set -a; . {RUN_ENV_FILE.relative_to(ROOT)}; set +a
or paste:
{exports}

A first job (noop is an admin-only canary type; 6-field cron = with seconds), run now:
JOB_ID=$(curl -s -X POST "$API/jobs" {auth} -H "Content-Type: application/json" \\
  -d '{body}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -s -X POST "$API/jobs/$JOB_ID/run-now" {auth}
curl -s "$API/jobs/$JOB_ID/runs" {auth}
curl -s "$API/jobs" -H "Authorization: Bearer $USER_TOKEN"   # the demo user's own jobs

More tokens: make token SUB=alice (ROLES=admin for an admin).
The admin CLI (docs/operations.md, "Admin CLI"), after loading {RUN_ENV_FILE.relative_to(ROOT)}:
.venv/bin/cronjobs workers list   # uses {", ".join(sorted(cli_environ))}
"""


def _pairs(values: Mapping[str, object]) -> str:
    return " ".join(f"{name}={value}" for name, value in values.items())


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

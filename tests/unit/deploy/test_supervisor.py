"""deploy/supervisor/cronjobs.conf: parsed with configparser, the keys that matter."""

from __future__ import annotations

import configparser

import pytest

from tests.unit.deploy.support import DEFAULT_GRACE_SECONDS, SUPERVISOR_CONF, console_scripts


@pytest.fixture(scope="module")
def conf() -> configparser.RawConfigParser:
    # Raw: supervisor's own %(name)s expansions are not configparser interpolation.
    parser = configparser.RawConfigParser(strict=True)
    assert parser.read(SUPERVISOR_CONF, encoding="utf-8") == [str(SUPERVISOR_CONF)]
    return parser


@pytest.mark.parametrize(
    ("program", "script"),
    [("cronjobs-api", "cronjobs-api"), ("cronjobs-worker", "cronjobs-worker")],
)
def test_program_stops_gracefully_and_logs_to_files(
    conf: configparser.RawConfigParser, program: str, script: str
) -> None:
    section = conf[f"program:{program}"]
    assert script in console_scripts()
    command = section["command"]
    assert ". /etc/cronjobs/cronjobs.env" in command
    assert command.rstrip("'").endswith(f"exec /opt/cronjobs/venv/bin/{script}")
    assert section["user"] == "cronjobs"
    assert section["stopsignal"] == "TERM"
    assert int(section["stopwaitsecs"]) > DEFAULT_GRACE_SECONDS + 5
    assert section.getboolean("stopasgroup") and section.getboolean("killasgroup")
    for stream in ("stdout_logfile", "stderr_logfile"):
        assert section[stream].startswith("/var/log/cronjobs/")


def test_two_workers_with_distinct_names(conf: configparser.RawConfigParser) -> None:
    worker = conf["program:cronjobs-worker"]
    assert worker.getint("numprocs") == 2
    assert "%(process_num)" in worker["process_name"]
    assert worker["environment"] == (
        'CRON_WORKER_NAME="%(host_node_name)s-%(process_num)d",'
        'CRON_METRICS_PORT="946%(process_num)d"'
    )
    assert "%(process_num)d" in worker["stderr_logfile"]


def test_group_contains_both_programs(conf: configparser.RawConfigParser) -> None:
    programs = conf["group:cronjobs"]["programs"].split(",")
    assert sorted(programs) == ["cronjobs-api", "cronjobs-worker"]

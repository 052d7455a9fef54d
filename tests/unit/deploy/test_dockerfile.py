"""The Dockerfile, checked without a Docker engine: stages, base, user, entry points."""

from __future__ import annotations

import importlib
import re

import pytest

from tests.unit.deploy.support import ROOT, console_scripts

Instruction = tuple[str, str]


def _instructions() -> list[Instruction]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical = re.sub(r"\\\n", " ", text)
    result = []
    for raw in logical.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _arg_defaults() -> dict[str, str]:
    defaults = {}
    for keyword, rest in _instructions():
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            defaults[name] = value
    return defaults


def test_multi_stage_build_on_a_slim_python_base() -> None:
    stages = _stages()
    assert len(stages) >= 2
    args = _arg_defaults()
    for stage in stages:
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert image.startswith("python:3.1") and "-slim" in image, image
    final = stages[-1]
    assert any(k == "COPY" and rest.startswith("--from=") for k, rest in final)
    # The runtime stage installs nothing: no compilers or build tools reach the image.
    assert not any(k == "RUN" and ("pip install" in rest or "apt-get" in rest) for k, rest in final)


def test_runtime_runs_as_an_unprivileged_user() -> None:
    users = [rest for keyword, rest in _stages()[-1] if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    # Numeric (orchestrators check runAsNonRoot by uid) and the uid the image creates.
    created = [rest for keyword, rest in _stages()[-1] if keyword == "RUN" and "useradd" in rest]
    assert user.isdigit() and created and f"--uid {user} " in created[0]


def test_default_command_is_a_console_script() -> None:
    commands = [rest for keyword, rest in _stages()[-1] if keyword == "CMD"]
    assert commands
    executable = commands[-1].strip('[]" ').split('"')[0]
    assert executable in console_scripts()


@pytest.mark.parametrize("script", ["cronjobs-api", "cronjobs-worker", "cronjobs"])
def test_console_scripts_resolve_to_functions(script: str) -> None:
    target = console_scripts()[script]
    module_name, _, function_name = target.partition(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function_name))


def test_dockerignore_sends_only_what_the_image_needs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "exclude everything first, then allow the build inputs"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for keyword, rest in _stages()[0]:
        if keyword == "COPY" and not rest.startswith("--from="):
            copied.update(rest.split()[:-1])
    assert copied <= allowed
    assert not allowed & {".env", ".venv", ".local", "tests", ".git"}

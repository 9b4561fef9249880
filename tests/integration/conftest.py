"""A real lab for the integration tests: containers provisioned by the real roles.

The test lab uses its own network, subnet and names (``etcdlab-test``, ``172.28.0.0/16``,
``tnode1..3``; ``ETCDLAB_TEST_LAB`` changes them), passed as INVOKE_LAB_* environment
variables, so it never touches a lab the user runs with the defaults.
``ETCDLAB_TEST_PROFILE`` names an extra invoke config file (CI: ``profiles/offline.yaml``);
``ETCDLAB_REQUIRE_DOCKER=1`` turns a missing Docker engine into a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from etcdlab.cli import load_config
from etcdlab.lab.cluster import Cluster
from etcdlab.lab.config import LabConfig

ROOT = Path(__file__).resolve().parents[2]
# ETCDLAB_TEST_LAB="network,subnet,prefix" gives a second checkout a test lab of its own.
TEST_LAB = dict(zip(
    ("network", "subnet", "prefix"),
    os.environ.get("ETCDLAB_TEST_LAB", "etcdlab-test,172.28.0.0/16,tnode").split(","),
    strict=True,
))
INVOKE = [sys.executable, "-m", "invoke"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder needs Docker."""
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@dataclass
class Lab:
    """The shared test lab: how to run tasks against it and talk to it."""

    config: LabConfig
    env: dict[str, str]
    profile: list[str]
    first_provision: subprocess.CompletedProcess

    def invoke(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        """Run ``invoke [-f profile] ARGS`` against the test lab; output captured."""
        done = subprocess.run(
            [*INVOKE, *self.profile, *args], cwd=ROOT, env={**self.env, **env},
            capture_output=True, text=True, timeout=900,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"invoke {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def status_json(self) -> list[dict]:
        """``invoke status --json`` parsed."""
        return json.loads(self.invoke("status", "--json", check=False).stdout)

    @property
    def cluster(self) -> Cluster:
        """A Cluster handle on the test lab."""
        return Cluster(self.config)


def docker_reachable() -> bool:
    try:
        import docker

        docker.from_env(version="auto").ping()
    except Exception:
        return False
    return True


def lab_env() -> tuple[dict[str, str], list[str]]:
    env = dict(os.environ)
    env.update({f"INVOKE_LAB_{k.upper()}": v for k, v in TEST_LAB.items()})
    env["COLUMNS"] = "200"
    profile = os.environ.get("ETCDLAB_TEST_PROFILE")
    return env, (["-f", str(ROOT / profile)] if profile else [])


def lab_config(profile: list[str]) -> LabConfig:
    import yaml

    settings = yaml.safe_load((ROOT / "invoke.yaml").read_text())["lab"]
    if profile:
        settings.update(yaml.safe_load(Path(profile[1]).read_text())["lab"])
    settings.update(TEST_LAB)
    return load_config(settings)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skip (or, with ETCDLAB_REQUIRE_DOCKER=1, fail) when no Docker engine answers."""
    if not docker_reachable():
        if os.environ.get("ETCDLAB_REQUIRE_DOCKER") == "1":
            pytest.fail("no Docker engine reachable, and ETCDLAB_REQUIRE_DOCKER=1")
        pytest.skip("no Docker engine reachable: integration tests need one")


def run_invoke(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run one invoke command from the project folder, output captured."""
    return subprocess.run(
        [*INVOKE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def one_error_line(done, fragment: str) -> None:
    """Exit status 1, exactly one ``error:`` line containing ``fragment``, no traceback."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert fragment in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.fixture(scope="session")
def lab(docker_engine) -> Lab:
    """Provision the test lab once per session (through the real `invoke provision`)."""
    env, profile = lab_env()
    subprocess.run([*INVOKE, "destroy"], cwd=ROOT, env=env, capture_output=True, check=False)
    first = subprocess.run(
        [*INVOKE, *profile, "provision"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=900,
    )
    if first.returncode != 0:
        pytest.fail(f"provision failed:\n{first.stdout[-4000:]}\n{first.stderr[-4000:]}")
    yield Lab(lab_config(profile), env, profile, first)
    subprocess.run([*INVOKE, "destroy"], cwd=ROOT, env=env, capture_output=True, check=False)

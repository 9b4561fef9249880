"""LabConfig: validated, immutable settings from invoke config and flags.

Settings flow one way: ``invoke.yaml`` (the ``lab:`` section) → a profile file
(``invoke -f profile.yaml``) → ``INVOKE_LAB_*`` environment variables → task flags →
:class:`LabConfig`, validated once → Ansible variables.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from etcdlab.errors import LabError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The project folder: playbooks/, roles/, inventory/, ansible.cfg and .lab/ live there."""
DEFAULT_IMAGE = "ubuntu:22.04"
DEFAULT_ETCD_VERSION = "3.5.6"
MAX_NODES = 9
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LabConfig:
    """Every setting of a lab, checked when built (see ``invoke.yaml`` for their meaning)."""

    nodes: int = 3
    prefix: str = "node"
    network: str = "dist-sys-net"
    subnet: str = "172.21.0.0/16"
    first_host: int = 10
    image: str = DEFAULT_IMAGE
    offline_image: str = "etcdlab/debian12:offline"
    offline_fallback: bool = True
    debian_mirror: str = "http://deb.debian.org/debian"
    cache_dir: str = "~/.cache/etcdlab"
    etcd_version: str = DEFAULT_ETCD_VERSION
    etcd_archive: str = ""
    etcd_archive_sha256: str = ""
    etcd_heartbeat_interval_ms: int = 100
    etcd_election_timeout_ms: int = 1000
    etcd_quota_backend_bytes: int = 2 * 1024**3
    etcd_snapshot_count: int = 100000
    etcd_log_level: str = "info"
    chrony_minpoll: int = 4
    chrony_maxpoll: int = 6
    chrony_iburst: bool = True
    chrony_makestep_threshold: float = 1.0
    chrony_makestep_limit: int = 3
    ansible_accelerator: str = "mitogen"
    inventory: str = ""
    etcd_tls: str = "auto"
    etcd_auth: bool = False

    def __post_init__(self) -> None:
        self._validate()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_mapping(
        cls, settings: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
    ) -> LabConfig:
        """Build from the invoke ``lab`` section plus flag overrides (``None`` = not given)."""
        known = {f.name for f in fields(cls)}
        merged = {k: v for k, v in dict(settings).items() if k in known}
        unknown = sorted(set(dict(settings)) - known)
        if unknown:
            raise LabError(f"unknown lab setting(s): {', '.join(unknown)}")
        for key, value in (overrides or {}).items():
            if value is not None:
                merged[key] = value
        try:
            return cls(**{k: _coerce(cls, k, v) for k, v in merged.items()})
        except (TypeError, ValueError) as exc:
            raise LabError(f"bad lab setting: {exc}") from None

    def with_changes(self, **changes: Any) -> LabConfig:
        """A copy with some settings changed (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """All settings as a plain dict (for result metadata)."""
        return asdict(self)

    # -- derived values -----------------------------------------------------------------
    @property
    def node_names(self) -> list[str]:
        """Container / host names: ``node1 .. nodeN``."""
        return [f"{self.prefix}{i}" for i in range(1, self.nodes + 1)]

    @property
    def node_ips(self) -> dict[str, str]:
        """Fixed address of every node, from ``first_host`` within the subnet."""
        net = ipaddress.ip_network(self.subnet)
        base = int(net.network_address) + self.first_host
        return {
            name: str(ipaddress.ip_address(base + i)) for i, name in enumerate(self.node_names)
        }

    @property
    def gateway(self) -> str:
        """The Docker bridge's address in the lab subnet (the first host address)."""
        return str(next(ipaddress.ip_network(self.subnet).hosts()))

    @property
    def cache_path(self) -> Path:
        """Where offline assets (etcd archive, wheels) are kept between runs."""
        return Path(self.cache_dir).expanduser()

    @property
    def state_path(self) -> Path:
        """The lab's private folder: ansible-runner data, provisioned settings, PKI.

        One per container network, or per inventory file for a lab of existing hosts.
        """
        if self.inventory:
            source = Path(self.inventory).expanduser().resolve()
            digest = hashlib.sha256(str(source).encode()).hexdigest()[:8]
            return PROJECT_ROOT / ".lab" / f"hosts-{source.stem}-{digest}"
        return PROJECT_ROOT / ".lab" / self.network

    @property
    def pki_path(self) -> Path:
        """Where the lab's CA, member and client certificates are kept (TLS labs)."""
        return self.state_path / "pki"

    @property
    def hosts_mode(self) -> bool:
        """True when the lab is existing hosts from an inventory (no containers)."""
        return bool(self.inventory)

    @property
    def tls_enabled(self) -> bool:
        """TLS for clients and peers: ``auto`` means on for inventories, off for containers."""
        if self.etcd_tls == "auto":
            return self.hosts_mode
        return self.etcd_tls == "true"

    @property
    def archive_path(self) -> Path | None:
        """The local etcd archive, if one is configured."""
        return Path(self.etcd_archive).expanduser() if self.etcd_archive else None

    # -- validation ---------------------------------------------------------------------
    def _validate(self) -> None:
        if not 1 <= self.nodes <= MAX_NODES:
            raise LabError(f"nodes must be between 1 and {MAX_NODES}, got {self.nodes}")
        if self.nodes % 2 == 0:
            warnings.warn(
                f"{self.nodes} nodes: an even cluster tolerates no more failures than "
                f"{self.nodes - 1} nodes (quorum is {self.nodes // 2 + 1})",
                QuorumWarning,
                stacklevel=3,
            )
        for label, value in (("prefix", self.prefix), ("network", self.network)):
            if not _NAME_RE.match(value):
                raise LabError(
                    f"{label} {value!r} must start with a letter and use only a-z, 0-9 and '-'"
                )
        try:
            net = ipaddress.ip_network(self.subnet)
        except ValueError:
            raise LabError(f"subnet {self.subnet!r} is not a network like 172.21.0.0/16") from None
        if net.version != 4:
            raise LabError(f"subnet {self.subnet} must be IPv4")
        if not net.is_private:
            raise LabError(f"subnet {self.subnet} must be a private range")
        if self.first_host < 2 or self.first_host + self.nodes > net.num_addresses - 1:
            raise LabError(
                f"subnet {self.subnet} has no room for {self.nodes} nodes from host "
                f"number {self.first_host}"
            )
        if not self.image.strip():
            raise LabError("image must not be empty")
        if not _VERSION_RE.match(self.etcd_version):
            raise LabError(f"etcd_version {self.etcd_version!r} must look like 3.5.6")
        if self.etcd_archive_sha256 and not _SHA256_RE.match(self.etcd_archive_sha256):
            raise LabError("etcd_archive_sha256 must be 64 lowercase hex digits")
        if self.etcd_archive and not self.archive_path.is_file():
            raise LabError(f"etcd_archive {self.etcd_archive} does not exist")
        if not 10 <= self.etcd_heartbeat_interval_ms <= 5000:
            raise LabError("etcd_heartbeat_interval_ms must be between 10 and 5000")
        if not 5 * self.etcd_heartbeat_interval_ms <= self.etcd_election_timeout_ms <= 50000:
            raise LabError(
                "etcd_election_timeout_ms must be at least 5 × the heartbeat interval "
                "and at most 50000 (etcd refuses otherwise)"
            )
        if self.etcd_quota_backend_bytes < 1024**2:
            raise LabError("etcd_quota_backend_bytes must be at least 1 MiB")
        if self.etcd_log_level not in {"debug", "info", "warn", "error"}:
            raise LabError("etcd_log_level must be debug, info, warn or error")
        if not -6 <= self.chrony_minpoll <= self.chrony_maxpoll <= 24:
            raise LabError("chrony_minpoll must be ≤ chrony_maxpoll, both in -6..24")
        if self.ansible_accelerator not in {"mitogen", "none"}:
            raise LabError("ansible_accelerator must be 'mitogen' or 'none'")
        if self.inventory and not Path(self.inventory).expanduser().is_file():
            raise LabError(f"inventory {self.inventory} does not exist")
        if self.etcd_tls not in {"auto", "true", "false"}:
            raise LabError("etcd_tls must be auto, true or false")
        if self.etcd_auth and not self.tls_enabled:
            raise LabError(
                "etcd_auth needs TLS: the lab's own tools authenticate as root with their "
                "client certificate (set etcd_tls: true)"
            )


class QuorumWarning(UserWarning):
    """An even node count: legal, but no more fault tolerant than one node fewer."""


def _coerce(cls: type, name: str, value: Any) -> Any:
    """Cast a value from YAML, an env var or a flag to the field's type."""
    default = next(f.default for f in fields(cls) if f.name == name)
    if isinstance(default, bool):
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return bool(value)
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(default, float):
        return float(value)
    if isinstance(value, bool):  # YAML's true/false for a string setting like etcd_tls
        return "true" if value else "false"
    return str(value)

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
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from etcdlab.errors import LabError
from etcdlab.params import Param, unknown_name

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The project folder: playbooks/, roles/, inventory/, ansible.cfg and .lab/ live there."""
DEFAULT_IMAGE = "ubuntu:22.04"
DEFAULT_ETCD_VERSION = "3.5.6"
MAX_NODES = 9
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
ENV_PREFIX = "INVOKE_LAB_"


def setting(default: Any, help: str = "", **limits: Any) -> Any:
    """A LabConfig field with its declaration: type (that of the default), limits, unit."""
    return field(default=default, metadata={"param": Param("", default, help, **limits)})


_IMAGE = {"pattern": r"[A-Za-z0-9][A-Za-z0-9._/:@-]*",
          "pattern_help": "a Docker image reference like ubuntu:22.04"}
_NAME = {"pattern": _NAME_RE.pattern[1:-1],
         "pattern_help": "a name that starts with a letter and uses only a-z, 0-9 and '-'"}


@dataclass(frozen=True)
class LabConfig:
    """Every setting of a lab, checked when built (see ``invoke.yaml`` for their meaning).

    Each field declares its type, range or choices once (:func:`setting`); that schema
    checks YAML files, INVOKE_LAB_* variables and flags alike (:meth:`from_mapping`).
    """

    nodes: int = setting(3, "etcd members", minimum=1, maximum=MAX_NODES)
    prefix: str = setting("node", "container and member name prefix", **_NAME)
    network: str = setting("dist-sys-net", "the lab's Docker network", **_NAME)
    subnet: str = setting("172.21.0.0/16", "private IPv4 subnet of the lab network")
    first_host: int = setting(10, "host number of node1 in the subnet", minimum=2)
    image: str = setting(DEFAULT_IMAGE, "base image of the nodes", **_IMAGE)
    offline_image: str = setting("etcdlab/debian12:offline", "the offline base image",
                                 **_IMAGE)
    offline_fallback: bool = setting(True, "fall back to offline assets")
    node_image: bool = setting(True, "build the roles' install phase into an image once")
    debian_mirror: str = setting("http://deb.debian.org/debian", "mirror for the offline image",
                                 pattern=r"https?://\S+", pattern_help="an http(s) URL")
    cache_dir: str = setting("~/.cache/etcdlab", "offline downloads", pattern=r".*\S.*",
                             pattern_help="a folder")
    etcd_version: str = setting(DEFAULT_ETCD_VERSION, "etcd release",
                                pattern=_VERSION_RE.pattern[1:-1],
                                pattern_help="a version like 3.5.6")
    # A base URL, not a file's: the mirror serves GitHub's paths under it, so a new
    # etcd_version needs no new URL. Empty means https://github.com (the role's default).
    etcd_download_url: str = setting("", "a mirror of the etcd releases (GitHub's layout)",
                                     pattern=r"(https?://\S+)?",
                                     pattern_help="an http(s) URL like http://mirror:8000")
    etcd_archive: str = setting("", "a local etcd release archive")
    etcd_archive_sha256: str = setting("", "its sha256", pattern=r"([0-9a-f]{64})?",
                                       pattern_help="64 lowercase hex digits")
    etcd_heartbeat_interval_ms: int = setting(100, "Raft heartbeat", unit="ms", minimum=10,
                                              maximum=5000)
    etcd_election_timeout_ms: int = setting(1000, "Raft election timeout", unit="ms",
                                            minimum=50, maximum=50000)
    etcd_quota_backend_bytes: int = setting(2 * 1024**3, "backend quota", unit="B",
                                            minimum=1024**2, maximum=8 * 1024**3)
    etcd_snapshot_count: int = setting(100000, "committed entries between snapshots",
                                       minimum=1, maximum=10**9)
    etcd_pre_vote: bool = setting(True, "Raft pre-vote (etcd 3.5's default; off only for a "
                                  "control run)")
    etcd_log_level: str = setting("info", "etcd log level",
                                  choices=("debug", "info", "warn", "error"))
    chrony_minpoll: int = setting(4, "chrony minpoll (log2 s)", minimum=-6, maximum=24)
    chrony_maxpoll: int = setting(6, "chrony maxpoll (log2 s)", minimum=-6, maximum=24)
    chrony_iburst: bool = setting(True, "chrony iburst on the clients")
    chrony_makestep_threshold: float = setting(1.0, "chrony makestep threshold", unit="s",
                                               minimum=0, maximum=86400)
    # chrony reads a negative makestep limit as "no limit".
    chrony_makestep_limit: int = setting(3, "chrony makestep updates", minimum=-1,
                                         maximum=10**6)
    ansible_accelerator: str = setting("mitogen", "Ansible strategy",
                                       choices=("mitogen", "none"))
    inventory: str = setting("", "an Ansible inventory of existing hosts")
    etcd_tls: str = setting("auto", "TLS for clients and peers",
                            choices=("auto", "true", "false"))
    etcd_auth: bool = setting(False, "etcd users and roles (needs TLS)")

    @classmethod
    def schema(cls) -> dict[str, Param]:
        """Every setting's declaration, by name."""
        return {f.name: replace(f.metadata["param"], name=f.name) for f in fields(cls)}

    def __post_init__(self) -> None:
        self._validate()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_mapping(
        cls,
        settings: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        above_env: Mapping[str, Any] | None = None,
    ) -> LabConfig:
        """Build from invoke's ``lab`` section, INVOKE_LAB_* variables and flags.

        ``settings`` is what invoke merged from its config files; ``env`` the
        ``INVOKE_LAB_*`` variables by name, applied except where ``above_env`` (a ``-f``
        file, which invoke ranks above the environment) sets the key; ``overrides`` the
        flags (``None`` = not given). Every value is checked against :meth:`schema`.
        """
        schema = cls.schema()
        values: dict[str, Any] = {}
        for key, value in dict(settings).items():
            if key not in schema:
                raise unknown_name("unknown lab setting", key, schema)
            values[key] = schema[key].parse(value, source=f"lab.{key}")
        for variable, text in (env or {}).items():
            key = variable.removeprefix(ENV_PREFIX).lower()
            if key not in schema:
                raise unknown_name("unknown environment variable", variable,
                                   [ENV_PREFIX + name.upper() for name in schema])
            if key not in (above_env or {}):
                values[key] = schema[key].parse(text, source=variable)
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key] = schema[key].parse(value, source=f"--{key.replace('_', '-')}")
        return cls(**values)

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
    def known_hosts_path(self) -> Path:
        """The lab's own SSH known_hosts: keys accepted on first contact, enforced after."""
        return self.state_path / "known_hosts"

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
        for name, param in self.schema().items():
            param.check(getattr(self, name))
        if self.nodes % 2 == 0:
            warnings.warn(
                f"{self.nodes} nodes: an even cluster tolerates no more failures than "
                f"{self.nodes - 1} nodes (quorum is {self.nodes // 2 + 1})",
                QuorumWarning,
                stacklevel=3,
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
        if self.etcd_archive and not self.archive_path.is_file():
            raise LabError(f"etcd_archive {self.etcd_archive} does not exist")
        if not 5 * self.etcd_heartbeat_interval_ms <= self.etcd_election_timeout_ms <= 50000:
            raise LabError(
                "etcd_election_timeout_ms must be at least 5 × the heartbeat interval "
                "and at most 50000 (etcd refuses otherwise)"
            )
        if self.chrony_minpoll > self.chrony_maxpoll:
            raise LabError("chrony_minpoll must be ≤ chrony_maxpoll")
        if self.inventory and not Path(self.inventory).expanduser().is_file():
            raise LabError(f"inventory {self.inventory} does not exist")
        if self.etcd_auth and not self.tls_enabled:
            raise LabError(
                "etcd_auth needs TLS: the lab's own tools authenticate as root with their "
                "client certificate (set etcd_tls: true)"
            )


class QuorumWarning(UserWarning):
    """An even node count: legal, but no more fault tolerant than one node fewer."""

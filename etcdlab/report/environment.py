"""How result metadata appears in the report: one typed registry, label and formatter per key.

The environment table and the sections format metadata only through :func:`format_value`,
so a key's unit is declared once here instead of guessed from its name. Keys the registry
does not know (a newer lab's metadata read by an older report) are shown as plain text
after the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from etcdlab.figures.units import MISSING, fmt_bool, fmt_bytes, fmt_ms, fmt_seconds


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return fmt_bool(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _heal(steps: Any) -> str:
    """The runner's heal steps: how many, and any that failed."""
    if not isinstance(steps, list) or not steps:
        return "nothing to heal"
    failed = [f"{s.get('what')}: {s.get('detail')}" for s in steps
              if isinstance(s, Mapping) and not s.get("ok")]
    text = f"{len(steps)} step(s)"
    return text + (f", failed: {'; '.join(failed)}" if failed else ", all ok")


@dataclass(frozen=True)
class Field:
    """One metadata key: its label in the environment table and its formatter."""

    label: str
    format: Callable[[Any], str] = _plain


FIELDS: dict[str, Field] = {
    "etcd_version": Field("etcd version"),
    "node_count": Field("Cluster members"),
    "heartbeat_ms": Field("Heartbeat interval", fmt_ms),
    "election_timeout_ms": Field("Election timeout", fmt_ms),
    "quota_backend_bytes": Field("Backend quota", fmt_bytes),
    "image": Field("Base image"),
    "kernel": Field("Kernel"),
    "cpu_count": Field("CPUs"),
    "host": Field("Host"),
    "python": Field("Python"),
    "etcdlab_version": Field("etcdlab version"),
    "transport": Field("Nodes reached through"),
    "tls": Field("TLS", fmt_bool),
    "chrony_minpoll": Field("chrony minpoll (log2 s)"),
    "chrony_maxpoll": Field("chrony maxpoll (log2 s)"),
    "elapsed_s": Field("Experiment run time", fmt_seconds),
    "quick": Field("Quick parameters (--quick)", fmt_bool),
    "heal": Field("Heal after the run", _heal),
    "metadata_error": Field("Metadata not gathered"),
}
"""Known keys, in the order the environment table lists them."""

TIME_KEYS = ("started_utc", "finished_utc")


def format_value(key: str, value: Any) -> str:
    """A metadata value as the report shows it."""
    if value is None:
        return MISSING
    field = FIELDS.get(key)
    return (field.format if field else _plain)(value)


def label(key: str) -> str:
    """The environment table's label of a key."""
    field = FIELDS.get(key)
    return field.label if field else key.replace("_", " ").capitalize()

"""The node image: the roles' install phase built once into a Docker image.

The roles tag the tasks that put software on a host ``install`` (packages, supervisord,
chrony, the etcd binaries, user and directories). ``invoke image`` applies only those
tasks to one builder container and commits it as ``etcdlab/node:<hash>``; a container lab
made from that image then runs only the configure phase (``--skip-tags install``). The
roles stay the one source of truth: real hosts run both phases.

The tag is a hash of everything the install phase reads (:func:`install_inputs`): the
install-tagged tasks themselves, as Ansible parses them (comments and configure tasks in
the same file do not count), the definitions of every role variable they name, followed
through the variables those definitions name in turn (extra variables win over role
defaults, as in Ansible), the base image's id and :data:`RECIPE_REVISION`. A change to
any of them gives another tag, so the image is built again; a configure-only change
(a template, a tuning default, ``configure.yml``) keeps the image.

Everything here is pure: files in, values out. Building and running is in
:mod:`etcdlab.lab.provision`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = "etcdlab/node"
INSTALL_TAG = "install"
HASH_LABEL = "io.etcdlab.node-image"
"""Image label holding the full hash of the install inputs (the tag holds its first 12)."""
RECIPE_REVISION = "1"
"""Bumped when the way the image is built (:mod:`etcdlab.lab.provision`) changes."""

PATH_ONLY_VARIABLES = frozenset({"etcd_archive_src"})
"""Variables that name a file on the controller: where it lies changes nothing on the
node, so only whether it is set is hashed (the archive's sha256 stands for its content)."""
SOURCE_ONLY_VARIABLES = frozenset({"etcd_download_base_url", "etcd_download_url"})
"""Variables that say where the release archive is downloaded from, not what it is: they
are not hashed. The install phase refuses any archive but the one of the expected sha256
(which is hashed), so GitHub and a mirror of it make the same image."""

_TASK_FILE_KEYS = ("ansible.builtin.import_tasks", "ansible.builtin.include_tasks",
                   "import_tasks", "include_tasks")
_BLOCK_KEYS = ("block", "rescue", "always")


@dataclass(frozen=True)
class InstallTask:
    """One task the install phase runs: its role, the file it is in, and the task."""

    role: str
    file: str
    task: dict[str, Any]


def install_tasks(roles_dir: Path, roles: tuple[str, ...]) -> list[InstallTask]:
    """Every task tagged ``install`` (its own tag or one it inherits), in play order.

    Tags are inherited as Ansible does: from an ``import_tasks`` and from a block to
    everything in it, from an ``include_tasks`` only through its ``apply``.
    """
    found: list[InstallTask] = []
    for role in roles:
        tasks_dir = roles_dir / role / "tasks"
        found.extend(_walk(role, tasks_dir, "main.yml", frozenset()))
    return found


def _walk(role: str, tasks_dir: Path, name: str, inherited: frozenset[str],
          seen: frozenset[str] = frozenset()) -> Iterator[InstallTask]:
    if name in seen or "{{" in name:
        return
    tasks = yaml.safe_load((tasks_dir / name).read_text()) or []
    yield from _walk_tasks(role, tasks_dir, name, tasks, inherited, seen | {name})


def _walk_tasks(role: str, tasks_dir: Path, name: str, tasks: list[dict[str, Any]],
                inherited: frozenset[str], seen: frozenset[str]) -> Iterator[InstallTask]:
    for task in tasks:
        tags = inherited | _tags(task.get("tags"))
        if any(key in task for key in _BLOCK_KEYS):
            for key in _BLOCK_KEYS:
                yield from _walk_tasks(role, tasks_dir, name, task.get(key) or [], tags, seen)
            continue
        file_key = next((key for key in _TASK_FILE_KEYS if key in task), None)
        if file_key is not None:
            target = task[file_key]
            if isinstance(target, dict):
                apply = target.get("apply") or {}
                target = target.get("file", "")
            else:
                apply = {}
            child_tags = tags if "import_tasks" in file_key else (
                inherited | _tags(apply.get("tags")))
            if INSTALL_TAG in tags:
                yield InstallTask(role, name, task)
            yield from _walk(role, tasks_dir, str(target), child_tags, seen)
        elif INSTALL_TAG in tags:
            yield InstallTask(role, name, task)


def _tags(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(","))
    return frozenset(str(tag) for tag in value)


def role_variables_defined(roles_dir: Path, roles: tuple[str, ...]) -> dict[str, Any]:
    """Every variable the roles define in ``defaults/main.yml`` and ``vars/*.yml``."""
    defined: dict[str, Any] = {}
    for role in roles:
        files = [roles_dir / role / "defaults" / "main.yml",
                 *sorted((roles_dir / role / "vars").glob("*.yml"))]
        for path in files:
            if path.is_file():
                defined.update(yaml.safe_load(path.read_text()) or {})
    return defined


def install_inputs(roles_dir: Path, roles: tuple[str, ...], extravars: Mapping[str, Any],
                   base_image_id: str) -> dict[str, Any]:
    """What the install phase reads: its tasks, the variables they use, the base image.

    ``extravars`` are the variables the lab passes to Ansible; they win over the roles'
    definitions, as extra variables do in Ansible.
    """
    tasks = install_tasks(roles_dir, roles)
    defined = role_variables_defined(roles_dir, roles)
    prefixes = "|".join(map(re.escape, roles))
    pattern = re.compile(rf"\b((?:{prefixes})_[a-z0-9_]+)\b")
    values: dict[str, Any] = {}
    pending = sorted({m for t in tasks for m in pattern.findall(_canonical(t.task))})
    while pending:
        name = pending.pop()
        if name in values or name in SOURCE_ONLY_VARIABLES:
            continue
        if name in extravars:
            value = extravars[name]
        elif name in defined:
            value = defined[name]
        else:
            continue  # a registered result or a loop variable, not a setting
        if name in PATH_ONLY_VARIABLES:
            value = bool(value)
        values[name] = value
        pending.extend(set(pattern.findall(_canonical(value))) - values.keys())
    return {
        "recipe": RECIPE_REVISION,
        "base_image": base_image_id,
        "tasks": [{"role": t.role, "file": t.file, "task": t.task} for t in tasks],
        "variables": values,
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def inputs_hash(inputs: Mapping[str, Any]) -> str:
    """The sha256 of the install inputs (canonical JSON)."""
    return hashlib.sha256(_canonical(inputs).encode()).hexdigest()


def image_tag(digest: str) -> str:
    """``etcdlab/node:<first 12 hex digits of the hash>``."""
    return f"{REPOSITORY}:{digest[:12]}"


@dataclass(frozen=True)
class ImagePlan:
    """What provisioning a container lab does about the node image."""

    image: str
    """The image new containers are created from."""
    build: bool
    """Whether the node image must be built first."""
    skip_install: bool
    """Whether the playbook skips the install phase (every node runs from this image)."""


def plan(enabled: bool, base_image: str, digest: str, node_image_present: bool,
         container_hashes: list[str | None], nodes: int) -> ImagePlan:
    """Build or reuse the node image for ``digest``, and whether to skip the install phase.

    ``container_hashes`` are the install-input hashes of the images the lab's existing
    containers run (their :data:`HASH_LABEL`; None for a container of the base image);
    containers still to be created will run the node image. The install phase is skipped
    only when every node runs the node image of the current inputs: a container from an
    older node image or from the base image gets the whole playbook, which brings it up to
    date.
    """
    if not enabled:
        return ImagePlan(base_image, build=False, skip_install=False)
    if len(container_hashes) >= nodes and not node_image_present:
        # Nothing is created from it, and no container can be running it: no build.
        return ImagePlan(base_image, build=False, skip_install=False)
    return ImagePlan(image_tag(digest), build=not node_image_present,
                     skip_install=all(found == digest for found in container_hashes))

"""The lab's own folder (``.lab/<lab>/``): files written atomically, and one run at a time.

Everything a later task reads back — the provisioned settings, timings, the fault journal —
lives here. A state file is replaced atomically (temporary file, fsync, rename), so a task
killed halfway leaves the old file, never half of a new one. Every task that changes a lab
holds its advisory lock (:class:`LabLock`, ``fcntl.flock``): a second one is refused with
the holder's pid and command, so two runs never undo each other's faults. The kernel drops
the lock when its holder dies, even by SIGKILL. The lock file lives in the system's
temporary folder, named after the lab's folder, so that a task refused for bad input leaves
``.lab/`` exactly as it was.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from etcdlab.errors import LabError


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> Path:
    """Replace ``path`` with ``text`` atomically (readers see the old or the new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as sorted, indented JSON atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    """A state file's JSON, ``default`` when absent; a damaged file is one clear error."""
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LabError(f"{path} is damaged ({exc}): remove it, or run `invoke destroy`") from None


class LabLock:
    """The lab's advisory lock, held for the life of one task that changes the lab."""

    def __init__(self, folder: Path, what: str | None = None) -> None:
        digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
        self.path = Path(tempfile.gettempdir()) / f"etcdlab-{folder.name}-{digest}.lock"
        self.what = what or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])
        self._handle: Any = None

    def __enter__(self) -> LabLock:
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until exit
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LabError(f"the lab is in use by {holder}; wait for it to finish "
                           "(or stop it, then run `invoke heal`)") from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        handle.write(f"pid {os.getpid()} (`{self.what}`, since {started})\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.truncate(0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

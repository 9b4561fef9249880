"""A rate clock fault for one etcd member: standard library only, run in the member's node.

etcd is Go, and Go's runtime reads its clocks through the vDSO's ``clock_gettime``
without libc, so libfaketime cannot reach it. This injector does what Chaos Mesh's
TimeChaos does for an offset (its ``doc/time_chaos.md``), for a *rate*: it attaches to every
thread of the etcd process with ptrace (all stopped, none of them inside the bytes it
changes), writes a small replacement ``clock_gettime`` into the unused tail of the
process's own copy of the vDSO page, and turns the first instruction of
``__vdso_clock_gettime`` into a jump to it. The replacement asks the kernel for the true
time (the system call) and, for CLOCK_REALTIME, CLOCK_MONOTONIC and their raw, coarse and
boottime variants, returns

    t0 + (t - t0) * rate

where ``t0`` is each clock's reading at injection: no step at injection, then a clock that
runs ``rate`` times as fast as the kernel's. Other processes (and this machine) keep the
true clock: the vDSO page written is the etcd process's private copy (copy on write).

Nothing is compiled at run time: the replacement's machine code is :data:`CODE_HEX`,
assembled from ``etcd_clock.S`` beside this file (a unit test checks the two agree when an
assembler is present). The fault is undone by restarting etcd (a new process maps a fresh
vDSO); :meth:`etcdlab.faults.Faults.skew_etcd_clock` journals it first.

Run in the node as root: ``python3 -c <this file> --binary PATH --rate RATE`` (``--check``
says whether the process's clock is faked).

Without CAP_SYS_PTRACE (a container's root) the injector takes the target's own user id
before it touches it, so the container needs no added capability: a process may trace
another of its own user's where kernel.yama.ptrace_scope is 0 or absent; root on a host
keeps its CAP_SYS_PTRACE, which ptrace_scope 1 requires. It refuses any
process whose executable is not the member's etcd binary. It prints one JSON line: what it
did, or ``{"error": ...}`` with a non-zero exit and the process untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import struct
import sys
import time

# The replacement clock_gettime (etcd_clock.S), x86_64 machine code; its data block follows.
CODE_HEX = (
    "b8e40000000f054885c0754a83ff3f7743488d0d400000004c8b01490fa3f8733389f84c8b4cc110"
    "48690600ca9a3b480346084c29c848f76908480facd0204c01c831d241ba00ca9a3b49f7f2488906"
    "4889560831c0c390"
)
CODE = bytes.fromhex(CODE_HEX)
CLOCKS = {"CLOCK_REALTIME": 0, "CLOCK_MONOTONIC": 1, "CLOCK_MONOTONIC_RAW": 4,
          "CLOCK_REALTIME_COARSE": 5, "CLOCK_MONOTONIC_COARSE": 6, "CLOCK_BOOTTIME": 7}
"""The clocks run at the rate (ids as in <linux/time.h>); CPU-time clocks stay true."""
N_T0 = 8
"""t0 slots in the data block, one per clock id 0..7."""
FIXED_POINT_BITS = 32
JUMP_LEN = 5  # jmp rel32
MAX_RATE = 1000.0

PTRACE_DETACH = 17
PTRACE_GETREGS = 12
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_EVENT_STOP = 128
WALL = 0x40000000  # __WALL: wait for threads too
RIP_INDEX = 16  # rip in struct user_regs_struct (27 unsigned longs on x86_64)


class InjectError(Exception):
    """The injection was refused or failed; the process was left as it was."""


# -- the clock arithmetic (pure: the unit tests check it against the machine code) --------
def rate_multiplier(rate: float) -> int:
    """The rate as the replacement multiplies by it: 32.32 fixed point."""
    if not 0 < rate <= MAX_RATE:
        raise InjectError(f"rate {rate} is outside (0, {MAX_RATE:g}]")
    return round(rate * (1 << FIXED_POINT_BITS))


def faked_ns(true_ns: int, t0_ns: int, multiplier: int) -> int:
    """What the faked clock reads when the true clock reads ``true_ns`` (the machine
    code's arithmetic: a floor of the 128-bit product, in nanoseconds)."""
    return t0_ns + (((true_ns - t0_ns) * multiplier) >> FIXED_POINT_BITS)


def data_block(t0_ns: dict[int, int], multiplier: int) -> bytes:
    """The replacement's data: mask of faked clocks, multiplier, t0 per clock id."""
    mask = 0
    slots = [0] * N_T0
    for clock_id, value in t0_ns.items():
        if not 0 <= clock_id < N_T0:
            raise InjectError(f"clock id {clock_id} has no t0 slot")
        mask |= 1 << clock_id
        slots[clock_id] = value
    return struct.pack("<Qq8q", mask, multiplier, *slots)


def jump(from_address: int, to_address: int) -> bytes:
    """``jmp rel32`` at ``from_address`` to ``to_address``."""
    offset = to_address - (from_address + JUMP_LEN)
    if not -(1 << 31) <= offset < (1 << 31):
        raise InjectError("replacement out of a rel32 jump's reach")
    return b"\xe9" + struct.pack("<i", offset)


# -- the vDSO -----------------------------------------------------------------------------
def vdso_layout(image: bytes) -> tuple[int, int]:
    """(offset of __vdso_clock_gettime, end of the ELF image) in a vDSO image."""
    if image[:4] != b"\x7fELF" or image[4] != 2:
        raise InjectError("the [vdso] mapping is not a 64-bit ELF image")
    phoff, shoff = struct.unpack_from("<QQ", image, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", image, 0x36)
    load_vaddr = None
    for index in range(phnum):
        p_type, _flags, p_offset, p_vaddr = struct.unpack_from(
            "<IIQQ", image, phoff + index * phentsize)
        if p_type == 1 and p_offset == 0:  # PT_LOAD of the whole image
            load_vaddr = p_vaddr
            break
    if load_vaddr is None:
        raise InjectError("the vDSO has no PT_LOAD segment at offset 0")
    sections = []
    for index in range(shnum):
        (_name, sh_type, _flags, _addr, sh_offset, sh_size, sh_link, _info, _align,
         sh_entsize) = struct.unpack_from("<IIQQQQIIQQ", image, shoff + index * shentsize)
        sections.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize))
    end = shoff + shnum * shentsize
    for sh_type, sh_offset, sh_size, _link, _entsize in sections:
        if sh_type != 8:  # SHT_NOBITS takes no room in the image
            end = max(end, sh_offset + sh_size)
    for sh_type, sh_offset, sh_size, sh_link, sh_entsize in sections:
        if sh_type != 11:  # SHT_DYNSYM
            continue
        strtab_offset = sections[sh_link][1]
        for symbol in range(sh_size // (sh_entsize or 24)):
            st_name, _info, _other, _shndx, st_value, _size = struct.unpack_from(
                "<IBBHQQ", image, sh_offset + symbol * (sh_entsize or 24))
            name_end = image.index(b"\0", strtab_offset + st_name)
            if image[strtab_offset + st_name:name_end] == b"__vdso_clock_gettime":
                return st_value - load_vaddr, end
    raise InjectError("the vDSO exports no __vdso_clock_gettime")


def tail_offset(image_len: int, image_end: int, needed: int) -> int:
    """Where the replacement goes: the last 16-aligned ``needed`` bytes of the mapping,
    which must lie after the ELF image."""
    offset = (image_len - needed) & ~15
    if offset < image_end:
        raise InjectError(f"the vDSO has {image_len - image_end} unused bytes, "
                          f"the replacement needs {needed}")
    return offset


def patched_code(t0_ns: dict[int, int], multiplier: int) -> bytes:
    """Code then data, as written into the vDSO's tail (the code's data is 8-aligned)."""
    code = CODE + b"\x90" * (-len(CODE) % 8)
    return code + data_block(t0_ns, multiplier)


# -- the process --------------------------------------------------------------------------
def _vdso_range(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("[vdso]"):
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                return start, end
    raise InjectError(f"process {pid} has no [vdso] mapping")


def check_target(pid: int, binary: str) -> None:
    """Refuse anything but the member's etcd binary (a process of this node)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv0 = handle.read().split(b"\0")[0].decode(errors="replace")
    except OSError as exc:
        raise InjectError(f"process {pid}: {exc.strerror}") from exc
    if (os.path.basename(binary) != "etcd" or exe != binary
            or os.path.basename(argv0) != "etcd"):
        raise InjectError(f"process {pid} is {exe!r} ({argv0!r}), not the member's etcd "
                          f"{binary!r}: refused")


def find_pid(binary: str) -> int:
    """The one process of this node started as ``binary`` (its argv[0])."""
    found = []
    for folder in os.listdir("/proc"):
        if not folder.isdigit():
            continue
        try:
            with open(f"/proc/{folder}/cmdline", "rb") as handle:
                argv0 = handle.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if argv0 == binary:
            found.append(int(folder))
    if len(found) != 1:
        raise InjectError(f"{len(found)} processes run {binary}, not one")
    return found[0]


CAP_SYS_PTRACE = 19


def has_capability(bit: int, status_text: str) -> bool:
    """Whether a /proc/PID/status text's effective capabilities include ``bit``."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def _take_user_of(pid: int) -> None:
    """Become the target's user (a process may trace its own user's processes), unless
    this process may trace any (CAP_SYS_PTRACE: root on a host; a container's root has
    not got it)."""
    status = os.stat(f"/proc/{pid}")
    if os.geteuid() == status.st_uid:
        return
    with open("/proc/self/status") as handle:
        if has_capability(CAP_SYS_PTRACE, handle.read()):
            return
    if os.geteuid() != 0:
        raise InjectError(f"process {pid} belongs to uid {status.st_uid}, not to this user")
    os.setgroups([])
    os.setgid(status.st_gid)
    os.setuid(status.st_uid)


class _Tracer:
    """Every thread of one process stopped under ptrace; all detached on exit."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.restype = ctypes.c_long
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                     ctypes.c_void_p]
        self.stopped: dict[int, int] = {}  # tid -> signal to give back on detach (0: none)

    def _ptrace(self, request: int, tid: int, addr: int = 0, data: int = 0) -> int:
        result = self.libc.ptrace(request, tid, addr, data)
        if result == -1:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
        return result

    def stop_all(self) -> None:
        """Seize and interrupt every thread, until no new thread appears."""
        while True:
            tids = {int(t) for t in os.listdir(f"/proc/{self.pid}/task")}
            new = tids - set(self.stopped)
            if not new:
                return
            for tid in new:
                try:
                    self._ptrace(PTRACE_SEIZE, tid)
                except OSError as exc:
                    if exc.errno == 3:  # ESRCH: the thread has exited
                        continue
                    hint = (" (kernel.yama.ptrace_scope forbids it? run as root with "
                            "CAP_SYS_PTRACE)") if exc.errno == 1 else ""
                    raise InjectError(f"ptrace(SEIZE) of thread {tid}: {exc.strerror}{hint}") \
                        from exc
                self._ptrace(PTRACE_INTERRUPT, tid)
                self.stopped[tid] = 0
                self._wait_stop(tid)

    def _wait_stop(self, tid: int, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            waited, status = os.waitpid(tid, WALL | os.WNOHANG)
            if waited:
                break
            if time.monotonic() > deadline:  # e.g. stuck in an uninterruptible sleep
                raise InjectError(f"thread {tid} did not stop within {timeout_s:g} s")
            time.sleep(0.001)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            del self.stopped[tid]
            return
        if os.WIFSTOPPED(status) and (status >> 16) != PTRACE_EVENT_STOP:
            # A signal arrived first (Go preempts with SIGURG): the thread sits in its
            # signal-delivery stop, which is as stopped; the signal is given back on detach.
            self.stopped[tid] = os.WSTOPSIG(status)

    def rip(self, tid: int) -> int:
        regs = (ctypes.c_ulong * 27)()
        self._ptrace(PTRACE_GETREGS, tid, 0, ctypes.addressof(regs))
        return regs[RIP_INDEX]

    def detach_all(self) -> None:
        for tid, sig in list(self.stopped.items()):
            with contextlib.suppress(OSError):
                self._ptrace(PTRACE_DETACH, tid, 0, sig)
            del self.stopped[tid]


def _write(pid: int, address: int, data: bytes) -> None:
    descriptor = os.open(f"/proc/{pid}/mem", os.O_RDWR)
    try:
        if os.pwrite(descriptor, data, address) != len(data):
            raise InjectError(f"short write at {address:#x}")
    finally:
        os.close(descriptor)


def _read(pid: int, address: int, length: int) -> bytes:
    descriptor = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        return os.pread(descriptor, length, address)
    finally:
        os.close(descriptor)


def inject(pid: int, rate: float, binary: str, attempts: int = 20) -> dict:
    """Make ``pid``'s clocks run at ``rate`` from now on; what was done, as a dict."""
    if platform.machine() != "x86_64":
        raise InjectError(f"the replacement clock is x86_64 code; this node is "
                          f"{platform.machine()}")
    multiplier = rate_multiplier(rate)
    _take_user_of(pid)
    check_target(pid, binary)
    start, end = _vdso_range(pid)
    image = _read(pid, start, end - start)
    entry_offset, image_end = vdso_layout(image)
    length = len(patched_code({}, multiplier))
    code_offset = tail_offset(len(image), image_end, length)
    if image[entry_offset] == 0xE9 or any(image[code_offset:code_offset + length]):
        raise InjectError(f"process {pid}'s clock is already faked (restart etcd to heal)")
    entry = start + entry_offset
    patch = jump(entry, start + code_offset)
    for attempt in range(1, attempts + 1):
        tracer = _Tracer(pid)
        try:
            tracer.stop_all()
            # No thread may be between the first and last byte the jump replaces.
            if all(not entry < tracer.rip(tid) < entry + JUMP_LEN for tid in tracer.stopped):
                t0 = {cid: time.clock_gettime_ns(cid) for cid in CLOCKS.values()}
                _write(pid, start + code_offset, patched_code(t0, multiplier))
                _write(pid, entry, patch)
                written_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                threads, tries = len(tracer.stopped), attempt
                break
        finally:
            tracer.detach_all()
        time.sleep(0.001)
    else:
        raise InjectError(f"a thread was inside clock_gettime's first bytes {attempts} times")
    return {"pid": pid, "rate": rate, "multiplier": multiplier, "threads": threads,
            "attempts": tries, "vdso": start, "entry": entry, "code": start + code_offset,
            "t0_ns": {name: t0[cid] for name, cid in CLOCKS.items()},
            "t0_wall": t0[CLOCKS["CLOCK_REALTIME"]] / 1e9,
            "step_bound_ns": written_ns - t0[CLOCKS["CLOCK_MONOTONIC"]]}


def faked(pid: int, binary: str) -> dict:
    """Whether ``pid``'s clock_gettime jumps to a replacement (this injector's)."""
    _take_user_of(pid)
    check_target(pid, binary)
    start, end = _vdso_range(pid)
    image = _read(pid, start, end - start)
    entry_offset, _image_end = vdso_layout(image)
    return {"pid": pid, "faked": image[entry_offset] == 0xE9}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the member's etcd binary")
    parser.add_argument("--pid", type=int, help="default: the one process of --binary")
    parser.add_argument("--rate", type=float, help="inject: the clocks' rate from now on")
    parser.add_argument("--check", action="store_true", help="only say whether it is faked")
    args = parser.parse_args(argv)
    try:
        pid = args.pid if args.pid is not None else find_pid(args.binary)
        if args.check:
            print(json.dumps(faked(pid, args.binary)))
            return 0
        if args.rate is None:
            raise InjectError("--rate or --check is needed")
        print(json.dumps(inject(pid, args.rate, args.binary)))
    except (InjectError, OSError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The etcd clock fault: its arithmetic, its machine code (assembled and run here), the
vDSO it patches, and its journal entry (fake nodes)."""

from __future__ import annotations

import ctypes
import mmap
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etcdlab.errors import LabError
from etcdlab.faults import Faults, etcd_clock
from etcdlab.faults.etcd_clock import (
    CLOCKS,
    CODE,
    InjectError,
    data_block,
    faked_ns,
    jump,
    patched_code,
    rate_multiplier,
    tail_offset,
    vdso_layout,
)
from tests.unit.test_journal import FakeNodes, fake_cluster

X86_LINUX = platform.machine() == "x86_64" and sys.platform == "linux"


@pytest.mark.parametrize("rate", [1 + 1 / 120, 2.0, 0.5, 1.0])
def test_the_faked_clock_starts_at_t0_without_a_step_and_runs_at_the_rate(rate):
    multiplier = rate_multiplier(rate)
    t0 = 1_796_668_783_187_254_316
    assert faked_ns(t0, t0, multiplier) == t0  # no step at injection
    for elapsed in (1, 1_000_000_000, 60 * 10**9, 3600 * 10**9):
        faked = faked_ns(t0 + elapsed, t0, multiplier)
        assert abs((faked - t0) - elapsed * rate) <= 1 + elapsed * 2**-32


def test_500_ms_per_minute_is_a_rate_of_1_plus_1_120():
    multiplier = rate_multiplier(1 + 0.5 / 60)
    # within the 32.32 fixed point's resolution: 60 s x 2**-32 = 14 ns
    assert faked_ns(60 * 10**9, 0, multiplier) - 60 * 10**9 == pytest.approx(0.5e9, abs=15)


@pytest.mark.parametrize("rate", [0, -1, 1001, float("nan")])
def test_a_rate_out_of_range_is_refused(rate):
    with pytest.raises(InjectError):
        rate_multiplier(rate)


def test_the_data_block_masks_the_clocks_it_has_a_t0_for():
    block = data_block({0: 5, 1: 7}, 1 << 32)
    assert len(block) == 8 + 8 + 8 * 8
    assert int.from_bytes(block[:8], "little") == 0b11
    assert int.from_bytes(block[16:24], "little", signed=True) == 5
    with pytest.raises(InjectError):
        data_block({9: 1}, 1 << 32)


def test_a_jump_reaches_within_rel32_only():
    assert jump(0x1000, 0x1010) == b"\xe9\x0b\x00\x00\x00"
    assert jump(0x1010, 0x1000) == b"\xe9" + (-0x15).to_bytes(4, "little", signed=True)
    with pytest.raises(InjectError):
        jump(0, 1 << 40)


@pytest.mark.skipif(not (shutil.which("as") and shutil.which("objcopy")),
                    reason="no assembler here")
def test_the_machine_code_is_the_assembly_source_beside_it(tmp_path):
    source = Path(etcd_clock.__file__).with_suffix(".S")
    subprocess.run(["as", "--64", str(source), "-o", str(tmp_path / "x.o")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(tmp_path / "x.o"),
                    str(tmp_path / "x.bin")], check=True)
    assert (tmp_path / "x.bin").read_bytes() == CODE


@pytest.mark.skipif(not X86_LINUX, reason="x86_64 Linux machine code")
@pytest.mark.parametrize("rate", [2.0, 0.5])
def test_the_machine_code_computes_the_same_clock_as_the_arithmetic(rate):
    """Run the bytes themselves in this process: each faked clock reads between the
    arithmetic's values for the true readings taken just before and after."""
    multiplier = rate_multiplier(rate)
    t0 = {cid: time.clock_gettime_ns(cid) - 10 * 10**9 for cid in CLOCKS.values()}
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(patched_code(t0, multiplier))
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    clock_gettime = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)(address)
    timespec = (ctypes.c_long * 2)()
    try:
        for cid in [*CLOCKS.values(), time.CLOCK_PROCESS_CPUTIME_ID]:
            before = time.clock_gettime_ns(cid)
            assert clock_gettime(cid, ctypes.addressof(timespec)) == 0
            after = time.clock_gettime_ns(cid)
            read = timespec[0] * 10**9 + timespec[1]
            assert 0 <= timespec[1] < 10**9
            if cid in t0:
                low, high = faked_ns(before, t0[cid], multiplier), \
                    faked_ns(after, t0[cid], multiplier)
                assert low <= read <= high, (cid, low, read, high)
                assert abs(read - before) > 4 * 10**9  # ran at the rate for 10 s
            else:
                assert before <= read <= after  # CPU time stays true
        assert clock_gettime(-1, ctypes.addressof(timespec)) < 0  # an error passes through
    finally:
        del clock_gettime
        page.close()


@pytest.mark.skipif(not X86_LINUX, reason="this process's x86_64 vDSO")
def test_this_process_vdso_has_clock_gettime_and_room_for_the_replacement():
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.endswith("[vdso]"):
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            break
    else:
        pytest.skip("no vDSO")
    image = ctypes.string_at(start, end - start)
    entry, image_end = vdso_layout(image)
    assert 0 < entry < image_end <= len(image)
    offset = tail_offset(len(image), image_end, len(patched_code({}, 1 << 32)))
    assert not any(image[offset:])
    with pytest.raises(InjectError):
        tail_offset(len(image), len(image) - 8, 64)
    with pytest.raises(InjectError):
        vdso_layout(b"\0" * 64)


def test_the_ptrace_capability_is_read_from_the_effective_set():
    container_root = "CapPrm:\t00000000a80435fb\nCapEff:\t00000000a80435fb\n"
    host_root = "CapEff:\t000001ffffffffff\n"
    assert not etcd_clock.has_capability(etcd_clock.CAP_SYS_PTRACE, container_root)
    assert etcd_clock.has_capability(etcd_clock.CAP_SYS_PTRACE, host_root)
    assert not etcd_clock.has_capability(etcd_clock.CAP_SYS_PTRACE, "")


def test_check_target_refuses_a_process_that_is_not_etcd(tmp_path):
    with pytest.raises(InjectError, match="refused"):
        etcd_clock.check_target(etcd_clock.os.getpid(), sys.executable)
    with pytest.raises(InjectError, match="refused"):
        etcd_clock.check_target(etcd_clock.os.getpid(), "/usr/local/bin/etcd")


# -- the journal entry (fake nodes) -------------------------------------------------------
class InjectorNodes(FakeNodes):
    """Fake nodes whose python3 answers like the injector."""

    def __init__(self, names, answer):
        super().__init__(names)
        self.answer = answer
        self.seen_open = []
        self.journal = None

    def exec(self, name, command, check=True):
        if command[:2] == ["python3", "-c"]:
            self.commands.append((name, command[3:]))
            self.seen_open.append([e.kind for e in self.journal.open_entries()])
            return (1 if "error" in self.answer else 0), self.answer
        return super().exec(name, command, check)

    def service(self, name, action, program):
        self.commands.append((name, ["supervisorctl", action, program]))
        return super().service(name, action, program)


def faults_with(tmp_path, answer):
    nodes = InjectorNodes(["n1", "n2", "n3"], answer)
    faults = Faults(fake_cluster(tmp_path, nodes))
    nodes.journal = faults.journal
    return faults, nodes


def test_the_fault_is_journalled_before_injection_and_healed_by_a_restart(tmp_path):
    faults, nodes = faults_with(tmp_path, '{"pid": 37, "rate": 2.0, "t0_wall": 1.5}\n')
    answer = faults.skew_etcd_clock("n2", 2.0)
    assert answer["t0_wall"] == 1.5
    assert nodes.seen_open == [["etcd-clock"]]  # written down before the injector ran
    assert nodes.commands[0] == ("n2", ["--binary", "/usr/local/bin/etcd", "--rate", "2.0"])
    [entry] = faults.journal.open_entries("etcd-clock")
    assert entry.data == {"node": "n2", "rate": 2.0}
    nodes.commands.clear()
    faults.heal()
    assert ("n2", ["supervisorctl", "stop", "etcd"]) in nodes.commands
    assert faults.journal.open_entries() == []


def test_a_refused_injection_is_one_error_and_leaves_nothing_open(tmp_path):
    faults, nodes = faults_with(tmp_path, '{"error": "process 1 is not etcd: refused"}\n')
    with pytest.raises(LabError) as raised:
        faults.skew_etcd_clock("n1", 2.0)
    assert "\n" not in str(raised.value) and "refused" in str(raised.value)
    assert faults.journal.open_entries() == []
    assert not any(c[1][:2] == ["supervisorctl", "stop"] for c in nodes.commands)


def test_an_injector_without_answer_is_undone_by_a_restart(tmp_path):
    faults, nodes = faults_with(tmp_path, "Traceback (most recent call last): ...\n")
    with pytest.raises(LabError, match="no answer"):
        faults.skew_etcd_clock("n1", 2.0)
    assert ("n1", ["supervisorctl", "stop", "etcd"]) in nodes.commands
    assert faults.journal.open_entries() == []


def test_heal_sweeps_a_faked_etcd_that_no_journal_entry_names(tmp_path):
    faults, nodes = faults_with(tmp_path, '{"pid": 37, "faked": true}\n')
    steps = faults.heal()
    for name in ("n1", "n2", "n3"):
        assert (name, ["supervisorctl", "stop", "etcd"]) in nodes.commands
    assert any("etcd restarted with the true clock" in step.detail for step in steps)
    nodes.answer = '{"pid": 37, "faked": false}\n'
    nodes.commands.clear()
    faults.heal()
    assert not any(command[1][:2] == ["supervisorctl", "stop"] for command in nodes.commands)

"""A clock-probe agent for Q9 (``faulty-clock``): standard library only, run in a node.

The experiment runs this file's source with the node's own ``python3`` (``python3 -c``),
with a faked clock where it injects a fault. The agent answers probes on a UDP port and,
every ``interval`` seconds by its own clock, sends each peer one probe: the four NTP
timestamps of every exchange (t1 sent, t2 received by the peer, t3 answered by the peer,
t4 answer received) are written out as JSON when it exits. A probe without an answer
within ``timeout`` is recorded as lost (an unknown outcome, not a verdict). At its start
and end the agent also reads its clock and the kernel's real clock at one moment, so the
analysis knows how far a faked clock was ahead without modelling libfaketime's start.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import socket
import sys
import threading
import time

# clock_gettime's system call number: calling the kernel directly bypasses libfaketime,
# which replaces the libc functions (Debian's build does not intercept syscall()).
_CLOCK_GETTIME = {"x86_64": 228, "aarch64": 113}
_CLOCK_REALTIME = 0


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()


def real_clock() -> float | None:
    """The kernel's real clock, read past libfaketime; None where that is not possible."""
    number = _CLOCK_GETTIME.get(platform.machine())
    if number is None or _LIBC is None:
        return None
    spec = _Timespec()
    if _LIBC.syscall(number, _CLOCK_REALTIME, ctypes.byref(spec)) != 0:
        return None
    return spec.tv_sec + spec.tv_nsec * 1e-9


def clock_pair() -> dict[str, float | None]:
    """The (possibly faked) clock and the real one at one moment: the fault's ground truth.

    The faked clock is read on both sides of the real one, and their mean kept."""
    before = time.time()
    real = real_clock()
    after = time.time()
    return {"faked": (before + after) / 2, "real": real, "spread": after - before}


# The first reading of the (possibly faked) clock, as early as the agent can take it:
# libfaketime's clock starts with the process, some milliseconds before this line, and a
# drifting clock already runs fast then; LOADED_PAIR measures how far it is ahead.
LOADED = time.time()
real_clock()  # the first call resolves the symbol; the pair below is then µs wide
LOADED_PAIR = clock_pair()


class LastRounds:
    """Which peers this agent has answered a probe of the last round for."""

    def __init__(self, peers: set[str], last_round: int) -> None:
        self.waiting = set(peers)
        self.last_round = last_round
        self.all_answered = threading.Event()
        if not self.waiting:
            self.all_answered.set()

    def answered(self, ident: str) -> None:
        """Note an answered probe (its id is "sender/round/receiver")."""
        sender, _, rest = ident.partition("/")
        round_text = rest.partition("/")[0]
        if round_text.isdigit() and int(round_text) >= self.last_round:
            self.waiting.discard(sender)
            if not self.waiting:
                self.all_answered.set()


def serve(sock: socket.socket, stop: threading.Event, rounds: LastRounds | None = None) -> None:
    """Answer every probe: t2 when it arrived, t3 just before the answer leaves."""
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, sender = sock.recvfrom(2048)
        except TimeoutError:
            continue
        t2 = time.time()
        try:
            probe = json.loads(data)
        except ValueError:
            continue
        probe["t2"] = t2
        probe["t3"] = time.time()
        sock.sendto(json.dumps(probe).encode(), sender)
        if rounds is not None:
            rounds.answered(str(probe.get("id", "")))


def probe(sock: socket.socket, peer: tuple[str, int], ident: str, timeout: float) -> dict:
    """One exchange with one peer; answers to earlier, timed-out probes are skipped."""
    t1 = time.time()
    sock.sendto(json.dumps({"id": ident, "t1": t1}).encode(), peer)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {"t1": t1, "lost": True}
        sock.settimeout(remaining)
        try:
            data, _sender = sock.recvfrom(2048)
        except TimeoutError:
            return {"t1": t1, "lost": True}
        t4 = time.time()
        answer = json.loads(data)
        if answer.get("id") == ident:
            return {"t1": answer["t1"], "t2": answer["t2"], "t3": answer["t3"], "t4": t4}


def main(argv: list[str]) -> None:
    """Parse the arguments, answer and send probes for every round, print the record."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--etcdlab-node-agent", action="store_true")
    parser.add_argument("--name", required=True)
    parser.add_argument("--bind", required=True, help="ip:port to answer probes on")
    parser.add_argument("--peers", required=True, help='JSON {"name": "ip:port"}')
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args(argv)
    host, port = args.bind.rsplit(":", 1)
    peers = {name: (a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1]))
             for name, a in json.loads(args.peers).items()}
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((host, int(port)))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((host, 0))
    stop = threading.Event()
    last_rounds = LastRounds(set(peers), args.rounds - 1)
    responder = threading.Thread(target=serve, args=(server, stop, last_rounds), daemon=True)
    responder.start()
    started = time.time()
    exchanges = []
    for round_index in range(args.rounds):
        due = started + args.warmup + round_index * args.interval
        time.sleep(max(0.0, due - time.time()))
        for peer, address in sorted(peers.items()):
            record = probe(client, address, f"{args.name}/{round_index}/{peer}", args.timeout)
            exchanges.append({"round": round_index, "peer": peer, **record})
    # Keep answering until every peer's last-round probe was answered (a lost one: until
    # the time the others can still take).
    last_rounds.all_answered.wait(args.warmup + args.timeout * len(peers) + 1.0)
    stop.set()
    responder.join()
    json.dump({"name": args.name, "loaded": LOADED, "started": started,
               "clock_at_start": LOADED_PAIR, "clock_at_end": clock_pair(),
               "exchanges": exchanges}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])

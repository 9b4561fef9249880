"""Benchmark the linearizability checker on Jepsen's 80 etcd histories (not a test).

    .venv/bin/python scripts/bench_linearizability.py [--repeat N] [--profile] [FOLDER]

FOLDER (default: tests/data/jepsen-etcd, the vendored histories) holds the etcd_NNN.log
files and verdicts.txt. Prints, for the fastest of N rounds, the total time
(parsing and checking every file, as Porcupine's own test of these files measures it), the
slowest file and how many verdicts agree with verdicts.txt. --profile runs one round under
cProfile and prints where the time went.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

from etcdlab.check import linearizability as lin

DEFAULT_FOLDER = Path(__file__).resolve().parents[1] / "tests" / "data" / "jepsen-etcd"
# Generous: a verdict is what is measured, "unknown" would count as a disagreement.
TIMEOUT_S = 120.0


def run_round(folder: Path, verdicts: dict[str, str]) -> tuple[float, float, str, float, int]:
    """Parse and check every listed history once.

    Returns (total s, total CPU s, slowest file, its s, verdicts agreeing). The CPU time is
    the checker's own: on a machine shared with other work it varies less than the clock.
    """
    total, slowest, slowest_s, agreeing = 0.0, "", -1.0, 0
    cpu_start = time.process_time()
    for name, expected in verdicts.items():
        text = (folder / name).read_text()
        start = time.perf_counter()
        result = lin.check(lin.parse_jepsen(text), lin.register_model, timeout_s=TIMEOUT_S)
        elapsed = time.perf_counter() - start
        total += elapsed
        if elapsed > slowest_s:
            slowest, slowest_s = name, elapsed
        agreeing += result.verdict == expected
    return total, time.process_time() - cpu_start, slowest, slowest_s, agreeing


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if a verdict disagrees with verdicts.txt."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the fastest is shown")
    parser.add_argument("--profile", action="store_true", help="profile one round (cProfile)")
    args = parser.parse_args(argv)
    verdicts_file = args.folder / "verdicts.txt"
    if not verdicts_file.is_file():
        print(f"error: no {verdicts_file}", file=sys.stderr)
        return 2
    verdicts = dict(line.split() for line in verdicts_file.read_text().splitlines()
                    if line.strip())
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run_round, args.folder, verdicts)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    total, cpu, slowest, slowest_s, agreeing = min(run_round(args.folder, verdicts)
                                                   for _ in range(max(1, args.repeat)))
    print(f"{len(verdicts)} histories: total {total:.3f} s ({cpu:.3f} s CPU; fastest of "
          f"{args.repeat} rounds), slowest {slowest} {slowest_s:.3f} s, "
          f"verdicts agreeing {agreeing}/{len(verdicts)}")
    return 0 if agreeing == len(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

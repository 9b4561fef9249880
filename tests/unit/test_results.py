"""Unit tests for etcdlab.results: validation, atomic JSON write, read, load."""

import dataclasses
import json
import math

import pytest

from etcdlab import results
from etcdlab.results import Result, load_results, read_result, utc_now_iso, write_result

METADATA = {
    "started_utc": "2025-06-16T23:35:00.000+00:00",
    "finished_utc": "2025-06-16T23:36:00.000+00:00",
    "etcd_version": "3.5.6",
    "node_count": 3,
}


def make_result(**changes) -> Result:
    """A small valid record; fixtures only, not a measurement."""
    fields = {
        "experiment": "conflicts",
        "status": "ok",
        "error": None,
        "metadata": METADATA,
        "params": {"workers": 2, "increments": 3},
        "summary": {"naive": {"lost_updates": 1}},
        "samples": {"naive": {"acknowledged": 6, "final_value": 5, "elapsed_s": 0.25}},
    }
    fields.update(changes)
    return Result(**fields)


def test_round_trip_gives_an_equal_record(tmp_path):
    record = make_result(samples={"values": (1, 2.5, None), "nested": {"ok": True}})
    path = write_result(tmp_path / "conflicts.json", record)
    again = read_result(path)
    assert again == record
    assert again.samples["values"] == [1, 2.5, None]  # tuples are stored as lists


def test_file_is_sorted_indented_json_with_schema_version(tmp_path):
    path = write_result(tmp_path / "conflicts.json", make_result())
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["schema_version"] == results.SCHEMA_VERSION
    assert list(data) == sorted(data)
    assert text.startswith('{\n  "error": null,')


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    write_result(tmp_path / "conflicts.json", make_result())
    write_result(tmp_path / "conflicts.json", make_result(params={"workers": 8}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conflicts.json"]
    assert read_result(tmp_path / "conflicts.json").params == {"workers": 8}


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = write_result(tmp_path / "conflicts.json", make_result())

    def broken_replace(source, target):
        raise OSError("disk went away")

    monkeypatch.setattr(results.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        write_result(path, make_result(params={"workers": 99}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conflicts.json"]
    assert read_result(path).params == {"workers": 2, "increments": 3}


def test_record_is_immutable_and_copies_its_input():
    samples = {"values": [1, 2]}
    record = make_result(samples=samples)
    samples["values"].append(3)
    assert record.samples["values"] == [1, 2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "failed"
    with pytest.raises(TypeError):
        record.samples["values"] = []


def test_failed_result_requires_an_error():
    with pytest.raises(ValueError, match="needs an error"):
        make_result(status="failed", error=None)
    failed = make_result(status="failed", error="etcdserver: request timed out")
    assert not failed.ok


def test_ok_result_cannot_carry_an_error():
    with pytest.raises(ValueError, match="cannot carry an error"):
        make_result(error="boom")


def test_unknown_status_is_rejected():
    with pytest.raises(ValueError, match="status must be one of"):
        make_result(status="done")


@pytest.mark.parametrize("missing", ["started_utc", "finished_utc"])
def test_metadata_needs_start_and_end(missing):
    metadata = {key: value for key, value in METADATA.items() if key != missing}
    with pytest.raises(ValueError, match=missing):
        make_result(metadata=metadata)


def test_end_before_start_is_rejected():
    metadata = {**METADATA, "finished_utc": "2025-06-16T23:00:00+00:00"}
    with pytest.raises(ValueError, match="earlier"):
        make_result(metadata=metadata)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ({"x": math.nan}, "NaN"),
        ({"x": {1: "a"}}, "non-string key"),
        ({"x": {1, 2}}, "set"),
    ],
)
def test_non_json_data_is_rejected_with_its_place(samples, message):
    with pytest.raises(ValueError, match=message):
        make_result(samples=samples)


def test_utc_now_iso_is_accepted_as_metadata():
    now = utc_now_iso()
    assert now.endswith("+00:00")
    make_result(metadata={"started_utc": now, "finished_utc": now})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 99}, "schema_version 99 is not supported"),
        ({"schema_version": None}, "not supported"),
        ({"extra": 1}, "unknown keys: extra"),
    ],
)
def test_bad_schema_is_rejected(tmp_path, change, message):
    path = write_result(tmp_path / "conflicts.json", make_result())
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(change)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_result(path)


def test_missing_schema_version_is_rejected(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"experiment": "conflicts"}', encoding="utf-8")
    with pytest.raises(ValueError, match="no schema_version"):
        read_result(path)


def test_load_results_reads_every_result_by_experiment(tmp_path):
    write_result(tmp_path / "conflicts.json", make_result())
    write_result(tmp_path / "election.json", make_result(experiment="election"))
    (tmp_path / "notes.txt").write_text("not a result", encoding="utf-8")
    loaded = load_results(tmp_path)
    assert sorted(loaded) == ["conflicts", "election"]
    assert loaded["election"].experiment == "election"


def test_load_results_rejects_two_files_for_one_experiment(tmp_path):
    write_result(tmp_path / "a.json", make_result())
    write_result(tmp_path / "b.json", make_result())
    with pytest.raises(ValueError, match="also in"):
        load_results(tmp_path)


def test_load_results_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing")

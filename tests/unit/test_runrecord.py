"""Run records are validated before use: every malformed or foreign field is refused with the reason."""
import json

import pytest

from lab import runrecord
from lab.network.teardown import run_values
from lab.runrecord import RecordError, RunRecord

GOOD = {"run_id": "tab1", "owner_pid": 4242, "owner_start": 100, "purpose": "test",
        "switches": ["tab1s1"], "ovs_bridges": [], "root_interfaces": ["tab1s1-eth1", "tab1s1-eth2"],
        "processes": {"4243": {"start": 101, "role": "host h1"}},
        "machine_sysctls": {"net.core.somaxconn": "4096"}, "machine_run_values": {}}


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(runrecord, "RECORD_DIR", tmp_path)
    return tmp_path


def write(run_dir, data=None, journal=None, name="tab1"):
    (run_dir / f"{name}.json").write_text(data if isinstance(data, str) else json.dumps(data))
    if journal is not None:
        (run_dir / f"{name}.pids").write_text(journal)
    return run_dir / f"{name}.json"


def test_a_good_record_loads_with_its_journal(run_dir):
    path = write(run_dir, GOOD, journal='[4250, 120, "process on h1: server"]\n[4251, 1')   # last line cut
    record = RunRecord.load(path)
    assert record.processes["4250"] == {"start": 120, "role": "process on h1: server"}
    assert "4251" not in record.processes


@pytest.mark.parametrize("change, reason", [
    ({"processes": []}, "processes: expected a mapping"),
    ({"root_interfaces": ["lo"]}, "'lo': not an interface name of run tab1"),
    ({"switches": ["eth0"]}, "'eth0': not an interface name of run tab1"),
    ({"root_interfaces": ["tab1s1-eth1; reboot"]}, "not an interface name"),
    ({"root_interfaces": ["tab1/../../etc"]}, "not an interface name"),
    ({"root_interfaces": ["tab1" + "x" * 20]}, "not an interface name"),
    ({"machine_sysctls": {"kernel.core_pattern": "1"}}, "'kernel.core_pattern': not one of the guarded"),
    ({"machine_run_values": {"net.core.rmem_max": "1; rm -rf /"}}, "expected one to four numbers"),
    ({"processes": {"1": {"start": 1, "role": "host h1"}}}, "PID 1 with start time 1"),
    ({"processes": {"77": {"start": None, "role": "host h1"}}}, "start time None"),
    ({"processes": {"abc": {"start": 1, "role": "x"}}}, "processes: 'abc'"),
    ({"owner_pid": -5}, "owner: PID -5"),
    ({"run_id": "../x"}, "run id '../x'"),
    ({"run_id": "tzzz"}, "does not match the file name"),
    ({"evil": 1}, "unexpected fields"),
])
def test_a_bad_field_is_refused_with_the_reason(run_dir, change, reason):
    path = write(run_dir, {**GOOD, **change})
    with pytest.raises(RecordError, match=reason.replace("(", r"\(").replace("[", r"\[")):
        RunRecord.load(path)


@pytest.mark.parametrize("text", ["{not json", "[]", "", "\xff\xfe"])
def test_unreadable_records_are_refused(run_dir, text):
    with pytest.raises(RecordError):
        RunRecord.load(write(run_dir, text))


@pytest.mark.parametrize("line", ["abc", "[1, 2]", '[-3, 5, "host"]', '[99, 5, 7]', '["9", 5, "x"]'])
def test_a_bad_journal_line_is_refused(run_dir, line):
    with pytest.raises(RecordError, match=r"tab1\.pids:1"):
        RunRecord.load(write(run_dir, GOOD, journal=line + "\n"))


def test_run_values_are_mininets_limits_where_it_would_write():
    before = {"net.core.rmem_max": "212992", "net.core.wmem_max": "33554432",
              "net.ipv4.tcp_rmem": "4096 131072 6291456", "net.core.somaxconn": "4096"}
    assert run_values(before) == {"net.core.rmem_max": "16777216", "net.ipv4.tcp_rmem": "10240 87380 16777216"}


def test_removing_a_record_removes_every_file_of_its_run_and_no_other(run_dir):
    path = write(run_dir, GOOD, journal="")
    for name in ("tab1.ctl", "tab1.tmp", "tab2.json", "tab10.json"):
        (run_dir / name).write_text("")
    RunRecord.load(path).remove()
    assert sorted(p.name for p in run_dir.iterdir()) == ["tab10.json", "tab2.json"]

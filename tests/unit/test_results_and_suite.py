"""The typed Result and results.json's contract, JUnit, socket-sample aggregation, and the suite's arithmetic
(repeats, pass rates and spreads, exit codes, an index that keeps earlier scenarios)."""
import json
from pathlib import Path
from xml.etree import ElementTree

from lab import sockets
from lab.results import CounterSet, GuestResult, HostResult, Result, Verdict, write_junit, write_result
from lab.suite import Run, SuiteResult, _merged_entries

DATA = Path(__file__).parent.parent / "data"


def _result(name="s", passed=True, observed=5, skipped=None):
    return Result(scenario=name, passed=passed, hosts={"h1": HostResult(ip="10.0.0.1", counters=CounterSet(
        before={"TcpExt": {"ListenOverflows": 3}}, after={"TcpExt": {"ListenOverflows": 10}},
        delta={"TcpExt": {"ListenOverflows": 7}}))},
        guests={"c": GuestResult(host="h2", program="client", events=[{"event": "summary", "connected": 4}])},
        expectations=[Verdict(check="h1: TcpExt.ListenOverflows >= 1", passed=passed, observed=observed,
                              message="ok" if passed else "expected: h1 ... observed 0", skipped=skipped)])


def test_counters_read_through_the_type_and_missing_is_none():
    r = _result()
    assert r.host("h1").counter("TcpExt.ListenOverflows") == 7
    assert r.host("h1").counter("TcpExt.ListenOverflows", "before") == 3
    assert r.host("h1").counter("TcpExt.NoSuchThing") is None
    assert r.guest("c").summary == {"event": "summary", "connected": 4}


def test_results_json_keeps_its_documented_shape_and_reads_back(tmp_path):
    r = _result()
    write_result(r, tmp_path / "results.json")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["scenario"] == "s" and data["passed"] is True and data["status"] == "PASS"
    assert data["hosts"]["h1"]["counters"]["delta"]["TcpExt"]["ListenOverflows"] == 7
    again = Result.from_json(tmp_path / "results.json")
    assert again == r


def test_an_older_results_json_still_reads():
    old = Result.from_json(DATA / "results-listen-overflow.json")     # written before the typed Result
    assert old.status == "PASS" and old.host("server").counter("TcpExt.ListenOverflows") >= 1
    assert old.machine == {} and old.kernel_events == []


def test_junit_has_a_case_per_check_and_says_why_it_failed(tmp_path):
    write_junit([_result("a"), _result("b", passed=False, observed=0), Result(scenario="c", skipped="no netem")],
                tmp_path / "j.xml")
    root = ElementTree.parse(tmp_path / "j.xml").getroot()
    suites = {s.get("name"): s for s in root}
    assert suites["a"].get("failures") == "0" and suites["b"].get("failures") == "1"
    assert suites["c"].get("skipped") == "1" and suites["c"][0][0].get("message") == "no netem"
    assert "observed 0" in suites["b"][0][0].get("message")


def test_a_check_that_could_not_be_judged_is_skipped_in_junit(tmp_path):
    write_junit([_result("k", passed=False, skipped="bpftrace is not installed")], tmp_path / "j.xml")
    suite = ElementTree.parse(tmp_path / "j.xml").getroot()[0]
    assert suite.get("skipped") == "1" and suite.get("failures") == "0"


def _records(name):
    return sockets.parse_ss((DATA / name).read_text())


def test_sample_aggregation_reads_what_ss_printed():
    s = sockets.aggregate(1.0, _records("ss-h2.txt"), port=9000, window_seen=False)
    assert s["send_q"] == 33112 and s["connections"] == 4
    assert s["skmem_tb"] == 628992 and s["cwnd"] == 101 and s["notsent"] == 33112


def test_a_missing_window_is_zero_only_when_this_ss_reports_windows():
    records = _records("ss-h2.txt")
    # the first connection has no snd_wnd (a zero window); the others show theirs: this ss reports windows
    assert "snd_wnd" not in records[0].info and records[1].info["snd_wnd"] == 65160
    assert sockets.aggregate(1.0, records, 9000)["snd_wnd"] == 0
    alone = records[:1]                    # with no evidence that this ss ever prints the field: not observed
    assert sockets.aggregate(1.0, alone, 9000, window_seen=False)["snd_wnd"] is None
    assert sockets.aggregate(1.0, alone, 9000, window_seen=True)["snd_wnd"] == 0


def test_no_connection_means_no_queue_was_observed():
    s = sockets.aggregate(0.5, [], port=9000)
    assert s["connections"] == 0 and s["send_q"] is None and s["recv_q"] is None and s["snd_wnd"] is None


def test_repeats_give_pass_rates_and_spreads():
    suite = SuiteResult(runs=[Run("s", "t", _result(observed=v, passed=v >= 5), Path("x"), k)
                              for k, v in enumerate([5, 9, 7, 3], 1)])
    (spread,) = suite.spreads()["s"]
    assert (spread.runs, spread.passed) == (4, 3) and spread.rate == 0.75
    assert spread.spread() == {"min": 3, "median": 6.0, "max": 9, "n": 4}


def test_exit_codes():
    ok = SuiteResult(runs=[Run("a", "", _result(), Path("x"))])
    failed = SuiteResult(runs=[Run("a", "", _result(passed=False), Path("x"))])
    skipped = SuiteResult(runs=[Run("a", "", Result(scenario="a", skipped="netem absent"), Path("x"))])
    errored = SuiteResult(runs=[Run("a", "", Result(scenario="a", error="boom"), Path("x"))])
    assert [ok.exit_code(), failed.exit_code(), skipped.exit_code(), errored.exit_code()] == [0, 1, 0, 2]
    assert skipped.exit_code(strict=True) == 3 and skipped.skipped() == [("a", "netem absent")]


def test_the_index_keeps_earlier_scenarios_of_the_same_folder(tmp_path):
    for name in ("old", "gone"):
        (tmp_path / name).mkdir()
    (tmp_path / "old" / "results.json").write_text("{}")
    (tmp_path / "summary.json").write_text(json.dumps([
        {"scenario": "old", "status": "PASS", "results": "old/results.json", "report": "old/report.html", "checks": "1/1"},
        {"scenario": "gone", "status": "PASS", "results": "gone/results.json", "report": "gone/report.html", "checks": "1/1"},
        {"scenario": "evil", "status": "PASS", "results": "../../etc/passwd", "report": "x", "checks": "1/1"}]))
    (tmp_path / "new").mkdir()
    suite = SuiteResult(runs=[Run("new", "t", _result("new"), tmp_path / "new")], root=tmp_path)
    names = [e["scenario"] for e in _merged_entries(tmp_path, suite, {})]
    assert names == ["new", "old"]       # gone: its results are gone; evil: outside the folder

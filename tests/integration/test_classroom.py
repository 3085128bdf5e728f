"""Exercises check themselves: a correct solution passes, an incorrect one fails with its hint shown."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.classroom import list_exercises

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
EXERCISES = [ex.name for ex in list_exercises()]


def _check(*args):
    return subprocess.run([sys.executable, "-m", "lab.cli", "check", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_at_least_six_exercises_with_handouts_and_teacher_notes():
    assert len(EXERCISES) >= 6
    for name in EXERCISES:
        handout = (ROOT / "exercises" / name / "handout.md").read_text()
        assert "**Goal.**" in handout and "**Questions.**" in handout
        notes = (ROOT / "teacher" / f"{name}.md").read_text()
        assert notes.startswith(f"# {name}: answers") and "**Questions.**" in notes
        assert not (ROOT / "exercises" / name / f"{name}.solution.yaml").exists(), "solutions stay in teacher/"


@pytest.mark.parametrize("name", EXERCISES)
def test_solution_passes(name):
    out = _check(name, "--scenario", str(ROOT / "teacher" / f"{name}.solution.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Well done." in out.stdout and "FAIL" not in out.stdout


@pytest.mark.parametrize("name", EXERCISES)
def test_wrong_attempt_fails_with_a_hint(name):
    out = _check(name, "--scenario", str(ROOT / "teacher" / f"{name}.wrong.yaml"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "  FAIL  " in out.stdout and "        hint: " in out.stdout


def test_labs_grades_a_class(tmp_path):
    labs = tmp_path / "class"
    copies = {"ada": "solution", "bob": "wrong", "cyd": "solution"}
    for student, which in copies.items():
        (labs / student).mkdir(parents=True)
        shutil.copy(ROOT / "teacher" / f"sndbuf-sizing.{which}.yaml", labs / student / "sndbuf.yaml")
    out = _check("sndbuf-sizing", "--labs", str(labs), "--out", str(tmp_path / "grades"))
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 4          # three students, four criteria
    as_json = json.loads((tmp_path / "grades.json").read_text())
    assert sorted((r["student"], r["criterion"]) for r in as_json) == sorted((r["student"], r["criterion"]) for r in rows)
    assert {r["status"] for r in rows} == {"graded"}
    assert (tmp_path / "grades-reports" / "ada" / "report.html").exists()
    by = {(r["student"], r["criterion"]): r["passed"] for r in rows}
    assert by[("ada", "at most a quarter second queued")] == "True"
    assert by[("bob", "at most a quarter second queued")] == "False"
    assert by[("cyd", "all 3 MB delivered")] == "True"
    assert {r["student"] for r in rows} == set(copies)


def test_student_session_through_cli_and_console(tmp_path):
    import pexpect                      # a missing module fails here: never a skip in root CI
    log = open(tmp_path / "session.log", "w")
    child = pexpect.spawn(sys.executable, ["-m", "lab.cli", "cli", "zero-window"], cwd=str(ROOT),
                          encoding="utf-8", timeout=30)
    child.logfile_read = log
    try:
        child.expect("its guests are ready to start by hand: server, client")
        child.expect("tcplab> ")
        child.sendline("start server")
        child.expect(r"started server on h1")
        child.expect("tcplab> ")
        child.sendline("sockconsole h2")
        child.expect("h2> ")
        child.sendline("connect 10.0.0.1 9000")
        child.expect(r"connected 10\.0\.0\.2:\d+ -> 10\.0\.0\.1:9000")
        child.expect("h2> ")
        child.sendline("nonblock on")
        child.expect("h2> ")
        for _ in range(40):                      # the server does not read: fill its window and our queue
            child.sendline("send 65536")
            i = child.expect([r"EAGAIN", r"sent \d+ bytes"])
            child.expect("h2> ")
            if i == 0:
                break
        else:
            pytest.fail("never saw EAGAIN")
        child.sendline("queues")
        child.expect(r"send-q (\d+) bytes")
        assert int(child.match.group(1)) > 0
        child.expect("h2> ")
        child.sendline("quit")
        child.expect("tcplab> ")
        child.sendline("counters h1")
        child.expect(r"TcpExt\.TCPToZeroWindowAdv\s+(\d+)")
        assert int(child.match.group(1)) >= 1
        child.expect("tcplab> ")
        child.sendline("sockets h1")
        child.expect(r"ESTAB\s+10\.0\.0\.1:9000\s+10\.0\.0\.2:\d+\s+(\d+)")
        assert int(child.match.group(1)) > 0       # Recv-Q: what we sent, unread
        child.expect("tcplab> ")
        child.sendline("stop server")
        child.expect("stopped server")
        child.expect("tcplab> ")
        child.sendline("exit")
        child.expect("network removed")
        child.expect(pexpect.EOF)
    finally:
        child.close()
        log.close()
    assert child.exitstatus == 0, (tmp_path / "session.log").read_text()

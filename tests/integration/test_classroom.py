"""Exercises check themselves: a correct solution passes, an incorrect one fails with its hint shown."""
import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

import yaml

from lab.classroom import grade, list_exercises, load_exercise, variants_of
from .helpers import ask, lab_prompt

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


def _variants(name):
    return list(range(len(variants_of(name)))) or [None]


def _attempts(name):
    return yaml.safe_load((ROOT / "teacher" / name / "attempts.yaml").read_text())["attempts"]


def _grade(name, variant, file, tmp_path):
    """Grade a teacher's file for one variant (the file is a template: the variant's numbers go in first)."""
    ex = load_exercise(name, variant=variant)
    answer = tmp_path / file
    answer.write_text(ex.text(ROOT / "teacher" / name / file))
    return grade(ex, answer)[1]


SOLUTIONS = [(n, v) for n in EXERCISES for v in _variants(n)]
ATTEMPTS = [(n, v, a["file"], a["fails"], a["hint"]) for n in EXERCISES for v in _variants(n) for a in _attempts(n)]


@pytest.mark.parametrize("name, variant", SOLUTIONS)
def test_the_solution_of_every_variant_passes(name, variant, tmp_path):
    grades = _grade(name, variant, "solution.yaml", tmp_path)
    assert all(g.passed for g in grades), [(g.criterion, g.message) for g in grades if not g.passed]


@pytest.mark.parametrize("name, variant, file, fails, hint", ATTEMPTS)
def test_each_wrong_attempt_fails_with_the_hint_aimed_at_it(name, variant, file, fails, hint, tmp_path):
    grades = {g.criterion: g for g in _grade(name, variant, file, tmp_path)}
    assert fails in grades, f"{file}: no criterion {fails!r} in {list(grades)}"
    assert not grades[fails].passed, f"{file} passed {fails!r}: {grades[fails].message}"
    assert hint in grades[fails].hint, f"{file}: the hint for {fails!r} was {grades[fails].hint!r}"


@pytest.mark.parametrize("name", EXERCISES)
def test_each_wrong_attempt_differs_from_the_start_in_its_misconception(name):
    start = (ROOT / "exercises" / name / "start.yaml").read_text()
    attempts = _attempts(name)
    assert len(attempts) >= 3, f"{name}: at least three wrong-but-plausible attempts"
    for a in attempts:
        text = (ROOT / "teacher" / name / a["file"]).read_text()
        assert text.splitlines()[0].startswith("# Misconception:"), a["file"]
        body = "\n".join(text.splitlines()[1:]) + "\n"
        assert body != start, f"{a['file']} is the start file itself"


def test_cli_check_names_the_failing_criterion_and_its_hint(tmp_path):
    ex = load_exercise("overflow-fix", student="ada")
    answer = tmp_path / "mine.yaml"
    answer.write_text(ex.text(ROOT / "teacher" / "overflow-fix" / "wrong-somaxconn.yaml"))
    out = _check("overflow-fix", "--scenario", str(answer), "--student", "ada", "--junit", str(tmp_path / "g.xml"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "  FAIL  no accept-queue overflow" in out.stdout
    assert "        hint: somaxconn only caps the backlog" in out.stdout
    assert 'failures="2"' in (tmp_path / "g.xml").read_text()


def _class_of(tmp_path, answers):
    """LABS/STUDENT/answer.yaml for each (student, text) in ANSWERS."""
    labs = tmp_path / "class"
    for student, text in answers.items():
        (labs / student).mkdir(parents=True)
        path = labs / student / "answer.yaml"
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return labs


def _rows(prefix):
    with open(f"{prefix}.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_class_with_hostile_submissions_is_graded_completely(tmp_path):
    """One answer per route a student could try; none may run code, write outside --out or hang the class."""
    marker = tmp_path / "marker"
    good = load_exercise("overflow-fix", student="ada").text(ROOT / "teacher" / "overflow-fix" / "solution.yaml")
    start = (ROOT / "exercises" / "overflow-fix" / "start.yaml").read_text()
    head = "title: t\nguests:\n  - {name: app, host: h1, program: server}\nexpect:\n  - 'h1: Tcp.InSegs >= 0'\n"
    answers = {
        "ada": good,
        "topofile": head + "topology: {name: t, file: evil.py}\n",
        "hopts": head + f"topology: {{name: single, args: [2], params: {{hopts: {{defaultRoute: 'dev lo; touch {marker} #'}}}}}}\n",
        "innamespace": head + "topology: {name: single, args: [2], params: {inNamespace: false}}\n",
        "namepath": f"name: {tmp_path}/outside\n" + head,
        "aliases": "a: &a [x, x, x, x, x, x]\n" + "".join(f"a{i}: &a{i} [*a, *a, *a, *a, *a, *a]\n" for i in range(9)),
        "garbage": b"\x00\xff\xfe binary",      # not UTF-8
        "nul": "title: t\x00\n",                  # UTF-8, but a control character YAML refuses
        "hang": start.replace("duration: 30", "duration: 600").replace("count: {{per_client}}", "count: 5")
                     .replace("timeout: 20", "timeout: 600").replace("accept: serial", "accept: never"),
    }
    labs = _class_of(tmp_path, answers)
    (labs / "topofile" / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (labs / "twofiles").mkdir()
    for name in ("a.yaml", "b.yaml"):
        (labs / "twofiles" / name).write_text(good)
    (labs / "link").mkdir()
    (labs / "link" / "answer.yaml").symlink_to("/etc/shadow")
    out = _check("overflow-fix", "--labs", str(labs), "--out", str(tmp_path / "grades"), "--timeout", "25")
    assert out.returncode == 0, out.stdout + out.stderr
    assert not marker.exists(), "a student's file ran code"
    assert not (tmp_path / "outside").exists(), "a student's file wrote outside --out"
    rows = _rows(tmp_path / "grades")
    status = {r["student"]: r["status"] for r in rows}
    assert status == {"ada": "graded", "topofile": "refused", "hopts": "refused", "innamespace": "refused",
                      "namepath": "refused", "aliases": "refused", "garbage": "refused", "nul": "refused", "hang": "timeout",
                      "twofiles": "refused", "link": "refused"}, status
    assert all(r["passed"] == "True" for r in rows if r["student"] == "ada")
    why = {r["student"]: r["message"] for r in rows}
    assert "tcplab runs topology files as code" in why["topofile"]
    assert "no parameter 'hopts'" in why["hopts"] and "no parameter 'inNamespace'" in why["innamespace"]
    assert ":1: name:" in why["namepath"] and "aliases" in why["aliases"]
    assert "not UTF-8" in why["garbage"] and "the character U+0000 is not allowed" in why["nul"] and "longer than 25" in why["hang"]
    assert "exactly one .yaml" in why["twofiles"] and "not a link" in why["link"]
    html = (tmp_path / "grades.html").read_text()
    assert "ada" in html and "<script" not in html


def test_parallel_grading_gives_the_same_verdicts_as_one_at_a_time(tmp_path):
    answers = {}
    for i, which in enumerate(["solution", "wrong-somaxconn", "wrong-staggered", "solution"]):
        student = f"s{i}"
        ex = load_exercise("overflow-fix", student=student)
        answers[student] = ex.text(ROOT / "teacher" / "overflow-fix" / f"{which}.yaml")
    labs = _class_of(tmp_path, answers)
    verdicts = {}
    for jobs in ("1", "2"):
        out = _check("overflow-fix", "--labs", str(labs), "--out", str(tmp_path / f"j{jobs}"), "--jobs", jobs)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "4/4 graded" in out.stdout
        verdicts[jobs] = sorted((r["student"], r["criterion"], r["passed"]) for r in _rows(tmp_path / f"j{jobs}"))
    assert verdicts["1"] == verdicts["2"]
    assert ("s1", "no accept-queue overflow", "False") in verdicts["1"] and ("s0", "no accept-queue overflow", "True") in verdicts["1"]


def test_student_session_through_cli_and_console(tmp_path):
    with lab_prompt(tmp_path / "session.log", "zero-window") as child:
        assert "its guests are ready to start by hand: server, client" in child.before
        ask(child, "start server --resume-after 300", r"started server on h1: .*--resume-after 300")
        ask(child, "sockconsole h2")
        ask(child, "connect 10.0.0.1 9000", r"connected 10\.0\.0\.2:\d+ -> 10\.0\.0\.1:9000")
        ask(child, "nonblock on")
        # Walkthrough 4 at a person's pace: the scenario's own resume-after (2 s) would be over by now, and
        # the window would never close; the --resume-after 300 typed at `start` is what keeps it shut.
        time.sleep(2.5)
        for _ in range(40):                      # the server does not read: fill its window and our queue
            if ask(child, "send 65536", r"EAGAIN|sent \d+ bytes").group(0) == "EAGAIN":
                break
        else:
            pytest.fail("never saw EAGAIN")
        assert int(ask(child, "queues", r"send-q (\d+) bytes").group(1)) > 0
        ask(child, "quit")
        assert int(ask(child, "counters h1", r"TcpExt\.TCPToZeroWindowAdv\s+(\d+)").group(1)) >= 1
        # Recv-Q on the server's side: what we sent, unread
        assert int(ask(child, "sockets h1", r"ESTAB\s+10\.0\.0\.1:9000\s+10\.0\.0\.2:\d+\s+(\d+)").group(1)) > 0
        ask(child, "stop server", "stopped server")

"""The classroom's pure parts: comparing an answer with its start file, hints aimed at misconceptions,
variants per student, the class dashboard, and the grade formats CI engines read."""
import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lab import library
from lab.classroom import changes, load_exercise, variants_of
from lab.classroom.dashboard import most_missed, render, shares
from lab.classroom.exercise import Criterion, render as render_text, variant_index
from lab.classroom.exports import autograding, junit
from lab.classroom.grading import Grade, aimed_hint
from lab.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
START = """title: t
topology: star,2
hosts:
  server:
    sysctl: {net.core.somaxconn: 4096}
guests:
  - {name: app, host: server, program: server, args: {port: 9000, backlog: 4, io: blocking}}
  - {name: cl1, host: c1, program: client, args: {mode: connect, server: "{server}:9000", count: 5}}
expect:
  - "server: TcpExt.ListenOverflows >= 0"
"""


def sc(text):
    return library.load_text(text, name="t")


def test_the_same_arguments_written_two_ways_are_the_same():
    other = START.replace("args: {port: 9000, backlog: 4, io: blocking}", "args: [--port, 9000, --backlog, 4]")
    assert changes(sc(START), sc(other), knobs=[]) == []


def test_changes_outside_the_knobs_are_named():
    staggered = START.replace('count: 5}}', 'count: 5}, start: 0.5}')
    bigger = START.replace("backlog: 4", "backlog: 32")
    knobs = ["guests.app.args.backlog", "hosts.server.sysctl.*"]
    assert changes(sc(START), sc(bigger), knobs) == []
    assert changes(sc(START), sc(staggered), knobs) == [("guests.cl1.start", 0.0, 0.5)]
    retargeted = START.replace('"{server}:9000"', '"{c2}:9000"')
    assert [k for k, _, _ in changes(sc(START), sc(retargeted), knobs)] == ["guests.cl1.args.server"]


def test_hints_aim_at_what_the_answer_did():
    c = Criterion(name="no overflow", check="server: TcpExt.ListenOverflows == 0", hint="generic",
                  hints=[{"when": {"guests.app.args.io": "changed"}, "hint": "epoll does not drain faster"},
                         {"when": {"guests.app.args.backlog": "< 19"}, "hint": "the queue holds backlog + 1"}])
    start = sc(START)
    assert aimed_hint(c, start, sc(START.replace("io: blocking", "io: epoll"))) == "epoll does not drain faster"
    assert aimed_hint(c, start, sc(START.replace("backlog: 4", "backlog: 10"))) == "the queue holds backlog + 1"
    assert aimed_hint(c, start, sc(START.replace("backlog: 4", "backlog: 40"))) == "generic"


def test_variants_are_drawn_per_student_and_rendered():
    assert variant_index("x", "ada", 3) == variant_index("x", "ada", 3)
    assert len({variant_index("x", f"s{i}", 3) for i in range(30)}) == 3
    assert render_text("count: {{clients}} of {{ n }}", {"clients": 5, "n": 2}, "f") == "count: 5 of 2"
    with pytest.raises(ScenarioError, match="not a variant value"):
        render_text("{{nope}}", {"clients": 5}, "f")


def test_at_least_three_exercises_have_variants_and_every_variant_loads():
    varied = [n for n in (p.name for p in sorted((ROOT / "exercises").iterdir())) if variants_of(n)]
    assert len(varied) >= 3, varied
    for name in varied:
        for i, values in enumerate(variants_of(name)):
            ex = load_exercise(name, variant=i)
            assert ex.values == values
            library.load_text(ex.start_text, name=name)
            assert "{{" not in ex.handout_text and "{{" not in ex.start_text


ROWS = [{"student": s, "status": "graded", "criterion": c, "passed": p, "hint": f"hint {c}", "message": "",
         "variant": 0} for s, c, p in [("ada", "a", True), ("ada", "b", True), ("bob", "a", True), ("bob", "b", False),
                                         ("cyd", "a", False), ("cyd", "b", False)]]
ROWS.append({"student": "dan", "status": "refused", "criterion": "submission", "passed": False, "hint": "",
             "message": "x.yaml:3: hosts: expected a mapping", "variant": None})


def test_dashboard_puts_the_most_missed_criterion_on_top(tmp_path):
    assert shares(ROWS) == {"a": (2, 3), "b": (1, 3)}
    assert most_missed(ROWS) == ("b", 1, 3, "hint b")

    class Ex:
        name, title = "overflow-fix", "a <b>title</b>"
    html = render(Ex, ROWS, tmp_path, tmp_path / "grades.html")
    assert html.index("Most missed: b") < html.index("Per student")
    assert "hosts: expected a mapping" in html and "<b>title" not in html and "<script" not in html


def test_grades_in_the_forms_ci_reads():
    class Ex:
        name = "overflow-fix"
    grades = [Grade(check="x", passed=True, criterion="no overflow", message="ok"),
              Grade(check="y", passed=False, criterion="served <all>", message="expected 20, observed 12", hint="h")]
    xml = junit(Ex, grades, 3.2)
    assert 'tests="2" failures="1"' in xml and "served &lt;all&gt;" in xml and "hint: h" in xml
    payload = json.loads(base64.b64decode(autograding(grades)))
    assert payload["status"] == "fail" and payload["max_score"] == 100
    assert [t["status"] for t in payload["tests"]] == ["pass", "fail"] and payload["tests"][0]["score"] == 50


@pytest.mark.parametrize("path, schema", [
    ("teacher/ci/github/.github/workflows/classroom.yml", "vendor.github-workflows"),
    ("teacher/ci/gitlab/.gitlab-ci.yml", "vendor.gitlab-ci"),
])
def test_ci_templates_validate_against_the_engines_schemas(path, schema, tmp_path):
    tool = shutil.which("check-jsonschema") or str(Path(__import__("sys").executable).parent / "check-jsonschema")
    ok = subprocess.run([tool, "--builtin-schema", schema, str(ROOT / path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "broken.yml"          # the validator really looks: a number where text belongs fails
    broken.write_text((ROOT / path).read_text().replace("runs-on: ubuntu-24.04", "runs-on: 5")
                      .replace("timeout: 20 minutes", "timeout: [20]"))
    bad = subprocess.run([tool, "--builtin-schema", schema, str(broken)], capture_output=True, text=True)
    assert bad.returncode != 0

"""Exercises that check themselves: a handout, a starting scenario, criteria as data, and a grader.

An exercise is a folder exercises/NAME/ with handout.md (for students), start.yaml (the scenario they
change) and exercise.yaml (the criteria). Teacher notes and solutions live apart, in teacher/.
Criteria kinds (each with a name and a hint shown when it fails):
    check: "server: TcpExt.ListenOverflows == 0"     a check on what the kernel did (lab/expect.py)
    unchanged: [client1, client2]                    these guests must run exactly as in start.yaml
    predicts: eagain.accepted                        the student's own expect must predict this value
    within: 0.25                                     ... with a band no wider than 25% of the value
The grader runs the student's scenario for real and grades by counters and events, like Kathará's lab
checker but on live kernel counters rather than declared settings.
"""
import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from . import expect, library
from .errors import LabError, ScenarioError
from .runner import run_scenario

EXERCISE_DIR = Path(__file__).resolve().parent.parent / "exercises"
CRITERION_KEYS = {"name", "check", "unchanged", "predicts", "within", "hint"}


@dataclass
class Criterion:
    name: str
    hint: str
    check: str = None
    unchanged: list = None
    predicts: str = None
    within: float = 0.25


@dataclass
class Exercise:
    name: str
    title: str
    folder: Path
    criteria: list

    @property
    def start(self):
        return self.folder / "start.yaml"

    @property
    def handout(self):
        return self.folder / "handout.md"


@dataclass
class Grade:
    criterion: str
    passed: bool
    observed: object
    expected: str
    message: str
    hint: str = ""


def list_exercises():
    return [load_exercise(p.name) for p in sorted(EXERCISE_DIR.iterdir()) if (p / "exercise.yaml").is_file()]


def load_exercise(name):
    folder = EXERCISE_DIR / name
    path = folder / "exercise.yaml"
    if not path.is_file():
        names = ", ".join(p.name for p in sorted(EXERCISE_DIR.iterdir()) if (p / "exercise.yaml").is_file())
        raise LabError(f"unknown exercise {name!r} (exercises: {names})")
    data = yaml.safe_load(path.read_text())
    criteria = []
    for i, c in enumerate(data.get("criteria") or []):
        unknown = set(c) - CRITERION_KEYS
        kinds = [k for k in ("check", "unchanged", "predicts") if k in c]
        if unknown or len(kinds) != 1 or "name" not in c or "hint" not in c:
            raise ScenarioError(str(path), 0, f"criteria[{i}]",
                                "each criterion has a name, a hint and one of check, unchanged, predicts"
                                + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""))
        criteria.append(Criterion(**c))
    return Exercise(name=name, title=data["title"], folder=folder, criteria=criteria)


def _guest_args(sc):
    return {g.name: (g.host, g.program, g.args) for g in sc.guests}


def grade(exercise, scenario_file=None, out_dir=None, progress=None):
    """Run the student's scenario (default: the starting one) and grade every criterion."""
    path = Path(scenario_file) if scenario_file else exercise.start
    start = library.load_scenario(str(exercise.start))
    sc = library.load_scenario(str(path))
    own = list(sc.checks)
    facts = library.facts_for(sc)
    guest_names = [g.name for g in sc.guests] + (["controller"] if sc.controller else [])
    checks = []
    for c in exercise.criteria:
        if c.check:
            try:
                checks.append(expect.resolve(expect.parse_check(c.check, c.hint), facts.hosts, guest_names,
                                             facts.counters))
            except expect.CheckSyntaxError as e:
                raise ScenarioError(str(path), 0, c.name, f"the exercise checks {c.check!r}, which this "
                                    f"scenario cannot answer: {e}") from None
    sc.checks = checks + own
    result = run_scenario(sc, out_dir, progress)
    if result.error or result.skipped:
        raise LabError(f"{path}: the run did not complete: {result.error or result.skipped}")
    verdicts = {v["check"]: v for v in result.expectations}
    grades = []
    for c in exercise.criteria:
        if c.check:
            v = verdicts[c.check.strip()]
            grades.append(Grade(c.name, v["passed"], v["observed"], v["expected"], v["message"], c.hint))
        elif c.unchanged:
            before, after = _guest_args(start), _guest_args(sc)
            changed = [g for g in c.unchanged if before.get(g) != after.get(g)]
            grades.append(Grade(c.name, not changed, ", ".join(changed) or "as given", "unchanged",
                                f"changed: {', '.join(changed)}" if changed else "ok: unchanged", c.hint))
        else:
            grades.append(_grade_prediction(c, sc, own, verdicts))
    return result, grades


def _grade_prediction(c, sc, own, verdicts):
    mine = [k for k in own if k.path == c.predicts and (k.op == "in" or (k.op == "==" and k.tolerance))]
    if not mine:
        return Grade(c.name, False, None, f"a check on {c.predicts} with a band",
                     f"no prediction: add a check like '...: first {c.predicts} in [LOW, HIGH]' to expect", c.hint)
    k = mine[0]
    low, high = k.value if k.op == "in" else (k.value - k.tolerance, k.value + k.tolerance)
    v = verdicts[k.text]
    observed = v["observed"]
    narrow = observed is not None and (high - low) <= 2 * c.within * max(abs(observed), 1)
    passed = bool(v["passed"] and narrow)
    why = ("ok" if passed else "your band missed the measured value" if not v["passed"]
           else f"your band is wider than ±{c.within:.0%} of the measured value")
    return Grade(c.name, passed, observed, f"[{low}, {high}]", f"{why}: predicted [{low}, {high}], measured {observed}",
                 c.hint)


def check_labs(exercise, labs_dir, out_prefix, progress=None):
    """Grade every student's copy (LABS/STUDENT/*.yaml); write OUT.csv and OUT.json, a row per student and criterion."""
    labs = Path(labs_dir)
    rows = []
    students = sorted(p for p in labs.iterdir() if p.is_dir())
    if not students:
        raise LabError(f"{labs}: no student folders (expected {labs}/STUDENT/<scenario>.yaml)")
    for student in students:
        files = sorted(student.glob("*.yaml"))
        if len(files) != 1:
            rows.append({"student": student.name, "criterion": "submission", "passed": False, "observed": len(files),
                         "expected": "one .yaml file", "message": f"found {len(files)} .yaml files", "hint": ""})
            continue
        if progress:
            progress(f"{student.name}: {files[0].name}")
        try:
            _, grades = grade(exercise, files[0], progress=None)
        except LabError as e:
            rows.append({"student": student.name, "criterion": "submission", "passed": False, "observed": None,
                         "expected": "a valid scenario that runs", "message": str(e), "hint": ""})
            continue
        rows += [dict(student=student.name, **asdict(g)) for g in grades]
    out = Path(out_prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "criterion", "passed", "observed", "expected", "message", "hint"])
        writer.writeheader()
        writer.writerows(rows)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1, default=str))
    return rows


def describe_start(exercise):
    """The starting scenario, as `tcplab show` prints it (used by `tcplab check --show`)."""
    return library.describe(library.load_scenario(str(exercise.start)))

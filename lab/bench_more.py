"""More `tcplab bench` sections: the kernel event stream's cost, grading a class (one at a time and in
parallel), and the stability of verdicts (lab/stability.py). Each returns figures; lab/bench.py's page keeps
every section's latest figures (docs/benchmarks.json) and renders them all (docs/benchmarks.md)."""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run_all(out, *extra):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lab.cli", "run", "all", "--out", out, "--quiet", *extra], cwd=ROOT,
                          capture_output=True, text=True)
    return time.monotonic() - started, proc.returncode


def tracing(say, rounds=2):
    """The library's wall time with and without the kernel event stream, alternating (a process each: each
    traced pass pays for its own bpftrace start)."""
    rows = []
    for k in range(rounds):
        for traced in ((True, False) if k % 2 == 0 else (False, True)):
            with tempfile.TemporaryDirectory() as out:
                wall, code = _run_all(out, *([] if traced else ["--no-trace"]))
                events = 0
                for path in Path(out).glob("*/results.json"):
                    events += json.loads(path.read_text()).get("trace", {}).get("events", 0) or 0
            rows.append({"traced": traced, "wall_s": round(wall, 1), "exit": code, "events": events})
            say(f"  {'traced    ' if traced else 'not traced'}: {wall:.1f} s (exit {code}), {events} kernel events")
    on = [r["wall_s"] for r in rows if r["traced"]]
    off = [r["wall_s"] for r in rows if not r["traced"]]
    cost = (sum(on) / len(on)) / (sum(off) / len(off)) - 1
    say(f"  tracing costs {cost:+.1%} of the library's wall time (means of {len(on)} alternating runs each)")
    return {"rows": rows, "cost": cost}


def classroom(say, students=30, jobs=(1, 2, 4), exercise="overflow-fix"):
    """Grade a class of STUDENTS copies of the shipped right and wrong answers, with each --jobs value; the
    time each took and whether any verdict differed from grading one at a time."""
    from .classroom import load_exercise
    teacher = ROOT / "teacher" / exercise
    files = ["solution.yaml"] + sorted(p.name for p in teacher.glob("wrong-*.yaml"))
    rows, verdicts = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        labs = Path(tmp) / "class"
        for i in range(students):
            student = f"student{i + 1:02d}"
            (labs / student).mkdir(parents=True)
            ex = load_exercise(exercise, student=student)
            (labs / student / "answer.yaml").write_text(ex.text(teacher / files[i % len(files)]))
        for n in jobs:
            prefix = Path(tmp) / f"grades-{n}"
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "lab.cli", "check", exercise, "--labs", str(labs),
                                   "--out", str(prefix), "--jobs", str(n)], cwd=ROOT, capture_output=True, text=True)
            wall = time.monotonic() - started
            rows_n = json.loads(prefix.with_suffix(".json").read_text())
            verdicts[n] = sorted((r["student"], r["criterion"], r["passed"]) for r in rows_n)
            failing = len({r["student"] for r in rows_n if not r["passed"]})
            rows.append({"jobs": n, "wall_s": round(wall, 1), "exit": proc.returncode, "students": students,
                         "failing": failing, "same_as_one": verdicts[n] == verdicts[jobs[0]]})
            say(f"  --jobs {n}: {students} students in {wall:.1f} s, {failing} failing, "
                f"verdicts {'identical to' if verdicts[n] == verdicts[jobs[0]] else 'DIFFERENT from'} --jobs {jobs[0]}")
    return {"exercise": exercise, "answers": files, "rows": rows}


def markdown(figures):
    """Lines for the sections of this module present in FIGURES."""
    from .stability import markdown as stability_table
    lines = []
    if "tracing" in figures:
        t = figures["tracing"]
        lines += ["", "## 6. The kernel event stream's cost (goal: at most +10% on the library)", "",
                  "`tcplab run all` with and without `--no-trace`, alternating, a fresh process each (each traced pass "
                  "starts its own bpftrace once; later runs in the process share it).", "",
                  "| run | traced | wall | kernel events | exit |", "|---|---|---|---|---|"]
        lines += [f"| {i + 1} | {'yes' if r['traced'] else 'no'} | {r['wall_s']} s | {r['events']:,} | {r['exit']} |"
                  for i, r in enumerate(t["rows"])]
        lines += ["", f"Tracing costs **{t['cost']:+.1%}** of the library's wall time (means). Events per second the "
                  "tracer sustains before its cap, and the 200-client storm traced: docs/kernel-events.md."]
    if "classroom" in figures:
        c = figures["classroom"]
        lines += ["", "## 7. Grading a class (one at a time and in parallel)", "",
                  f"`tcplab check {c['exercise']} --labs` over {c['rows'][0]['students']} students, copies of the "
                  f"shipped answers in turn ({', '.join(c['answers'])}), each in its own variant; each answer runs for "
                  "real in its own process.", "",
                  "| --jobs | wall | students failing | verdicts as with --jobs 1 |", "|---|---|---|---|"]
        lines += [f"| {r['jobs']} | {r['wall_s']} s | {r['failing']} | {'identical' if r['same_as_one'] else '**differ**'} |"
                  for r in c["rows"]]
    if "stability" in figures:
        s = figures["stability"]
        lines += ["", "## 8. Stability: the same verdict on every machine", "",
                  "The library run repeatedly with the machine's default congestion control set to cubic, bbr and reno "
                  "(each scenario pins its hosts' own: cubic unless it says otherwise), and with two CPU hogs keeping "
                  "both cores busy. For each check: how many runs passed, and the spread of what it observed "
                  "(min / median / max). The scenarios' bands are set from these spreads.", ""]
        lines += stability_table(s)
    return lines

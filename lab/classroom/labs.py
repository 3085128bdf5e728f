"""Grading a class: every submission in its own process, with its own time limit; rows written as they finish.

LABS/STUDENT/answer.yaml, one folder per student. Whatever one submission does (a file that does not parse,
a run that crashes, hangs or is killed), it becomes that student's row with a status and a message; the
class goes on, and Ctrl-C or a crash keeps every row already graded (OUT.csv and OUT.jsonl are appended as
each student finishes; OUT.json and the dashboard OUT.html are written at the end). A student's file is read as data only: nothing in it
is imported (only shipped topologies), and its results stay under OUT's folder.
"""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import LabError
from . import dashboard
from ..network import cleanup_dead_runs

FIELDS = ["student", "status", "variant", "criterion", "passed", "observed", "expected", "message", "hint", "report"]
STUDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ROOT = Path(__file__).resolve().parents[2]


def submissions(labs):
    """[(student, answer file or None, problem or None)] for every folder under LABS."""
    labs = Path(labs)
    if not labs.is_dir():
        raise LabError(f"{labs}: not a folder (expected {labs}/STUDENT/answer.yaml)")
    out = []
    for folder in sorted(p for p in labs.iterdir() if p.is_dir() and not p.is_symlink()):
        name = folder.name
        if not STUDENT.match(name):
            out.append((re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64] or "_", None,
                        "the folder name is not a student id (letters, digits, . _ -)"))
            continue
        files = sorted(p for p in folder.glob("*.y*ml"))
        regular = [p for p in files if p.is_file() and not p.is_symlink()]
        if len(files) != 1 or len(regular) != 1:
            out.append((name, None, f"expected exactly one .yaml file (a regular file, not a link), found "
                                    f"{len(files)}: {', '.join(p.name for p in files[:5])}"))
            continue
        out.append((name, regular[0], None))
    if not out:
        raise LabError(f"{labs}: no student folders (expected {labs}/STUDENT/answer.yaml)")
    return out


def _row(student, status, message="", **fields):
    return {"student": student, "status": status, "variant": fields.get("variant"),
            "criterion": fields.get("criterion", "submission"),
            "passed": fields.get("passed", False), "observed": fields.get("observed"),
            "expected": fields.get("expected", ""), "message": message, "hint": fields.get("hint", ""),
            "report": fields.get("report", "")}


class Writer:
    """Appends rows to OUT.csv and OUT.jsonl as students finish (thread-safe); OUT.json at the end."""

    def __init__(self, prefix):
        self.prefix = Path(prefix)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self.rows = []
        self.lock = threading.Lock()
        self.csv = open(self.prefix.with_suffix(".csv"), "w", newline="")
        self.jsonl = open(self.prefix.with_suffix(".jsonl"), "w")
        self.writer = csv.DictWriter(self.csv, fieldnames=FIELDS)
        self.writer.writeheader()

    def add(self, rows):
        with self.lock:
            for row in rows:
                self.rows.append(row)
                self.writer.writerow({k: row.get(k) for k in FIELDS})
                self.jsonl.write(json.dumps(row, default=str) + "\n")
            self.csv.flush()
            self.jsonl.flush()

    def close(self):
        self.csv.close()
        self.jsonl.close()
        order = sorted(self.rows, key=lambda r: r["student"])
        self.prefix.with_suffix(".json").write_text(json.dumps(order, indent=1, default=str))


def grade_in_child(exercise, student, answer, reports, timeout, extra=()):
    """Grade one answer in a child process (`python -m lab.classroom grade-one`) -> rows. A refusal, a
    crash, a hang past TIMEOUT: each is a row, never an exception."""
    out_dir = reports / student
    cmd = [sys.executable, "-m", "lab.classroom", "grade-one", exercise.name, str(answer), str(out_dir), student, *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM: the child's lab removes its network and writes partial results; then SIGKILL, and the
        # run record lets cleanup remove what a killed child left.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            cleanup_dead_runs()
        return [_row(student, "timeout", f"the run took longer than {timeout:g} s and was stopped")]
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                answer_rows = json.loads(line)
            except ValueError:
                break
            if answer_rows.get("status") == "graded":
                report = str(Path(student) / "report.html")
                return [_row(student, "graded", g.get("message", ""), criterion=g.get("criterion"),
                             passed=bool(g.get("passed")), observed=g.get("observed"), expected=g.get("expected"),
                             hint="" if g.get("passed") else g.get("hint", ""), report=report,
                             variant=answer_rows.get("variant"))
                        for g in answer_rows.get("grades", [])]
            return [_row(student, answer_rows.get("status", "error"), answer_rows.get("message", ""))]
    tail = (stderr or "").strip().splitlines()[-3:]
    return [_row(student, "error", f"the grader stopped with status {proc.returncode}: {' | '.join(tail)[-400:]}")]


def check_labs(exercise, labs_dir, out_prefix, jobs=1, timeout=300, progress=None, extra=()):
    """Grade every student's answer (LABS/STUDENT/*.yaml), JOBS at a time; rows to OUT.{csv,jsonl,json}.
    PROGRESS(done, total, failing, student) is called as each finishes. Returns the rows."""
    subs = submissions(labs_dir)
    writer = Writer(out_prefix)
    reports = Path(f"{out_prefix}-reports")
    reports.mkdir(parents=True, exist_ok=True)
    todo = list(subs)
    lock = threading.Lock()
    state = {"done": 0, "failing": 0}

    def finish(student, rows):
        writer.add(rows)
        with lock:
            state["done"] += 1
            state["failing"] += not all(r["passed"] for r in rows)
            if progress:
                progress(state["done"], len(subs), state["failing"], student)

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                student, answer, problem = todo.pop(0)
            if problem:
                finish(student, [_row(student, "refused", problem)])
            else:
                finish(student, grade_in_child(exercise, student, answer, reports, timeout, extra))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, jobs))]
    started = time.monotonic()
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    finally:
        writer.close()
        dashboard.write(exercise, writer.rows, reports, Path(f"{out_prefix}.html"))
    return writer.rows, time.monotonic() - started

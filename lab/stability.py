"""`tcplab bench --only stability`: does every scenario give the same verdict on every machine?

The library runs N times under each condition a teacher's machine may present: the machine's default
congestion control set to cubic (most distributions), bbr and reno, and two CPU hogs keeping both cores busy
(a small, busy VM). Each scenario pins its own hosts' congestion control (cubic unless it says otherwise), so
the machine's default should not matter; the figures show whether it does. For every check: the pass rate
and the spread of the observed value per condition: the bands in the scenarios are derived from these.

The machine's settings are put back afterwards (the default congestion control, and the list of algorithms
unprivileged namespaces may use, which setting a default extends).
"""
import contextlib
import json
import os
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .errors import LabError

ROOT = Path(__file__).resolve().parent.parent
CC = "/proc/sys/net/ipv4/tcp_congestion_control"
ALLOWED = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _write(path, value):
    with open(path, "w") as f:
        f.write(value)


@contextlib.contextmanager
def machine_congestion(name):
    """The root namespace's default congestion control set to NAME for the block, then put back (with the
    allowed list, which writing a default extends)."""
    from .network.sysctls import in_machine_netns
    from .runrecord import RunRecord
    from .sysctl import CONGESTION, normalize
    if os.geteuid() != 0:
        raise LabError("setting the machine's default congestion control needs root")
    if not in_machine_netns():
        raise LabError("the machine's default congestion control can be set only in the machine's own network "
                       "namespace (new namespaces copy it from there), and this process cannot write it here: "
                       "another network namespace, or a read-only /proc/sys")
    before_cc, before_allowed = _read(CC), _read(ALLOWED)
    # A run record names both as they were: if this process is killed (SIGKILL, a lost session), the next
    # lab run's cleanup of dead runs puts them back, as it does for a network's sysctls. Writing a default
    # also adds it to the allowed list, so that list is recorded with what the write made of it.
    allowed_key = "net.ipv4.tcp_allowed_congestion_control"
    record = RunRecord.create(purpose=f"stability: machine congestion control {name}")
    record.machine_sysctls = {CONGESTION: before_cc, allowed_key: before_allowed}
    record.machine_run_values = {CONGESTION: name}
    record.save()
    try:
        _write(CC, name)
    except OSError as e:
        record.remove()              # nothing was changed: nothing for a later cleanup to put back
        raise LabError(f"cannot set the machine's default congestion control to {name}: {e.strerror}") from None
    record.machine_run_values = {CONGESTION: name, allowed_key: normalize(_read(ALLOWED))}
    record.save()
    try:
        yield
    finally:
        _write(CC, before_cc)
        _write(ALLOWED, before_allowed)
        record.remove()


@contextlib.contextmanager
def cpu_hogs(count=2):
    """COUNT busy loops (one per core here) for the block; they are ours, ended by PID."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
             for _ in range(count)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


CONDITIONS = {
    "cubic": lambda: machine_congestion("cubic"),
    "bbr": lambda: machine_congestion("bbr"),
    "reno": lambda: machine_congestion("reno"),
    "cpu-hog": cpu_hogs,
}


def run_condition(condition, repeat, names, say, out_root=ROOT / "results" / "stability"):
    """Run NAMES REPEAT times under CONDITION -> {scenario: {"runs", "passed", "checks": [spread dicts]}}.
    The runs' results and their terminal output stay in OUT_ROOT/CONDITION/ (run.log) for a look afterwards."""
    out = Path(out_root) / condition
    for old in ([out] if names == ["all"] else [out / n for n in names]):   # a subset keeps the others' runs
        if old.exists():
            shutil.rmtree(old)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "run.log"
    say(f"  {condition}: {len(names) if names != ['all'] else 'the library'} x {repeat}, progress in {log_path}")
    with CONDITIONS[condition](), open(log_path, "w") as log:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "lab.cli", "run", *names, "--repeat", str(repeat), "--out",
                               str(out)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        wall = time.monotonic() - started
    summary = out / "summary.json"
    if not summary.exists():
        tail = log_path.read_text()[-1500:]
        raise LabError(f"stability under {condition}: the run exited {proc.returncode} without a summary.json; "
                       f"the end of {log_path}:\n{tail}")
    entries = json.loads(summary.read_text())
    table = {}
    for e in entries:
        row = table.setdefault(e["scenario"], {"runs": 0, "passed": 0, "skipped": 0, "checks": []})
        row["runs"] += 1
        row["passed"] += e["status"] == "PASS"
        row["skipped"] += e["status"] == "SKIP"
        if e.get("spread"):
            row["checks"] = e["spread"]
    bad = [f"{n} {r['passed']}/{r['runs']}" for n, r in table.items() if r["passed"] + r["skipped"] < r["runs"]]
    fresh = {e["scenario"] for e in entries if not e.get("earlier")}    # not the kept rows of other scenarios
    say(f"  {condition}: {len(fresh)} scenarios x {repeat} in {wall:.0f} s (exit {proc.returncode}); "
        f"scenarios not passing every run: {', '.join(bad) or 'none'}")
    return {"wall_s": wall, "exit": proc.returncode, "scenarios": table}


def stability(runs, say, names=("all",)):
    """RUNS: {condition: repeats}, e.g. {"cubic": 20, "bbr": 20, "reno": 10, "cpu-hog": 10}."""
    return {cond: run_condition(cond, n, list(names), say) for cond, n in runs.items()}


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def markdown(figures):
    """The stability table for docs/benchmarks.md: scenario, condition, runs, pass rate, each check's spread."""
    lines = ["| scenario | condition | runs | passed | check: min / median / max |", "|---|---|---|---|---|"]
    scenarios = sorted({s for f in figures.values() for s in f["scenarios"]})
    for name in scenarios:
        for cond, f in sorted(figures.items(), key=lambda kv: list(CONDITIONS).index(kv[0]) if kv[0] in CONDITIONS else 99):
            row = f["scenarios"].get(name)
            if not row:
                continue
            if row["skipped"] == row["runs"]:
                lines.append(f"| {name} | {cond} | {row['runs']} | skipped | |")
                continue
            spreads = []
            for c in row["checks"]:
                sp = c.get("spread")
                fig = f"{_fmt(sp['min'])} / {_fmt(sp['median'])} / {_fmt(sp['max'])}" if sp else "-"
                flag = "" if c["passed"] == c["runs"] else f" **{c['passed']}/{c['runs']}**"
                spreads.append(f"`{c['check'].split(':', 1)[1].strip()}`: {fig}{flag}")
            lines.append(f"| {name} | {cond} | {row['runs']} | {row['passed']}/{row['runs']} | {'<br>'.join(spreads)} |")
    return lines

"""`tcplab run` as a library: many scenarios, repeats with their spread, the suite's files. Returns a
SuiteResult; printing and exit codes are the CLI's (lab/cli/).

Repeats follow Flent's batch runs: each scenario N times, and per check the pass rate and the spread of
the observed value (min / median / max). A check that passes less than every time is a defect to fix.
"""
import json
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import library
from .report import key_figures, write_index
from .results import Result, write_junit
from .runner import run_scenario

OUR_FILES = ("results.json", "junit.xml", "report.html")


@dataclass
class Run:
    name: str
    title: str
    result: Result
    folder: Path
    repeat: int = 1


@dataclass
class CheckSpread:
    """One check over repeated runs: how often it passed and how the observed value spread."""
    check: str
    runs: int
    passed: int
    values: list = field(default_factory=list)

    @property
    def rate(self):
        return self.passed / self.runs if self.runs else 0.0

    def spread(self):
        numbers = sorted(v for v in self.values if isinstance(v, (int, float)) and not isinstance(v, bool))
        if not numbers:
            return None
        return {"min": numbers[0], "median": statistics.median(numbers), "max": numbers[-1], "n": len(numbers)}

    def to_dict(self):
        return {"check": self.check, "runs": self.runs, "passed": self.passed, "rate": round(self.rate, 3),
                "spread": self.spread()}


@dataclass
class SuiteResult:
    runs: list = field(default_factory=list)
    wall_s: float = 0.0
    root: Path = None
    index: Path = None

    def counts(self):
        statuses = [r.result.status for r in self.runs]
        return {s: statuses.count(s) for s in ("PASS", "FAIL", "SKIP", "ERROR", "INTERRUPTED")}

    def skipped(self):
        """(scenario, reason) for every skipped scenario and every check that could not be judged."""
        out = [(r.name, r.result.skipped) for r in self.runs if r.result.skipped]
        out += [(r.name, f"{v.check}: {v.skipped}") for r in self.runs for v in r.result.expectations if v.skipped]
        return out

    def spreads(self):
        """{scenario: [CheckSpread]} over the repeats of each scenario."""
        table = {}
        for r in self.runs:
            checks = table.setdefault(r.name, {})
            for v in r.result.expectations:
                s = checks.setdefault(v.check, CheckSpread(v.check, 0, 0))
                if v.skipped:
                    continue
                s.runs += 1
                s.passed += v.passed
                s.values.append(v.observed)
        return {name: list(checks.values()) for name, checks in table.items()}

    def exit_code(self, strict=False):
        """0 all passed; 1 a check failed; 2 bad input or a run error; 3 something was skipped (--strict)."""
        counts = self.counts()
        if counts["ERROR"] or counts["INTERRUPTED"]:
            return 2
        if counts["FAIL"]:
            return 1
        if strict and self.skipped():
            return 3
        return 0


def targets(refs, trusted=()):
    """Scenario names/files (or `all`) -> validated Scenarios; every file is validated before any network is
    built: a typo in the 9th fails in a second, not a minute."""
    names = []
    for ref in refs:
        names += [p.stem for p in library.scenario_paths()] if ref == "all" else [ref]
    return [library.load_scenario(n, trusted) for n in names]


def _fresh(folder, repeat):
    """Remove what an earlier run of this scenario left in FOLDER that this run will not rewrite: the
    top-level files when repeating, the run-N folders when not (only tcplab's own files)."""
    if repeat > 1:
        for name in OUR_FILES:
            (folder / name).unlink(missing_ok=True)
    else:
        for old in folder.glob("run-*"):
            if old.is_dir() and old.name[4:].isdigit():
                shutil.rmtree(old)


def run_suite(scenarios, out, repeat=1, capture=False, trusted=(), on_start=None, on_step=None, on_done=None,
              trace=True):
    """Run each scenario REPEAT times under OUT/NAME[/run-K]; call ON_START(n, total, sc), ON_STEP(text) and
    ON_DONE(run) as it goes. Writes OUT/junit.xml, OUT/summary.json and OUT/index.html (merged with earlier
    runs' entries in the same OUT)."""
    root = Path(out)
    suite = SuiteResult(root=root)
    total, n = len(scenarios) * repeat, 0
    started = time.monotonic()
    if trace:     # one bpftrace for the whole suite: its compile takes a minute under emulation
        from .runner import trace_ports
        from .trace.hub import plan
        plan(set().union(*(trace_ports(sc) for sc in scenarios)))
    try:
        for sc in scenarios:
            base = root / sc.name
            if base.exists():
                _fresh(base, repeat)
            for k in range(1, repeat + 1):
                n += 1
                folder = base / f"run-{k}" if repeat > 1 else base
                if on_start:
                    on_start(n, total, sc)
                result = run_scenario(sc, folder, on_step, capture=capture, trusted=trusted, trace=trace)
                run = Run(sc.name, sc.title, result, folder, k)
                suite.runs.append(run)
                if on_done:
                    on_done(run)
    finally:
        if trace:
            plan(())
    suite.wall_s = time.monotonic() - started
    write_junit([r.result for r in suite.runs], root / "junit.xml")
    spreads = suite.spreads() if repeat > 1 else {}
    entries = _merged_entries(root, suite, spreads)
    (root / "summary.json").write_text(json.dumps(entries, indent=1))
    suite.index = write_index(root, entries)
    return suite


def _merged_entries(root, suite, spreads):
    """This run's entries, plus earlier entries of other scenarios whose results are still in ROOT."""
    mine = {r.name for r in suite.runs}
    entries = []
    try:
        earlier = json.loads((root / "summary.json").read_text())
        earlier = [e for e in earlier if isinstance(e, dict)]
    except (OSError, ValueError):
        earlier = []
    for e in earlier:
        if e.get("scenario") not in mine and (root / str(e.get("results", ""))).resolve().is_relative_to(root.resolve()) \
                and (root / str(e.get("results", ""))).is_file():
            entries.append(dict(e, earlier=True))
    for r in suite.runs:
        res = r.result
        judged = [v for v in res.expectations if not v.skipped]
        entries.append({"scenario": r.name, "run": r.repeat, "status": res.status, "wall_s": res.wall_s,
                        "timeline_s": res.timeline_s,
                        "results": str((r.folder / "results.json").relative_to(root)),
                        "report": str((r.folder / "report.html").relative_to(root)),
                        "checks": f"{sum(v.passed for v in judged)}/{len(judged)}",
                        "skipped": res.skipped, "kernel": res.kernel,
                        "congestion": sorted(set(res.congestion.values())),
                        "figures": key_figures(res),
                        "spread": [s.to_dict() for s in spreads.get(r.name, [])] if r.repeat == 1 else []})
    return sorted(entries, key=lambda e: (e["scenario"], e.get("run", 1)))

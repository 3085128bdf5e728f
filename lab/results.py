"""Run results: the Result model, results.json and JUnit XML (for CI and graders)."""
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from xml.sax.saxutils import escape, quoteattr


@dataclass
class Result:
    """What one scenario run observed. results.json is this, as JSON (see docs/scenarios.md)."""

    scenario: str
    title: str = ""
    path: str = ""
    passed: bool = False
    skipped: str = None           # the reason, when the kernel cannot run it (e.g. netem absent)
    error: str = None             # the reason, when the run itself failed (exit 2)
    interrupted: str = None
    kernel: str = field(default_factory=platform.release)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    run_id: str = None
    wall_s: float = None
    timeline_s: float = None
    t0: float = None              # CLOCK_MONOTONIC at the timeline's start (events' `t` use it)
    teaches: str = ""
    topology: dict = field(default_factory=dict)   # hosts, switches, links [a, b, bw]
    captures: list = field(default_factory=list)   # pcap files per host interface (--capture)
    machine: dict = field(default_factory=dict)    # machine-wide limits hosts share (rmem_max caps SO_RCVBUF...)
    hosts: dict = field(default_factory=dict)      # host -> {ip, sysctls, counters: {before, after, delta}}
    guests: dict = field(default_factory=dict)     # guest -> {host, program, argv, exit, stderr, events}
    samples: dict = field(default_factory=dict)    # host -> [aggregated ss sample]
    sample_errors: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    expectations: list = field(default_factory=list)

    @property
    def status(self):
        if self.interrupted:
            return "INTERRUPTED"
        if self.error:
            return "ERROR"
        if self.skipped:
            return "SKIP"
        return "PASS" if self.passed else "FAIL"

    def to_dict(self):
        return dict(asdict(self), status=self.status)


def write_result(result, path):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(result.to_dict(), f, indent=1, default=str)
    os.replace(tmp, path)


def write_junit(results, path):
    """One <testsuite> per scenario run, one <testcase> per expectation."""
    suites = []
    for r in results:
        cases, failures, skipped, errors = [], 0, 0, 0
        cls = quoteattr(f"tcplab.{r.scenario}")
        if r.skipped or r.error or r.interrupted or not r.expectations:
            reason = r.skipped or r.error or r.interrupted or "no expectation was evaluated"
            tag = "skipped" if r.skipped else "error"
            skipped += bool(r.skipped)
            errors += not r.skipped
            cases.append(f'    <testcase classname={cls} name="run" time="{r.wall_s or 0}">'
                         f'<{tag} message={quoteattr(reason)}/></testcase>')
        for e in r.expectations:
            body = ""
            if not e["passed"]:
                failures += 1
                body = f'<failure message={quoteattr(e["message"])}>{escape(e.get("why") or "")}</failure>'
            cases.append(f'    <testcase classname={cls} name={quoteattr(e["check"])}>{body}</testcase>')
        suites.append(f'  <testsuite name={quoteattr(r.scenario)} tests="{len(cases)}" failures="{failures}" '
                      f'errors="{errors}" skipped="{skipped}" time="{r.wall_s or 0}">\n' + "\n".join(cases) +
                      "\n  </testsuite>")
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="tcplab">\n' + "\n".join(suites) +
                "\n</testsuites>\n")

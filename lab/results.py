"""What a run observed, as one typed Result, read the same way whether just produced or loaded from
results.json; and JUnit XML for CI. The JSON shape is a contract (docs/scenarios.md):
`scenario`, `passed`, `status`, `hosts.<host>.counters.{before,after,delta}.<Group>.<Counter>`, ...

    result = Result.from_json("results/listen-overflow/results.json")
    result.host("server").counter("TcpExt.ListenOverflows")      # the change during the run, or None
"""
import json
import os
import platform
import time
from typing import Any, Dict, List, Optional
from xml.sax.saxutils import escape, quoteattr

from pydantic import BaseModel, ConfigDict, Field

Counters = Dict[str, Dict[str, int]]


class _Model(BaseModel):
    # results.json may come from an older tcplab or another machine: unknown keys are ignored, missing ones
    # take their defaults; values are typed, so a reader never re-shapes dicts.
    model_config = ConfigDict(extra="ignore")


class Verdict(_Model):
    """One check, judged: what was expected, what was observed, and why it matters."""
    check: str
    passed: bool
    observed: Any = None
    expected: str = ""
    message: str = ""
    why: str = ""
    skipped: Optional[str] = None      # the reason, when the check could not be judged (e.g. no tracer)


class CounterSet(_Model):
    before: Counters = Field(default_factory=dict)
    after: Counters = Field(default_factory=dict)
    delta: Counters = Field(default_factory=dict)


class HostResult(_Model):
    ip: str = ""
    sysctls: Dict[str, str] = Field(default_factory=dict)
    counters: Optional[CounterSet] = None
    kernel: Dict[str, Any] = Field(default_factory=dict)   # kernel event counts: {kind: n, "drop": {REASON: n}}

    def counter(self, dotted, which="delta"):
        """'TcpExt.ListenOverflows' -> its change during the run (or its before/after value); None when this
        kernel or run has no such counter (never 0 for a missing value)."""
        if self.counters is None:
            return None
        group, _, name = dotted.partition(".")
        return getattr(self.counters, which).get(group, {}).get(name)


class GuestResult(_Model):
    host: str = ""
    program: str = ""
    argv: List[str] = Field(default_factory=list)
    exit: Optional[int] = None
    stderr: str = ""
    events: List[Dict[str, Any]] = Field(default_factory=list)

    def of(self, kind):
        return [e for e in self.events if e.get("event") == kind]

    @property
    def summary(self):
        """The guest's last summary event, or None when it did not write one (it did not finish)."""
        found = self.of("summary")
        return found[-1] if found else None


class Result(_Model):
    """What one scenario run observed. results.json is this, as JSON (see docs/scenarios.md)."""
    scenario: str
    title: str = ""
    path: str = ""
    passed: bool = False
    skipped: Optional[str] = None           # the reason, when the kernel cannot run it (e.g. netem absent)
    error: Optional[str] = None             # the reason, when the run itself failed (exit 2)
    interrupted: Optional[str] = None
    kernel: str = Field(default_factory=platform.release)
    started: str = Field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    run_id: Optional[str] = None
    wall_s: Optional[float] = None
    timeline_s: Optional[float] = None
    t0: Optional[float] = None              # CLOCK_MONOTONIC at the timeline's start (events' `t` use it)
    teaches: str = ""
    congestion: Dict[str, str] = Field(default_factory=dict)   # host -> congestion control it ran with
    topology: Dict[str, Any] = Field(default_factory=dict)     # hosts, switches, links [a, b, bw]
    captures: List[Dict[str, Any]] = Field(default_factory=list)
    machine: Dict[str, str] = Field(default_factory=dict)      # machine-wide limits hosts share
    hosts: Dict[str, HostResult] = Field(default_factory=dict)
    guests: Dict[str, GuestResult] = Field(default_factory=dict)
    samples: Dict[str, List[Dict[str, Any]]] = Field(default_factory=dict)
    sample_errors: List[str] = Field(default_factory=list)
    actions: List[Dict[str, Any]] = Field(default_factory=list)
    kernel_events: List[Dict[str, Any]] = Field(default_factory=list)
    trace: Dict[str, Any] = Field(default_factory=dict)        # {available, reason, events, dropped_by_cap}
    expectations: List[Verdict] = Field(default_factory=list)

    @property
    def status(self):
        if self.interrupted:
            return "INTERRUPTED"
        if self.error:
            return "ERROR"
        if self.skipped:
            return "SKIP"
        return "PASS" if self.passed else "FAIL"

    def host(self, name):
        try:
            return self.hosts[name]
        except KeyError:
            raise KeyError(f"no host {name!r} in this result (hosts: {', '.join(self.hosts)})") from None

    def guest(self, name):
        try:
            return self.guests[name]
        except KeyError:
            raise KeyError(f"no guest {name!r} in this result (guests: {', '.join(self.guests)})") from None

    def verdict(self, check):
        return next((v for v in self.expectations if v.check == check), None)

    def observations(self):
        """What checks look at (lab/expect.py): counter changes, guest events, socket samples, kernel events."""
        return {"counters": {h: r.counters.delta for h, r in self.hosts.items() if r.counters is not None},
                "events": {g: r.events for g, r in self.guests.items()},
                "finished": {g for g, r in self.guests.items() if r.summary is not None or r.program == "controller"},
                "samples": self.samples,
                "kernel": {h: r.kernel for h, r in self.hosts.items()} if self.trace.get("available") else None,
                "trace_reason": self.trace.get("reason"), "release": self.kernel}

    def to_dict(self):
        return dict(self.model_dump(mode="json"), status=self.status)

    @classmethod
    def from_json(cls, source):
        """A Result from a results.json path, its text, or its parsed dict."""
        if isinstance(source, dict):
            return cls.model_validate(source)
        if isinstance(source, (str, os.PathLike)) and not str(source).lstrip().startswith("{"):
            with open(source, "rb") as f:
                return cls.model_validate_json(f.read(64 << 20))
        return cls.model_validate_json(source)


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
        for v in r.expectations:
            body = ""
            if v.skipped:
                skipped += 1
                body = f"<skipped message={quoteattr(v.skipped)}/>"
            elif not v.passed:
                failures += 1
                body = f"<failure message={quoteattr(v.message)}>{escape(v.why or '')}</failure>"
            cases.append(f"    <testcase classname={cls} name={quoteattr(v.check)}>{body}</testcase>")
        suites.append(f'  <testsuite name={quoteattr(r.scenario)} tests="{len(cases)}" failures="{failures}" '
                      f'errors="{errors}" skipped="{skipped}" time="{r.wall_s or 0}">\n' + "\n".join(cases) +
                      "\n  </testsuite>")
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="tcplab">\n' + "\n".join(suites) +
                "\n</testsuites>\n")

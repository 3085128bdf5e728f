"""The kernel event stream of one run: its hosts' drops, retransmissions, resets, state changes and tcp_probe
samples, from the process's shared bpftrace (hub.py).

    ok, why_not = available()
    with Tracer({"h1": inode1, "h2": inode2}, ports={9000}, cap=20000) as tracer:  # attached on return
        ...                                                                         # the scenario runs
    result = tracer.result                    # TraceResult; also returned by tracer.stop()

A run that must go on without tracing where it is impossible uses try_start() instead of start():

    tracer = Tracer(hosts, ports={9000})
    ok, why = tracer.try_start()              # never raises; False with the reason (not root, no bpftrace...)
    ...
    result = tracer.stop()                    # TraceResult(available=False, reason=why) when it did not start

Mechanism: bpftrace (Debian's package). The tracepoints carry addresses and ports but no namespace; reading
the namespace of the socket or device needs a BPF program (tracefs filters cannot follow pointers), and
bpftrace is the packaged way to load one here (bcc compiles C against kernel headers, absent for this kernel;
libbpf would need a compiler at install time).

Clock: bpftrace's `nsecs` is bpf_ktime_get_ns(), i.e. CLOCK_MONOTONIC, the clock of time.monotonic() and of
the guests' `t`: an event's `t` is comparable with them as it is (tests/integration/test_kernel_trace.py
checks a marker's t against time.monotonic() read around it).

Past the cap: a run keeps its first `cap` events and, apart, its first `cap` tcp_probe events; later ones are
counted per kind in `over_by_kind` (and in `dropped_by_cap`), not kept. The kernel also bounds the rate
(program.py); what that leaves out is counted the same way.
"""
import time
from dataclasses import dataclass, field

from . import hub as hubs
from . import kernel, program
from .kernel import TraceError, available


@dataclass
class TraceResult:
    """What one run's tracer saw. `events`: dicts sorted by `t` (CLOCK_MONOTONIC seconds)."""
    available: bool
    reason: str = ""                                   # why not available, or why tracing failed
    events: list = field(default_factory=list)
    dropped_by_cap: int = 0                            # events not kept: past the cap, or the kernel's rate bound
    over_by_kind: dict = field(default_factory=dict)   # the same, per kind
    probe_thinned: int = 0                             # tcp_probe events left out by the per-socket gap
    lost: int = 0                                      # events the perf buffer lost while this run traced
    missed: int = None                                 # probe runs the kernel skipped (another BPF program was
                                                       # running on that CPU), machine-wide while this run traced
    errors: list = field(default_factory=list)         # the mechanism's own errors (bpftrace, parsing)
    limits: list = field(default_factory=list)         # what this kernel's tracepoints cannot show (kernel.limits)
    attach_s: float = None                             # start() until attached, seconds (0.0x when shared)
    cap: int = 0

    def counts(self):
        """{host: {kind: n, "drop.REASON": n}}: the per-host counts results.json will hold."""
        out = {}
        for e in self.events:
            per = out.setdefault(e["host"], {})
            per[e["kind"]] = per.get(e["kind"], 0) + 1
            if e["kind"] == "drop":
                key = f"drop.{e['reason']}"
                per[key] = per.get(key, 0) + 1
        return out

    def to_dict(self):
        return {"available": self.available, "reason": self.reason, "events": self.events,
                "dropped_by_cap": self.dropped_by_cap, "over_by_kind": self.over_by_kind,
                "probe_thinned": self.probe_thinned, "lost": self.lost, "missed": self.missed, "errors": self.errors,
                "limits": self.limits, "attach_s": self.attach_s, "cap": self.cap}


class Tracer:
    """The tracer of one run. HOSTS: {host name: netns inode} (None: every namespace, named "netns:INODE";
    for research); PORTS: the ports tcp_probe samples (none: no tcp_probe); CAP: events kept per run (and
    tcp_probe events, counted apart). SHARED: use the process's bpftrace (False: a private one, stopped with
    the run)."""

    def __init__(self, hosts, ports=None, cap=20000, probe_gap=0.001, shared=True):
        self.names = None if hosts is None else {int(inum): name for name, inum in hosts.items()}
        self.inodes = None if hosts is None else set(self.names)
        self.ports = frozenset(int(p) for p in (ports or ()))
        self.cap, self.probe_gap, self.shared = int(cap), float(probe_gap), shared
        self.hub = None
        self.result = None
        self._lines, self._probe_lines = [], []
        self._over = {}
        self._base = {}
        self._lost0 = self._err0 = self._received = 0
        self._missed0 = None
        self._attach_s = None
        self._why_not = None

    def add_line(self, line, tag):
        """Called by the hub's reader thread with each event line of this run's namespaces."""
        self._received += 1
        kept = self._probe_lines if tag == "P" else self._lines
        if len(kept) < self.cap:
            kept.append(line)
        else:
            kind = program.PROBES[tag][1]
            self._over[kind] = self._over.get(kind, 0) + 1

    def start(self):
        """Attach (or join the running bpftrace); return once events of these hosts are collected.
        Raises TraceError with the reason (not available, bpftrace failed to compile or attach)."""
        ok, why = available()
        if not ok:
            raise TraceError(why)
        t0 = time.monotonic()
        private = not self.shared or self.inodes is None
        if private:
            hub = hubs.Hub(self.ports, probe_gap=self.probe_gap, include_root=self.inodes is None).start()
        else:
            hub = hubs.acquire(self.ports, probe_gap=self.probe_gap)
        try:
            hub.register(self)
            _t, self._base = hub.barrier()
        except TraceError:
            hub.unregister(self)
            if private:
                hub.stop()
            raise
        self.hub = hub
        self._lost0, self._err0, self._missed0 = self.hub.lost, self.hub.stderr_count, self.hub.missed()
        self._attach_s = round(time.monotonic() - t0, 3)
        return self

    def try_start(self):
        """start(), but (True, "") or (False, the reason) instead of raising; stop() then reports it."""
        try:
            self.start()
        except TraceError as e:
            self._why_not = str(e)
            return False, self._why_not
        return True, ""

    def stop(self):
        """Collect this run's events and leave the shared bpftrace running. Never raises: a failure is
        reported in TraceResult.errors."""
        if self.result is not None:
            return self.result
        if self.hub is None:
            self.result = TraceResult(False, self._why_not or "not started", cap=self.cap)
            return self.result
        errors, end = [], {}
        try:
            self.hub.barrier()                  # twice: events of the other CPU's buffer are read by then
            _t, end = self.hub.barrier()
        except TraceError as e:
            errors.append(str(e))
        missed = self.hub.missed()
        self.hub.unregister(self)
        if not self.shared or self.inodes is None:
            self.hub.stop()
        self.result = self._build(end, errors)
        if missed is not None and self._missed0 is not None:
            self.result.missed = missed - self._missed0
        return self.result

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _build(self, end, errors):
        res = TraceResult(True, cap=self.cap, attach_s=self._attach_s, limits=kernel.limits() if self.ports else [])
        tables, layout = kernel.tables(), self.hub.layout
        for line in self._lines + self._probe_lines:
            inum = int(line.split("\t", 2)[1])
            host = self.names.get(inum) if self.names is not None else f"netns:{inum}"
            try:
                res.events.append(program.parse_event(line, layout, host, tables, kernel.symbolize))
            except (ValueError, KeyError) as e:
                res.errors.append(f"unparsed line {line.strip()[:120]!r}: {e}")
        res.events.sort(key=lambda e: e["t"])
        over, sent = dict(self._over), 0
        for (name, keys), value in end.items():
            if self.inodes is not None and keys[0] not in self.inodes:
                continue
            grew = value - self._base.get((name, keys), 0)
            if name == "over" and grew > 0:
                kind = program.CAP_KINDS[keys[1]]
                over[kind] = over.get(kind, 0) + grew
            elif name == "thin" and grew > 0:
                res.probe_thinned += grew
            elif name == "sent" and grew > 0:
                sent += grew
        # Lines the kernel printed for these hosts that never arrived (perf buffer overflow); bpftrace's own
        # "Lost N events" cannot say whose they were.
        res.lost = max(sent - self._received, 0) if end else self.hub.lost - self._lost0
        res.over_by_kind, res.dropped_by_cap = over, sum(over.values())
        new = self.hub.stderr[-min(self.hub.stderr_count - self._err0, len(self.hub.stderr)):] \
            if self.hub.stderr_count > self._err0 else []
        res.errors += errors + [f"bpftrace: {line}" for line in new[:10]]
        return res

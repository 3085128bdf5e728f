#!/usr/bin/env python3
"""trace_bench: what the kernel event stream costs, measured (the figures in docs/kernel-events.md).

    sudo .venv/bin/python examples/trace_bench.py attach          # start-up and per-run cost of the tracer
    sudo .venv/bin/python examples/trace_bench.py storm [N]       # events in a N-client storm (default 200)
    sudo .venv/bin/python examples/trace_bench.py flood           # events/s sustained: SYNs to a closed port
    sudo .venv/bin/python examples/trace_bench.py library         # `run all` wall time with and without

Each run builds networks: run it under `flock -o /tmp/tcplab-net.lock`.
"""
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import library, trace                    # noqa: E402
from lab.bench import STORM                       # noqa: E402
from lab.guests import GuestProcess               # noqa: E402
from lab.network import LabNetwork, NetworkSpec   # noqa: E402
from lab.runner import ScenarioRun                # noqa: E402


def cpu_children():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def attach():
    """A cold start (bpftrace compiles), then runs that join it, then the stop."""
    t = time.monotonic()
    ok, why = trace.available()
    checks = time.monotonic() - t
    cpu0 = cpu_children()
    rows = []
    for i in range(5):
        t = time.monotonic()
        tracer = trace.Tracer({"x": 1}, ports={9000}).start()
        started = time.monotonic() - t
        t = time.monotonic()
        tracer.stop()
        rows.append((started, time.monotonic() - t))
    t = time.monotonic()
    trace.shutdown()
    down = time.monotonic() - t
    print(json.dumps({"available_s": round(checks, 3), "first_start_s": round(rows[0][0], 3),
                      "later_starts_s": [round(r[0], 4) for r in rows[1:]], "stops_s": [round(r[1], 4) for r in rows],
                      "shutdown_s": round(down, 3), "bpftrace_cpu_s": round(cpu_children() - cpu0, 3)}))


class TracedRun(ScenarioRun):
    cap = 20000

    def _timeline(self, addresses):
        inodes = {h: trace.netns_inode(self.lab.host(h).pid) for h in self.lab.host_names()}
        self.tracer = trace.Tracer(inodes, ports={9000}, cap=self.cap).start()
        try:
            super()._timeline(addresses)
        finally:
            self.trace = self.tracer.stop()


def rates(events, window=0.1):
    if not events:
        return 0, 0.0
    ts = sorted(e["t"] for e in events)
    span = ts[-1] - ts[0]
    peak, j = 0, 0
    for i, t in enumerate(ts):
        while ts[j] < t - window:
            j += 1
        peak = max(peak, i - j + 1)
    return peak / window, (len(ts) / span if span else float("inf"))


def storm(clients=200, cap=20000):
    lines = "\n".join(f'  - {{name: cl{i}, host: c{i}, program: client, args: {{mode: connect, server: "{{server}}:9000", '
                      f'count: 1, timeout: 3, start-at: "{{t0+{clients * 0.04 + 1:.1f}}}"}}}}'
                      for i in range(1, clients + 1))
    sc = library.load_text(STORM.format(clients=clients, client_lines=lines), name=f"storm-{clients}")
    run = TracedRun(sc)
    run.cap = cap
    t = time.monotonic()
    res = run.execute()
    peak, mean = rates(run.trace.events)
    kinds = {}
    for e in run.trace.events:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    print(json.dumps({"clients": clients, "status": res.status, "wall_s": round(time.monotonic() - t, 2),
                      "events": len(run.trace.events), "kinds": kinds, "peak_per_s_100ms": round(peak),
                      "mean_per_s": round(mean), "dropped_by_cap": run.trace.dropped_by_cap,
                      "over_by_kind": run.trace.over_by_kind, "lost": run.trace.lost, "errors": run.trace.errors[:3]}))


def flood():
    """SYNs from h2 to a port where nothing listens on h1: each gives h1 a reset sent and a NO_SOCKET drop,
    and h2 a NO_SOCKET drop of that reset. How many events per second arrive, and what is lost past that."""
    with LabNetwork(NetworkSpec(topology="single", args=[2])) as lab:
        inodes = {h: trace.netns_inode(lab.host(h).pid) for h in lab.host_names()}
        for rate in (2000, 5000, 10000, 20000, 40000):
            count = rate * 2
            with trace.Tracer(inodes, cap=10 ** 6) as tracer:
                t = time.monotonic()
                g = GuestProcess("flood", "h2", "synflood", [f"{lab.host('h1').IP()}:9999", "--count", count,
                                                             "--rate", rate]).start(lab)
                g.wait(60)
                sent_s = time.monotonic() - t
            res = tracer.result
            peak, mean = rates(res.events)
            summary = g.summary() or {}
            print(json.dumps({"syn_rate_asked": rate, "syns": summary.get("sent", count), "send_s": round(sent_s, 2),
                              "events": len(res.events), "expected_about": 3 * count,
                              "mean_events_per_s": round(mean), "peak_per_s_100ms": round(peak),
                              "dropped_by_rate_bound": res.dropped_by_cap, "lost": res.lost,
                              "errors": res.errors[:2]}), flush=True)


ORDER = (False, True)


def library_wall():
    names = [e.name for e in library.list_scenarios()]
    out = {}
    for traced in ORDER:
        t = time.monotonic()
        statuses = []
        for name in names:
            sc = library.load_scenario(name)
            run = TracedRun(sc) if traced else ScenarioRun(sc)
            statuses.append(run.execute().status)
        wall = time.monotonic() - t
        out.setdefault("traced" if traced else "plain", []).append(
            {"wall_s": round(wall, 2), "passed": statuses.count("PASS"), "of": len(names)})
        print(json.dumps({"traced": traced, "wall_s": round(wall, 2), "statuses": statuses}), flush=True)
    trace.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "attach"
    if sys.argv[2:] == ["traced-first"]:
        ORDER = (True, False)
    ok, why = trace.available()
    if not ok:
        sys.exit(f"tracing unavailable: {why}")
    {"attach": attach, "storm": lambda: storm(int(sys.argv[2]) if len(sys.argv) > 2 else 200),
     "flood": flood, "library": library_wall}[what]()
    # `library traced-first` runs the traced pass first, to see the order's effect

#!/usr/bin/env python3
"""kernel_events: which kernel events really fire in each scenario, on which host, next to the counters.

Runs shipped scenarios with the same engine as `tcplab run`, and a research tracer (lab.trace, every network
namespace including the machine's) attached around each timeline. Events of the run's hosts are put on
them by namespace; drops in the machine's namespace are kept when their device is one of the run's switch
ports (named after the run id). Writes OUT/NAME.json per scenario (events, counts, counter deltas) and prints a
summary. Used for docs/kernel-events.md. Run as root from the project folder:

    sudo .venv/bin/python examples/kernel_events.py [--out DIR] [NAME ...]
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import library, trace                 # noqa: E402
from lab.runner import ScenarioRun             # noqa: E402

# Counters that the events can be compared with (docs/kernel-events.md, "Consistency").
COUNTERS = ["Tcp.RetransSegs", "TcpExt.TCPSynRetrans", "Tcp.OutRsts", "Tcp.AttemptFails", "Tcp.EstabResets",
            "TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.TCPReqQFullDrop", "TcpExt.TCPReqQFullDoCookies",
            "TcpExt.SyncookiesSent", "TcpExt.TCPAbortOnOverflow", "TcpExt.TCPRcvQDrop", "TcpExt.TCPZeroWindowDrop",
            "TcpExt.TCPBacklogDrop", "TcpExt.TCPOFODrop", "TcpExt.TCPTimeouts", "TcpExt.TCPLossProbes",
            "TcpExt.TCPWinProbe", "TcpExt.TCPToZeroWindowAdv", "TcpExt.TCPRcvCollapsed", "TcpExt.PruneCalled",
            "TcpExt.RcvPruned", "TcpExt.OfoPruned", "TcpExt.TCPAbortOnData", "TcpExt.TCPAbortOnClose",
            "TcpExt.TCPAbortOnTimeout", "TcpExt.TCPAbortOnLinger", "TcpExt.TCPSpuriousRTOs",
            "TcpExt.TCPLostRetransmit", "TcpExt.TCPFastRetrans", "TcpExt.TCPSlowStartRetrans",
            "TcpExt.TCPRetransFail", "TcpExt.TCPSynRetrans", "TcpExt.TCPACKSkippedSynRecv", "Tcp.InErrs",
            "TcpExt.TCPMemoryPressures", "TcpExt.TCPDSACKRecv", "TcpExt.TCPDSACKOldSent", "TcpExt.PAWSEstab",
            "TcpExt.DelayedACKLost", "Tcp.ActiveOpens", "Tcp.PassiveOpens", "TcpExt.TCPWantZeroWindowAdv",
            "TcpExt.SyncookiesRecv", "TcpExt.SyncookiesFailed"]


def consistency(events, counters):
    """Per host: [(what, events count, counter name, counter value)] for what both count."""
    def n(pred):
        return sum(1 for e in events if pred(e))

    def segs(kinds):
        return sum(e.get("segs", 1) for e in events if e["kind"] in kinds)

    def drops(*reasons):
        return n(lambda e: e["kind"] == "drop" and e["reason"] in reasons)

    c = counters.get
    return [
        ("SYN and SYN-ACK retransmissions", n(lambda e: e["kind"] in ("syn-retransmit", "synack-retransmit")),
         "TcpExt.TCPSynRetrans", c("TcpExt.TCPSynRetrans", 0)),
        ("retransmitted segments (segs of sent retransmissions)",
         segs(("retransmit", "syn-retransmit", "synack-retransmit")), "Tcp.RetransSegs", c("Tcp.RetransSegs", 0)),
        ("failed retransmissions (events)", n(lambda e: e["kind"] == "retransmit-failed"),
         "TcpExt.TCPRetransFail", c("TcpExt.TCPRetransFail", 0)),
        ("resets sent", n(lambda e: e["kind"] == "reset-sent"), "Tcp.OutRsts", c("Tcp.OutRsts", 0)),
        ("drops TCP_LISTEN_OVERFLOW", drops("TCP_LISTEN_OVERFLOW"), "TcpExt.ListenOverflows",
         c("TcpExt.ListenOverflows", 0)),
        ("drops NO_SOCKET in cookie_v4_check", n(lambda e: e["kind"] == "drop" and e["reason"] == "NO_SOCKET"
                                                 and e["location"] == "cookie_v4_check"), "", None),
        ("drops TCP_ZEROWINDOW", drops("TCP_ZEROWINDOW"), "TcpExt.TCPZeroWindowDrop", c("TcpExt.TCPZeroWindowDrop", 0)),
        ("drops TCP_OLD_DATA", drops("TCP_OLD_DATA"), "TcpExt.DelayedACKLost", c("TcpExt.DelayedACKLost", 0)),
        ("drops SOCKET_BACKLOG", drops("SOCKET_BACKLOG"), "TcpExt.TCPBacklogDrop", c("TcpExt.TCPBacklogDrop", 0)),
        ("drops PROTO_MEM", drops("PROTO_MEM"), "TcpExt.TCPRcvQDrop", c("TcpExt.TCPRcvQDrop", 0)),
        ("connects (CLOSE->SYN_SENT)", n(lambda e: e["kind"] == "state" and e["new"] == "SYN_SENT"),
         "Tcp.ActiveOpens", c("Tcp.ActiveOpens", 0)),
    ]


class TracedRun(ScenarioRun):
    """A scenario run with a research tracer around its timeline (the window of its counter deltas)."""

    tracer = None
    hosts_only = False       # True: the run's tracer as tcplab will use it (its hosts, the shared bpftrace)

    def _timeline(self):
        self.inodes = {h: trace.netns_inode(self.lab.host(h).pid) for h in self.lab.host_names()}
        self.ports_prefix = self.lab.run_id
        self.trace_t0 = time.monotonic()
        if self.hosts_only:
            self.tracer = trace.Tracer(self.inodes, ports={9000, 9001}, cap=200000).start()
        else:
            self.tracer = trace.Tracer(None, ports={9000, 9001}, cap=200000, shared=False).start()
        try:
            super()._timeline()
        finally:
            self.result_trace = self.tracer.stop()


def attribute(run):
    """The run's events: its hosts by namespace, the machine's drops by the run's switch ports."""
    if run.hosts_only:
        return list(run.result_trace.events)
    by_inode = {f"netns:{inum}": host for host, inum in run.inodes.items()}
    root = f"netns:{trace.netns_inode()}"
    out = []
    for e in run.result_trace.events:
        if e["host"] in by_inode:
            out.append(dict(e, host=by_inode[e["host"]]))
        elif e["host"] == root and e["kind"] == "drop" and (e.get("dev") or "").startswith(run.ports_prefix):
            out.append(dict(e, host="switch:" + e["dev"][len(run.ports_prefix):]))
    return out


def counts(events):
    per = {}
    for e in events:
        if e["kind"] == "probe":
            key = "probe"
        elif e["kind"] == "drop":
            key = f"drop.{e['reason']} ({e['location']}{', ' + e['dev'] if e.get('dev') else ''})"
        elif e["kind"] == "retransmit-failed":
            key = f"retransmit-failed.{e.get('err')}"
        elif e["kind"] == "reset-sent":
            key = f"reset-sent.{e.get('reason')} (state {e.get('state')})"
        elif e["kind"] == "state":
            key = f"state {e['old']}->{e['new']}"
        else:
            key = e["kind"]
        per.setdefault(e["host"], {}).setdefault(key, 0)
        per[e["host"]][key] += 1
    return per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/tcplab-kernel-events")
    ap.add_argument("--hosts-only", action="store_true", help="trace as tcplab does: the run's hosts only")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    ok, why = trace.available()
    if not ok:
        sys.exit(f"tracing unavailable: {why}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or [e.name for e in library.list_scenarios()]:
        sc = library.load_scenario(name)
        run = TracedRun(sc, trace=False)     # this example attaches its own tracer around the timeline
        run.hosts_only = args.hosts_only
        res = run.execute()
        if res.skipped or res.error or run.tracer is None:
            print(f"== {name}: {res.status} {res.skipped or res.error or ''}")
            continue
        events = attribute(run)
        deltas = {h: v.counters.delta for h, v in res.hosts.items() if v.counters is not None}
        chosen = {h: {c: deltas[h].get(c.split(".")[0], {}).get(c.split(".")[1], 0) for c in COUNTERS} for h in deltas}
        chosen = {h: {c: v for c, v in cs.items() if v} for h, cs in chosen.items()}
        table = {h: consistency([e for e in events if e["host"] == h], chosen.get(h, {})) for h in deltas}
        summary = {"scenario": name, "status": res.status, "counts": counts(events), "counters": chosen,
                   "consistency": table,
                   "dropped_by_cap": run.result_trace.dropped_by_cap, "lost": run.result_trace.lost,
                   "probe_thinned": run.result_trace.probe_thinned, "errors": run.result_trace.errors,
                   "missed": run.result_trace.missed,
                   "t0": res.t0, "inodes": run.inodes}
        (out / f"{name}.json").write_text(json.dumps(dict(summary, events=events), indent=1))
        print(f"== {name}: {res.status}, {len(events)} events, cap {summary['dropped_by_cap']}, "
              f"lost {summary['lost']}, missed {summary['missed']}, errors {summary['errors'][:2]}")
        for failed in (v for v in res.expectations if not v.passed):
            print(f"  FAILED: {failed.message}"[:400])
        for host in sorted(set(summary["counts"]) | set(chosen)):
            print(f"  {host}: events {summary['counts'].get(host, {})}")
            print(f"  {' ' * len(host)}  counters {chosen.get(host, {})}")
            rows = [r for r in table.get(host, []) if r[1] or r[3]]
            for what, ev, counter, value in rows:
                mark = "" if value is None else ("  agree" if ev == value else "  DIFFER")
                print(f"  {' ' * len(host)}  {what}: events {ev}" + (f", {counter} {value}{mark}" if counter else ""))


if __name__ == "__main__":
    main()

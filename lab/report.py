"""report.html from a Result: what the kernel did on each host, with pictures. Self-contained.

The report loads nothing from the network and runs no script: styles and SVG plots are inline, so it
opens from a file, a CI artifact or a synced Vagrant folder. Every text from a scenario is escaped.
It reads the typed Result (lab/results.py), the same object whether just produced or loaded from
results.json (`tcplab report FOLDER` re-renders one).
"""
from html import escape
from pathlib import Path

from . import counters, plots
from .results import Result

NOTABLE = ("TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.TCPToZeroWindowAdv",
           "TcpExt.TCPFromZeroWindowAdv", "TcpExt.TCPWinProbe", "TcpExt.TCPSynRetrans", "TcpExt.SyncookiesSent",
           "TcpExt.TCPReqQFullDrop", "Tcp.OutRsts", "Tcp.RetransSegs", "TcpExt.TCPTimeouts",
           "TcpExt.TCPAbortOnData", "TcpExt.TCPAbortOnClose")

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:1040px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
.status{display:inline-block;padding:.1em .6em;border-radius:4px;color:#fff;font-weight:bold}
.PASS{background:#2a7d2a}.FAIL{background:#c0392b}.SKIP{background:#888}.ERROR,.INTERRUPTED{background:#b35900}
.narrative{background:#f4f7fb;border-left:4px solid #1f77b4;padding:.6em 1em}
pre{white-space:pre-wrap;word-break:break-all} pre.teaches{background:#fafafa;padding:.8em;border:1px solid #eee}
table{border-collapse:collapse;width:100%;margin:.5em 0} td,th{border-bottom:1px solid #eee;padding:.25em .5em;
text-align:left;vertical-align:top} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fdecea} tr.skip td{background:#f3f3f3} .muted{color:#777;font-size:.9em}
table.matrix td.num{min-width:4em} table.matrix td.zero{color:#ccc}
svg.plot{width:100%;max-width:680px;display:block;margin:.8em 0} svg.topo{width:100%;max-width:820px}
svg text{font:11px sans-serif;fill:#333} svg .title{font-size:13px;font-weight:bold}
svg .grid{stroke:#eee} svg .axis{stroke:#999} svg .ref{stroke:#c0392b;stroke-dasharray:4 3;fill:#c0392b}
svg .link{stroke:#888;stroke-width:2} svg .host{fill:#dbe9f6;stroke:#1f77b4} svg .switch{fill:#eee;stroke:#666}
svg .node{font-weight:bold} svg .label{fill:#c0392b}
"""


def _events(result, kind=None):
    for name, g in result.guests.items():
        for e in g.events:
            if kind is None or e.get("event") == kind:
                yield name, e


def narrative(result):
    """A few sentences, generated from the results, of what happened and why."""
    s = []
    peaks = {}
    for guest, e in _events(result, "accept-queue"):
        if e.get("length", -1) > peaks.get(guest, (-1,))[0]:
            peaks[guest] = (e["length"], e.get("backlog"), e.get("t_rel", 0))
    for guest, (length, backlog, t) in peaks.items():
        host = result.guests[guest].host
        full = " = backlog + 1" if backlog is not None and length == backlog + 1 else ""
        s.append(f"{host}'s accept queue ({guest}) reached {length} (backlog {backlog}{full}) at {t:.2f} s.")
    for host, info in result.hosts.items():
        parts = [f"{v:,} {name.split('.', 1)[1]}" for name in NOTABLE if (v := info.counter(name))]
        if parts:
            s.append(f"{host} counted " + ", ".join(parts) + ".")
    said = kernel_said(result)
    if said:
        s.append(said)
    for guest, g in result.guests.items():
        summ = g.summary or {}
        if g.program == "client" and summ.get("mode") == "connect":
            outcomes = ", ".join(f"{summ[k]} {k}" for k in ("connected", "refused", "reset", "timeout") if summ.get(k))
            lat = summ.get("max_latency_s")
            s.append(f"{guest} ({g.host}): {outcomes or 'no connection'}"
                     + (f"; the slowest connect took {lat:.2f} s" if lat else "") + ".")
        elif g.program == "client" and summ.get("mode") == "write":
            bits = [f"the kernel accepted {summ.get('accepted', 0):,} bytes"]
            if summ.get("partial_writes"):
                bits.append(f"{summ['partial_writes']} partial writes")
            if summ.get("eagain"):
                bits.append(f"{summ['eagain']} EAGAIN")
            if (summ.get("max_blocked_s") or 0) > 0.05:
                bits.append(f"send() blocked up to {summ['max_blocked_s']:.2f} s")
            s.append(f"{guest} ({g.host}): " + ", ".join(bits) + ".")
    judged = [v for v in result.expectations if not v.skipped]
    failed = [v for v in judged if not v.passed]
    if result.skipped:
        s.append(f"Skipped: {result.skipped}.")
    elif result.error:
        s.append(f"The run failed: {result.error}")
    elif judged:
        s.append(f"All {len(judged)} checks passed." if not failed else
                 f"{len(failed)} of {len(judged)} checks failed; first: {failed[0].message}.")
    return " ".join(s)


def kernel_said(result):
    """'What the kernel said': per host, drops by reason with their time span, retransmissions and resets."""
    if not result.kernel_events:
        return ""
    parts = []
    for host in result.hosts:
        mine = [e for e in result.kernel_events if e.get("host") == host]
        bits = []
        reasons = {}
        for e in mine:
            if e.get("kind") == "drop" and e.get("reason") not in ("NOT_SPECIFIED", "QUEUE_PURGE"):
                reasons.setdefault(e.get("reason", "?"), []).append(e.get("t", 0))
        for reason, ts in sorted(reasons.items(), key=lambda x: -len(x[1])):
            span = f"between {min(ts):.2f} and {max(ts):.2f} s" if len(ts) > 1 else f"at {ts[0]:.2f} s"
            bits.append(f"dropped {_times(len(ts), 'packet')} ({reason}) {span}")
        for kind, words in (("syn-retransmit", "retransmitted its SYN"), ("synack-retransmit", "retransmitted its SYN-ACK"),
                            ("retransmit", "retransmitted data"), ("reset-sent", "sent a reset"),
                            ("reset-received", "received a reset")):
            n = sum(e.get("kind") == kind for e in mine)
            if n:
                bits.append(f"{words} {_times(n, 'time')}")
        if bits:
            parts.append(f"{host} " + ", ".join(bits))
    return ("What the kernel said: " + "; ".join(parts) + ".") if parts else ""


def _times(n, noun):
    return f"{n} {noun}{'s' if n != 1 else ''}" if noun != "time" else ("once" if n == 1 else "twice" if n == 2 else f"{n} times")


def _topology_svg(result):
    topo = result.topology or {}
    if not topo:
        return ""
    nodes = [(h, "host", result.hosts[h].ip if h in result.hosts else "") for h in topo.get("hosts", [])] + \
            [(s, "switch", "") for s in topo.get("switches", [])]
    links = [(a, b, f"{bw:g} Mbit/s" if bw else "") for a, b, bw in topo.get("links", [])]
    return plots.topology(nodes, links)


def _plots(result):
    out = []
    t_end = result.timeline_s or 1
    series, backlog = {}, None
    for guest, e in _events(result, "accept-queue"):
        series.setdefault(guest, []).append((e.get("t_rel", 0), e["length"]))
        backlog = e.get("backlog")
    for host, samples in result.samples.items():
        pts = [(x["t"], x["accept_queue"]) for x in samples if x.get("accept_queue") is not None]
        if pts and not series:
            series[f"{host} (ss)"] = pts
            backlog = max(x["backlog"] for x in samples if x.get("backlog") is not None)
    if series and any(y for pts in series.values() for _, y in pts):
        hlines = [(backlog, f"backlog {backlog}"), (backlog + 1, "backlog + 1")] if backlog is not None else []
        out.append(plots.line_plot("Accept queue length over time", series, ylabel="connections", hlines=hlines))
    queues = {}
    for host, samples in result.samples.items():
        for key, label in (("send_q", "Send-Q"), ("recv_q", "Recv-Q")):
            pts = [(x["t"], x[key]) for x in samples if x.get(key) is not None]
            if any(y for _, y in pts):
                queues[f"{host} {label}"] = pts
    if queues:
        out.append(plots.line_plot("Send and receive queue bytes over time (ss)", queues, ylabel="bytes"))
    windows = {}
    for host, samples in result.samples.items():
        pts = [(x["t"], x["snd_wnd"]) for x in samples if x.get("snd_wnd") is not None]
        if pts:
            windows[f"{host} peer window (snd_wnd)"] = pts
    for guest, e in _events(result, "queues"):
        if e.get("snd_wnd") is not None:
            windows.setdefault(f"{guest} snd_wnd (tcp_info)", []).append((e.get("t_rel", 0), e["snd_wnd"]))
    if windows:
        out.append(plots.line_plot("Advertised window seen by the sender over time", windows, ylabel="bytes"))
    ports = {}
    for _, e in _events(result, "port-stats"):
        ports.setdefault(f"{e.get('switch') or e.get('dpid')} port {e.get('port')}", []).append((e["t_rel"], e["rx_bytes"]))
    rates = {}
    for label, pts in ports.items():
        pts.sort()
        rates[label] = [(t2, max(0, (b2 - b1) * 8 / 1e6 / (t2 - t1))) for (t1, b1), (t2, b2) in zip(pts, pts[1:]) if t2 > t1]
    if any(rates.values()):
        out.append(plots.line_plot("Traffic into each switch port (OpenFlow port stats)", rates, ylabel="Mbit/s",
                                   steps=False))
    latencies = [e["total_s"] for _, e in _events(result, "connect") if e.get("outcome") == "connected" and "total_s" in e]
    if latencies:
        out.append(plots.histogram(f"Connect latency distribution ({len(latencies)} connections)", latencies))
    lanes = []
    for guest, g in result.guests.items():
        marks = [(e.get("t_rel", 0), e.get("event", "?"), f"{e.get('t_rel', 0):.3f} s {e.get('event')} "
                  + " ".join(f"{k}={e[k]}" for k in ("result", "errno", "outcome", "got", "length") if e.get(k) is not None))
                 for e in g.events if e.get("event") not in ("summary", "output")]
        lanes.append((f"{guest} ({g.host})", marks))
    for host in result.hosts:
        marks = [(e.get("t", 0), e.get("kind", "?") + (f" {e['reason']}" if e.get("reason") else ""),
                  f"{e.get('t', 0):.3f} s kernel {e.get('kind')} {e.get('reason') or ''} "
                  f"{e.get('saddr', '')}:{e.get('sport', '')} -> {e.get('daddr', '')}:{e.get('dport', '')}")
                 for e in result.kernel_events if e.get("host") == host and e.get("kind") not in ("probe", "state")]
        if marks:
            lanes.append((f"{host} kernel", marks))
    if lanes:
        out.insert(0, plots.timeline("Events per guest and host over time", lanes, t_end))
    graph = time_sequence(result)
    if graph:
        out.insert(1 if lanes else 0, graph)
    return out


def main_connection(result):
    """The connection that moved the most data, from tcp_probe: (host, local, peer, [probe events])."""
    flows = {}
    for e in result.kernel_events:
        if e.get("kind") == "probe" and e.get("snd_nxt") is not None:
            key = (e.get("host"), f"{e.get('saddr')}:{e.get('sport')}", f"{e.get('daddr')}:{e.get('dport')}")
            flows.setdefault(key, []).append(e)
    if not flows:
        return None

    def moved(events):
        return (events[-1]["snd_una"] - events[0]["snd_una"]) % (1 << 32)
    key, events = max(flows.items(), key=lambda kv: moved(kv[1]))
    return (*key, events) if moved(events) > 0 else None


def time_sequence(result):
    """The time-sequence graph of the main connection (from tcp_probe): sent, acknowledged, the window limit,
    retransmissions and zero-window probes marked, zero-window periods shaded."""
    found = main_connection(result)
    if not found:
        return ""
    host, local, peer, events = found
    base = events[0]["snd_una"]

    def rel(seq):
        return (seq - base) % (1 << 32)
    sent = [(e["t"], rel(e["snd_nxt"])) for e in events]
    acked = [(e["t"], rel(e["snd_una"])) for e in events]
    window = [(e["t"], rel(e["snd_una"]) + e["snd_wnd"]) for e in events]

    def una_at(t):
        before = [y for x, y in acked if x <= t]
        return before[-1] if before else 0
    lport, pport = local.rsplit(":", 1)[1], peer.rsplit(":", 1)[1]
    marks = []
    for e in result.kernel_events:
        same = {str(e.get("sport")), str(e.get("dport"))} == {lport, pport}
        if not same:
            continue
        if e.get("host") == host and e.get("kind") == "retransmit":
            marks.append((e["t"], una_at(e["t"]), "retransmission", f"{e['t']:.3f} s retransmission ({e.get('segs')} segments)"))
        elif e.get("host") != host and e.get("kind") == "drop" and e.get("reason") == "TCP_OLD_SEQUENCE":
            marks.append((e["t"], una_at(e["t"]), "zero-window probe (dropped as old)",
                          f"{e['t']:.3f} s the peer dropped an old-sequence segment: a window probe"))
    spans, start = [], None
    for e in events:
        if e["snd_wnd"] == 0 and start is None:
            start = e["t"]
        elif e["snd_wnd"] != 0 and start is not None:
            spans.append((start, e["t"]))
            start = None
    if start is not None:
        spans.append((start, events[-1]["t"]))
    return plots.time_sequence(f"Time-sequence graph: {host} {local} -> {peer} (tcp_probe)", sent, acked, window,
                               marks, spans)


def counter_matrix(result, main=True):
    """One table: a row per counter that moved on some host, a column per host, zeros blank. MAIN: the TCP
    groups (explained counters first); else IP, ICMP, UDP and IPv6."""
    hosts = [h for h, r in result.hosts.items() if r.counters is not None]
    moved = {}
    for h in hosts:
        for group, values in counters.nonzero(result.hosts[h].counters.delta).items():
            if (group in ("Tcp", "TcpExt")) != main:
                continue
            for name in values:
                moved.setdefault(f"{group}.{name}", None)
    if not moved:
        return "<p class=muted>no counter changed</p>"
    rows = sorted(moved, key=lambda n: (not counters.meaning(n), n))
    head = "".join(f"<th class=num>{escape(h)}</th>" for h in hosts)
    body = []
    for name in rows:
        cells = []
        for h in hosts:
            v = result.hosts[h].counter(name)
            cells.append(f"<td class=num>{v:,}</td>" if v else "<td class='num zero'></td>")
        body.append(f"<tr><td><code>{escape(name)}</code></td>{''.join(cells)}"
                    f"<td class=muted>{escape(counters.meaning(name))}</td></tr>")
    return (f"<table class=matrix><tr><th>counter</th>{head}<th>meaning</th></tr>{''.join(body)}</table>")


def _checks(result):
    rows = []
    for v in result.expectations:
        cls, word = ("skip", "not judged") if v.skipped else ("", "pass") if v.passed else ("fail", "FAIL")
        observed = v.skipped if v.skipped else v.observed
        rows.append(f"<tr class='{cls}'><td>{word}</td><td><code>{escape(v.check)}</code></td>"
                    f"<td class=num>{escape(str(observed))}</td><td>{escape(v.why or '')}</td></tr>")
    return "".join(rows)


def render(result, extra_sections=()):
    """The report page for RESULT (a Result). EXTRA_SECTIONS: (title, html) added before the environment."""
    status = result.status
    env = "".join(f"<tr><td>{escape(h)}</td><td>{escape(i.ip)}</td><td>"
                  + "<br>".join(f"{escape(k)} = {escape(str(v))}" for k, v in i.sysctls.items())
                  + "</td></tr>" for h, i in result.hosts.items())
    captures = result.captures
    capture_html = ""
    if captures:
        capture_html = "<h2>Packet captures</h2><p>Open these in Wireshark:</p><ul>" + "".join(
            f"<li><a href='{escape(str(c.get('file')))}'>{escape(str(c.get('file')))}</a> ({escape(str(c.get('host')))} "
            f"{escape(str(c.get('intf')))}, {escape(str(c.get('packets')))} packets)</li>" for c in captures) + "</ul>" + "".join(
            f"<p class=muted>{escape(str(c.get('host')))}: SYNs, RSTs and zero windows</p><pre>{escape(str(c['excerpt']))}</pre>"
            for c in captures if c.get("excerpt"))
    extra = "".join(f"<h2>{escape(title)}</h2>{html}" for title, html in extra_sections)
    congestion = sorted(set(result.congestion.values()) - {""})
    trace = result.trace or {}
    trace_note = ("kernel events: " + (f"{len(result.kernel_events)} recorded" if trace.get("available")
                                       else f"not recorded ({trace.get('reason') or 'tracing off'})"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(result.scenario)}: tcplab report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>
<h1>{escape(result.scenario)} <span class="status {escape(status)}">{escape(status)}</span></h1>
<p>{escape(result.title)}</p>
<p class="narrative">{escape(narrative(result))}</p>
<p class=muted>Kernel {escape(result.kernel)}; congestion control {escape(', '.join(congestion) or 'not recorded')};
{escape(trace_note)}.</p>
<h2>What this scenario teaches</h2><pre class="teaches">{escape(result.teaches or '')}</pre>
<h2>Network</h2>{_topology_svg(result)}
<h2>Checks</h2><table><tr><th></th><th>expected</th><th>observed</th><th>the kernel mechanism</th></tr>{_checks(result)}</table>
<h2>What each host counted</h2><p class=muted>netstat counters that changed during the run, one column per host
(blank: no change)</p>{counter_matrix(result, True)}
<details><summary class=muted>IP, ICMP, UDP and IPv6 counters</summary>{counter_matrix(result, False)}</details>
<h2>Over time</h2>{''.join(_plots(result))}
{extra}{capture_html}
<h2>Environment</h2><p>Kernel {escape(result.kernel)}; run {escape(str(result.run_id))}; started
{escape(result.started)}; wall {result.wall_s} s, timeline {result.timeline_s} s.
Machine-wide, shared by every host: {escape(', '.join(f'{k} = {v}' for k, v in result.machine.items()))}.</p>
<table><tr><th>host</th><th>address</th><th>effective sysctls</th></tr>{env}</table>
<p class=muted>Generated by tcplab from results.json in this folder.</p>
</body></html>
"""


def write_report(folder, result=None):
    """Write FOLDER/report.html from RESULT (default: FOLDER/results.json, read through the same type)."""
    folder = Path(folder)
    if result is None:
        result = Result.from_json(folder / "results.json")
    path = folder / "report.html"
    path.write_text(render(result))
    return path


def write_index(root, entries):
    """The suite page: every scenario's report with its status and key figures (and spreads over repeats)."""
    rows = []
    for e in entries:
        if e.get("run", 1) > 1:
            continue
        link = escape(str(e["report"]))
        spread = ""
        if e.get("spread"):
            spread = "<br>" + "<br>".join(
                f"<span class=muted>{s['passed']}/{s['runs']} {escape(s['check'])}"
                + (f": {s['spread']['min']:g} / {s['spread']['median']:g} / {s['spread']['max']:g}" if s.get("spread") else "")
                + "</span>" for s in e["spread"])
        rows.append(f"<tr class='{'' if e['status'] == 'PASS' else 'fail'}'><td><a href='{link}'>{escape(e['scenario'])}</a>"
                    f"{' <span class=muted>(earlier run)</span>' if e.get('earlier') else ''}</td>"
                    f"<td><span class='status {escape(e['status'])}'>{escape(e['status'])}</span></td>"
                    f"<td class=num>{escape(str(e['checks']))}</td><td class=num>{e.get('wall_s') or 0:.1f}</td>"
                    f"<td>{escape(', '.join(e.get('congestion') or []))}</td>"
                    f"<td>{escape(str(e.get('figures', '')))}{spread}</td></tr>")
    shown = [e for e in entries if e.get("run", 1) == 1]
    passed = sum(e["status"] == "PASS" for e in shown)
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tcplab: {passed}/{len(shown)} passed</title>
<style>{STYLE}</style></head><body><h1>tcplab run: {passed} of {len(shown)} passed</h1>
<p class=muted>With --repeat, each check's pass rate over the runs and the spread of its observed value (min / median / max).</p>
<table><tr><th>scenario</th><th>status</th><th>checks</th><th>wall s</th><th>congestion</th><th>key figures</th></tr>{''.join(rows)}</table>
</body></html>
"""
    path = Path(root) / "index.html"
    path.write_text(html)
    return path


def key_figures(result):
    """A short line for the suite page: the notable counters that moved, per host."""
    bits = []
    for name in NOTABLE:       # most telling counters first, whichever host counted them
        for host, info in result.hosts.items():
            value = info.counter(name)
            if value:
                bits.append(f"{host} {name.split('.', 1)[1]} {value}")
    return ", ".join(bits[:5])

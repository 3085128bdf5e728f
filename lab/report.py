"""report.html from results.json: what the kernel did on each host, with pictures. Self-contained.

The report loads nothing from the network and runs no script: styles and SVG plots are inline, so it
opens from a file, a CI artifact or a synced Vagrant folder. Every text from a scenario is escaped.
"""
import json
from html import escape
from pathlib import Path

from . import counters, plots

NOTABLE = ("TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.TCPToZeroWindowAdv",
           "TcpExt.TCPFromZeroWindowAdv", "TcpExt.TCPWinProbe", "TcpExt.TCPSynRetrans", "TcpExt.SyncookiesSent",
           "TcpExt.TCPReqQFullDrop", "Tcp.OutRsts", "Tcp.RetransSegs", "TcpExt.TCPTimeouts")

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
.status{display:inline-block;padding:.1em .6em;border-radius:4px;color:#fff;font-weight:bold}
.PASS{background:#2a7d2a}.FAIL{background:#c0392b}.SKIP{background:#888}.ERROR,.INTERRUPTED{background:#b35900}
.narrative{background:#f4f7fb;border-left:4px solid #1f77b4;padding:.6em 1em}
pre{white-space:pre-wrap;word-break:break-all} pre.teaches{background:#fafafa;padding:.8em;border:1px solid #eee}
table{border-collapse:collapse;width:100%;margin:.5em 0} td,th{border-bottom:1px solid #eee;padding:.25em .5em;
text-align:left;vertical-align:top} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fdecea} .muted{color:#777;font-size:.9em}
svg.plot{width:100%;max-width:640px;display:block;margin:.8em 0} svg.topo{width:100%;max-width:760px}
svg text{font:11px sans-serif;fill:#333} svg .title{font-size:13px;font-weight:bold}
svg .grid{stroke:#eee} svg .axis{stroke:#999} svg .ref{stroke:#c0392b;stroke-dasharray:4 3;fill:#c0392b}
svg .link{stroke:#888;stroke-width:2} svg .host{fill:#dbe9f6;stroke:#1f77b4} svg .switch{fill:#eee;stroke:#666}
svg .node{font-weight:bold}
"""


def _events(result, kind=None):
    for guest, g in result.get("guests", {}).items():
        for e in g.get("events", []):
            if kind is None or e.get("event") == kind:
                yield guest, e


def _summary(result, guest):
    found = [e for e in result["guests"][guest]["events"] if e.get("event") == "summary"]
    return found[-1] if found else {}


def narrative(result):
    """A few sentences, generated from the results, of what happened and why."""
    s = []
    peaks = {}
    for guest, e in _events(result, "accept-queue"):
        if e["length"] > peaks.get(guest, (-1,))[0]:
            peaks[guest] = (e["length"], e["backlog"], e.get("t_rel", 0))
    for guest, (length, backlog, t) in peaks.items():
        host = result["guests"][guest]["host"]
        full = " = backlog + 1" if length == backlog + 1 else ""
        s.append(f"{host}'s accept queue ({guest}) reached {length} (backlog {backlog}{full}) at {t:.2f} s.")
    for host, info in result.get("hosts", {}).items():
        delta = info.get("counters", {}).get("delta", {})
        parts = []
        for name in NOTABLE:
            group, _, cname = name.partition(".")
            value = delta.get(group, {}).get(cname, 0)
            if value:
                parts.append(f"{value} {cname}")
        if parts:
            s.append(f"{host} counted " + ", ".join(parts) + ".")
    for guest, g in result.get("guests", {}).items():
        summ = _summary(result, guest)
        if g["program"] == "client" and summ.get("mode") == "connect":
            outcomes = ", ".join(f"{summ[k]} {k}" for k in ("connected", "refused", "reset", "timeout") if summ.get(k))
            lat = summ.get("max_latency_s")
            s.append(f"{guest} ({g['host']}): {outcomes or 'no connection'}"
                     + (f"; the slowest connect took {lat:.2f} s" if lat else "") + ".")
        elif g["program"] == "client" and summ.get("mode") == "write":
            bits = [f"the kernel accepted {summ.get('accepted', 0):,} bytes"]
            if summ.get("partial_writes"):
                bits.append(f"{summ['partial_writes']} partial writes")
            if summ.get("eagain"):
                bits.append(f"{summ['eagain']} EAGAIN")
            if summ.get("max_blocked_s", 0) > 0.05:
                bits.append(f"send() blocked up to {summ['max_blocked_s']:.2f} s")
            s.append(f"{guest} ({g['host']}): " + ", ".join(bits) + ".")
    checks = result.get("expectations", [])
    failed = [e for e in checks if not e["passed"]]
    if result.get("skipped"):
        s.append(f"Skipped: {result['skipped']}.")
    elif result.get("error"):
        s.append(f"The run failed: {result['error']}")
    elif checks:
        s.append(f"All {len(checks)} checks passed." if not failed else
                 f"{len(failed)} of {len(checks)} checks failed; first: {failed[0]['message']}.")
    return " ".join(s)


def _topology_svg(result):
    topo = result.get("topology") or {}
    if not topo:
        return ""
    ips = {h: i.get("ip", "") for h, i in result.get("hosts", {}).items()}
    nodes = [(h, "host", ips.get(h, "")) for h in topo.get("hosts", [])] + \
            [(s, "switch", "") for s in topo.get("switches", [])]
    links = [(a, b, f"{bw:g} Mbit/s" if bw else "") for a, b, bw in topo.get("links", [])]
    return plots.topology(nodes, links)


def _plots(result):
    out = []
    t_end = result.get("timeline_s") or 1
    # Accept queue over time: from the servers' own tcp_info reports, else from ss samples.
    series, backlog = {}, None
    for guest, e in _events(result, "accept-queue"):
        series.setdefault(guest, []).append((e.get("t_rel", 0), e["length"]))
        backlog = e["backlog"]
    for host, samples in result.get("samples", {}).items():
        pts = [(x["t"], x["accept_queue"]) for x in samples if x.get("accept_queue") is not None]
        if pts and not series:
            series[f"{host} (ss)"] = pts
            backlog = max(x["backlog"] for x in samples if x.get("backlog") is not None)
    if series:
        out.append(plots.line_plot("Accept queue length over time", series, ylabel="connections",
                                   hlines=[(backlog, f"backlog {backlog}"), (backlog + 1, "backlog + 1")]))
    queues = {}
    for host, samples in result.get("samples", {}).items():
        for key, label in (("send_q", "Send-Q"), ("recv_q", "Recv-Q")):
            pts = [(x["t"], x[key]) for x in samples if x.get("connections")]
            if any(y for _, y in pts):
                queues[f"{host} {label}"] = pts
    if queues:
        out.append(plots.line_plot("Send and receive queue bytes over time (ss)", queues, ylabel="bytes"))
    windows = {}
    for host, samples in result.get("samples", {}).items():
        pts = [(x["t"], x["snd_wnd"]) for x in samples if x.get("snd_wnd") is not None]
        if pts:
            windows[f"{host} peer window (snd_wnd)"] = pts
    for guest, e in _events(result, "queues"):
        windows.setdefault(f"{guest} snd_wnd (tcp_info)", []).append((e.get("t_rel", 0), e["snd_wnd"]))
    if windows:
        out.append(plots.line_plot("Advertised window seen by the sender over time", windows, ylabel="bytes"))
    ports = {}
    for _, e in _events(result, "port-stats"):
        ports.setdefault(f"{e.get('switch') or e['dpid']} port {e['port']}", []).append((e["t_rel"], e["rx_bytes"]))
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
    for guest, g in result.get("guests", {}).items():
        marks = [(e.get("t_rel", 0), e["event"], f"{e.get('t_rel', 0):.3f} s {e['event']} "
                  + " ".join(f"{k}={e[k]}" for k in ("result", "errno", "outcome", "got", "length") if e.get(k) is not None))
                 for e in g.get("events", []) if e.get("event") not in ("summary", "output")]
        lanes.append((f"{guest} ({g['host']})", marks))
    if lanes:
        out.insert(0, plots.timeline("Guest events per host over time", lanes, t_end))
    return out


def _counter_rows(result, main):
    """Table rows of non-zero counter changes: MAIN selects Tcp/TcpExt (explained ones first) or the rest."""
    rows = []
    for host, info in result.get("hosts", {}).items():
        delta = counters.nonzero(info.get("counters", {}).get("delta", {}))
        items = [(g, n, v) for g, c in delta.items() for n, v in c.items() if (g in ("Tcp", "TcpExt")) == main]
        items.sort(key=lambda x: (not counters.meaning(f"{x[0]}.{x[1]}"), x[0], x[1]))
        for group, name, value in items:
            rows.append(f"<tr><td>{escape(host)}</td><td><code>{escape(group)}.{escape(name)}</code></td>"
                        f"<td class=num>{value:,}</td><td>{escape(counters.meaning(f'{group}.{name}'))}</td></tr>")
    return "".join(rows)


def render(result, captures=()):
    status = result.get("status", "PASS" if result.get("passed") else "FAIL")
    checks = "".join(
        f"<tr class='{'' if e['passed'] else 'fail'}'><td>{'pass' if e['passed'] else 'FAIL'}</td>"
        f"<td><code>{escape(e['check'])}</code></td><td class=num>{escape(str(e['observed']))}</td>"
        f"<td>{escape(e.get('why') or '')}</td></tr>" for e in result.get("expectations", []))
    env = "".join(f"<tr><td>{escape(h)}</td><td>{escape(i.get('ip', ''))}</td><td>"
                  + "<br>".join(f"{escape(k)} = {escape(str(v))}" for k, v in i.get("sysctls", {}).items())
                  + "</td></tr>" for h, i in result.get("hosts", {}).items())
    capture_html = ""
    if captures:
        capture_html = "<h2>Packet captures</h2><p>Open these in Wireshark:</p><ul>" + "".join(
            f"<li><a href='{escape(c['file'])}'>{escape(c['file'])}</a> ({escape(c['host'])} {escape(c['intf'])}, "
            f"{c['packets']} packets)</li>" for c in captures) + "</ul>" + "".join(
            f"<p class=muted>{escape(c['host'])}: SYNs, RSTs and zero windows</p><pre>{escape(c['excerpt'])}</pre>"
            for c in captures if c.get("excerpt"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(result['scenario'])}: tcplab report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>
<h1>{escape(result['scenario'])} <span class="status {escape(status)}">{escape(status)}</span></h1>
<p>{escape(result.get('title', ''))}</p>
<p class="narrative">{escape(narrative(result))}</p>
<h2>What this scenario teaches</h2><pre class="teaches">{escape(result.get('teaches') or '')}</pre>
<h2>Network</h2>{_topology_svg(result)}
<h2>Checks</h2><table><tr><th></th><th>expected</th><th>observed</th><th>the kernel mechanism</th></tr>{checks}</table>
<h2>What each host counted</h2><p class=muted>netstat counters that changed during the run (non-zero only)</p>
<table><tr><th>host</th><th>counter</th><th>change</th><th>meaning</th></tr>{_counter_rows(result, True)}</table>
<details><summary class=muted>IP, ICMP, UDP and IPv6 counters</summary>
<table><tr><th>host</th><th>counter</th><th>change</th><th>meaning</th></tr>{_counter_rows(result, False)}</table></details>
<h2>Over time</h2>{''.join(_plots(result))}
{capture_html}
<h2>Environment</h2><p>Kernel {escape(result.get('kernel', ''))}; run {escape(str(result.get('run_id')))}; started
{escape(result.get('started', ''))}; wall {result.get('wall_s')} s, timeline {result.get('timeline_s')} s.
Machine-wide, shared by every host: {escape(', '.join(f'{k} = {v}' for k, v in result.get('machine', {}).items()))}.</p>
<table><tr><th>host</th><th>address</th><th>effective sysctls</th></tr>{env}</table>
<p class=muted>Generated by tcplab from results.json in this folder.</p>
</body></html>
"""


def write_report(folder, captures=()):
    folder = Path(folder)
    result = json.loads((folder / "results.json").read_text())
    path = folder / "report.html"
    path.write_text(render(result, captures))
    return path


def write_index(root, entries):
    """The suite page for `run all`: every scenario's report with its status and key figures."""
    rows = []
    for e in entries:
        link = escape(e["report"])
        rows.append(f"<tr class='{'' if e['status'] == 'PASS' else 'fail'}'><td><a href='{link}'>{escape(e['scenario'])}</a></td>"
                    f"<td><span class='status {escape(e['status'])}'>{escape(e['status'])}</span></td>"
                    f"<td class=num>{e['checks']}</td><td class=num>{e['wall_s'] or 0:.1f}</td>"
                    f"<td>{escape(e['figures'])}</td></tr>")
    passed = sum(e["status"] == "PASS" for e in entries)
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tcplab: {passed}/{len(entries)} passed</title>
<style>{STYLE}</style></head><body><h1>tcplab run: {passed} of {len(entries)} passed</h1>
<table><tr><th>scenario</th><th>status</th><th>checks</th><th>wall s</th><th>key figures</th></tr>{''.join(rows)}</table>
</body></html>
"""
    path = Path(root) / "index.html"
    path.write_text(html)
    return path


def key_figures(result):
    """A short line for the suite page: the notable counters that moved, per host."""
    bits = []
    for name in NOTABLE:       # most telling counters first, whichever host counted them
        group, _, cname = name.partition(".")
        for host, info in result.hosts.items():
            value = info.get("counters", {}).get("delta", {}).get(group, {}).get(cname)
            if value:
                bits.append(f"{host} {cname} {value}")
    return ", ".join(bits[:5])

"""`tcplab bench`: how fast, how big and how robust tcplab is, measured in one run and printed.

Figures, not timed tests: each section prints a table and the whole run is written to docs/benchmarks.md
with a description of the machine. Sections: lifecycle (against bare Mininet, alternating runs, medians),
library (wall time of `run all`, overhead beyond each timeline), storm (200 clients at one server),
throughput (guest writer->reader against iperf3, Linux bridge and OVS userspace), soak (consecutive runs
with a leak check after each, and two runs at once).
"""
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import sysctl as sysctls
from .network import read_machine_sysctls
from . import library
from .guests import GuestProcess
from .network import LabNetwork, NetworkSpec, bare_mininet
from .runner import run_scenario
from .runrecord import all_records

ROOT = Path(__file__).resolve().parent.parent


# -- leak check (also used by the soak tests) ---------------------------------------------------
def _marked_processes():
    """{pid: run id} of every process carrying a lab run's TCPLAB_RUN marker."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        for item in env.split(b"\0"):
            if item.startswith(b"TCPLAB_RUN="):
                found[pid] = item[11:].decode(errors="replace")
    return found


def machine_state():
    """What a run could leave behind, by run records: root interfaces, OVS bridges, processes carrying a
    run's marker, records, machine sysctls; and which runs are alive (others' runs are not leaks)."""
    links = set(os.listdir("/sys/class/net"))
    try:
        bridges = set(subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True,
                                     timeout=10).stdout.split())
    except (OSError, subprocess.TimeoutExpired):
        bridges = set()
    records = all_records()
    return {"links": links, "ovs_bridges": bridges, "run_processes": _marked_processes(),
            "records": {r.run_id for r in records}, "live": {r.run_id for r in records if r.owner_alive()},
            "sysctls": read_machine_sysctls(sysctls.MACHINE_GUARDED)}


def leaks(before, after):
    """Differences that a run left behind: {kind: [items]} (empty when the machine is as it was). What
    belongs to a run that is still alive (another developer's, a live test fixture's) is not a leak."""
    live = tuple(after.get("live", ()))
    found = {}
    for kind in ("links", "ovs_bridges", "records"):
        extra = sorted(x for x in after[kind] - before[kind] if not (live and x.startswith(live)))
        if extra:
            found[kind] = extra
    procs = sorted(f"{pid} (run {rid})" for pid, rid in after.get("run_processes", {}).items()
                   if rid not in live and pid not in before.get("run_processes", {}))
    if procs:
        found["run_processes"] = procs
    changed = {k: (v, after["sysctls"].get(k)) for k, v in before["sysctls"].items() if after["sysctls"].get(k) != v}
    if changed:
        found["sysctls"] = changed
    return found


# -- sections -------------------------------------------------------------------------------------
def _tcplab(n):
    t0 = time.monotonic()
    lab = LabNetwork(NetworkSpec("single", args=[n]), purpose=f"bench lifecycle {n}")
    lab.start()
    t1 = time.monotonic()
    lab.stop()
    return t1 - t0, time.monotonic() - t1


def lifecycle(sizes, rounds, say):
    """Start+stop of `single` with N hosts, tcplab against bare Mininet (Linux bridge), alternating."""
    from mininet.log import setLogLevel
    setLogLevel("error")
    rows = []
    for n in sizes:
        lab_runs, bare_runs = [], []
        for _ in range(rounds):
            lab_runs.append(_tcplab(n))
            # Bare Mininet skips fixLimits() here too (the same work is compared), under a run record.
            bare_runs.append(bare_mininet(n))
        med = {k: statistics.median(sum(r) for r in runs) for k, runs in (("lab", lab_runs), ("bare", bare_runs))}
        row = {"hosts": n, "tcplab_start": statistics.median(r[0] for r in lab_runs),
               "tcplab_stop": statistics.median(r[1] for r in lab_runs),
               "bare_start": statistics.median(r[0] for r in bare_runs),
               "bare_stop": statistics.median(r[1] for r in bare_runs),
               "tcplab_total": med["lab"], "bare_total": med["bare"], "ratio": med["lab"] / med["bare"]}
        rows.append(row)
        say(f"  {n:>4} hosts: tcplab {row['tcplab_start']:.2f}+{row['tcplab_stop']:.2f} s, bare Mininet "
            f"{row['bare_start']:.2f}+{row['bare_stop']:.2f} s, ratio {row['ratio']:.2f}")
    return rows


def library_run(say):
    """`tcplab run all` wall time, and each scenario's overhead beyond its own timeline."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "lab.cli", "run", "all", "--out", out, "--quiet"], cwd=ROOT,
                              capture_output=True, text=True)
        wall = time.monotonic() - t0
        summary = json.loads((Path(out) / "summary.json").read_text())
    rows = [{"scenario": s["scenario"], "status": s["status"], "wall_s": s["wall_s"], "timeline_s": s["timeline_s"],
             "overhead_s": round((s["wall_s"] or 0) - (s["timeline_s"] or 0), 2)} for s in summary]
    say(f"  run all: {wall:.1f} s wall for {len(rows)} scenarios (exit {proc.returncode}); "
        f"median overhead {statistics.median(r['overhead_s'] for r in rows):.2f} s per scenario")
    return {"wall_s": wall, "exit": proc.returncode, "scenarios": rows}


STORM = """
title: {clients} client hosts burst at one server
topology: star,{clients}
guests:
  - name: app
    host: server
    program: server
    args: {{port: 9000, backlog: 64, accept: never, queue-interval: 0.05}}
{client_lines}
hosts:
  "*":
    sysctl: {{net.ipv6.conf.all.disable_ipv6: 1, net.ipv6.conf.default.disable_ipv6: 1}}
duration: 60
expect:
  - "app: max accept-queue.length in [65, 66]"
  - "server: TcpExt.ListenOverflows >= 1"
"""


# Every client waits for one instant, set far enough ahead for all client processes to have started: forked
# from the run's guest launcher (lab/network/launcher.py), 1000 start in ~6 s here (2026-11-26), or 15-19 s
# while the hosts' IPv6 autoconfiguration multicast still floods the 1001-port bridge (softirq ~45% of both
# cores): the storm is an IPv4 lesson, so its hosts turn IPv6 off. The row gives how long after the instant
# the connects began, and when the last client had started.
STORM_START_S_PER_CLIENT = 0.01


def storm(clients, say):
    at = clients * STORM_START_S_PER_CLIENT + 2
    lines = "\n".join(f'  - {{name: cl{i}, host: c{i}, program: client, args: {{mode: connect, server: "{{server}}:9000", '
                      f'count: 1, timeout: 3, start-at: "{{t0+{at:.1f}}}"}}}}'
                      for i in range(1, clients + 1))
    sc = library.load_text(STORM.format(clients=clients, client_lines=lines), name=f"storm-{clients}")
    t0 = time.monotonic()
    started = []          # when each guest had started (the runner says so once it has)
    result = run_scenario(sc, progress=lambda line: started.append(time.monotonic()) if ": client " in line else None)
    wall = time.monotonic() - t0
    hosts_with_counters = sum(1 for h in result.hosts.values() if h.counters is not None)
    instant = (result.t0 or 0) + at
    # total_s: since this connection's connect() began (latency_s is since its last SYN)
    began = [e["t"] - e["total_s"] for g in result.guests.values() for e in g.events
             if e.get("event") == "connect" and e.get("total_s") is not None]
    after = sorted(b - instant for b in began)    # seconds after the instant each connect began
    spread = {"median": after[len(after) // 2], "p90": after[int(len(after) * 0.9)], "max": after[-1]} if after else None
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {"clients": clients, "wall_s": wall, "status": result.status, "hosts_with_counters": hosts_with_counters,
           "hosts": len(result.hosts), "peak_rss_mib": peak_mib,
           "overflows": result.host("server").counter("TcpExt.ListenOverflows"), "connects": len(began),
           "began_after_instant_s": spread, "s_per_client": STORM_START_S_PER_CLIENT,
           "clients_started_s": round(started[-1] - result.t0, 2) if started and result.t0 else None}
    say(f"  {clients} clients: {wall:.1f} s end to end, {result.status}, counters for {hosts_with_counters}/"
        f"{len(result.hosts)} hosts, peak RSS {peak_mib:.0f} MiB, server ListenOverflows {row['overflows']}, "
        f"{len(began)} connects, begun after the common instant by (median / 90% / max) "
        + ("/".join(f"{spread[k]:.2f}" for k in ("median", "p90", "max")) + " s" if spread else "-"))
    return row


def _guest_rate(lab, seconds):
    server = GuestProcess("r", "h1", "server", ["--port", 9500, "--read-size", 262144]).start(lab)
    server.wait_event("listening", 5)
    client = GuestProcess("w", "h2", "client", ["write", "10.0.0.1:9500", "--write-size", 262144,
                                                "--duration", seconds]).start(lab)
    client.wait(seconds + 10)
    server.stop()
    client.stop()
    return client.summary()["acked"] * 8 / seconds / 1e9


def _iperf_rate(lab, seconds):
    server = lab.start_process("h1", ["iperf3", "-s", "-1", "-B", "10.0.0.1", "-p", "9501"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    out = lab.host("h2").cmd(f"iperf3 -c 10.0.0.1 -p 9501 -t {seconds} -J")
    server.wait(10)
    data = json.loads(out[out.index("{"):])
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def throughput(seconds, say):
    rows = []
    for switch in ("bridge", "ovs-user"):
        with LabNetwork(NetworkSpec("single", args=[2], switch=switch), purpose=f"bench throughput {switch}") as lab:
            guest = statistics.median(_guest_rate(lab, seconds) for _ in range(2))
            iperf = statistics.median(_iperf_rate(lab, seconds) for _ in range(2))
        rows.append({"switch": switch, "guest_gbps": guest, "iperf3_gbps": iperf, "ratio": guest / iperf})
        say(f"  {switch:<9} guest writer->reader {guest:.2f} Gbit/s, iperf3 {iperf:.2f} Gbit/s, ratio {guest / iperf:.2f}")
    return rows


SOAK_SELECTION = ("partial-read", "blocking-read", "burst-backlog", "zero-window", "somaxconn-cap",
                  "partial-write", "socket-memory", "blocking-write")


def soak(runs, say, selection=SOAK_SELECTION):
    """RUNS consecutive scenario runs, rotating through SELECTION, with a leak check after each."""
    scenarios = [library.load_scenario(n) for n in selection]
    baseline = machine_state()
    statuses, leak_runs = {}, []
    for i in range(runs):
        sc = scenarios[i % len(scenarios)]
        result = run_scenario(sc)
        statuses[result.status] = statuses.get(result.status, 0) + 1
        found = leaks(baseline, machine_state())
        if found:
            leak_runs.append({"run": i + 1, "scenario": sc.name, "leaks": {k: str(v) for k, v in found.items()}})
        if (i + 1) % 10 == 0 or i + 1 == runs:
            say(f"  {i + 1}/{runs} runs: {statuses}, runs with leaks: {len(leak_runs)}")
    return {"runs": runs, "statuses": statuses, "leak_runs": leak_runs}


def concurrent(say, names=("zero-window", "listen-overflow")):
    """Two `tcplab run` at once on one machine: both must pass."""
    with tempfile.TemporaryDirectory() as out:
        procs = [subprocess.Popen([sys.executable, "-m", "lab.cli", "run", n, "--out", f"{out}/{i}", "--quiet"],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i, n in enumerate(names)]
        results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    codes = [rc for _, rc in results]
    say(f"  two runs at once ({', '.join(names)}): exit codes {codes}")
    return {"scenarios": list(names), "exit_codes": codes, "passed": codes == [0, 0],
            "output": [o[0][-400:] + o[1][-400:] for o, _ in results if _ != 0]}


# -- the report -------------------------------------------------------------------------------------
def machine_description():
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
    distro = next((ln.split("=", 1)[1].strip('"') for ln in Path("/etc/os-release").read_text().splitlines()
                   if ln.startswith("PRETTY_NAME")), "")
    ovs = subprocess.run(["ovs-vsctl", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    import mininet.net
    return {"kernel": platform.release(), "distro": distro, "cpu": cpu, "cores": os.cpu_count(),
            "memory_gib": round(int(mem) / 1024 / 1024, 1), "python": platform.python_version(),
            "mininet": mininet.net.VERSION, "ovs": re.sub(r"^ovs-vsctl \(Open vSwitch\) ", "", ovs),
            "ovs_datapath": "kernel" if Path("/sys/module/openvswitch").exists() else "userspace"}


def write_page(path, machine, figures):
    """Keep each section's latest figures in PATH's .json beside it, and render every section kept."""
    import json as _json
    store = Path(path).with_suffix(".json")
    try:
        kept = _json.loads(store.read_text())
    except (OSError, ValueError):
        kept = {}
    if "stability" in figures:     # conditions and scenarios are measured a few at a time: keep the others'
        merged = dict(kept.get("figures", {}).get("stability", {}))
        for cond, new in figures["stability"].items():
            old = merged.get(cond, {})
            merged[cond] = dict(new, scenarios={**old.get("scenarios", {}), **new["scenarios"]})
        figures = dict(figures, stability=merged)
    kept.setdefault("figures", {}).update({k: v for k, v in figures.items()})
    kept.setdefault("measured", {}).update({k: time.strftime("%Y-%m-%d") for k in figures})
    kept["machine"] = machine
    store.write_text(_json.dumps(kept, indent=1, default=str))
    write_markdown(path, machine, kept["figures"], kept["measured"])


def write_markdown(path, m, figures, measured=None):
    from .bench_more import markdown as more
    when = ", ".join(f"{k} {v}" for k, v in sorted((measured or {}).items())) or time.strftime("%Y-%m-%d")
    lines = ["# Benchmarks", "", "Measured by `sudo tcplab bench` (a section at a time with `--only`: each section "
             f"keeps its latest figures, in docs/benchmarks.json). Measured: {when}. Figures vary with the machine and "
             "its load.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in m.items()]
    if "lifecycle" in figures:
        lines += ["", "## 1. Lifecycle (goal: ratio <= 0.5 at 200 hosts, no slower than before at 2)", "",
                  "`single` topology, Linux bridge, no controller: tcplab's LabNetwork against bare Mininet 2.3.0 (its "
                  "own serial build, start and stop; run under a run record, fixLimits() skipped for both), runs "
                  "alternating in one process, medians of start + stop. tcplab spawns the shells at once, creates links "
                  "and bridges in one `ip -batch`, configures hosts over netlink and stops by ending the hosts' "
                  "namespaces (their veth pairs go with them).", "",
                  "| hosts | tcplab start | tcplab stop | bare start | bare stop | ratio (total) |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['hosts']} | {r['tcplab_start']:.2f} s | {r['tcplab_stop']:.2f} s | {r['bare_start']:.2f} s | "
                  f"{r['bare_stop']:.2f} s | **{r['ratio']:.2f}** |" for r in figures["lifecycle"]]
    if "library" in figures:
        lib = figures["library"]
        lines += ["", "## 2. The library (goal: <= 90 s for all on 2 cores)", "",
                  f"`tcplab run all`: **{lib['wall_s']:.1f} s** wall for {len(lib['scenarios'])} scenarios (exit {lib['exit']}).", "",
                  "| scenario | status | wall | timeline | overhead |", "|---|---|---|---|---|"]
        def secs(v, digits=1):    # a skipped scenario has no timeline (None), not a zero one
            return "-" if v is None else f"{v:.{digits}f} s"
        lines += [f"| {r['scenario']} | {r['status']} | {secs(r['wall_s'])} | {secs(r['timeline_s'])} | {secs(r['overhead_s'], 2)} |"
                  for r in lib["scenarios"]]
    if "storm" in figures:
        s = figures["storm"]
        lines += ["", f"## 3. Storm scale (goal: < 45 s end to end at 1000 clients; {s['clients']} here)", "",
                  f"A listen-overflow variant: {s['clients']} client hosts (star topology), one connection each at the same "
                  f"instant ({s.get('s_per_client', 0.02)} s per client after the timeline starts, plus 2 s), to a "
                  "server with backlog 64 that never accepts.", "",
                  f"- end to end: **{s['wall_s']:.1f} s** ({s['status']})",
                  f"- per-host counters collected for {s['hosts_with_counters']} of {s['hosts']} hosts, read from "
                  "`/proc/PID/net/*` (no process per host)",
                  f"- the lab's peak memory (RSS): {s['peak_rss_mib']:.0f} MiB",
                  f"- server ListenOverflows: {s['overflows']}",
                  f"- connects: {s.get('connects', '?')}; seconds after the common instant they began (median / 90% / "
                  "max): " + ("/".join(f"{s['began_after_instant_s'][k]:.2f}" for k in ("median", "p90", "max"))
                              if s.get("began_after_instant_s") else "not measured") +
                  " (1000 Python clients waking at once on 2 cores take about a second to all call connect(); a "
                  "maximum near the start time of the last guests means they started after the instant)",
                  f"- the {s['clients']} client guests had all started {s.get('clients_started_s') or '?'} s after the "
                  "timeline began (forked from the run's guest launcher: lab/network/launcher.py)", "",
                  "The guests of a run with more than 32 are forked from one interpreter that has the guest programs "
                  "loaded (~4 ms each on an idle machine, against ~40 ms of CPU for an exec through mnexec: an "
                  "interpreter's start and the program's imports), and one thread reads all their pipes "
                  "(lab/pipereader.py). The storm's hosts turn IPv6 off (`hosts: \"*\": sysctl: "
                  "{net.ipv6.conf.all.disable_ipv6: 1, ...}`, set as soon as the network is up): otherwise the "
                  "1000 hosts' router solicitations and MLD reports, each flooded to every port of the 1001-port "
                  "bridge for the first ~10 s, keep softirq at ~45% of both cores and the guests take 15-19 ms each "
                  "to start. Measured 2026-11-26, 1000 clients: three runs as on this page, 28.0, 28.4 and 29.2 s; with IPv6 on and the instant at 22 s, 41.3 and 42.2 s "
                  "end to end (guests started by 14.9 and 18.8 s); before the shared reader 45.1, 45.4 and 48.5 s "
                  "(a cProfile run: launch round trips 11.0 s, two reader threads per guest 4.3 s at the start and "
                  "4.1 s of joins at the end); before the launcher (2026-11-25), 1000 exec'd guests took ~28 s and "
                  "the storm 47-68 s. ovs-vswitchd, running for the OpenFlow scenarios, also spends ~40% of a core "
                  "on the 2000 new interfaces' netlink notices (`top` during a run): the OVS daemon's work, which "
                  "bare Mininet pays too.", "",
                  "Earlier profile (89.7 s before the batched lifecycle): "
                  "network start ~8 s (spawning 1001 shells ~4 s: a network namespace and a bash each, CPU-bound on 2 "
                  "cores; ~3 s of kernel work flooding the hosts' IPv6 autoconfiguration multicast (MLD, DAD, RS) to "
                  "every port of a 1001-port bridge, which bare Mininet pays too); starting the 1001 guests one after "
                  "another ~33-36 s (a Python interpreter each, two reader threads each, and scenario.substitute() "
                  "scanning every host name for each argument: ~5 s at 1000 hosts); stop ~1.7 s."]
    if "throughput" in figures:
        lines += ["", "## 4. Throughput (goal: >= 0.8 x iperf3)", "",
                  "Guest bulk writer -> reader (256 KiB writes and reads) against iperf3, same two hosts, medians of two.", "",
                  "| switch | guest | iperf3 | ratio |", "|---|---|---|---|"]
        lines += [f"| {r['switch']} | {r['guest_gbps']:.2f} Gbit/s | {r['iperf3_gbps']:.2f} Gbit/s | **{r['ratio']:.2f}** |"
                  for r in figures["throughput"]]
    if "soak" in figures:
        s = figures["soak"]
        lines += ["", "## 5. Soak (goal: 0 leaks)", "",
                  f"- {s['runs']} consecutive scenario runs, rotating through {', '.join(SOAK_SELECTION)}: {s['statuses']}",
                  f"- leak check after each, by run records (root interfaces, OVS bridges, processes carrying a finished "
                  f"run's TCPLAB_RUN marker, run records, machine sysctls; live runs of others excluded): "
                  f"**{len(s['leak_runs'])} runs with leaks**"]
        if s["leak_runs"]:
            lines += [f"  - run {x['run']} ({x['scenario']}): {x['leaks']}" for x in s["leak_runs"][:10]]
    if "concurrent" in figures:
        c = figures["concurrent"]
        lines += [f"- two `tcplab run` at once ({', '.join(c['scenarios'])}): exit codes {c['exit_codes']} "
                  f"({'both passed' if c['passed'] else 'FAILED'})"]
    lines += more(figures)
    Path(path).write_text("\n".join(lines) + "\n")

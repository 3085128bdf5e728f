"""The scenario runner: build the network, tune hosts, run the timeline, sample sockets, check.

One scenario run:
  1. skip early when the kernel lacks what it needs (netem for delay/loss)
  2. build the network (LabNetwork) with the scenario's sysctls, then shape links
  3. counters before; start guests in order (start time, `after`, readiness); fire timed actions;
     sample `ss` on the listed hosts; end when every waited-for guest exited or at `duration`
  4. stop the rest (SIGTERM: they write their summaries), counters after, evaluate the checks
  5. results.json + junit.xml (lab/results.py), also when interrupted
To add a step kind: a field list in scenario.ACTION_FIELDS and a handler in ACTIONS below.
"""
import signal
import threading
import time
from pathlib import Path

from . import counters, expect, sockets
from . import hosts as hostcfg
from .errors import LabError, Skip
from .guests import GuestProcess
from .network import OVS_FIX, LabNetwork, NetworkSpec, Terminated, netem_available, ovs_running
from .results import Result, write_junit, write_result
from .scenario import substitute

READY_TIMEOUT = 10.0


# -- actions: kind -> handler(run, params) ----------------------------------------------------------
def _link_down(run, p):
    run.lab.set_link(*p["between"], up=False)


def _link_up(run, p):
    run.lab.set_link(*p["between"], up=True)


def _rate(run, p):
    run.lab.shape(*p["between"], bw=p["mbit"])


def _sysctl(run, p):
    run.lab.set_sysctls(p["host"], {p["key"]: p["value"]})


def _signal(run, p):
    run.guests[p["guest"]].send_signal(getattr(signal, p["signal"]))


def _policy(run, p):
    return {"src": run.addresses.get(p.get("from")), "dst": run.addresses.get(p.get("to")),
            "flags": p.get("flags"), "seconds": p.get("seconds")}


def _drop(run, p):
    run.lab.controller.command(cmd="drop", **_policy(run, p))


def _meter(run, p):
    run.lab.controller.command(cmd="meter", kbps=p["kbps"], **_policy(run, p))


def _restore(run, p):
    run.lab.controller.command(cmd="restore")


ACTIONS = {"link-down": _link_down, "link-up": _link_up, "rate": _rate, "sysctl": _sysctl, "signal": _signal,
           "drop": _drop, "meter": _meter, "restore": _restore}


def network_spec(sc):
    """The network a scenario asks for (used by `tcplab run` and `tcplab cli SCENARIO`)."""
    return NetworkSpec(topology=sc.topology, topology_file=sc.topology_file, args=sc.topology_args,
                       params=sc.topology_params, switch=sc.switch, host_sysctls=sc.sysctls, controller=sc.controller)


def shape_links(lab, links):
    """Apply a scenario's `links:` shaping to a running network."""
    for link in links:
        lab.shape(*link.between, bw=link.bw, delay=link.delay, loss=link.loss, only_from=link.only_from,
                  burst=link.burst)


def aggregate_sample(t, records, port=None):
    """One `ss` sample of a host -> the numbers checks and plots use (see expect.SAMPLE_FIELDS)."""
    listen = sockets.listeners(records, port)
    conns = [r for r in sockets.connections(records, port) if r.state != "TIME-WAIT"]

    def total(values):
        return sum(values) if values else 0

    return {
        "t": round(t, 4),
        "accept_queue": max((r.accept_queue for r in listen), default=None),
        "backlog": max((r.backlog for r in listen), default=None),
        "connections": len(conns),
        "recv_q": total([r.recv_q for r in conns]),
        "send_q": total([r.send_q for r in conns]),
        # ss leaves snd_wnd out when it is zero: a zero window is exactly what the lessons look for.
        "snd_wnd": min((r.info.get("snd_wnd", 0) for r in conns if r.state == "ESTAB"), default=None),
        "rcv_space": max((r.info.get("rcv_space", 0) for r in conns), default=None),
        "cwnd": max((r.info.get("cwnd", 0) for r in conns), default=None),
        # tcp_info's smoothed RTT in ms, as ss prints it; the slowest connection's (None before one exists).
        "rtt": max((r.info["rtt"] for r in conns if "rtt" in r.info), default=None),
        "retrans_total": total([r.info.get("retrans_total", 0) for r in conns]),
        "backoff": max((r.info.get("backoff", 0) for r in conns), default=None),
        "notsent": total([r.info.get("notsent", 0) for r in conns]),
        **{f"skmem_{k}": max((r.skmem.get(k, 0) for r in conns), default=None) for k in ("r", "rb", "t", "tb", "w")},
        "sockets": [{"state": r.state, "local": r.local, "peer": r.peer, "recv_q": r.recv_q, "send_q": r.send_q}
                    for r in listen + conns][:50],
    }


class Sampler(threading.Thread):
    """Runs `ss` in each listed host every interval; one process per host and sample."""

    def __init__(self, lab, spec, t0):
        super().__init__(daemon=True)
        self.lab, self.spec, self.t0 = lab, spec, t0
        self.samples = {h: [] for h in spec.hosts}
        self.errors = []
        self._halt = threading.Event()

    def run(self):
        hosts = {h: self.lab.host(h) for h in self.spec.hosts}
        while not self._halt.is_set():
            for name, host in hosts.items():
                try:
                    out = hostcfg.host_run(host, list(sockets.SS_ARGS))
                except (LabError, OSError) as e:
                    self.errors.append(str(e))
                    continue
                t = time.monotonic() - self.t0
                self.samples[name].append(aggregate_sample(t, sockets.parse_ss(out), self.spec.port))
            self._halt.wait(self.spec.interval)

    def stop(self):
        self._halt.set()
        self.join(5)


class ScenarioRun:
    """One run of one scenario. `execute()` returns a Result; results are written by the caller."""

    def __init__(self, sc, progress=None):
        self.sc = sc
        self.progress = progress or (lambda text: None)
        self.lab = None
        self.guests = {}
        self.sampler = None
        self.t0 = None
        self.addresses = {}
        self.result = Result(scenario=sc.name, title=sc.title, path=sc.path, teaches=sc.teaches)
        self.capture_dir = None     # set: tcpdump on every host interface, a pcap each
        self._captures = []         # (tcpdump process, capture info)

    def execute(self):
        sc, res = self.sc, self.result
        wall = time.monotonic()
        try:
            self._check_can_run()
            with LabNetwork(network_spec(sc), purpose=f"scenario {sc.name}") as lab:
                self.lab = lab
                res.run_id = lab.run_id
                self.progress(f"network {sc.topology} up ({len(lab.host_names())} hosts, run {lab.run_id})")
                shape_links(lab, sc.links)
                addresses = {h: lab.host(h).IP() for h in lab.host_names()}
                self.addresses = addresses
                res.topology = lab.graph()
                for link in sc.links:
                    for edge in res.topology["links"]:
                        if set(edge[:2]) == set(link.between) and link.bw:
                            edge[2] = link.bw
                if self.capture_dir:
                    self._start_captures()
                res.hosts = {h: {"ip": addresses[h], "sysctls": lab.effective_sysctls[h]} for h in addresses}
                res.machine = hostcfg.read_machine_sysctls(hostcfg.MACHINE_RECORDED)
                before = {h: counters.read_host_counters(lab.host(h).pid) for h in addresses}
                try:
                    self._timeline(addresses)
                finally:
                    # Read counters when the timeline ends, before teardown: stopping a server closes its
                    # listener, and the RSTs that sends are not part of the lesson.
                    after = {h: counters.read_host_counters(lab.host(h).pid) for h in addresses}
                    self._stop_all()
                    for h in addresses:
                        res.hosts[h]["counters"] = {"before": before[h], "after": after[h],
                                                    "delta": counters.delta(before[h], after[h])}
                    self._collect()
            self._evaluate()
        except Skip as e:
            res.skipped = str(e)
        except (KeyboardInterrupt, Terminated) as e:
            res.interrupted = type(e).__name__ if isinstance(e, KeyboardInterrupt) else str(e)
            self._collect()
            raise
        except LabError as e:
            res.error = str(e)
            self._collect()
        finally:
            res.wall_s = round(time.monotonic() - wall, 3)
        return res

    def _check_can_run(self):
        sc = self.sc
        if any(link.needs_netem for link in sc.links) and not netem_available():
            raise Skip("netem absent in this kernel: this scenario shapes delay or loss (runs in the Vagrant VM)")
        if (sc.controller or sc.switch != "bridge") and not ovs_running():
            raise Skip(f"the Open vSwitch daemons are not running, and this scenario needs them: {OVS_FIX}")
        if sc.controller:
            try:
                import os_ken.base.app_manager  # noqa: F401
            except ImportError as e:
                raise Skip(f"os-ken is not importable ({e}): OpenFlow scenarios need it (scripts/install.sh)") from None

    def _timeline(self, addresses):
        sc = self.sc
        self.t0 = time.monotonic()
        self.result.t0 = self.t0
        if sc.sample:
            self.sampler = Sampler(self.lab, sc.sample, self.t0)
            self.sampler.start()
        pending = list(sc.guests)
        actions = list(sc.actions)
        while True:
            now = time.monotonic() - self.t0
            while pending and now >= pending[0].start:
                self._start_guest(pending.pop(0), addresses)
                now = time.monotonic() - self.t0
            while actions and now >= actions[0].at:
                action = actions.pop(0)
                ACTIONS[action.kind](self, action.params)
                self.result.actions.append({"at": action.at, "kind": action.kind, "params": action.params,
                                            "done_s": round(time.monotonic() - self.t0, 4)})
                self.progress(f"{now:6.2f} s  {action.kind} {action.params}")
            for spec in sc.guests:
                g = self.guests.get(spec.name)
                if g and spec.stop is not None and now >= spec.stop and g.running():
                    g.stop()
            waited = [self.guests.get(s.name) for s in sc.guests if s.wait]
            if not pending and not actions and all(g and not g.running() for g in waited):
                break
            if now >= sc.duration:
                self.progress(f"{now:6.2f} s  timeline ends (duration {sc.duration:g} s)")
                break
            time.sleep(0.01)
        self.result.timeline_s = round(time.monotonic() - self.t0, 3)

    def _start_guest(self, spec, addresses):
        if spec.after:
            other, ready_kind = self.guests[spec.after], self.sc.guest(spec.after).ready
            if ready_kind and not other.wait_event(ready_kind, READY_TIMEOUT):
                raise LabError(f"{self.sc.path}: guest {spec.after!r} did not report {ready_kind!r} within "
                               f"{READY_TIMEOUT:g} s: {other.stderr.strip()[-300:]}")
        argv = substitute(spec.args, addresses, self.t0)
        g = GuestProcess(spec.name, spec.host, spec.program, argv).start(self.lab)
        self.guests[spec.name] = g
        self.progress(f"{time.monotonic() - self.t0:6.2f} s  {spec.name} on {spec.host}: {spec.program} {' '.join(argv)}")
        if spec.ready and not g.wait_event(spec.ready, READY_TIMEOUT):
            g.stop()
            raise LabError(f"{self.sc.path}: guest {spec.name!r} did not report {spec.ready!r} within "
                           f"{READY_TIMEOUT:g} s: {g.stderr.strip()[-300:] or 'no error output'}")

    def _stop_all(self):
        if self.sampler:
            self.sampler.stop()
        for g in reversed(list(self.guests.values())):
            g.stop()
        for proc, info in self._captures:
            proc.send_signal(signal.SIGINT)      # tcpdump flushes its file on SIGINT
            try:
                proc.wait(5)
            except Exception:  # noqa: BLE001 (LabNetwork.stop() kills it with its host)
                pass
            info["packets"] = _count_packets(proc.stderr.read() if proc.stderr else "")
            if proc.stderr:
                proc.stderr.close()

    def _start_captures(self):
        """tcpdump on every interface of every host (headers only), started before the timeline."""
        import subprocess
        self.capture_dir.mkdir(parents=True, exist_ok=True)
        for h in self.lab.host_names():
            for intf in self.lab.host(h).intfNames():
                if intf == "lo":
                    continue
                name = f"{h}-{intf.split('-', 1)[-1]}.pcap"
                proc = self.lab.start_process(h, ["tcpdump", "-i", intf, "-s", "128", "-U", "-w",
                                                  str(self.capture_dir / name)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                info = {"host": h, "intf": intf, "file": name, "packets": None}
                self._captures.append((proc, info))
                self.result.captures.append(info)
        time.sleep(0.3)   # tcpdump needs a moment to attach before the first packet

    def _collect(self):
        res = self.result
        t0 = self.t0 or 0
        for name, g in self.guests.items():
            spec = self.sc.guest(name)
            events = [dict(e, t_rel=round(e["t"] - t0, 6)) if "t" in e else e for e in list(g.events)]
            res.guests[name] = {"host": spec.host, "program": spec.program, "argv": g.args,
                                "exit": g.proc.returncode if g.proc else None, "stderr": g.stderr[-2000:],
                                "events": events}
        controller = self.lab.controller if self.lab else None
        if controller:
            switches = {int("".join(c for c in sw if c.isdigit()) or 1): sw for sw in res.topology.get("switches", [])}
            res.guests["controller"] = {
                "host": "127.0.0.1", "program": "controller", "argv": [], "exit": None, "stderr": "",
                "events": [dict(e, t_rel=round(e["t"] - t0, 6), switch=switches.get(e.get("dpid")))
                           for e in list(controller.events) if e["t"] >= t0]}
        if self.sampler:
            res.samples = self.sampler.samples
            res.sample_errors = self.sampler.errors[:10]

    def _evaluate(self):
        res = self.result
        observations = {
            "counters": {h: v["counters"]["delta"] for h, v in res.hosts.items() if "counters" in v},
            "events": {g: v["events"] for g, v in res.guests.items()},
            "samples": res.samples,
        }
        for check in self.sc.checks:
            meaning = counters.meaning(check.path) if check.kind == "counter" else ""
            res.expectations.append(expect.evaluate(check, observations, meaning).to_dict())
        res.passed = all(v["passed"] for v in res.expectations)


def _count_packets(tcpdump_stderr):
    for line in tcpdump_stderr.splitlines():
        if "packets captured" in line:
            return int(line.split()[0])
    return None


def capture_excerpt(path, limit=15):
    """The interesting packets of a pcap (SYN, RST, zero window), decoded by tcpdump."""
    import subprocess
    expr = "tcp[tcpflags] & (tcp-syn|tcp-rst) != 0 or (tcp[14:2] = 0 and tcp[tcpflags] & tcp-ack != 0)"
    proc = subprocess.run(["tcpdump", "-nn", "-tt", "-r", str(path), expr], capture_output=True, text=True, timeout=30)
    lines = proc.stdout.splitlines()
    more = f"\n... {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def run_scenario(sc, out_dir=None, progress=None, capture=False):
    """Run one validated Scenario; write results.json, junit.xml and report.html into OUT_DIR when given."""
    from .report import write_report
    run = ScenarioRun(sc, progress)
    if capture and out_dir is not None:
        run.capture_dir = Path(out_dir)
    try:
        result = run.execute()
    finally:
        if out_dir is not None:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            for info in run.result.captures:
                info["excerpt"] = capture_excerpt(out / info["file"]) if (out / info["file"]).exists() else ""
            write_result(run.result, out / "results.json")
            write_junit([run.result], out / "junit.xml")
            write_report(out, run.result.captures)
    return result

"""The scenario runner: build the network, tune hosts, run the timeline, sample sockets, check.

One scenario run:
  1. skip early when the kernel lacks what it needs (netem for delay/loss, a congestion control module)
  2. build the network (LabNetwork) with the scenario's sysctls, then shape links
  3. counters before; start guests in order (start time, `after`, readiness); fire timed actions
     (lab/actions.py); sample `ss` on the listed hosts; end when every waited-for guest exited or at `duration`
  4. stop the rest (SIGTERM: they write their summaries), counters after, evaluate the checks
  5. results.json + junit.xml (lab/results.py) and report.html, also when interrupted
"""
import signal
import subprocess
import threading
import time
from pathlib import Path

from . import counters, expect, sockets
from .errors import LabError, Skip
from .guests import GuestProcess, parsed_args
from .network import OVS_FIX, LabNetwork, NetworkSpec, Terminated, netem_available, ovs_running, read_machine_sysctls, run_in
from .results import CounterSet, GuestResult, HostResult, Result, write_junit, write_result
from .scenario import substitute
from .sysctl import CONGESTION, DEFAULT_CONGESTION, MACHINE_RECORDED

READY_TIMEOUT = 10.0
# Above this many guests they are forked from one launcher (lab/network/launcher.py): no shipped lesson has
# more than a handful, a storm has a thousand.
FORK_GUESTS_ABOVE = 32
TRACE_CAP = 20000          # kernel events kept per run (tcp_probe samples are capped apart); past it: counted


def network_spec(sc, trusted=()):
    """The network a scenario asks for (used by `tcplab run` and `tcplab cli SCENARIO`)."""
    ref = sc.topology.ref
    return NetworkSpec(topology=ref.name, topology_file=ref.file, args=ref.args, params=ref.params,
                       switch=sc.switch, host_sysctls=sc.sysctls(congestion=False), controller=sc.controller)


def apply_congestion(lab, sc):
    """Each host's congestion control -> {host: algorithm}. The host's default (the per-namespace sysctl) is
    set where the machine allows it (tcp_allowed_congestion_control); the guests set it on each of their
    sockets in any case (TCPLAB_CONGESTION, see guest/kernel.py), and report what their sockets used."""
    allowed = read_proc("net/ipv4/tcp_allowed_congestion_control").split()
    chosen = {}
    for h in lab.host_names():
        chosen[h] = sc.congestion(h)
        if chosen[h] in allowed:
            lab.set_sysctls(h, {CONGESTION: chosen[h]})
    return chosen


def read_proc(key):
    try:
        with open(f"/proc/sys/{key}") as f:
            return f.read().strip()
    except OSError:
        return ""


def shape_links(lab, links):
    """Apply a scenario's `links:` shaping to a running network."""
    for link in links:
        lab.shape(*link.between, bw=link.bw, delay=link.delay, loss=link.loss, only_from=link.only_from,
                  burst=link.burst)


def congestion_available(name):
    """Whether this kernel offers congestion control NAME: loaded, built in, or a module it can load."""
    import platform
    if name in read_proc("net/ipv4/tcp_available_congestion_control").split():
        return True
    base = Path("/lib/modules") / platform.release()
    for index in ("modules.builtin", "modules.dep"):
        try:
            text = (base / index).read_text()
        except OSError:
            continue
        if f"/tcp_{name}.ko" in text:
            return True
    return False


def trace_ports(sc):
    """The ports tcp_probe samples for scenario SC: the sampled port, else every server's."""
    if sc.sample and sc.sample.port:
        return {sc.sample.port}
    ports = set()
    for g in sc.guests:
        if g.program == "server":
            try:
                ports.add(int(parsed_args(g.program, g.argv).get("port")))
            except (LabError, TypeError, ValueError):
                continue
    return ports


class Sampler(threading.Thread):
    """Runs `ss` in each listed host every interval; one process per host and sample."""

    def __init__(self, lab, spec, t0):
        super().__init__(daemon=True)
        self.lab, self.spec, self.t0 = lab, spec, t0
        self.samples = {h: [] for h in spec.hosts}
        self.errors = []
        # Known from ss's version, not only once a sample shows a window: a window that closes before the
        # first sample (a slow machine) would otherwise read as not observed.
        known = sockets.this_ss_prints_zero_window_by_omission()
        self.window_seen = {h: known for h in spec.hosts}
        self._halt = threading.Event()

    def run(self):
        hosts = {h: self.lab.host(h) for h in self.spec.hosts}
        while not self._halt.is_set():
            for name, host in hosts.items():
                try:
                    out = run_in(host, list(sockets.SS_ARGS))
                except (LabError, OSError, subprocess.SubprocessError) as e:
                    self.errors.append(str(e))
                    continue
                records = sockets.parse_ss(out)
                self.window_seen[name] |= any("snd_wnd" in r.info for r in records)
                t = time.monotonic() - self.t0
                self.samples[name].append(sockets.aggregate(t, records, self.spec.port, self.window_seen[name]))
            self._halt.wait(self.spec.interval)

    def stop(self):
        self._halt.set()
        self.join(5)


class ScenarioRun:
    """One run of one scenario. `execute()` returns a Result; results are written by the caller."""

    def __init__(self, sc, progress=None, trusted=(), capture_dir=None, trace=True, launch="auto"):
        self.sc = sc
        # Guests exec'd one by one (each one's command line visible in its host), or forked from one loaded
        # interpreter when a scenario has so many that starting them would dominate its time (a storm).
        self.fork = launch == "fork" or (launch == "auto" and len(sc.guests) > FORK_GUESTS_ABOVE)
        self.trace = trace              # the kernel's event stream (lab/trace), where the kernel allows
        self.progress = progress or (lambda text: None)
        self.trusted = trusted
        self.lab = None
        self.guests = {}
        self.sampler = None
        self.t0 = None
        self.addresses = {}
        self.congestion = {}
        self.result = Result(scenario=sc.name, title=sc.title, path=sc.path, teaches=sc.teaches)
        self.capture_dir = capture_dir  # set: tcpdump on every host interface, a pcap each
        self._captures = []             # (tcpdump process, capture info)

    def execute(self):
        sc, res = self.sc, self.result
        wall = time.monotonic()
        try:
            self._check_can_run()
            with LabNetwork(network_spec(sc, self.trusted), purpose=f"scenario {sc.name}") as lab:
                self.lab = lab
                res.run_id = lab.run_id
                self.progress(f"network {sc.topology} up ({len(lab.host_names())} hosts, run {lab.run_id})")
                shape_links(lab, sc.links)
                self.addresses = {h: lab.host(h).IP() for h in lab.host_names()}
                res.topology = self._graph(lab)
                if self.capture_dir:
                    self._start_captures()
                self.congestion = res.congestion = apply_congestion(lab, sc)
                res.hosts = {h: HostResult(ip=ip, sysctls=lab.effective_sysctls[h]) for h, ip in self.addresses.items()}
                res.machine = read_machine_sysctls(MACHINE_RECORDED)
                tracer = self._start_tracer(lab)
                # The event stream covers exactly the counters' window: started before "before", stopped
                # right after "after", so the two accounts of the same run can be compared.
                before = {h: counters.read_host_counters(lab.host(h).pid) for h in self.addresses}
                try:
                    self._timeline()
                finally:
                    # Read counters when the timeline ends, before teardown: stopping a server closes its
                    # listener, and the RSTs that sends are not part of the lesson.
                    after = {h: counters.read_host_counters(lab.host(h).pid) for h in self.addresses}
                    self._stop_tracer(tracer)
                    self._stop_all()
                    for h in self.addresses:
                        res.hosts[h].counters = CounterSet(before=before[h], after=after[h],
                                                           delta=counters.delta(before[h], after[h]))
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
        except Exception as e:    # noqa: BLE001 -- a bug here or in Mininet: this scenario's ERROR, not the suite's end
            import traceback
            where = "".join(traceback.format_exception(e)[-6:])
            res.error = f"internal error (a bug: please report it with this text): {type(e).__name__}: {e}\n{where}"
            self._collect()
        finally:
            res.wall_s = round(time.monotonic() - wall, 3)
        return res

    def _start_tracer(self, lab):
        from . import trace
        if not self.trace:
            self.result.trace = {"available": False, "reason": "tracing was turned off (--no-trace)"}
            return None
        tracer = trace.Tracer({h: trace.netns_inode(lab.host(h).pid) for h in lab.host_names()},
                              ports=trace_ports(self.sc),
                              cap=TRACE_CAP)
        ok, why = tracer.try_start()
        if not ok:
            self.result.trace = {"available": False, "reason": why}
            return None
        return tracer

    def _stop_tracer(self, tracer):
        if tracer is None:
            return
        got = tracer.stop()
        res, t0 = self.result, self.t0 or 0
        res.trace = {"available": got.available, "reason": got.reason, "events": len(got.events),
                     "dropped_by_cap": got.dropped_by_cap, "over_by_kind": got.over_by_kind,
                     "probe_thinned": got.probe_thinned, "lost": got.lost, "missed": got.missed,
                     "errors": got.errors[:10], "limits": got.limits, "cap": got.cap}
        if not got.available:
            return
        res.kernel_events = [dict(e, t=round(e["t"] - t0, 6)) for e in got.events]
        for host, counts in got.counts().items():
            nested = {}
            for key, n in counts.items():
                if key.startswith("drop."):
                    nested.setdefault("drop_reasons", {})[key[5:]] = n
                else:
                    nested[key] = n
            if "drop_reasons" in nested:
                nested["drop"] = nested.pop("drop_reasons")
            if host in res.hosts:
                res.hosts[host].kernel = nested

    def _check_can_run(self):
        sc = self.sc
        if any(link.needs_netem for link in sc.links) and not netem_available():
            raise Skip("netem absent in this kernel: this scenario shapes delay or loss (it runs in the Vagrant VM "
                       "and on distribution kernels)")
        if (sc.controller or sc.switch != "bridge") and not ovs_running():
            raise Skip(f"the Open vSwitch daemons are not running, and this scenario needs them: {OVS_FIX}")
        wanted = {DEFAULT_CONGESTION, *(s.get(CONGESTION) for s in sc.sysctls().values())} - {None}
        missing = sorted(w for w in wanted if not congestion_available(w))
        if missing:
            raise Skip(f"this kernel offers no {', '.join(missing)} congestion control (the scenario runs its hosts "
                       f"with it; available: {read_proc('net/ipv4/tcp_available_congestion_control')})")
        if sc.controller:
            try:
                import os_ken.base.app_manager  # noqa: F401
            except ImportError as e:
                raise Skip(f"os-ken is not importable ({e}): OpenFlow scenarios need it (scripts/install.sh)") from None

    def _graph(self, lab):
        graph = lab.graph()
        for link in self.sc.links:
            for edge in graph["links"]:
                if set(edge[:2]) == set(link.between) and link.bw:
                    edge[2] = link.bw
        return graph

    def _timeline(self):
        sc = self.sc
        self.t0 = time.monotonic()
        self.result.t0 = self.t0
        if sc.sample:
            self.sampler = Sampler(self.lab, sc.sample, self.t0)
            self.sampler.start()
        pending = list(sc.guests)
        steps = list(sc.actions)
        while True:
            now = time.monotonic() - self.t0
            while pending and now >= pending[0].start:
                self._start_guest(pending.pop(0))
                now = time.monotonic() - self.t0
            while steps and now >= steps[0].at:
                step = steps.pop(0)
                step.action.apply(self)
                self.result.actions.append({"at": step.at, "kind": step.kind,
                                            "params": step.action.model_dump(by_alias=True, exclude_none=True),
                                            "done_s": round(time.monotonic() - self.t0, 4)})
                self.progress(f"{now:6.2f} s  {step.action.describe()}")
            for spec in sc.guests:
                g = self.guests.get(spec.name)
                if g and spec.stop is not None and now >= spec.stop and g.running():
                    g.stop()
            waited = [self.guests.get(s.name) for s in sc.guests if s.wait]
            if not pending and not steps and all(g and not g.running() for g in waited):
                break
            if now >= sc.duration:
                self.progress(f"{now:6.2f} s  timeline ends (duration {sc.duration:g} s)")
                break
            time.sleep(0.01)
        self.result.timeline_s = round(time.monotonic() - self.t0, 3)

    def _start_guest(self, spec):
        if spec.after:
            other, ready_kind = self.guests[spec.after], self.sc.guest(spec.after).ready
            if ready_kind and not other.wait_event(ready_kind, READY_TIMEOUT):
                raise LabError(f"{self.sc.path}: guest {spec.after!r} did not report {ready_kind!r} within "
                               f"{READY_TIMEOUT:g} s: {other.stderr.strip()[-300:]}")
        argv = substitute(spec.argv, self.addresses, self.t0)
        g = GuestProcess(spec.name, spec.host, spec.program, argv, congestion=self.congestion.get(spec.host),
                         fork=self.fork).start(self.lab)
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
            except subprocess.TimeoutExpired:    # LabNetwork.stop() kills it with its host
                pass
            info["packets"] = _count_packets(proc.stderr.read() if proc.stderr else "")
            if proc.stderr:
                proc.stderr.close()

    def _start_captures(self):
        """tcpdump on every interface of every host (headers only), started before the timeline."""
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
            events = [dict(e, t_rel=round(e["t"] - t0, 6)) if isinstance(e.get("t"), (int, float)) else e
                      for e in list(g.events)]
            res.guests[name] = GuestResult(host=spec.host, program=spec.program, argv=g.args,
                                           exit=g.proc.returncode if g.proc else None, stderr=g.stderr[-2000:],
                                           events=events)
        controller = self.lab.controller if self.lab else None
        if controller:
            dpids = {int("".join(c for c in sw if c.isdigit()) or 1): sw for sw in res.topology.get("switches", [])}
            res.guests["controller"] = GuestResult(
                host="127.0.0.1", program="controller",
                events=[dict(e, t_rel=round(e["t"] - t0, 6), switch=dpids.get(e.get("dpid")))
                        for e in list(controller.events) if e["t"] >= t0])
        if self.sampler:
            res.samples = self.sampler.samples
            res.sample_errors = self.sampler.errors[:10]

    def _evaluate(self):
        res = self.result
        observations = res.observations()
        for check in self.sc.checks:
            meaning = counters.meaning(check.path) if check.kind == "counter" else ""
            res.expectations.append(expect.evaluate(check, observations, meaning))
        judged = [v for v in res.expectations if not v.skipped]
        res.passed = bool(judged) and all(v.passed for v in judged)


def _count_packets(tcpdump_stderr):
    for line in tcpdump_stderr.splitlines():
        if "packets captured" in line:
            return int(line.split()[0])
    return None


def capture_excerpt(path, limit=15):
    """The interesting packets of a pcap (SYN, RST, zero window), decoded by tcpdump."""
    expr = "tcp[tcpflags] & (tcp-syn|tcp-rst) != 0 or (tcp[14:2] = 0 and tcp[tcpflags] & tcp-ack != 0)"
    proc = subprocess.run(["tcpdump", "-nn", "-tt", "-r", str(path), expr], capture_output=True, text=True, timeout=30)
    lines = proc.stdout.splitlines()
    more = f"\n... {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def run_scenario(sc, out_dir=None, progress=None, capture=False, trusted=(), trace=True, launch="auto"):
    """Run one validated Scenario; write results.json, junit.xml and report.html into OUT_DIR when given.
    LAUNCH: how guests start, "exec" (mnexec each), "fork" (the run's launcher) or "auto" (fork above
    FORK_GUESTS_ABOVE guests)."""
    from .report import write_report
    run = ScenarioRun(sc, progress, trusted, Path(out_dir) if capture and out_dir is not None else None, trace,
                      launch)
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
            write_report(out, run.result)
    return result

"""Network lifecycle: build a Mininet network, tune its hosts, and remove exactly what it created.

`LabNetwork` is a context manager. Inside `with`, hosts run, links can be shaped or cut; on leaving
(normally, on an exception, SIGINT or SIGTERM) everything the run created is removed, by its run
record, and the machine's sysctls are checked unchanged. This is the only module that creates or
deletes kernel objects (namespaces via host shells, links, bridges, qdiscs).

Mininet is used with three guards:
- `fixLimits()` is not run: it rewrites root-namespace sysctls (tcp_rmem, rmem_max, ...) and never
  restores them, and new namespaces copy tcp_rmem/tcp_wmem from the root. Hosts are set to the kernel's
  own defaults (hosts.KERNEL_DEFAULTS) unless asked otherwise.
- Switch names carry the run id (`tq7a` + `s1`): Mininet deletes any existing bridge or interface with
  the name it is about to use, so two runs at once must never share one. The topology's own name (`s1`)
  still finds the switch: `net["s1"]`.
- Cleanup never goes by process name: it kills the PIDs its record names (checked by start time) and
  the processes inside the namespaces those hosts own.
"""
import os
import resource
import signal
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from shutil import which

from .. import hosts as hostcfg
from .. import topology
from ..errors import EnvironmentProblem, LabError
from ..runrecord import RunRecord
from .probes import OVS_FIX, ovs_kernel_module, ovs_running
from .shells import FastShell
from .teardown import MARKER, cleanup_dead_runs, remove_run, run_values

# Command -> Debian package, checked before anything is built.
REQUIRED_COMMANDS = {"mnexec": "mininet", "ip": "iproute2", "tc": "iproute2", "ss": "iproute2",
                     "brctl": "bridge-utils", "sysctl": "procps", "ifconfig": "net-tools"}
SWITCH_KINDS = ("bridge", "ovs", "ovs-user")
SHAPING_PARAMS = {"bw", "delay", "jitter", "loss", "max_queue_size", "speedup", "use_htb", "use_tbf", "use_hfsc"}


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM or SIGHUP so that `with LabNetwork(...)` cleans up as on Ctrl-C."""


@dataclass
class NetworkSpec:
    """What to build: a topology (shipped name or file), its parameters, the switch and host settings."""

    topology: str = "single"
    topology_file: str = None
    args: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    switch: str = "bridge"
    controller: str = None                 # "lab": tcplab's os-ken controller, OVS userspace datapath
    host_sysctls: dict = field(default_factory=dict)   # host name or "*" -> {key: value}


def check_environment(spec):
    """Raise EnvironmentProblem naming what is missing and which package provides it."""
    if os.geteuid() != 0:
        raise EnvironmentProblem("tcplab builds networks with namespaces and bridges: run it as root (sudo)")
    missing = [f"{cmd} (apt install {pkg})" for cmd, pkg in REQUIRED_COMMANDS.items() if not which(cmd)]
    if spec.switch != "bridge" or spec.controller:
        if not which("ovs-vsctl"):
            missing.append("ovs-vsctl (apt install openvswitch-switch)")
        if spec.controller and not which("ethtool"):
            missing.append("ethtool (apt install ethtool)")
    if missing:
        raise EnvironmentProblem("missing commands: " + ", ".join(missing))
    if (spec.switch != "bridge" or spec.controller) and not ovs_running():
        raise EnvironmentProblem(f"the Open vSwitch daemons are not running: {OVS_FIX}")
    if spec.switch not in SWITCH_KINDS:
        raise LabError(f"switch {spec.switch!r}: expected one of {', '.join(SWITCH_KINDS)}")
    if spec.switch == "ovs" and not ovs_kernel_module():
        raise EnvironmentProblem("switch 'ovs' needs the openvswitch kernel module, absent here; "
                                 "use switch 'bridge' (the default), or an OpenFlow controller (userspace datapath)")


def _mininet_classes():
    # Imported late: the pure modules and `tcplab --help` must work without Mininet.
    from mininet.link import Link, TCLink
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import Host, OVSBridge, OVSSwitch, RemoteController
    from mininet.nodelib import LinuxBridge
    from mininet.util import ensureRoot

    # Mininet.__init__ calls `Mininet.init()` on the base class, which runs fixLimits() (rewriting the root
    # namespace's tcp_rmem, rmem_max, ... for good) unless Mininet.inited is set: an override in a subclass
    # is never called. Mark it initialised, and do the one useful part ourselves: raise this process's
    # open-file limit (200 hosts need ptys).
    ensureRoot()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    Mininet.inited = True

    class LabMininet(Mininet):
        """Mininet that records what it creates in a run record and leaves root sysctls alone."""

        def __init__(self, record, **kwargs):
            self.record = record
            super().__init__(**kwargs)

        def addSwitch(self, name, cls=None, **params):  # noqa: N802 (Mininet's API)
            kernel_name = self.record.run_id + name
            digits = "".join(ch for ch in name if ch.isdigit()) or "1"
            params.setdefault("dpid", f"{int(digits):016x}")
            switch = super().addSwitch(kernel_name, cls, **params)
            self.nameToNode[name] = switch
            switch.topo_name = name
            self.record.add_process(switch.pid, f"switch {name}")
            return switch

        def addHost(self, name, cls=None, **params):  # noqa: N802
            host = super().addHost(name, cls, **params)
            self.record.add_process(host.pid, f"host {name}")
            return host

        def addLink(self, node1, node2, port1=None, port2=None, cls=None, **params):  # noqa: N802
            # TCLink only where the topology shapes the link: its per-interface tc and ifconfig commands cost
            # about 10 ms a link (2 s at 200 hosts). Later shaping (shape()) replaces qdiscs on any link.
            if cls is None and not SHAPING_PARAMS & set(params):
                cls = Link
            return super().addLink(node1, node2, port1, port2, cls, **params)

        def addController(self, name="c0", controller=None, **params):  # noqa: N802
            node = super().addController(name, controller, **params)
            self.record.add_process(node.pid, f"controller node {name}")
            return node

        def release(self):
            """After remove_run() killed every process: close the shells' ptys and reap them."""
            for node in self.hosts + self.switches + self.controllers:
                if node.shell:
                    try:
                        node.stdin.close()
                        os.close(node.slave)
                    except OSError:
                        pass
                    try:
                        node.shell.wait(5)
                    except subprocess.TimeoutExpired:
                        pass
                    node.shell = None

    return dict(Mininet=LabMininet, TCLink=TCLink, Host=_bounded(Host), LinuxBridge=_bounded(LinuxBridge),
                OVSBridge=_bounded(OVSBridge), OVSSwitch=_bounded(OVSSwitch),
                RemoteController=_bounded(RemoteController), setLogLevel=setLogLevel)


_BOUNDED = {}


def _bounded(cls):
    """CLS with a shell whose start cannot hang (shells.FastShell); one subclass per Mininet class."""
    if cls not in _BOUNDED:
        _BOUNDED[cls] = type("Lab" + cls.__name__, (FastShell, cls), {})
    return _BOUNDED[cls]


class LabNetwork:
    """A running lab network. Use as `with LabNetwork(spec) as net:`; `net.host("h1")` gives a host."""

    def __init__(self, spec=None, purpose="", log_level="error"):
        self.spec = spec or NetworkSpec()
        self.purpose = purpose
        self.log_level = log_level
        self.record = None
        self.net = None
        self.controller = None
        self.effective_sysctls = {}
        self.processes = []
        self.teardown_report = None     # remove_run()'s: refused processes, machine sysctls restored or left
        self._old_handlers = {}

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        spec = self.spec
        check_environment(spec)
        topo = topology.build(spec.topology, spec.topology_file, spec.args, spec.params)
        self._check_host_sysctls(topo)
        cleanup_dead_runs()
        mn = _mininet_classes()
        mn["setLogLevel"](self.log_level)
        self._trap_sigterm()
        try:
            # No window: the record exists exactly when self.record is set (a signal here waits).
            with deferred_signals():
                self.record = new_record(self.purpose or spec.topology, topo,
                                         ovs=bool(spec.controller or spec.switch != "bridge"))
            with run_marker(self.record.run_id):
                self._build(mn, topo)
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self, mn, topo):
        spec = self.spec
        if spec.controller:
            from ..controller.process import ControllerProcess
            self.controller = ControllerProcess().start(self.record)
        self.net = mn["Mininet"](record=self.record, topo=None, build=False, controller=None, host=mn["Host"],
                                 switch=self._switch_class(mn), link=mn["TCLink"], waitConnected=False)
        self.net.topo = topo
        if self.controller:
            self.net.addController("c0", controller=mn["RemoteController"], ip="127.0.0.1",
                                   port=self.controller.of_port)
        self.net.build()
        self.net.start()
        if self.controller or spec.switch == "ovs-user":
            self._offload_off()
        if self.controller:
            self.controller.wait_switches(len(self.net.switches))
        self._tune_hosts()

    def stop(self):
        """Stop everything this run started and verify the machine is as it was. Safe to call twice.
        SIGINT, SIGTERM and SIGHUP arriving meanwhile wait until the cleanup is complete, then act."""
        if self.record is None:
            self._restore_sigterm()
            return
        try:
            with deferred_signals():
                try:
                    if self.controller:
                        self.controller.stop()
                finally:
                    self.teardown_report = remove_run(self.record)
                    if self.net is not None:
                        self.net.release()
                    for proc in self.processes:   # reap: they were killed with their host
                        try:
                            proc.wait(5)
                        except subprocess.TimeoutExpired:
                            pass
                    self.processes = []
                    self.net = None
                    self.record = None
        finally:
            self._restore_sigterm()

    # -- what scenarios and the CLI use -----------------------------------------------------
    def set_log_level(self, level):
        """Mininet's log level: its CLI prints through output(), hidden below 'output'."""
        from mininet.log import setLogLevel
        setLogLevel(level)

    @property
    def run_id(self):
        return self.record.run_id if self.record else None

    def host(self, name):
        try:
            node = self.net[name]
        except KeyError:
            raise LabError(f"no host {name!r} (hosts: {', '.join(self.host_names())})") from None
        return node

    def graph(self):
        """{hosts, switches, links: [[a, b, bw]]} by topology names, for reports."""
        topo = self.net.topo
        return {"name": self.spec.topology, "hosts": list(topo.hosts()), "switches": list(topo.switches()),
                "links": [[a, b, info.get("bw")] for a, b, info in topo.links(withInfo=True)]}

    def host_names(self):
        return [h.name for h in self.net.hosts]

    def start_process(self, host_name, argv, **popen_kwargs):
        """Start ARGV inside a host, in its own session (Ctrl-C reaches the lab, not the guest)."""
        host = self.host(host_name)
        popen_kwargs["env"] = {**(popen_kwargs.get("env") or os.environ), MARKER: self.record.run_id}
        proc = subprocess.Popen(["mnexec", "-da", str(host.pid), *argv], **popen_kwargs)
        self.processes.append(proc)
        self.record.add_process(proc.pid, f"process on {host_name}: {argv[0]}")
        return proc

    def set_sysctls(self, host_name, settings):
        host = self.host(host_name)
        hostcfg.set_host_sysctls(host, settings)
        self.effective_sysctls[host_name] = hostcfg.read_host_sysctls(host)

    def link_interfaces(self, a, b):
        """The two interfaces joining nodes A and B (topology names)."""
        na, nb = self.net[a], self.net[b]
        links = self.net.linksBetween(na, nb)
        if not links:
            raise LabError(f"no link between {a} and {b}")
        return links[0].intf1, links[0].intf2

    def set_link(self, a, b, up):
        for intf in self.link_interfaces(a, b):
            _check(intf.node.cmd(f"ip link set dev {intf.name} {'up' if up else 'down'}"), intf)

    def shape(self, a, b, bw=None, delay=None, loss=None, only_from=None, burst=None):
        """Shape the A-B link (replacing what was there): BW Mbit/s with htb, DELAY/LOSS with netem; both
        directions, or only traffic leaving node ONLY_FROM. BURST is htb's token bucket in bytes."""
        for intf in self.link_interfaces(a, b):
            if only_from and getattr(intf.node, "topo_name", intf.node.name) != only_from:
                continue
            for command in shape_commands(intf.name, bw, delay, loss, burst):
                _check(intf.node.cmd(command), intf)

    # -- internals ---------------------------------------------------------------------------
    def _switch_class(self, mn):
        from functools import partial
        if self.spec.controller:
            return partial(mn["OVSSwitch"], datapath="user", protocols="OpenFlow13", failMode="secure")
        if self.spec.switch in ("ovs", "ovs-user"):
            return partial(mn["OVSBridge"], datapath="user" if self.spec.switch == "ovs-user" else "kernel")
        return mn["LinuxBridge"]

    def _check_host_sysctls(self, topo):
        names = set(topo.hosts())
        for host, settings in self.spec.host_sysctls.items():
            if host != "*" and host not in names:
                raise LabError(f"sysctls for unknown host {host!r} (hosts: {', '.join(sorted(names))})")
            for key in settings:
                hostcfg.check_per_host(key)

    def _tune_hosts(self):
        wanted = self.spec.host_sysctls
        jobs = []
        for host in self.net.hosts:
            settings = dict(hostcfg.KERNEL_DEFAULTS)
            settings.update(wanted.get("*", {}))
            settings.update(wanted.get(host.name, {}))
            jobs.append((host.name, host.pid, settings, hostcfg.RECORDED_KEYS))
        self.effective_sysctls = hostcfg.tune_in_namespaces(jobs)

    def _offload_off(self):
        # Over the OVS userspace datapath, TCP fails with TX checksum offload on (ping works): verified.
        for host in self.net.hosts:
            for intf in host.intfList():
                if intf.name != "lo":
                    hostcfg.host_run(host, ["ethtool", "-K", intf.name, "tx", "off"])

    def _trap_sigterm(self):
        # SIGHUP too: a closed terminal (ssh dropped, pexpect closed) must not leave bridges behind.
        if _main_thread():
            def on_term(signum, frame):
                raise Terminated(signal.Signals(signum).name)
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._old_handlers[sig] = signal.signal(sig, on_term)

    def _restore_sigterm(self):
        if _main_thread():
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            self._old_handlers = {}


def shape_commands(dev, bw=None, delay=None, loss=None, burst=None):
    """The tc commands that shape DEV. Pure, so that the netem form is checked even where netem is absent."""
    netem = " ".join(part for part in (f"delay {delay}" if delay else "", f"loss {loss}" if loss else "") if part)
    if not bw:
        return [f"tc qdisc replace dev {dev} root netem {netem}"] if netem else []
    # A burst of about 5 ms of traffic (at least one packet): Mininet's fixed 15k would let a slow link
    # pass its first 15 KB at line rate.
    burst = burst or max(1600, int(bw * 1e6 / 8 * 0.005))
    commands = [f"tc qdisc replace dev {dev} root handle 5: htb default 1",
                f"tc class replace dev {dev} parent 5: classid 5:1 htb rate {bw}mbit burst {burst} cburst {burst}"]
    if netem:
        commands.append(f"tc qdisc replace dev {dev} parent 5:1 handle 10: netem {netem}")
    return commands


def new_record(purpose, topo, ovs):
    """A run record naming, before anything exists, every switch and root-namespace interface the run
    will create: Mininet names switch ports <switch>-eth<port>, with the topology's port numbers."""
    record = RunRecord.create(purpose)
    record.machine_sysctls = hostcfg.read_machine_sysctls(hostcfg.MACHINE_GUARDED)
    record.machine_run_values = run_values(record.machine_sysctls)
    record.switches = [record.run_id + s for s in topo.switches()]
    if ovs:
        record.ovs_bridges = list(record.switches)
    for _, _, info in topo.links(withInfo=True):
        for end in ("1", "2"):
            if topo.isSwitch(info["node" + end]):
                record.root_interfaces.append(f"{record.run_id}{info['node' + end]}-eth{info['port' + end]}")
    record.save()
    return record


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def deferred_signals():
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done, then deliver them (KeyboardInterrupt,
    Terminated, or the default action). A deferring handler, not a blocked mask: a signal sent to the
    process may be delivered to any thread (guests' readers), and Python runs handlers in the main thread."""
    if not _main_thread():
        yield
        return
    pending = []
    old = {}
    try:
        for sig in _SIGNALS:
            old[sig] = signal.signal(sig, lambda signum, frame: pending.append(signum))
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(pending):
            signal.raise_signal(sig)


@contextmanager
def run_marker(run_id):
    """Everything started meanwhile (shells, switches, the controller) carries TCPLAB_RUN=<run id> in its
    environment: cleanup signals only processes that carry their run's marker."""
    old = os.environ.get(MARKER)
    os.environ[MARKER] = run_id
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(MARKER, None)
        else:
            os.environ[MARKER] = old


def _main_thread():
    return threading.current_thread() is threading.main_thread()


def _check(output, intf):
    if output.strip():
        raise LabError(f"{intf.node.name}: {intf.name}: {output.strip()}")

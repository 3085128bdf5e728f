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
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from shutil import which

from .. import sysctl as sysctls
from . import sysctls as kernel
from .. import topology
from ..errors import EnvironmentProblem, LabError
from ..guests import guest_argv
from .probes import OVS_FIX, ovs_kernel_module, ovs_running
from .nodes import mininet_classes, new_record, run_marker
from .teardown import MARKER, cleanup_dead_runs, remove_ovs_bridges, remove_run

# Command -> Debian package, checked before anything is built.
REQUIRED_COMMANDS = {"mnexec": "mininet", "ip": "iproute2", "tc": "iproute2", "ss": "iproute2",
                     "brctl": "bridge-utils", "sysctl": "procps", "ifconfig": "net-tools"}
SWITCH_KINDS = ("bridge", "ovs", "ovs-user")


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
    controller: str = None                 # "lab": tcplab's os-ken controller (OVS; userspace datapath
                                           # unless switch is "ovs": the kernel datapath)
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
        self._launcher = None           # the run's guest launcher (lab/network/launcher.py), once needed
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
        mn = mininet_classes()
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
                                 switch=self._switch_class(mn), link=mn["Link"], intf=mn["BatchIntf"],
                                 waitConnected=False)
        self.net.topo = topo
        if self.controller:
            self.net.addController("c0", controller=mn["RemoteController"], ip="127.0.0.1",
                                   port=self.controller.of_port)
        self.net.build()
        self.net.start()
        for link in self.net.links:      # a topology's own link options (bw, delay...): the lab's shaping
            shaping = getattr(link, "shaping", None)
            if shaping:
                delay = " ".join(str(v) for v in (shaping.get("delay"), shaping.get("jitter")) if v)
                loss = shaping.get("loss")
                for intf in (link.intf1, link.intf2):
                    self._shape_intf(intf, shaping.get("bw"), delay or None, f"{loss}%" if loss else None)
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
                        # The switches first: os-ken, still holding their connections, ignores SIGTERM
                        # for the 5 s ControllerProcess.stop() allows before killing it.
                        remove_ovs_bridges(self.record)
                        self.controller.stop()
                finally:
                    self.teardown_report = remove_run(self.record)
                    if self.net is not None:
                        self.net.release()
                    if self._launcher is not None:   # killed with the run's processes: reap it
                        self._launcher.stop()
                        self._launcher = None
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

    def start_guest(self, host_name, program, args, env=None, fork=False):
        """Start guest PROGRAM with ARGS in a host, ENV added to its environment; a Popen-like process whose
        stdout/stderr are text pipes. Exec'd through mnexec (`ps` in the host shows its command line), or
        with FORK forked from the run's guest launcher: ~40 times less CPU per guest, for runs of many."""
        if not fork:
            # errors="replace": a byte that is not UTF-8 becomes U+FFFD in its line (as in the shared reader),
            # not an exception that would end the reader thread
            return self.start_process(host_name, guest_argv(program, args), env={**os.environ, **(env or {})},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
        host = self.host(host_name)
        if self._launcher is None:
            from .launcher import GuestLauncher
            self._launcher = GuestLauncher({**os.environ, MARKER: self.record.run_id}).start()
            self.record.add_process(self._launcher.proc.pid, "guest launcher")
        proc = self._launcher.launch(host.pid, program, args, env=env)
        self.processes.append(proc)
        self.record.add_process(proc.pid, f"process on {host_name}: {program} (forked)")
        return proc

    def set_sysctls(self, host_name, settings):
        host = self.host(host_name)
        kernel.set_host_sysctls(host, settings)
        self.effective_sysctls[host_name] = kernel.read_host_sysctls(host, self._recorded(host_name))

    def link_interfaces(self, a, b):
        """The two interfaces joining nodes A and B (topology names)."""
        na, nb = self.net[a], self.net[b]
        links = self.net.linksBetween(na, nb)
        if not links:
            raise LabError(f"no link between {a} and {b}")
        return links[0].intf1, links[0].intf2

    def set_link(self, a, b, up):
        for intf in self.link_interfaces(a, b):
            kernel.run_in(intf.node, ["ip", "link", "set", "dev", intf.name, "up" if up else "down"])

    def shape(self, a, b, bw=None, delay=None, loss=None, only_from=None, burst=None):
        """Shape the A-B link (replacing what was there): BW Mbit/s with htb, DELAY/LOSS with netem; both
        directions, or only traffic leaving node ONLY_FROM. BURST is htb's token bucket in bytes."""
        for intf in self.link_interfaces(a, b):
            if only_from and getattr(intf.node, "topo_name", intf.node.name) != only_from:
                continue
            self._shape_intf(intf, bw, delay, loss, burst)

    def _shape_intf(self, intf, bw=None, delay=None, loss=None, burst=None):
        commands = shape_commands(intf.name, bw, delay, loss, burst)
        if bw:
            # htb cannot be "replaced" by itself (the kernel refuses to change it): when the link is shaped
            # already, only its class (and netem under it) change, and nothing queued is dropped.
            now = kernel.run_in(intf.node, ["tc", "qdisc", "show", "dev", intf.name])
            if "qdisc htb 5: root" in now:
                commands = commands[1:]
                if "qdisc netem 10: parent 5:1" in now and not (delay or loss):
                    commands.append(f"tc qdisc del dev {intf.name} parent 5:1 handle 10:")
        for command in commands:
            kernel.run_in(intf.node, command.split())     # shape_commands() builds them from checked numbers

    # -- internals ---------------------------------------------------------------------------
    def _switch_class(self, mn):
        from functools import partial
        if self.spec.controller:
            # The userspace datapath works everywhere; `switch: ovs` asks for the kernel's (the module).
            datapath = "kernel" if self.spec.switch == "ovs" else "user"
            return partial(mn["OVSSwitch"], datapath=datapath, protocols="OpenFlow13", failMode="secure")
        if self.spec.switch in ("ovs", "ovs-user"):
            return partial(mn["OVSBridge"], datapath="user" if self.spec.switch == "ovs-user" else "kernel")
        return mn["LinuxBridge"]

    def _recorded(self, host_name):
        """Every key recorded for a host: RECORDED_KEYS and every key it was ever given."""
        return tuple(dict.fromkeys([*sysctls.RECORDED_KEYS, *self.effective_sysctls.get(host_name, {})]))

    def _check_host_sysctls(self, topo):
        names = set(topo.hosts())
        for host, settings in self.spec.host_sysctls.items():
            if host != "*" and host not in names:
                raise LabError(f"sysctls for unknown host {host!r} (hosts: {', '.join(sorted(names))})")
            for key in settings:
                sysctls.check_per_host(key)

    def _tune_hosts(self):
        wanted = self.spec.host_sysctls
        jobs = []
        for host in self.net.hosts:
            settings = dict(sysctls.HOST_DEFAULTS)
            settings.update(wanted.get("*", {}))
            settings.update(wanted.get(host.name, {}))
            jobs.append((host.name, host.pid, settings, sysctls.RECORDED_KEYS))
        self.effective_sysctls = kernel.tune_in_namespaces(jobs)

    def _offload_off(self):
        # Over the OVS userspace datapath, TCP fails with TX checksum offload on (ping works): verified.
        for host in self.net.hosts:
            for intf in host.intfList():
                if intf.name != "lo":
                    kernel.run_in(host, ["ethtool", "-K", intf.name, "tx", "off"])

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
    rate = bw * 1e6 / 8                      # bytes per second
    # A burst of about 5 ms of traffic (at least one packet): Mininet's fixed 15k would let a slow link
    # pass its first 15 KB at line rate.
    burst = burst or max(1600, int(rate * 0.005))
    commands = [f"tc qdisc replace dev {dev} root handle 5: htb default 1",
                f"tc class replace dev {dev} parent 5: classid 5:1 htb rate {bw:g}mbit burst {burst} cburst {burst} "
                f"quantum {htb_quantum(bw)}"]
    if netem:
        commands.append(f"tc qdisc replace dev {dev} parent 5:1 handle 10: netem {netem}")
    return commands


def htb_quantum(bw):
    """htb's quantum for a class of BW Mbit/s: by default rate / r2q (10), and the kernel warns ("quantum of
    class ... is big/small. Consider r2q change") outside 1000..200000 bytes, i.e. above ~16 Mbit/s and below
    ~0.8 Mbit/s. Given explicitly within that range (and at least one full-size frame), any rate from
    0.1 Mbit/s to 10 Gbit/s is accepted in silence. With one class per link, it only sets how much the class
    sends per round, not the rate."""
    return int(min(200000, max(1600, bw * 1e6 / 8 / 10)))


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


def _main_thread():
    return threading.current_thread() is threading.main_thread()



def bare_mininet(n):
    """The benchmark's reference: bare Mininet's own serial build, start and stop of `single` with N hosts
    on a Linux bridge, timed: (start s, stop s). It runs under a run record like any lab network (its
    switch named with the run id, TCPLAB_RUN on its processes), so `tcplab cleanup` finds it after a kill;
    the record-based removal after Mininet's stop() is not timed and normally finds nothing left."""
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge
    from mininet.topo import SingleSwitchTopo, Topo

    mininet_classes()          # the same guard against fixLimits() as the lab's networks
    with deferred_signals():
        record = new_record(f"bench bare Mininet {n}", SingleSwitchTopo(n), ovs=False)
    net = None
    try:
        topo = Topo()
        switch = topo.addSwitch(record.switches[0], dpid="1")
        for i in range(1, n + 1):
            topo.addLink(topo.addHost(f"h{i}"), switch)
        with run_marker(record.run_id):
            t0 = time.monotonic()
            net = Mininet(topo=topo, switch=LinuxBridge, controller=None)
            net.start()
            t1 = time.monotonic()
        record.add_processes([(node.pid, f"host {node.name}") for node in net.hosts] +
                             [(node.pid, f"switch {node.name}") for node in net.switches])
        t2 = time.monotonic()
        net.stop()
        t3 = time.monotonic()
        return t1 - t0, t3 - t2
    finally:
        with deferred_signals():
            remove_run(record)

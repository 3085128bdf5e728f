"""The Mininet classes the lab builds with, and the run record of what they will create.

- LabMininet: Mininet with fixLimits() never run, switch names carrying the run id, every node's PID
  journaled as it is spawned, and build() in batches (build.py, shells.py).
- new_record(): the run record, naming every switch and root-namespace interface before it exists.
- run_marker(): TCPLAB_RUN=<run id> in the environment of everything started meanwhile (teardown.py).
"""
import os
import resource
import subprocess
from contextlib import contextmanager

from .. import sysctl as sysctls
from . import sysctls as kernel
from ..errors import LabError
from ..runrecord import RunRecord
from .shells import FastShell, wait_shells
from .teardown import MARKER, ip_batch, run_values


def mininet_classes():
    # Imported late: the pure modules and `tcplab --help` must work without Mininet.
    from mininet.link import Link
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import Host, OVSBridge, OVSSwitch, RemoteController
    from mininet.nodelib import LinuxBridge
    from mininet.util import ensureRoot

    # Mininet.__init__ calls `Mininet.init()` on the base class, which runs fixLimits() (rewriting the root
    # namespace's tcp_rmem, rmem_max, ... for good) unless Mininet.inited is set: an override in a subclass
    # is never called. Mark it initialised, and do the one useful part ourselves: raise this process's
    # open-file limit (200 hosts need ptys).
    from . import build as batch
    ensureRoot()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    Mininet.inited = True

    class LabLinuxBridge(FastShell, LinuxBridge):
        """Mininet's LinuxBridge; when the build created it with the links (one `ip -batch`), start() has
        nothing left to do (Mininet's runs brctl addbr and one brctl addif per port through the shell)."""

        batched = False

        def start(self, controllers):
            if not self.batched:
                super().start(controllers)

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

        def build(self):
            """Mininet's build (same nodes, links and interfaces), with every round trip batched (build.py)."""
            topo = self.topo
            FastShell.defer = True
            try:
                for name in topo.hosts():
                    self.addHost(name, **topo.nodeInfo(name))
                for name in topo.switches():
                    self.addSwitch(name, **topo.nodeInfo(name))
            finally:
                FastShell.defer = False
            wait_shells(self.hosts + self.switches)
            pending = batch.Pending()
            nodes = self.hosts + self.switches
            for node in nodes:
                node.pending = pending
            try:
                for _, _, info in topo.links(sort=True, withInfo=True):
                    info = dict(info)
                    self.addLink(cls=info.pop("cls", batch.BatchLink), **info)
                for switch in self.switches:
                    if isinstance(switch, LabLinuxBridge) and not switch.stp:
                        pending.bridge(switch)
                        switch.batched = True
            finally:
                for node in nodes:
                    del node.pending
            known = set(self.record.root_interfaces + self.record.switches)
            if not known.issuperset(pending.root_names):     # recorded before created, whatever the topology
                self.record.root_interfaces += [n for n in pending.root_names if n not in known]
                self.record.save()
            errors = ip_batch(pending.commands())
            if errors:
                raise LabError(f"creating the network's links: ip -batch: {errors}")
            jobs, slow = batch.host_jobs(self.hosts)
            batch.configure_hosts(jobs)
            for host in slow:
                host.configDefault()
            batch.finish_intfs(pending)
            self.built = True

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

    return dict(Mininet=LabMininet, Host=_bounded(Host), LinuxBridge=LabLinuxBridge,
                OVSBridge=_bounded(OVSBridge), OVSSwitch=_bounded(OVSSwitch),
                RemoteController=_checked_by_socket(_bounded(RemoteController)), setLogLevel=setLogLevel, Link=Link,
                BatchIntf=batch.BatchIntf)


_BOUNDED = {}


def _checked_by_socket(cls):
    """Mininet checks a remote controller with `echo A | telnet` in a shell, whose output is the controller's
    binary OpenFlow hello: a plain TCP connect from here says the same without parsing bytes."""
    def check_listening(self, within=15.0):
        # The controller says it is ready when its app is built; os-ken opens the OpenFlow port just after
        # (on a busy machine, seconds after): wait for it, bounded.
        import socket
        import time
        deadline = time.monotonic() + within
        while True:
            try:
                socket.create_connection((self.ip, self.port), timeout=2).close()
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise LabError(f"the OpenFlow controller at {self.ip}:{self.port} did not accept connections "
                                   f"within {within:g} s: {e}")
                time.sleep(0.05)
    return type(cls.__name__, (cls,), {"checkListening": check_listening})


def _bounded(cls):
    """CLS with a shell whose start cannot hang (shells.FastShell); one subclass per Mininet class."""
    if cls not in _BOUNDED:
        _BOUNDED[cls] = type("Lab" + cls.__name__, (FastShell, cls), {})
    return _BOUNDED[cls]


def new_record(purpose, topo, ovs):
    """A run record naming, before anything exists, every switch and root-namespace interface the run
    will create: Mininet names switch ports <switch>-eth<port>, with the topology's port numbers."""
    record = RunRecord.create(purpose)
    record.machine_sysctls = kernel.read_machine_sysctls(sysctls.MACHINE_GUARDED)
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

"""Building a network in batches instead of Mininet's round trips.

Mininet builds one object at a time through the nodes' shells: a shell started and awaited per node, an
`ip link add` and an `ifconfig up` round trip per interface, `ifconfig` again per host address, `brctl
addif` per bridge port (about 3 s for 200 hosts). Here, with Mininet's own Host, Switch, Link and Intf
objects (so `net["h1"].cmd(...)`, `host.IP()` and `mn --custom` topologies work as before):
- every shell is spawned at once and the shells are awaited together (shells.py);
- every veth pair, bridge and bridge port of the root namespace is created by one `ip -batch` (the host
  end of a veth is created directly inside its host's namespace);
- inside the hosts, interfaces go up and get their addresses over netlink (messages encoded by
  pyroute2), on sockets opened by one thread that enters each host's namespace in turn (setns moves
  only the calling thread): no process per host.
Anything unusual (a MAC or default route asked for, interface options) falls back to Mininet's own
per-object configuration, so behaviour never changes, only time.
"""
import ctypes
import ipaddress
import os
import random
import socket
import struct
import threading
from contextlib import contextmanager

from mininet.link import Intf, Link

from ..errors import LabError

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
IFF_UP = 0x1
NLMSG_ERROR = 2

# Link options the lab applies with its own shaping (lifecycle.shape_commands), not with TCLink.
SHAPING = {"bw", "delay", "jitter", "loss"}


def rand_mac():
    """A random locally administered unicast MAC, as Mininet's Mininet.randMac()."""
    value = random.randint(1, 2 ** 48 - 1) & 0xFEFFFFFFFFFF | 0x020000000000
    return ":".join(f"{(value >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))


class BatchIntf(Intf):
    """Mininet's Intf; while its node is being built, its configuration waits for the batch."""

    def config(self, **params):
        pending = getattr(self.node, "pending", None)
        if pending is None:
            return super().config(**params)
        pending.intfs.append((self, params))
        return {}


class BatchLink(Link):
    """Mininet's Link; while its nodes are being built, its veth pair becomes a line of the batch."""

    def __init__(self, node1, node2, **params):
        self.shaping = {k: params.pop(k) for k in list(params) if k in SHAPING}
        super().__init__(node1, node2, **params)

    def makeIntfPair(self, intfname1, intfname2, addr1=None, addr2=None,  # noqa: N802 (Mininet's API)
                     node1=None, node2=None, deleteIntfs=True):
        pending = getattr(node1, "pending", None)
        if pending is None:
            return super().makeIntfPair(intfname1, intfname2, addr1, addr2, node1, node2, deleteIntfs)
        pending.veth(intfname1, addr1 or rand_mac(), node1, intfname2, addr2 or rand_mac(), node2)
        return None


class Pending:
    """What a build will do: root-namespace `ip` commands and each host's in-namespace configuration."""

    def __init__(self):
        self.bridges, self.veths, self.ports = [], [], []
        self.intfs = []          # (Intf, params) whose config() was deferred
        self.root_names = []     # root-namespace interfaces the batch creates

    def veth(self, name1, mac1, node1, name2, mac2, node2):
        def end(name, mac, node):
            where = f" netns {node.pid}" if node.inNamespace else ""
            if not node.inNamespace:
                self.root_names.append(name)
                self.ports.append(f"link set dev {name} up")
            return f"name {name} address {mac}{where}"
        self.veths.append(f"link add {end(name1, mac1, node1)} type veth peer {end(name2, mac2, node2)}")

    def bridge(self, switch):
        self.bridges.append(f"link add name {switch.name} type bridge")
        self.root_names.append(switch.name)
        for intf in switch.intfList():
            if intf.name != "lo":
                self.ports.append(f"link set dev {intf.name} master {switch.name}")
        self.ports.append(f"link set dev {switch.name} up")

    def commands(self):
        return self.bridges + self.veths + self.ports


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def enter_netns(pid):
    """Move the calling thread (only it) into PID's network namespace, and back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def host_jobs(hosts):
    """For each host on the fast path: (name, pid, [interfaces to bring up], [(interface, ip, prefix)]).
    Hosts asking for more than an address (a MAC, a default route, lo down) are left to Mininet."""
    jobs, slow = [], []
    for host in hosts:
        params = host.params
        if params.get("mac") or params.get("defaultRoute") or params.get("lo", "up") != "up":
            slow.append(host)
            continue
        intf = host.defaultIntf() if host.intfs else None
        addresses = []
        if intf is not None and params.get("ip"):
            ip, _, prefix = params["ip"].partition("/")
            prefix = prefix or "8"
            intf.ip, intf.prefixLen = ip, prefix          # what Intf.setIP() records
            addresses.append((intf.name, ip, int(prefix)))
        up = [i.name for i in host.intfList() if i.name != "lo"]
        jobs.append((host.name, host.pid, up, addresses))
    return jobs, slow


def configure_hosts(jobs):
    """Inside each host: lo and its interfaces up, addresses added, over netlink. Raises LabError naming
    the host and what the kernel refused.

    A netlink socket belongs to the namespace its thread was in when it was created: one thread enters each
    host's namespace only to open a socket there (setns moves only that thread). pyroute2 encodes the
    messages; they go out pipelined on a plain socket, acknowledgements read after (~0.2 ms a host; a
    pyroute2 IPRoute per host, with its event loop and a round trip per request, took ~2 ms)."""
    from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST  # late: ~0.1 s import
    from pyroute2.netlink.rtnl import RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    def encode(msg, kind, flags, seq):
        msg["header"]["type"], msg["header"]["flags"], msg["header"]["sequence_number"] = kind, flags, seq
        msg.encode()
        return msg.data

    def link(seq, index=0, name=None, up=True, get=False):
        msg = ifinfmsg()
        msg["index"], msg["flags"], msg["change"] = index, IFF_UP if up else 0, 0 if get else IFF_UP
        if name:
            msg["attrs"] = [("IFLA_IFNAME", name)]
        return encode(msg, RTM_GETLINK if get else RTM_NEWLINK, NLM_F_REQUEST | (0 if get else NLM_F_ACK), seq)

    def address(seq, index, ip, prefix):
        msg = ifaddrmsg()
        msg["family"], msg["prefixlen"], msg["index"] = socket.AF_INET, prefix, index
        net = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
        msg["attrs"] = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
        if prefix < 31:
            msg["attrs"].append(("IFA_BROADCAST", str(net.broadcast_address)))   # as ifconfig sets it
        return encode(msg, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq)

    def exchange(sock, requests, name):
        """Send REQUESTS {seq: (bytes, what)}; return {seq: ifindex} of link answers; raise on an error."""
        for data, _ in requests.values():
            sock.send(data)
        answers, waiting = {}, set(requests)
        while waiting:
            buf = sock.recv(65536)
            offset = 0
            while offset + 16 <= len(buf):
                length, kind, _, seq, _ = struct.unpack_from("=LHHLL", buf, offset)
                if kind == NLMSG_ERROR:
                    error = struct.unpack_from("=i", buf, offset + 16)[0]
                    if error:
                        raise LabError(f"{name}: {requests[seq][1]}: the kernel refused it ({os.strerror(-error)})")
                elif kind == RTM_NEWLINK:
                    answers[seq] = struct.unpack_from("=i", buf, offset + 20)[0]
                waiting.discard(seq)
                offset += (length + 3) & ~3
        return answers

    errors = []

    def visit():
        try:
            for name, pid, up, addresses in jobs:
                with enter_netns(pid):
                    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                with sock:
                    requests = {1: (link(1, index=1), "lo up")}      # lo is index 1 in every namespace
                    for dev in up:
                        requests[len(requests) + 1] = (link(len(requests) + 1, name=dev), f"{dev} up")
                    asks = {}
                    for dev, _, _ in addresses:
                        seq = len(requests) + 1
                        requests[seq] = (link(seq, name=dev, get=True), f"{dev} lookup")
                        asks[dev] = seq
                    index = exchange(sock, requests, name)
                    adds = {}
                    for dev, ip, prefix in addresses:
                        seq = len(requests) + len(adds) + 1
                        adds[seq] = (address(seq, index[asks[dev]], ip, prefix), f"{dev} address {ip}/{prefix}")
                    exchange(sock, adds, name)
        except Exception as e:  # noqa: BLE001 (reported in the caller's thread)
            errors.append(e)

    worker = threading.Thread(target=visit, name="tcplab-netlink")
    worker.start()
    worker.join()
    if errors:
        e = errors[0]
        raise e if isinstance(e, LabError) else LabError(f"configuring hosts: {type(e).__name__}: {e}")


def finish_intfs(pending):
    """Interfaces whose options need more than 'up' (mac, ip, ifconfig) get Mininet's own config()."""
    for intf, params in pending.intfs:
        extra = {k: v for k, v in params.items() if k not in SHAPING and k != "up"}
        if extra:
            Intf.config(intf, **extra)


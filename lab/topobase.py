"""A stand-in for `mininet.topo.Topo`, used only where Mininet is not installed, so that the shipped
topology files load and a scenario validates (e.g. `tcplab show` on a laptop). Same building methods and
queries as Mininet's Topo, nothing else: networks are always built with the real Mininet."""
import types


class Topo:
    def __init__(self, *args, **params):
        self.hopts = params.pop("hopts", {})
        self.sopts = params.pop("sopts", {})
        self.lopts = params.pop("lopts", {})
        self._tl_hosts, self._tl_switches, self._tl_links, self._tl_info = [], [], [], {}
        self.build(*args, **params)

    def build(self, *args, **params):
        pass

    def addHost(self, name, **opts):  # noqa: N802 (Mininet's API)
        self._tl_hosts.append(name)
        self._tl_info[name] = opts
        return name

    def addSwitch(self, name, **opts):  # noqa: N802
        self._tl_switches.append(name)
        self._tl_info[name] = dict(opts, isSwitch=True)
        return name

    def addLink(self, node1, node2, port1=None, port2=None, key=None, **opts):  # noqa: N802
        self._tl_links.append((node1, node2, opts))
        return key

    def hosts(self, sort=True):
        return list(self._tl_hosts)

    def switches(self, sort=True):
        return list(self._tl_switches)

    def nodes(self, sort=True):
        return self._tl_hosts + self._tl_switches

    def isSwitch(self, name):  # noqa: N802
        return name in self._tl_switches

    def nodeInfo(self, name):  # noqa: N802
        return self._tl_info[name]

    def links(self, sort=False, withKeys=False, withInfo=False):  # noqa: N803
        if withInfo:
            return [(a, b, dict(info, node1=a, node2=b)) for a, b, info in self._tl_links]
        return [(a, b) for a, b, _ in self._tl_links]


def package():
    """A `mininet` package object holding only this module (registered as mininet.topo)."""
    pkg = types.ModuleType("mininet")
    pkg.__path__ = []
    return pkg

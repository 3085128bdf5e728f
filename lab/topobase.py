"""A stand-in for `mininet.topo.Topo`, used only where Mininet is not installed, so that the shipped
topology files load and a scenario validates (e.g. `tcplab show` on a laptop). Same building methods and
queries as Mininet's Topo, nothing else: networks are always built with the real Mininet."""
import types


class Topo:
    def __init__(self, *args, **params):
        self.hopts = params.pop("hopts", {})
        self.sopts = params.pop("sopts", {})
        self.lopts = params.pop("lopts", {})
        self._hosts, self._switches, self._links, self._info = [], [], [], {}
        self.build(*args, **params)

    def build(self, *args, **params):
        pass

    def addHost(self, name, **opts):  # noqa: N802 (Mininet's API)
        self._hosts.append(name)
        self._info[name] = opts
        return name

    def addSwitch(self, name, **opts):  # noqa: N802
        self._switches.append(name)
        self._info[name] = dict(opts, isSwitch=True)
        return name

    def addLink(self, node1, node2, port1=None, port2=None, key=None, **opts):  # noqa: N802
        self._links.append((node1, node2, opts))
        return key

    def hosts(self, sort=True):
        return list(self._hosts)

    def switches(self, sort=True):
        return list(self._switches)

    def nodes(self, sort=True):
        return self._hosts + self._switches

    def isSwitch(self, name):  # noqa: N802
        return name in self._switches

    def nodeInfo(self, name):  # noqa: N802
        return self._info[name]

    def links(self, sort=False, withKeys=False, withInfo=False):  # noqa: N803
        if withInfo:
            return [(a, b, dict(info, node1=a, node2=b)) for a, b, info in self._links]
        return [(a, b) for a, b, _ in self._links]


def package():
    """A `mininet` package object holding only this module (registered as mininet.topo)."""
    pkg = types.ModuleType("mininet")
    pkg.__path__ = []
    return pkg

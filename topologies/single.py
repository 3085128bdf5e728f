"""single: N hosts on one switch (the default for `tcplab cli`: h1 and h2).

    h1 ──┐
    h2 ──┼── s1
    hN ──┘

Addresses: hK is 10.0.0.K. Also: mn --custom topologies/single.py --topo single,3
"""
from mininet.topo import Topo


class SingleTopo(Topo):
    def build(self, n=2, bw=None):
        switch = self.addSwitch("s1")
        for i in range(1, int(n) + 1):
            host = self.addHost(f"h{i}")
            self.addLink(host, switch, **({"bw": bw} if bw else {}))


topos = {"single": SingleTopo}

"""single: N hosts on one switch (the default for `tcplab cli`: h1 and h2).

    h1 ──┐
    h2 ──┼── s1
    hN ──┘

Addresses: hK is 10.0.0.K. Also: mn --custom topologies/single.py --topo single,3
"""
from mininet.topo import Topo


class SingleTopo(Topo):
    # What a scenario may set (tcplab accepts only these): name -> (type, low, high, meaning)
    PARAMS = {"n": (int, 1, 1000, "hosts"), "bw": (float, 0.1, 10000, "Mbit/s on every host link")}

    def build(self, n=2, bw=None):
        switch = self.addSwitch("s1")
        for i in range(1, int(n) + 1):
            host = self.addHost(f"h{i}")
            self.addLink(host, switch, **({"bw": bw} if bw else {}))


topos = {"single": SingleTopo}

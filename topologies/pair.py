"""pair: two hosts on a direct link, no switch in between.

    h1 ────── h2

Addresses: h1 10.0.0.1, h2 10.0.0.2. Also: mn --custom topologies/pair.py --topo pair
"""
from mininet.topo import Topo


class PairTopo(Topo):
    # What a scenario may set (tcplab accepts only these): name -> (type, low, high, meaning)
    PARAMS = {"bw": (float, 0.1, 10000, "Mbit/s on the link")}

    def build(self, bw=None):
        h1, h2 = self.addHost("h1"), self.addHost("h2")
        self.addLink(h1, h2, **({"bw": bw} if bw else {}))


topos = {"pair": PairTopo}

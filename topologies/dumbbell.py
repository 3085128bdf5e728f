"""dumbbell: clients on one switch, servers on another, one bottleneck link between them.

    c1 ──┐                     ┌── sv1
    c2 ──┼── s1 ══ bw Mbit ══ s2 ──┼── sv2
    cN ──┘                     └── svM

The bottleneck (s1-s2) is shaped with htb when bw is given (Mbit/s); host links are not shaped.
Addresses: 10.0.0.1.. for clients, then the servers. Also:
mn --custom topologies/dumbbell.py --topo dumbbell,2,1,10
"""
from mininet.topo import Topo


class DumbbellTopo(Topo):
    # What a scenario may set (tcplab accepts only these): name -> (type, low, high, meaning)
    PARAMS = {"clients": (int, 1, 999, "client hosts"), "servers": (int, 1, 999, "server hosts"),
              "bw": (float, 0.1, 10000, "Mbit/s on the bottleneck s1-s2")}

    def build(self, clients=2, servers=1, bw=None):
        left, right = self.addSwitch("s1"), self.addSwitch("s2")
        for i in range(1, int(clients) + 1):
            self.addLink(self.addHost(f"c{i}"), left)
        for i in range(1, int(servers) + 1):
            self.addLink(self.addHost(f"sv{i}"), right)
        self.addLink(left, right, **({"bw": bw} if bw else {}))


topos = {"dumbbell": DumbbellTopo}

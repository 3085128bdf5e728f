"""star: one server and many clients on one switch (connection storms, fan-in).

    c1 ──┐
    c2 ──┼── s1 ── server
    cN ──┘

Addresses: server 10.0.0.1, clients cK 10.0.0.(K+1). Also:
mn --custom topologies/star.py --topo star,8
"""
from mininet.topo import Topo


class StarTopo(Topo):
    # What a scenario may set (tcplab accepts only these): name -> (type, low, high, meaning)
    PARAMS = {"clients": (int, 1, 1000, "client hosts"), "bw": (float, 0.1, 10000, "Mbit/s on the server's link")}

    def build(self, clients=4, bw=None):
        switch = self.addSwitch("s1")
        self.addLink(self.addHost("server", ip="10.0.0.1/8"), switch, **({"bw": bw} if bw else {}))
        for i in range(1, int(clients) + 1):
            self.addLink(self.addHost(f"c{i}", ip=f"10.0.{(i + 1) // 256}.{(i + 1) % 256}/8"), switch)


topos = {"star": StarTopo}

"""tree: switches in a tree DEPTH levels deep, FANOUT children each, hosts at the leaves (like Mininet's tree).

                s1                      depth=2, fanout=2
           ┌────┴────┐
           s2        s3                 switches are numbered depth first (s2's subtree before s3),
         ┌─┴─┐     ┌─┴─┐                hosts left to right: h1 ... h(fanout^depth)
         h1  h2    h3  h4

Every link is shaped to bw Mbit/s when bw is given (Mininet's htb); hosts are 10.0.0.1.. in order.
At most 1000 hosts (fanout^depth). Also: mn --custom topologies/tree.py --topo tree,2,2
"""
from mininet.topo import Topo

MAX_HOSTS = 1000


class TreeTopo(Topo):
    # name: (type, minimum, maximum, meaning); what a scenario may set, checked before anything is built.
    PARAMS = {"depth": (int, 1, 4, "levels of switches"),
              "fanout": (int, 1, 8, "children per switch"),
              "bw": (float, 0.1, 10000, "Mbit/s on every link")}

    def build(self, depth=2, fanout=2, bw=None):
        depth, fanout = int(depth), int(fanout)
        if not 1 <= depth <= 4 or not 1 <= fanout <= 8:
            raise ValueError(f"tree: depth {depth}, fanout {fanout}: depth must be 1-4 and fanout 1-8")
        if fanout ** depth > MAX_HOSTS:
            raise ValueError(f"tree: depth {depth}, fanout {fanout} makes {fanout ** depth} hosts; "
                             f"at most {MAX_HOSTS} (e.g. depth {depth - 1} or a smaller fanout)")
        self._opts = {"bw": float(bw)} if bw else {}
        self._switches = self._hosts = 0
        self._subtree(depth, fanout)

    def _subtree(self, depth, fanout):
        """Depth first, as Mininet's TreeTopo numbers them: the node at the top of this subtree."""
        if depth == 0:
            self._hosts += 1
            return self.addHost(f"h{self._hosts}")
        self._switches += 1
        switch = self.addSwitch(f"s{self._switches}")
        for _ in range(fanout):
            self.addLink(switch, self._subtree(depth - 1, fanout), **self._opts)
        return switch


topos = {"tree": TreeTopo}

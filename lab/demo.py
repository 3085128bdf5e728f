"""`tcplab demo`: two hosts, one TCP transfer, and what each host's kernel counted."""
import time

from . import counters
from .guests import GuestProcess
from .network import LabNetwork, NetworkSpec

SHOWN = ("Tcp.ActiveOpens", "Tcp.PassiveOpens", "Tcp.OutSegs", "Tcp.InSegs", "Tcp.RetransSegs",
         "TcpExt.TCPToZeroWindowAdv", "TcpExt.TCPWinProbe", "TcpExt.DelayedACKs")


def run_demo(say, seconds=1.0):
    say("tcplab demo: h1 (10.0.0.1) and h2 (10.0.0.2) on one Linux bridge; h2 writes to h1 for "
        f"{seconds:.0f} s.")
    with LabNetwork(NetworkSpec("single", args=[2]), purpose="demo") as lab:
        before = {h: counters.read_host_counters(lab.host(h).pid) for h in lab.host_names()}
        server = GuestProcess("server", "h1", "server", ["--port", 9000]).start(lab)
        server.wait_event("listening", 5)
        client = GuestProcess("client", "h2", "client",
                              ["write", "10.0.0.1:9000", "--duration", seconds]).start(lab)
        client.wait(seconds + 10)
        time.sleep(0.2)
        server.stop()
        client.stop()
        after = {h: counters.read_host_counters(lab.host(h).pid) for h in lab.host_names()}
    written = (client.summary() or {}).get("accepted", 0)
    read = (server.summary() or {}).get("bytes", 0)
    say(f"h2 wrote {written:,} bytes ({written * 8 / seconds / 1e9:.1f} Gbit/s); h1 read {read:,} bytes.")
    say("What each host's kernel counted (netstat counters, change during the run):")
    for host in ("h1", "h2"):
        d = counters.delta(before[host], after[host])
        say(f"  {host}:")
        for name in SHOWN:
            value = counters.lookup(d, name)
            say(f"    {name:<26} {value:>10,}  {counters.meaning(name)}")
    say("The client host counted the active open, the server host the passive one: counters are per host.")
    say("Next: tcplab list, then tcplab run zero-window (or tcplab cli to explore by hand).")
    return 0

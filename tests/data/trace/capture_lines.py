#!/usr/bin/env python3
"""How bpftrace-lines.txt was captured (as root, from the project folder):

    sudo .venv/bin/python tests/data/trace/capture_lines.py > tests/data/trace/bpftrace-lines.txt

A research tracer (every namespace) watches a throwaway namespace (`unshare -n`, only its loopback) in
which: a listener on 127.0.0.1:9000 with backlog 0 that never accepts gets one connection that sends 20 kB
(tcp_probe on port 9000) and a second one whose SYNs are dropped and retransmitted; a connect to port 9999
is refused (a reset sent and received, a NO_SOCKET drop). The raw lines of that namespace are kept.
"""
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from lab import trace  # noqa: E402

TRAFFIC = r"""
import os, socket, time
print(os.stat("/proc/self/ns/net").st_ino, flush=True)
srv = socket.socket(); srv.bind(("127.0.0.1", 9000)); srv.listen(0)
a = socket.create_connection(("127.0.0.1", 9000)); a.sendall(b"x" * 20000)
b = socket.socket(); b.settimeout(2.5)
try:
    b.connect(("127.0.0.1", 9000))       # the accept queue is full: the SYN is dropped, then retransmitted
except OSError:
    pass
c = socket.socket()
print(c.connect_ex(("127.0.0.1", 9999)), flush=True)
time.sleep(0.2)
"""


def main():
    tracer = trace.Tracer(None, ports={9000}, shared=False).start()
    proc = subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"',
                           sys.executable, TRAFFIC], capture_output=True, text=True, timeout=30)
    tracer.stop()
    inode = proc.stdout.split()[0]
    print(f"# captured with lab/trace on {Path('/proc/sys/kernel/osrelease').read_text().strip()}: "
          f"tests/data/trace/capture_lines.py; namespace inode {inode}")
    for line in tracer._lines + tracer._probe_lines:
        if line.split("\t")[1] == inode:
            print(line, end="")


if __name__ == "__main__":
    main()

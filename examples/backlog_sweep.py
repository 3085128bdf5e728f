#!/usr/bin/env python3
"""backlog_sweep: how many connections fit in the accept queue, for backlog 1..8? (the Python API)

    h2 (client: 12 connects, one at a time) ──── s1 ──── h1 (server: listen(B), never accept)

For each backlog B, the same engine as `tcplab run` builds the network, runs the guests and reads h1's
counters. The table shows what the kernel did: B+1 connections complete, the rest of the SYNs are dropped
(ListenOverflows). Run as root from the project folder:

    sudo .venv/bin/python examples/backlog_sweep.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.library import load_text      # noqa: E402  (YAML text -> a validated Scenario)
from lab.runner import run_scenario    # noqa: E402  (Scenario -> Result, the engine of `tcplab run`)

SCENARIO = """
title: accept queue with backlog {backlog}
topology: single,2
guests:
  - name: server
    host: h1
    program: server
    args: {{port: 9000, backlog: {backlog}, accept: never, queue-interval: 0.05}}
  - name: client
    host: h2
    program: client
    args: {{mode: connect, server: "{{h1}}:9000", count: 12, parallel: 1, timeout: 0.5}}
expect:
  - "client: summary.connected == {expected}"
"""


def main():
    print(f"{'backlog':>7} {'connected':>9} {'max queue':>9} {'ListenOverflows':>15}  verdict")
    for backlog in range(1, 9):
        sc = load_text(SCENARIO.format(backlog=backlog, expected=backlog + 1), name=f"backlog-{backlog}")
        result = run_scenario(sc)
        summary = result.guest("client").summary                   # the client's last summary event
        server = result.guest("server").summary
        overflows = result.host("h1").counter("TcpExt.ListenOverflows")   # its change during the run
        print(f"{backlog:>7} {summary['connected']:>9} {server['max_accept_queue']:>9} {overflows:>15}  {result.status}")


if __name__ == "__main__":
    main()

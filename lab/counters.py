"""Per-host netstat counters: /proc/net/{netstat,snmp,snmp6} text -> {Group: {Counter: int}}.

The parsing functions are pure. `read_host_counters(pid)` reads `/proc/PID/net/*` from the root
namespace: that file shows the network namespace of PID, so no process is spawned per host
(and nstat's history file is never used: hosts share /tmp).
"""
from pathlib import Path

COUNTER_FILES = ("netstat", "snmp", "snmp6")


def parse_paired(text):
    """Parse the two-line-per-group format of /proc/net/netstat and /proc/net/snmp.

    >>> parse_paired("TcpExt: A B\\nTcpExt: 1 2\\n")
    {'TcpExt': {'A': 1, 'B': 2}}
    """
    groups = {}
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for names, values in zip(lines[0::2], lines[1::2]):
        gname, _, rest = names.partition(":")
        vname, _, vrest = values.partition(":")
        if gname != vname:
            raise ValueError(f"counter header {gname!r} is followed by values of {vname!r}")
        keys, vals = rest.split(), vrest.split()
        if len(keys) != len(vals):
            raise ValueError(f"{gname}: {len(keys)} names but {len(vals)} values")
        groups.setdefault(gname, {}).update({k: int(v) for k, v in zip(keys, vals)})
    return groups


def parse_snmp6(text):
    """Parse /proc/net/snmp6 ("Ip6InReceives  12" per line) into groups by prefix (Ip6, Icmp6, Udp6...)."""
    groups = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        name, value = parts
        for prefix in ("Ip6", "Icmp6", "UdpLite6", "Udp6"):
            if name.startswith(prefix):
                groups.setdefault(prefix, {})[name[len(prefix):]] = int(value)
                break
    return groups


def parse_all(texts):
    """{'netstat': text, 'snmp': text, 'snmp6': text} -> one {Group: {Counter: int}}."""
    merged = {}
    for name, text in texts.items():
        parsed = parse_snmp6(text) if name == "snmp6" else parse_paired(text)
        for group, counters in parsed.items():
            merged.setdefault(group, {}).update(counters)
    return merged


def delta(before, after):
    """after - before for every counter present in both. Gauges (Tcp.CurrEstab...) may go negative."""
    return {
        group: {name: after[group][name] - value for name, value in counters.items() if name in after.get(group, {})}
        for group, counters in before.items()
        if group in after
    }


def nonzero(counters):
    """Drop zero counters and empty groups (what a person wants to read)."""
    out = {g: {k: v for k, v in c.items() if v} for g, c in counters.items()}
    return {g: c for g, c in out.items() if c}


def lookup(counters, dotted):
    """'TcpExt.ListenOverflows' -> value. Raises KeyError naming what is missing."""
    group, _, name = dotted.partition(".")
    if group not in counters:
        raise KeyError(f"no counter group {group!r} (groups: {', '.join(sorted(counters))})")
    if name not in counters[group]:
        raise KeyError(f"no counter {dotted!r} in this kernel")
    return counters[group][name]


def read_host_counters(pid):
    """Snapshot the counters of the network namespace that process PID lives in."""
    base = Path(f"/proc/{pid}/net")
    texts = {}
    for name in COUNTER_FILES:
        try:
            texts[name] = (base / name).read_text()
        except FileNotFoundError:  # snmp6 is absent when IPv6 is disabled
            continue
    return parse_all(texts)


# One line on what a counter means, for the console and the reports (names as the kernel prints them).
MEANINGS = {
    "Tcp.ActiveOpens": "connections this host opened (connect(): SYN sent)",
    "Tcp.PassiveOpens": "connections this host accepted at the handshake (SYN received on a listener)",
    "Tcp.AttemptFails": "connection attempts that failed (SYN_SENT/SYN_RECV -> CLOSED)",
    "Tcp.EstabResets": "established connections reset",
    "Tcp.CurrEstab": "connections established now (a gauge, not a counter)",
    "Tcp.InSegs": "TCP segments received",
    "Tcp.OutSegs": "TCP segments sent",
    "Tcp.RetransSegs": "TCP segments retransmitted",
    "Tcp.OutRsts": "RST segments sent",
    "Tcp.InErrs": "TCP segments received with errors",
    "TcpExt.ListenOverflows": "a SYN or handshake ACK dropped because the accept queue was full",
    "TcpExt.ListenDrops": "any drop at a listener (includes ListenOverflows)",
    "TcpExt.TCPToZeroWindowAdv": "this host advertised a zero receive window (its receive buffer was full)",
    "TcpExt.TCPFromZeroWindowAdv": "this host re-opened its receive window after a zero window",
    "TcpExt.TCPWantZeroWindowAdv": "this host wanted to shrink its window below what it could advertise",
    "TcpExt.TCPWinProbe": "zero-window probes sent: the peer's window was zero",
    "TcpExt.TCPSynRetrans": "SYNs (and SYN-ACKs) retransmitted",
    "TcpExt.TCPTimeouts": "retransmission timer expirations",
    "TcpExt.SyncookiesSent": "SYN cookies sent: the SYN queue was full and syncookies were on",
    "TcpExt.SyncookiesRecv": "valid SYN-cookie ACKs received",
    "TcpExt.SyncookiesFailed": "ACKs with an invalid SYN cookie",
    "TcpExt.TCPReqQFullDrop": "SYNs dropped because the SYN queue was full (syncookies off)",
    "TcpExt.TCPReqQFullDoCookies": "SYN cookies used because the SYN queue was full",
    "TcpExt.TCPAbortOnData": "connections reset by this host: data arrived after close, or close() with SO_LINGER 0",
    "TcpExt.TCPAbortOnClose": "connections reset by closing with unread data",
    "TcpExt.TCPBacklogDrop": "packets dropped because the socket's backlog was full",
    "TcpExt.PruneCalled": "receive queue pruned: memory pressure on a socket",
    "TcpExt.TCPRcvQDrop": "segments dropped: the receive queue was over its memory limit",
    "TcpExt.DelayedACKs": "delayed ACKs sent",
    "TcpExt.TCPPureAcks": "ACKs without data received",
    "TcpExt.TCPHPAcks": "ACKs processed on the fast path",
    "TcpExt.TCPLossProbes": "tail loss probes sent",
    "TcpExt.TCPSpuriousRtxHostQueues": "retransmits avoided: the original was still in a host queue",
    "TcpExt.TCPOrigDataSent": "segments with new data sent",
    "TcpExt.TCPAutoCorking": "small writes coalesced (autocorking)",
}
TCPIP_GROUPS = ("Ip", "IpExt", "Icmp", "Tcp", "TcpExt", "Udp")


def meaning(dotted):
    return MEANINGS.get(dotted, "")

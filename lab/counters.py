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

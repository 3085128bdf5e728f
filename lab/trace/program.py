"""The bpftrace program the tracer runs, and the parsers of what it prints. Pure: offsets in, text out;
text in, events out.

Attribution: every probe reads the network namespace inode of the socket (or, for a packet without one, of
its device) and prints it with the event; the machine's own namespace is left out in the kernel, and each
run keeps the events of its own hosts' inodes (hub.py). Two runs at once use the same 10.0.0.x addresses,
so addresses alone could not tell them apart.

Start-up cost: bpftrace 0.17 compiles each `args->field` and each struct cast through libclang and LLVM;
measured here, 7 tracepoints printing their fields by name took 1.3-1.8 s of CPU to attach, by raw loads
0.16 s. So with 0.17 every value is a plain load at an offset read on this kernel: tracepoint fields from
their format files (formats.py), kernel structs from BTF (btf.py). The program is generated per kernel,
never stored. (With 0.23 fields are read by name, below; its attach time was not measured apart.)

Cost bound in the kernel: at most `rate` events per second are printed (and, counted apart, `rate` tcp_probe
events, so per-segment samples cannot crowd out drops and resets); past it an event is only counted, per
namespace and kind (@over). tcp_probe is filtered by port and thinned per socket to one event every
`probe_gap` seconds (the others counted in @thin). @sent counts the lines printed per namespace, so that a
run can tell lines lost on the way (perf buffer, pipe) from lines never printed. The three maps are printed
at each marker (a flush).

Two dialects: bpftrace 0.17 (Debian 12) lets `args` be cast to an integer, the record's address, and every
field is then a load at its offset. Later versions (Debian 13 has 0.23) make `args` a struct value that
cannot be cast ("Cannot cast from struct type"), so each field is read by name (`args.sport`; a byte array
byte by byte, its first 8 bytes at most); kernel structs are still reached by BTF offsets from the pointers
the fields hold. `Plan.args_struct` chooses: first from bpftrace's version (0.19 on, by its changelog;
reports differ for 0.19.0), and when bpftrace refuses that dialect (`dialect_refused`), the other (hub.py).

Markers: the tracer's own connect() to 127.0.0.1:9 from a socket bound to a chosen port fires the two marker
probes, declared first and last. bpftrace 0.17 attaches probes in order (older versions in reverse), so once
both have fired, every probe between them is attached; the last one also prints the counters.
"""
import errno
import re
import socket
import struct
from dataclasses import dataclass

from .formats import FormatError

# Struct member paths whose offsets the program needs (btf.BTF.offset), resolved on the running kernel.
OFFSET_PATHS = {
    "SK_NET": "sock.__sk_common.skc_net.net",     # struct net * of any socket (full, request or timewait)
    "NET_INUM": "net.ns.inum",                    # the namespace inode, as in /proc/PID/ns/net
    "SKB_SK": "sk_buff.sk",
    "SKB_DEV": "sk_buff.dev",
    "DEV_NET": "net_device.nd_net.net",
    "SKB_HEAD": "sk_buff.head",
    "SKB_NH": "sk_buff.network_header",
    "DEV_NAME": "net_device.name",
    "SKB_CB": "sk_buff.cb",
    "GSO_SEGS": "tcp_skb_cb.tcp_gso_segs",         # tcp_skb_pcount(): segments in a (TSO) skb
}
STRING_FIELDS = {"dev"}

# tag -> (tracepoint, the kind its cap counter is kept under, the fields printed after the namespace and time).
# Arrays are printed as integers: 4 bytes (an IPv4 address) as u32, a sockaddr (28 bytes) by its first 8.
PROBES = {
    "D": ("skb:kfree_skb", "drop", ["reason", "location"]),
    "R": ("tcp:tcp_retransmit_skb", "retransmit", ["state", "sport", "dport", "saddr", "daddr", "err"]),
    "A": ("tcp:tcp_retransmit_synack", "synack-retransmit", ["sport", "dport", "saddr", "daddr"]),
    "S": ("tcp:tcp_send_reset", "reset-sent", ["state", "reason", "saddr", "daddr"]),
    "X": ("tcp:tcp_receive_reset", "reset-received", ["sport", "dport", "saddr", "daddr"]),
    "C": ("sock:inet_sock_set_state", "state", ["oldstate", "newstate", "sport", "dport", "saddr", "daddr"]),
    "P": ("tcp:tcp_probe", "probe", ["saddr", "daddr", "snd_nxt", "snd_una", "snd_wnd", "rcv_wnd", "snd_cwnd",
                                     "ssthresh", "srtt", "data_len"]),
}
OPTIONAL_FIELDS = {("tcp:tcp_send_reset", "reason"), ("skb:kfree_skb", "rx_sk"), ("tcp:tcp_retransmit_skb", "err")}
TRACEPOINTS = sorted({tp for tp, _k, _f in PROBES.values()})
CAP_KINDS = [kind for _tp, kind, _f in PROBES.values()]
# The kinds an event can have (a retransmission from SYN_SENT is a SYN retransmission).
# (6.10+ also traces a retransmission that failed, with its error: "retransmit-failed".)
KINDS = ["drop", "retransmit", "syn-retransmit", "retransmit-failed", "synack-retransmit", "reset-sent",
         "reset-received", "state", "probe"]

# include/net/tcp_states.h: stable since the states were numbered; the format files print them by symbol only.
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
              7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}
IPPROTO = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp"}
ETH_P_IP = 0x0800
MARK_PORT = 9            # the discard port on 127.0.0.1: the tracer's own connect() attempts mark "attached"


@dataclass
class Plan:
    """What one bpftrace process watches."""
    ports: frozenset = frozenset()     # tcp_probe: segments to or from these ports only (none: no tcp_probe)
    rate: int = 50000                  # events printed per second at most (and as many tcp_probe events)
    probe_gap: float = 0.001           # tcp_probe: one event per socket per probe_gap seconds at most
    marker_pid: int = 0                # the process whose connect() to 127.0.0.1:MARK_PORT is a marker
    skip_inum: int = 0                 # the machine's namespace, left out (0: keep every namespace)
    args_struct: bool = False          # bpftrace >= 0.19: fields by name, `args` cannot be cast (see above)


def args_are_struct(version_text):
    """From `bpftrace --version` ("bpftrace v0.23.2"): True from 0.19 on, where bpftrace's changelog makes
    `args` a struct (see the two dialects above). Raises ValueError when the text holds no version."""
    m = re.search(r"\bv?(\d+)\.(\d+)\.", version_text)
    if not m:
        raise ValueError(f"no version in {version_text.strip()[:80]!r}")
    return (int(m[1]), int(m[2])) >= (0, 19)


# What bpftrace prints when the program is in the other dialect: 0.23 given `(uint64)args`, and 0.17 given
# `args.sport` (captured here; tests/unit/test_kernel_trace.py).
_DIALECT_ERRORS = ("Cannot cast from struct type", "Try dereferencing it first, or using '->'")


def dialect_refused(error_text):
    """True when bpftrace's error says the program was written in the other dialect."""
    return any(marker in error_text for marker in _DIALECT_ERRORS)


def probe_limit(fmts):
    """Why this kernel's tcp_probe cannot be used, or "" when it can. The program needs each segment's socket
    to know its host; 6.1's tcp_probe records addresses and ports but not the socket (6.18's has `skaddr`)."""
    if "skaddr" not in fmts["tcp:tcp_probe"].fields:
        return ("this kernel's tcp_probe tracepoint carries no socket (no skaddr field, as on 6.1): "
                "no per-segment window and cwnd samples")
    return ""


def _load(width, addr):
    return f"*(uint{width}*)({addr})"


def field_load(tp, fmt, name, args_struct=False):
    """The bpftrace expression that loads field NAME of tracepoint TP (format FMT) as an unsigned integer:
    from the record at $a, or (ARGS_STRUCT) by name. A field wider than 8 bytes (a 28-byte sockaddr)
    gives its first 8."""
    ctype, offset, size, _signed = fmt.fields[name]
    width = {1: 8, 2: 16, 4: 32, 8: 64}.get(size, 64)
    if not args_struct:
        return _load(width, f"$a + {offset}")
    if size > 1 and "*" not in ctype and re.search(r"\b(__u8|u8|unsigned char|char)\b", ctype):
        # A byte array (an address): by its bytes, as the kernel's verifier refuses a 4-byte load from the
        # record at an offset that is not a multiple of 4 (tcp_retransmit_skb's saddr is at 34).
        return "(" + " | ".join(f"((uint64)(uint8)args.{name}[{i}] << {8 * i})" for i in range(min(size, 8))) + ")"
    if size in (1, 2, 4, 8):                  # an integer or a pointer
        return f"(uint{width})args.{name}"
    raise FormatError(f"tracepoint {tp}: field {name} ({ctype}, {size} bytes) cannot be read by name")


def field_loads(tp, fmt, names, args_struct=False):
    """[(name, bpftrace load)] for NAMES of tracepoint TP (format FMT): see field_load().
    An optional field this kernel lacks is left out; a missing required one raises FormatError."""
    out = []
    for name in names:
        if name not in fmt.fields:
            if (tp, name) in OPTIONAL_FIELDS:
                continue
            raise FormatError(f"tracepoint {tp} has no field {name} on this kernel")
        out.append((name, field_load(tp, fmt, name, args_struct)))
    return out


def generate(plan, off, fmts):
    """(program text, layout) for PLAN; OFF: OFFSET_PATHS resolved; FMTS: {tracepoint: Format}.

    The layout ({tag: [field names]}) says what each printed line holds, for parse_line. Raises FormatError."""
    def ns_of_sk(sk):
        return _load(32, _load(64, f"{sk} + {off['SK_NET']}") + f" + {off['NET_INUM']}")

    def ns_of_skb_dev(skb):
        dev = _load(64, f"{skb} + {off['SKB_DEV']}")
        return (f"$dev = {dev}; if ($dev != 0) {{ $ns = "
                + _load(32, _load(64, f"$dev + {off['DEV_NET']}") + f" + {off['NET_INUM']}") + "; }")

    def raw(tp, name):
        return field_load(tp, fmts[tp], name, plan.args_struct)

    record = "" if plan.args_struct else "$a = (uint64)args; "

    keep = f"$ns != {int(plan.skip_inum)}" if plan.skip_inum else "$ns != 0"
    probes = bool(plan.ports) and not probe_limit(fmts)
    rate = int(plan.rate)
    layout = {}

    def emit(tag, extra=(), counter="@wn"):
        tp, kind, names = PROBES[tag]
        fields = field_loads(tp, fmts[tp], names, plan.args_struct) + list(extra)
        layout[tag] = [name for name, _load in fields]
        fmt = f"{tag}\\t%u\\t%llu" + "".join("\\t%s" if n in STRING_FIELDS else "\\t%llu" for n, _l in fields) + "\\n"
        args = ", ".join(["$ns", "nsecs"] + [load for _name, load in fields])
        # A new one-second window resets the counters (racy across CPUs by a few events: a bound, not a count).
        return (f"if ({keep}) {{ $w = nsecs / 1000000000; if ($w != @win) {{ @win = $w; @wn = 0; @wnp = 0; }} "
                f"if ({counter} < {rate}) {{ {counter}++; @sent[$ns]++; printf(\"{fmt}\", {args}); }} "
                f"else {{ @over[$ns, {CAP_KINDS.index(kind)}]++; }} }}")

    def head(tp):
        return [f"tracepoint:{tp} {{", f"  {record}$ns = (uint32)0;"]

    st = "sock:inet_sock_set_state"

    def marker(tag, then=""):
        return (f"tracepoint:{st} {{ {record}if (pid == {int(plan.marker_pid)} && "
                f"{raw(st, 'dport')} == {MARK_PORT} && {raw(st, 'newstate')} == 2) {{ "
                f"printf(\"M\\t{tag}\\t%u\\t%llu\\n\", {raw(st, 'sport')}, nsecs); {then}}} }}")

    # The maps are declared in BEGIN: the marker's flush prints them even when nothing counted yet.
    lines = [marker("first"), "BEGIN { @win = (uint64)0; @wn = 0; @wnp = 0; "
             "@over[(uint32)0, 0] = 0; @thin[(uint32)0] = 0; @sent[(uint32)0] = 0; }"]
    # Drops: on the host of the socket that was to receive the packet (rx_sk), else of the device the packet
    # was on, else of the packet's socket (queued data, no device). The device comes before the packet's
    # socket: a copy of h1's packet dropped on a switch port in the machine's namespace still carries h1's
    # socket (OVS userspace ports are promiscuous; the machine's stack drops those copies as OTHERHOST).
    # The IPv4 header gives the addresses, and the first 4 bytes after it the ports.
    drop = "skb:kfree_skb"
    rx_sk = raw(drop, "rx_sk") if fmts[drop].has("rx_sk") else "0"
    dev_ns = _load(32, _load(64, f"$ifc + {off['DEV_NET']}") + f" + {off['NET_INUM']}")
    lines += head(drop) + [
        f"  if ({raw(drop, 'protocol')} == {ETH_P_IP}) {{",
        f"  $skb = {raw(drop, 'skbaddr')}; $sk = {rx_sk};",
        "  $ifc = " + _load(64, f"$skb + {off['SKB_DEV']}") + ";",
        f"  if ($sk != 0) {{ $ns = {ns_of_sk('$sk')}; }} else if ($ifc != 0) {{ $ns = {dev_ns}; }}",
        "  else { $sk = " + _load(64, f"$skb + {off['SKB_SK']}") + f"; if ($sk != 0) {{ $ns = {ns_of_sk('$sk')}; }} }}",
        "  $addrs = (uint64)0; $l4 = (uint64)0; $proto = (uint64)0; $lens = (uint64)0;",
        "  $nh = " + _load(16, f"$skb + {off['SKB_NH']}") + ";",
        "  if ($nh != 0xffff) { $ip = " + _load(64, f"$skb + {off['SKB_HEAD']}") + " + $nh;",
        "    $addrs = *(uint64*)($ip + 12); $proto = *(uint8*)($ip + 9);",
        "    $ihl = ((*(uint8*)$ip) & 0xf) * 4; $lens = ((uint64)*(uint16*)($ip + 2) << 16) | ($ihl << 8);",
        "    if ($proto == 6 || $proto == 17) { $l4 = *(uint32*)($ip + $ihl); }",
        # IP total length, header length and TCP header length: the payload the dropped segment carried.
        "    if ($proto == 6) { $lens = $lens | ((*(uint8*)($ip + $ihl + 12) >> 4) * 4); } }",
        "  " + emit("D", extra=[("proto", "$proto"), ("addrs", "$addrs"), ("ports", "$l4"), ("lens", "$lens"),
                                ("dev", f"str($ifc + {off['DEV_NAME']})")]),
        "  }", "}",
    ]
    # Retransmissions carry the segments the skb holds (a TSO skb is one event and several segments).
    tp = PROBES["R"][0]
    segs = _load(16, raw(tp, "skbaddr") + f" + {off['SKB_CB'] + off['GSO_SEGS']}")
    lines += head(tp) + [f"  $ns = {ns_of_sk(raw(tp, 'skaddr'))};", "  " + emit("R", extra=[("segs", segs)]), "}"]
    for tag in ("A", "X"):
        tp = PROBES[tag][0]
        lines += head(tp) + [f"  $ns = {ns_of_sk(raw(tp, 'skaddr'))};", "  " + emit(tag), "}"]
    # A reset sent without a socket (nothing listens there) goes to the host whose device got the segment.
    rst = "tcp:tcp_send_reset"
    lines += head(rst) + [
        f"  $sk = {raw(rst, 'skaddr')}; $skb = {raw(rst, 'skbaddr')}; $dev = (uint64)0;",
        f"  if ($sk != 0) {{ $ns = {ns_of_sk('$sk')}; }} else if ($skb != 0) {{ {ns_of_skb_dev('$skb')} }}",
        "  " + emit("S"), "}",
    ]
    lines += head(st) + [
        f"  if ({raw(st, 'protocol')} == 6) {{ $sk = {raw(st, 'skaddr')}; $ns = {ns_of_sk('$sk')};",
        ("  if (" + raw(st, "newstate") + " == 7) { delete(@last[$sk]); }") if probes else "",
        "  " + emit("C"), "  }", "}",
    ]
    if probes:
        pr = "tcp:tcp_probe"
        sport, dport = raw(pr, "sport"), raw(pr, "dport")
        ports = " || ".join(f"{sport} == {int(p)} || {dport} == {int(p)}" for p in sorted(plan.ports))
        lines += head(pr) + [
            # Per received segment: filtered by port first (cheap), then by namespace, then thinned per socket.
            f"  if ({raw(pr, 'family')} == 2 && ({ports})) {{",
            f"  $sk = {raw(pr, 'skaddr')}; $ns = {ns_of_sk('$sk')};",
            f"  if ({keep}) {{ if (nsecs - @last[$sk] < {int(plan.probe_gap * 1e9)}) {{ @thin[$ns]++; }}",
            "  else { @last[$sk] = nsecs; " + emit("P", counter="@wnp") + " } }",
            "  }", "}",
        ]
    done = f"printf(\"M\\tdone\\t%u\\t%llu\\n\", {raw(st, 'sport')}, nsecs); "
    lines.append(marker("last", then="print(@over); print(@thin); print(@sent); " + done))
    # The maps are cleared at exit so that bpftrace does not print them again in its own format.
    lines.append("END { clear(@over); clear(@thin); clear(@sent); " + ("clear(@last); " if probes else "")
                 + "delete(@win); delete(@wn); delete(@wnp); }")
    return "\n".join(line for line in lines if line) + "\n", layout


# -- parsing what the program prints ---------------------------------------------------------------------------
def _ipv4(u32):
    """4 address bytes loaded as a little-endian u32 -> dotted quad."""
    return socket.inet_ntoa(struct.pack("<I", u32 & 0xFFFFFFFF))


def _sockaddr(u64):
    """The first 8 bytes of a sockaddr_in (family, port in network order, address) -> (address, port)."""
    raw = struct.pack("<Q", u64)
    return socket.inet_ntoa(raw[4:8]), struct.unpack(">H", raw[2:4])[0]


def _state(n):
    return TCP_STATES.get(n, str(n))


def _connection(v):
    """The connection fields of an event from its printed values (tracepoint fields or a packet's header)."""
    if "addrs" in v:                               # a packet: IPv4 saddr then daddr, ports in network order
        known = v["addrs"] != 0
        ports = v["proto"] in (6, 17)
        return {"saddr": _ipv4(v["addrs"]) if known else None, "daddr": _ipv4(v["addrs"] >> 32) if known else None,
                "sport": socket.ntohs(v["ports"] & 0xFFFF) if ports else None,
                "dport": socket.ntohs(v["ports"] >> 16) if ports else None}
    if "sport" in v:                               # tcp_event_sk style: ports in host order, 4-byte addresses
        return {"saddr": _ipv4(v["saddr"]), "daddr": _ipv4(v["daddr"]), "sport": v["sport"], "dport": v["dport"]}
    (saddr, sport), (daddr, dport) = _sockaddr(v["saddr"]), _sockaddr(v["daddr"])
    return {"saddr": saddr, "daddr": daddr, "sport": sport, "dport": dport}


def _drop(v, tables, symbolize):
    lens = v.get("lens", 0)
    total = socket.ntohs(lens >> 16 & 0xFFFF)           # the IP total length, in network order
    payload = total - (lens >> 8 & 0xFF) - (lens & 0xFF) if v["proto"] == 6 and total else None
    return {"reason": tables["drop"].get(v["reason"], f"REASON_{v['reason']}"), "payload": payload,
            "proto": IPPROTO.get(v["proto"], str(v["proto"])) if v["addrs"] else None, "dev": v.get("dev") or None,
            "location": symbolize(v["location"])}


def _retransmit(v, _tables, _sym):
    out = {"state": _state(v["state"]), "segs": v["segs"]}
    err = v.get("err", 0)
    if err:
        err = err - (1 << 32) if err >= 1 << 31 else err        # a negative errno, loaded as u32
        out["err"] = errno.errorcode.get(-err, str(err))
    return out


def _reset_sent(v, tables, _sym):
    extra = {"state": _state(v["state"]) if v["state"] else None}
    if "reason" in v:
        extra["reason"] = tables.get("reset", {}).get(v["reason"], f"REASON_{v['reason']}")
    return extra


def _set_state(v, _tables, _sym):
    return {"old": _state(v["oldstate"]), "new": _state(v["newstate"])}


def _probe(v, _tables, _sym):
    names = ["snd_nxt", "snd_una", "snd_wnd", "rcv_wnd", "snd_cwnd", "ssthresh", "data_len"]
    return {**{n: v[n] for n in names}, "srtt_us": v["srtt"]}


_EXTRA = {"D": _drop, "R": _retransmit, "A": lambda *a: {}, "S": _reset_sent, "X": lambda *a: {}, "C": _set_state,
          "P": _probe}


_COUNTER = re.compile(r"^@(over|thin|sent)\[([\d, ]+)\]: (\d+)$")


def classify(line):
    """What a printed line is, cheaply (the hub reads every line of every namespace):
    ("event", tag, inode) | ("marker", tag, port, t) | ("counter", name, keys, value) | ("lost", n) | None."""
    if line[:2] in _EVENT_TAGS:
        parts = line.split("\t", 2)
        return ("event", parts[0], int(parts[1])) if len(parts) == 3 else None
    if line.startswith("M\t"):
        _m, tag, port, t = line.rstrip("\n").split("\t")
        return "marker", tag, int(port), int(t) / 1e9
    if line.startswith("@"):
        m = _COUNTER.match(line.strip())
        if m:
            return "counter", m[1], tuple(int(k) for k in m[2].split(",")), int(m[3])
        return None
    if line.startswith("Lost "):          # bpftrace: the perf buffer overflowed
        return "lost", int(line.split()[1])
    return None


_EVENT_TAGS = {f"{tag}\t" for tag in PROBES}


def parse_event(line, layout, host, tables, symbolize=hex):
    """One event line -> the event dict, put on HOST. LAYOUT: generate()'s {tag: [field names]}; TABLES:
    {"drop": {n: NAME}, "reset": {n: NAME}} from this kernel's format files; SYMBOLIZE: kernel address ->
    function name. Raises ValueError when the line does not match its layout."""
    f = line.rstrip("\n").split("\t")
    tag = f[0]
    names = layout.get(tag)
    if names is None or len(f) != 3 + len(names):
        raise ValueError(f"{len(f) - 3} values for {tag!r}, expected {len(names or [])}")
    values = {n: (x if n in STRING_FIELDS else int(x)) for n, x in zip(names, f[3:])}
    kind = PROBES[tag][1]
    if tag == "R" and values.get("err", 0):           # not sent (6.10+ traces the failures too)
        kind = "retransmit-failed"
    elif tag == "R" and values["state"] == 2:         # retransmitted from SYN_SENT: the SYN itself
        kind = "syn-retransmit"
    return {"t": int(f[2]) / 1e9, "host": host, "kind": kind, **_connection(values),
            **_EXTRA[tag](values, tables, symbolize)}

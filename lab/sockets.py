"""Per-host socket views: `ss -tanimOH` text -> SocketRecord objects (pure), and sampling a host.

Why `ss` and not sock_diag through pyroute2: one line of `ss -tanimO` per socket already carries
everything the lessons need (a listener's accept queue and backlog as Recv-Q/Send-Q, a connection's
queues, skmem and tcp_info: cwnd, rtt, snd_wnd, rcv_space, retransmits, backoff), it is what students
type in their own terminals, and it needs no extra dependency. The price is one process per sample.
"""
import re
from dataclasses import dataclass, field

SS_ARGS = ("ss", "-tanimOH")
_TWO_WORD = {"send", "pacing_rate", "delivery_rate"}   # "send 123bps": key, then a value token
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass
class SocketRecord:
    state: str
    local: str
    peer: str
    recv_q: int
    send_q: int
    skmem: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)   # tcp_info fields as ss prints them (numbers converted)

    @property
    def is_listener(self):
        return self.state == "LISTEN"

    @property
    def accept_queue(self):
        """For a listener: connections completed and waiting for accept()."""
        return self.recv_q if self.is_listener else None

    @property
    def backlog(self):
        """For a listener: the effective backlog, min(listen() argument, somaxconn)."""
        return self.send_q if self.is_listener else None

    @property
    def local_port(self):
        return int(self.local.rsplit(":", 1)[1])

    @property
    def peer_port(self):
        tail = self.peer.rsplit(":", 1)[1]
        return None if tail == "*" else int(tail)

    def to_dict(self):
        return {"state": self.state, "local": self.local, "peer": self.peer, "recv_q": self.recv_q,
                "send_q": self.send_q, "skmem": self.skmem, "info": self.info}


def _value(text):
    if _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    return text


def _rate(text):
    """'1963389831bps' -> 1963389831 (ss prints rates in bits/s with -O and no -e)."""
    m = re.match(r"^([\d.]+)([KMG]?)bps$", text)
    if not m:
        return text
    return int(float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)])


def parse_skmem(text):
    """'(r0,rb131072,t0,...)' -> {'r': 0, 'rb': 131072, ...} (kernel memory per socket, bytes)."""
    out = {}
    for part in text.strip("()").split(","):
        m = re.match(r"^([a-z]+)(\d+)$", part)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def parse_line(line):
    """One line of `ss -tanimOH` -> SocketRecord, or None for a line that is not a TCP socket."""
    tokens = line.split()
    if len(tokens) < 5 or not tokens[1].isdigit():
        return None
    record = SocketRecord(state=tokens[0], recv_q=int(tokens[1]), send_q=int(tokens[2]),
                          local=tokens[3], peer=tokens[4])
    rest = tokens[5:]
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok.startswith("users:("):
            pass
        elif tok.startswith("skmem:"):
            record.skmem = parse_skmem(tok[len("skmem:"):])
        elif tok in _TWO_WORD and i + 1 < len(rest):
            record.info[tok] = _rate(rest[i + 1])
            i += 1
        elif tok.startswith(("bbr:(", "dctcp:(")):
            pass  # congestion-control internals: not part of the lessons
        elif ":" in tok:
            key, _, value = tok.partition(":")
            if key == "rtt" and "/" in value:
                rtt, var = value.split("/")
                record.info["rtt"], record.info["rttvar"] = float(rtt), float(var)
            elif key == "retrans" and "/" in value:
                cur, total = value.split("/")
                record.info["retrans"], record.info["retrans_total"] = int(cur), int(total)
            elif key in ("busy", "rwnd_limited", "sndbuf_limited"):
                record.info[key + "_ms"] = int(re.match(r"\d+", value).group())
            else:
                record.info[key] = _value(value)
        else:
            record.info.setdefault("flags", []).append(tok)   # cubic, app_limited, ...
        i += 1
    return record


def parse_ss(text):
    """Whole `ss -tanimOH` output -> [SocketRecord]."""
    return [r for r in (parse_line(ln) for ln in text.splitlines()) if r is not None]


def listeners(records, port=None):
    return [r for r in records if r.is_listener and (port is None or r.local_port == port)]


def prints_zero_window_by_omission(ss_version, kernel_release):
    """True when a connection that `ss` shows without `snd_wnd` has a zero send window: iproute2 5.18 and
    later print tcp_info's tcpi_snd_wnd (kernel 5.4 and later) only when it is not zero. SS_VERSION: what
    `ss -V` printed ("ss utility, iproute2-6.1.0"; before 5.x releases were dated, "iproute2-ss190107")."""
    ss = re.search(r"iproute2-(\d+)\.(\d+)", ss_version or "")
    kernel = re.match(r"(\d+)\.(\d+)", kernel_release or "")
    return bool(ss and kernel and (int(ss[1]), int(ss[2])) >= (5, 18) and (int(kernel[1]), int(kernel[2])) >= (5, 4))


def this_ss_prints_zero_window_by_omission():
    """prints_zero_window_by_omission() for this machine's ss and kernel (False when ss cannot say)."""
    import platform
    import subprocess
    try:
        version = subprocess.run(["ss", "-V"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return prints_zero_window_by_omission(version, platform.release())


def connections(records, port=None):
    """Established (and closing) connections; PORT matches either end."""
    return [r for r in records if not r.is_listener
            and (port is None or port in (r.local_port, r.peer_port))]


def aggregate(t, records, port=None, window_seen=False):
    """One `ss` sample of a host -> the numbers checks and plots use (see expect.SAMPLE_FIELDS).

    A value ss did not show is None (not observed), never 0, with one exception that needs evidence:
    ss leaves `snd_wnd` out when it is zero, so when this ss and kernel are known to report it (WINDOW_SEEN:
    prints_zero_window_by_omission(), or this host's ss has printed snd_wnd), a connection without it has a
    zero window.
    """
    listen = listeners(records, port)
    conns = [r for r in connections(records, port) if r.state != "TIME-WAIT"]
    estab = [r for r in conns if r.state == "ESTAB"]

    def total(values):
        return sum(values) if conns else None

    def most(key, source="info"):
        values = [(r.info if source == "info" else r.skmem).get(key) for r in conns]
        values = [v for v in values if isinstance(v, (int, float))]
        return max(values) if values else None

    window_seen = window_seen or any("snd_wnd" in r.info for r in records)
    windows = [r.info["snd_wnd"] if "snd_wnd" in r.info else (0 if window_seen else None) for r in estab]
    windows = [w for w in windows if w is not None]
    return {
        "t": round(t, 4),
        "accept_queue": max((r.accept_queue for r in listen), default=None),
        "backlog": max((r.backlog for r in listen), default=None),
        "connections": len(conns),
        "recv_q": total([r.recv_q for r in conns]),
        "send_q": total([r.send_q for r in conns]),
        "snd_wnd": min(windows) if windows else None,
        "rcv_space": most("rcv_space"),
        "cwnd": most("cwnd"),
        "rtt": most("rtt"),
        # ss prints these only when they are not zero; with no connection showing them they are not observed
        "retrans_total": total([r.info.get("retrans_total", 0) for r in conns]) if most("retrans_total") else None,
        "backoff": most("backoff"),
        "notsent": total([r.info.get("notsent", 0) for r in conns]) if most("notsent") else None,
        **{f"skmem_{k}": most(k, "skmem") for k in ("r", "rb", "t", "tb", "w")},
        "sockets": [{"state": r.state, "local": r.local, "peer": r.peer, "recv_q": r.recv_q, "send_q": r.send_q}
                    for r in listen + conns][:50],
    }

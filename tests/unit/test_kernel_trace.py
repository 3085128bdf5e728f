"""lab.trace's pure parts: format files, the BTF reader, the generated program, and what it prints.

Samples under tests/data/trace/ were captured on kernel 6.18 with bpftrace 0.17: the 7 tracepoints' format
files, and lines the tracer printed during a run (see the header of bpftrace-lines.txt).
"""
import re
import struct
from pathlib import Path

import pytest

from lab.trace import btf, dropnames, formats, kernel, program
from lab.trace.tracer import Tracer, TraceResult

DATA = Path(__file__).resolve().parent.parent / "data" / "trace"
FORMATS = formats.parse_many((DATA / "formats-6.18.txt").read_text())
# Debian 12's stock kernel 6.1, captured by scripts/vm-check.sh (its tracepoint-formats.txt).
FORMATS_61 = formats.parse_many((DATA / "formats-6.1.txt").read_text())
# Offsets this kernel's BTF gave (kernel.offsets()); the program only embeds them.
OFFSETS = {"SK_NET": 48, "NET_INUM": 176, "SKB_SK": 24, "SKB_DEV": 16, "DEV_NET": 264, "SKB_HEAD": 192,
           "SKB_NH": 180, "DEV_NAME": 280, "SKB_CB": 40, "GSO_SEGS": 8}


def test_a_failed_mount_says_why_without_the_dmesg_hint():
    # util-linux 2.38 (Debian 12) prints the reason, then a hint that says nothing; the reason must survive.
    stderr = ("mount: /sys/kernel/tracing: tracefs already mounted on /sys/kernel/tracing.\n"
              "       dmesg(1) may have more information after failed mount system call.\n")
    assert kernel.why_failed(stderr) == "mount: /sys/kernel/tracing: tracefs already mounted on /sys/kernel/tracing."
    assert kernel.why_failed("") == "no error output"


# -- format files --------------------------------------------------------------------------------------------
def test_the_captured_format_files_give_every_tracepoint_and_its_fields():
    assert sorted(FORMATS) == sorted(program.TRACEPOINTS)
    drop = FORMATS["skb:kfree_skb"]
    assert drop.id == 2310
    assert drop.fields["reason"] == ("enum skb_drop_reason", 36, 4, False)
    assert drop.fields["rx_sk"][1:3] == (24, 8)
    assert FORMATS["tcp:tcp_probe"].fields["saddr"] == ("__u8", 8, 28, False)
    assert "common_pid" in drop.fields


def test_drop_reason_names_come_from_the_format_file_not_from_numbers_in_the_code():
    table = formats.symbol_table(FORMATS["skb:kfree_skb"].print_fmt, "reason")
    assert table[2] == "NOT_SPECIFIED" and table[3] == "NO_SOCKET"
    by_name = {name: n for n, name in table.items()}
    # On this 6.18 sample: the numbers of the reasons the lessons use.
    assert by_name["TCP_LISTEN_OVERFLOW"] == 40
    assert by_name["TCP_ZEROWINDOW"] == 32 and by_name["QUEUE_PURGE"] == 104   # 104: as ../shared/README.md saw
    assert len(table) == 127 and max(table) == 128


def test_a_table_written_with_symbols_is_skipped_and_a_missing_one_is_an_error():
    fmt = FORMATS["tcp:tcp_send_reset"].print_fmt
    resets = formats.symbol_table(fmt, "reason")
    assert resets[1] == "NO_SOCKET" and resets[10] == "INVALID_SYN"
    # REC->state is printed with { TCP_ESTABLISHED, "..." } pairs: no number to read.
    with pytest.raises(formats.FormatError, match="REC->state has no numeric entries"):
        formats.symbol_table(fmt, "state")
    with pytest.raises(formats.FormatError, match="no __print_symbolic table for REC->nothing"):
        formats.symbol_table(fmt, "nothing")


def test_a_file_that_is_not_a_format_file_is_refused():
    with pytest.raises(formats.FormatError, match="'name:', 'ID:' and 'print fmt:'"):
        formats.parse_format("field:int x;\toffset:8;\tsize:4;\tsigned:1;\n")


# -- BTF ----------------------------------------------------------------------------------------------------
class _Blob:
    """A hand-made BTF blob (include/uapi/linux/btf.h layout), to test the reader without a kernel."""

    def __init__(self):
        self.strings, self.types = b"\0", []

    def name(self, text):
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def add(self, kind, name, vlen, size_or_type, tail=b"", kflag=0):
        self.types.append(struct.pack("<III", self.name(name) if name else 0,
                                      kind << 24 | vlen | kflag << 31, size_or_type) + tail)
        return len(self.types)

    def struct(self, name, size, members, kind=4):
        tail = b"".join(struct.pack("<III", self.name(m) if m else 0, t, bits) for m, t, bits in members)
        return self.add(kind, name, len(members), size, tail)

    def bytes(self):
        types = b"".join(self.types)
        return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(self.strings)) \
            + types + self.strings


def _sample_btf():
    b = _Blob()
    u32 = b.add(1, "unsigned int", 0, 4, struct.pack("<I", 32))
    ptr = b.add(2, "", 0, 0)                                                 # id 2: a pointer (to void)
    ns = b.struct("ns_common", 16, [("stashed", ptr, 0), ("inum", u32, 64)])
    net = b.struct("net", 200, [("passive", u32, 0), ("ns", ns, 176 * 8 - 64)])   # ns.inum lands at 176
    possible = b.struct("possible_net_t", 8, [("net", ptr, 0)])
    typedef = b.add(8, "possible_net_t_alias", 0, possible)
    inner = b.struct("", 16, [("skc_hash", u32, 0), ("skc_net", typedef, 64)])  # anonymous, inside a union
    union = b.struct("", 16, [("skc_other", u32, 0), ("", inner, 0)], kind=5)
    common = b.struct("sock_common", 64, [("skc_daddr", u32, 0), ("", union, 32 * 8)])
    b.struct("sock", 512, [("__sk_common", common, 0)])
    assert net
    return btf.BTF(b.bytes())


def test_btf_offsets_follow_typedefs_and_anonymous_structs_and_unions():
    b = _sample_btf()
    assert b.offset("sock.__sk_common.skc_net.net") == 32 + 8
    assert b.offset("net.ns.inum") == 176
    assert b.offset("sock_common.skc_daddr") == 0


def test_btf_errors_name_what_is_missing():
    b = _sample_btf()
    with pytest.raises(btf.BTFError, match="struct sk_buff is not in this kernel's BTF"):
        b.offset("sk_buff.head")
    with pytest.raises(btf.BTFError, match="no member skc_portpair"):
        b.offset("sock.__sk_common.skc_portpair")
    with pytest.raises(btf.BTFError, match="not BTF"):
        btf.BTF(b"\0" * 40)


# -- the program -------------------------------------------------------------------------------------------
def _program(**plan):
    return program.generate(program.Plan(**{"marker_pid": 4242, "skip_inum": 4026531833, **plan}), OFFSETS,
                            FORMATS)


def test_the_program_reads_fields_at_the_format_files_offsets_and_filters_in_the_kernel():
    text, layout = _program(ports=frozenset({9000, 9001}))
    assert "args->" not in text                    # no field by name: libclang would compile each (slow)
    assert "$ns != 4026531833" in text             # the machine's namespace is left out in the kernel
    assert "*(uint16*)($a + 64) == 9000 || *(uint16*)($a + 66) == 9000" in text    # tcp_probe by port
    assert "pid == 4242" in text and text.count("M\\tfirst") == 1 and text.count("M\\tlast") == 1
    assert text.index("M\\tfirst") < text.index("tracepoint:skb:kfree_skb") < text.index("M\\tlast")
    assert layout["R"] == ["state", "sport", "dport", "saddr", "daddr", "err", "segs"]
    assert layout["D"] == ["reason", "location", "proto", "addrs", "ports", "lens", "dev"]
    assert set(layout) == set(program.PROBES)


def test_for_bpftrace_0_19_on_fields_are_read_by_name_and_addresses_byte_by_byte():
    """Debian 13's bpftrace (0.23) refuses `(uint64)args` ("Cannot cast from struct type"), and the kernel's
    verifier a 4-byte load from the record at an offset not a multiple of 4 (retransmit_skb's saddr: 34)."""
    text, layout = _program(ports=frozenset({9000}), args_struct=True)
    assert not re.search(r"\$a\b", text) and "(uint64)args;" not in text
    assert "(uint16)args.sport == 9000 || (uint16)args.dport == 9000" in text        # tcp_probe by port
    assert FORMATS["tcp:tcp_retransmit_skb"].fields["saddr"][1:3] == (34, 4)
    assert ("((uint64)(uint8)args.saddr[0] << 0) | ((uint64)(uint8)args.saddr[1] << 8) | "
            "((uint64)(uint8)args.saddr[2] << 16) | ((uint64)(uint8)args.saddr[3] << 24)") in text
    assert "((uint64)(uint8)args.saddr[7] << 56)" in text            # tcp_probe's 28-byte sockaddr: its first 8
    assert "*(uint16*)((uint64)args.skbaddr + " in text             # kernel structs still by BTF offsets
    assert layout == _program(ports=frozenset({9000}))[1]           # the same lines, parsed the same way


def test_the_dialect_follows_bpftraces_version_and_its_refusal():
    assert program.args_are_struct("bpftrace v0.23.2\n") and program.args_are_struct("bpftrace v0.19.0")
    assert not program.args_are_struct("bpftrace v0.17.0\n") and not program.args_are_struct("v0.18.1")
    assert program.args_are_struct("bpftrace v1.0.0")
    with pytest.raises(ValueError, match="no version"):
        program.args_are_struct("bpftrace: command not found")
    # What each version printed for the other dialect (0.23 in Debian 13's root, 0.17 here):
    assert program.dialect_refused('stdin:56:44-52: ERROR: Cannot cast from struct type '
                                   '"struct _tracepoint_sock_inet_sock_set_state"')
    assert program.dialect_refused("/tmp/p1.bt:1:55-68: ERROR: Can not access field 'dport' on type '(ctx) "
                                   "struct _tracepoint_sock_inet_sock_set_state *'. Try dereferencing it first, "
                                   "or using '->'")
    assert not program.dialect_refused("ERROR: tracepoint not found: sock:inet_sock_set_state")


def test_a_pointer_to_bytes_is_read_as_a_pointer():
    fmt = formats.Format("x:y", 1, {"buf": ("const char *", 16, 8, False), "b": ("__u8", 24, 1, False)}, "")
    assert program.field_load("x:y", fmt, "buf", args_struct=True) == "(uint64)args.buf"
    assert program.field_load("x:y", fmt, "b", args_struct=True) == "(uint8)args.b"


def test_without_ports_there_is_no_tcp_probe_and_an_old_kernel_lacks_only_optional_fields():
    text, layout = _program()
    assert "tcp_probe" not in text and "P" not in layout
    old = dict(FORMATS)
    rst = old["tcp:tcp_send_reset"]
    old["tcp:tcp_send_reset"] = formats.Format(rst.name, rst.id, {k: v for k, v in rst.fields.items()
                                                                   if k != "reason"}, rst.print_fmt)
    _text, layout = program.generate(program.Plan(), OFFSETS, old)
    assert layout["S"] == ["state", "saddr", "daddr"]
    probe = old["tcp:tcp_probe"]
    old["tcp:tcp_probe"] = formats.Format(probe.name, probe.id, {k: v for k, v in probe.fields.items()
                                                                 if k != "snd_una"}, probe.print_fmt)
    with pytest.raises(formats.FormatError, match="tcp:tcp_probe has no field snd_una"):
        program.generate(program.Plan(ports={9000}), OFFSETS, old)


def test_on_6_1_the_program_builds_without_tcp_probe_and_says_why():
    assert sorted(FORMATS_61) == sorted(program.TRACEPOINTS)
    assert "skaddr" not in FORMATS_61["tcp:tcp_probe"].fields        # the segment's socket: its host
    text, layout = program.generate(program.Plan(ports={9000}), OFFSETS, FORMATS_61)
    assert "tracepoint:tcp:tcp_probe" not in text and "P" not in layout and "@last" not in text
    assert set(layout) == set(program.PROBES) - {"P"}
    assert "no socket" in program.probe_limit(FORMATS_61) and program.probe_limit(FORMATS) == ""
    text, layout = program.generate(program.Plan(ports={9000}), OFFSETS, FORMATS)
    assert "tracepoint:tcp:tcp_probe" in text and "P" in layout


def test_drop_reason_names_differ_between_6_1_and_6_18():
    """Why a check may name a reason this kernel lacks (lab/trace/dropnames.py): 6.18 names drops 6.1 does
    not, e.g. TCP_OLD_SEQUENCE (a zero-window probe, since 6.15)."""
    old = set(formats.symbol_table(FORMATS_61["skb:kfree_skb"].print_fmt, "reason").values())
    new = set(formats.symbol_table(FORMATS["skb:kfree_skb"].print_fmt, "reason").values())
    assert "TCP_INVALID_SEQUENCE" in old & new
    assert "TCP_OLD_SEQUENCE" in new - old
    assert dropnames.KNOWN == old | new        # what a check may name on any of these kernels


# -- what the program prints -----------------------------------------------------------------------------
LINES = [line for line in (DATA / "bpftrace-lines.txt").read_text().splitlines(keepends=True)
         if not line.startswith("#")]
INODE = 4026547480                      # the throwaway namespace of the capture (see capture_lines.py)
TABLES = {"drop": formats.symbol_table(FORMATS["skb:kfree_skb"].print_fmt, "reason"),
          "reset": formats.symbol_table(FORMATS["tcp:tcp_send_reset"].print_fmt, "reason")}
LAYOUT = _program(ports=frozenset({9000}))[1]


def _events():
    return [program.parse_event(line, LAYOUT, "h1", TABLES, lambda addr: f"fn@{addr:x}") for line in LINES]


def test_captured_lines_decode_to_events_with_the_kernels_names():
    events = _events()
    kinds = [e["kind"] for e in events]
    assert kinds.count("syn-retransmit") == 2 and kinds.count("probe") == 3 and kinds.count("state") == 12
    syn = next(e for e in events if e["kind"] == "syn-retransmit")
    assert syn == {"t": 4695.580088745, "host": "h1", "kind": "syn-retransmit", "saddr": "127.0.0.1",
                   "daddr": "127.0.0.1", "sport": 51330, "dport": 9000, "state": "SYN_SENT", "segs": 1}
    resets = [e for e in events if e["kind"] == "reset-sent"]
    assert resets[0] == {"t": 4697.077334831, "host": "h1", "kind": "reset-sent", "saddr": "127.0.0.1",
                         "daddr": "127.0.0.1", "sport": 9999, "dport": 46830, "state": None, "reason": "NO_SOCKET"}
    # the listener's process exits: the connection it never accepted, with 20 kB unread, is reset
    assert (resets[1]["state"], resets[1]["reason"], resets[1]["sport"]) == ("CLOSE", "TCP_STATE", 9000)
    drop = next(e for e in events if e["kind"] == "drop" and e["reason"] == "NO_SOCKET")
    assert (drop["saddr"], drop["sport"], drop["daddr"], drop["dport"]) == ("127.0.0.1", 46830, "127.0.0.1", 9999)
    assert drop["proto"] == "tcp" and drop["dev"] == "lo" and drop["location"] == "fn@ffffffff82033251"
    assert drop["payload"] == 0                 # a SYN
    purge = next(e for e in events if e["kind"] == "drop" and e["reason"] == "QUEUE_PURGE")
    assert purge["dev"] is None and purge["payload"] == 20000      # the unread data, never on a device again
    probe = next(e for e in events if e["kind"] == "probe")
    assert probe == {"t": 4694.575324444, "host": "h1", "kind": "probe", "saddr": "127.0.0.1",
                     "daddr": "127.0.0.1", "sport": 9000, "dport": 51320, "snd_nxt": 3040741266,
                     "snd_una": 3040741266, "snd_wnd": 65536, "rcv_wnd": 65483, "snd_cwnd": 10,
                     "ssthresh": 2147483647, "data_len": 20000, "srtt_us": 59}
    listen = events[0]
    assert (listen["old"], listen["new"], listen["sport"], listen["saddr"]) == ("CLOSE", "LISTEN", 9000, "127.0.0.1")


def test_a_line_that_does_not_match_its_layout_is_an_error():
    with pytest.raises(ValueError, match="4 values for 'X', expected 5"):
        program.parse_event("X\t1\t2\t3\t4\t5\t6\n", {**LAYOUT, "X": LAYOUT["X"] + ["extra"]}, "h1", TABLES)
    with pytest.raises(ValueError):
        program.parse_event("R\t1\t2\tnot-a-number\t0\t0\t0\t0\t0\t1\n", LAYOUT, "h1", TABLES)


def test_a_failed_retransmission_is_not_counted_as_one():
    line = "R\t1\t2\t1\t33316\t9000\t16777343\t16777343\t4294967280\t3\n"      # err -16 (EBUSY)
    e = program.parse_event(line, LAYOUT, "h1", TABLES)
    assert e["kind"] == "retransmit-failed" and e["err"] == "EBUSY" and e["state"] == "ESTABLISHED"


def test_classify_tells_events_markers_counters_and_lost_lines_apart():
    assert program.classify(LINES[0]) == ("event", "C", INODE)
    assert program.classify("M\tlast\t40522\t4145916752266\n") == ("marker", "last", 40522, 4145.916752266)
    assert program.classify("@over[4026532178, 3]: 17\n") == ("counter", "over", (4026532178, 3), 17)
    assert program.classify("@sent[4026532178]: 5\n") == ("counter", "sent", (4026532178,), 5)
    assert program.classify("Lost 12 events\n") == ("lost", 12)
    assert program.classify("Attaching 11 probes...\n") is None
    assert program.classify("@last[123]: 4\n") is None


class _Hub:
    """What Tracer._build reads from its hub."""
    layout, lost, stderr, stderr_count = LAYOUT, 0, [], 0


def _traced(cap, end):
    tracer = Tracer({"h1": INODE}, cap=cap)
    tracer.hub = _Hub()
    for line in LINES:
        tracer.add_line(line, line[0])
    return tracer._build(end, [])


def test_a_run_keeps_cap_events_and_counts_the_rest_by_kind_with_the_kernels_own_counts():
    base = {("sent", (INODE,)): 10, ("over", (INODE, 0)): 1, ("thin", (INODE,)): 2, ("over", (99, 0)): 50}
    tracer = Tracer({"h1": INODE}, cap=3)
    tracer.hub, tracer._base = _Hub(), base
    for line in LINES:
        tracer.add_line(line, line[0])
    end = {("sent", (INODE,)): 10 + len(LINES), ("over", (INODE, 0)): 3, ("thin", (INODE,)): 9,
           ("over", (99, 0)): 80}
    res = tracer._build(end, [])
    assert len([e for e in res.events if e["kind"] != "probe"]) == 3
    assert len([e for e in res.events if e["kind"] == "probe"]) == 3        # counted apart, under their own cap
    # 17 other lines arrived past the cap (12 state, 2 syn, 2 resets sent, 2 drops, 2 received, minus 3 kept)
    # and the kernel's rate bound left out 2 drops of this namespace (not the 30 of namespace 99).
    assert res.over_by_kind == {"state": 9, "retransmit": 2, "reset-sent": 2, "drop": 2 + 2, "reset-received": 2}
    assert res.dropped_by_cap == 17 + 2 and res.probe_thinned == 7 and res.lost == 0
    assert [e["t"] for e in res.events] == sorted(e["t"] for e in res.events)


def test_lines_the_kernel_printed_but_that_never_arrived_are_reported_lost():
    tracer = Tracer({"h1": INODE}, cap=100)
    tracer.hub, tracer._base = _Hub(), {("sent", (INODE,)): 0}
    for line in LINES[:10]:
        tracer.add_line(line, line[0])
    res = tracer._build({("sent", (INODE,)): len(LINES)}, [])
    assert res.lost == len(LINES) - 10 and len(res.events) == 10


def test_counts_per_host_and_drop_reason():
    res = TraceResult(True, events=_events())
    counts = res.counts()["h1"]
    assert counts["drop"] == 2 and counts["drop.NO_SOCKET"] == 1 and counts["drop.QUEUE_PURGE"] == 1
    assert counts["syn-retransmit"] == 2 and counts["reset-received"] == 2

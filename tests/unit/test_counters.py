from pathlib import Path

import pytest

from lab import counters

DATA = Path(__file__).parent.parent / "data"


def sample(name):
    return (DATA / f"proc-net-{name}.txt").read_text()


def test_netstat_groups_and_values():
    parsed = counters.parse_paired(sample("netstat"))
    assert set(parsed) >= {"TcpExt", "IpExt"}
    assert isinstance(parsed["TcpExt"]["ListenOverflows"], int)
    assert "TCPToZeroWindowAdv" in parsed["TcpExt"]


def test_snmp_has_tcp_and_ip():
    parsed = counters.parse_paired(sample("snmp"))
    assert parsed["Tcp"]["ActiveOpens"] >= 0
    # The ping made when the sample was captured.
    assert parsed["Icmp"]["OutMsgs"] >= 1
    assert parsed["Tcp"]["MaxConn"] == -1


def test_snmp6_groups_by_prefix():
    parsed = counters.parse_snmp6(sample("snmp6"))
    assert "InReceives" in parsed["Ip6"]
    assert "OutMsgs" in parsed["Icmp6"]


def test_parse_all_merges_files():
    merged = counters.parse_all({n: sample(n) for n in counters.COUNTER_FILES})
    assert {"Tcp", "TcpExt", "Ip6"} <= set(merged)


def test_mismatched_header_is_an_error():
    with pytest.raises(ValueError, match="TcpExt"):
        counters.parse_paired("TcpExt: A B\nIpExt: 1 2\n")


def test_delta_and_nonzero():
    before = {"Tcp": {"ActiveOpens": 1, "CurrEstab": 3}, "TcpExt": {"ListenOverflows": 0}}
    after = {"Tcp": {"ActiveOpens": 4, "CurrEstab": 1}, "TcpExt": {"ListenOverflows": 0}}
    d = counters.delta(before, after)
    assert d == {"Tcp": {"ActiveOpens": 3, "CurrEstab": -2}, "TcpExt": {"ListenOverflows": 0}}
    assert counters.nonzero(d) == {"Tcp": {"ActiveOpens": 3, "CurrEstab": -2}}


def test_lookup_names_what_is_missing():
    c = {"TcpExt": {"ListenOverflows": 2}}
    assert counters.lookup(c, "TcpExt.ListenOverflows") == 2
    with pytest.raises(KeyError, match="TcpExt.Nope"):
        counters.lookup(c, "TcpExt.Nope")
    with pytest.raises(KeyError, match="no counter group 'Foo'"):
        counters.lookup(c, "Foo.Bar")

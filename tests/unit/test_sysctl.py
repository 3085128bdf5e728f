import os

import pytest

from lab import sysctl as hosts
from lab.errors import SysctlError
from lab.network.sysctls import in_machine_netns


@pytest.mark.parametrize("key", ["net.core.somaxconn", "net.ipv4.tcp_abort_on_overflow", "net.ipv4.tcp_rmem",
                                 "net.ipv4.tcp_syncookies", "net.ipv4.conf.all.rp_filter"])
def test_per_host_keys(key):
    assert hosts.scope(key) == "host"
    hosts.check_per_host(key)


@pytest.mark.parametrize("key", ["net.core.rmem_max", "net.core.wmem_max", "net.ipv4.tcp_mem",
                                 "net.core.netdev_max_backlog"])
def test_machine_wide_keys_are_refused_per_host(key):
    assert hosts.scope(key) == "machine"
    with pytest.raises(SysctlError, match=rf"{key}: machine-wide; it cannot be set per host \(per-host keys: "):
        hosts.check_per_host(key)


def test_unknown_key_is_refused_with_the_allowed_ones():
    with pytest.raises(SysctlError, match="kernel.shmmax: not a sysctl the lab can set per host"):
        hosts.scope("kernel.shmmax")


def test_values_compare_like_the_kernel_prints_them():
    assert hosts.normalize("4096\t131072  6291456\n") == "4096 131072 6291456"
    assert hosts.normalize(64) == "64"


@pytest.mark.parametrize("key, known, error", [
    ("net.ipv4.tcp_syncookie", {"net.ipv4.tcp_syncookies", "net.ipv4.tcp_sack"}, "did you mean net.ipv4.tcp_syncookies"),
    ("net.ipv4.conf.h1-eth0.rp_filter", {"net.ipv4.conf.all.rp_filter"}, None),    # interfaces differ per host
    ("net/ipv4/tcp_sack", set(), "not a sysctl name"),
])
def test_keys_are_checked_against_what_this_kernel_has(key, known, error):
    if error is None:
        hosts.check_per_host(key, known)
        return
    with pytest.raises(SysctlError, match=error):
        hosts.check_per_host(key, known)


@pytest.mark.parametrize("key, value, error", [
    ("net.ipv4.tcp_congestion_control", "cubik", "did you mean cubic"),
    ("net.ipv4.tcp_rmem", "4096 87380\n6291456; reboot", "not a sysctl value"),
    ("net.ipv4.tcp_syncookies", True, "expected a whole number or text"),
    ("net.ipv4.tcp_syncookies", 2 ** 70, "out of range"),
])
def test_values_are_checked_before_they_reach_the_kernel(key, value, error):
    with pytest.raises(SysctlError, match=error):
        hosts.check_value(key, value)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: lists the keys from inside a fresh network namespace")
@pytest.mark.skipif(not in_machine_netns(), reason="needs the machine's own network namespace: only there are "
                    "the machine-wide keys (tcp_mem) shown, to compare with a fresh namespace's")
def test_per_host_keys_are_what_a_fresh_namespace_has():
    # Read from the running kernel: net.ipv4.tcp_mem is the machine's on every kernel (only the root namespace
    # shows it); what a host can set, a new namespace has.
    from lab import library
    keys = library.kernel_sysctl_keys()
    root_only = {k for k in ("net.ipv4.tcp_mem", "net.ipv4.udp_mem") if os.path.exists("/proc/sys/" + k.replace(".", "/"))}
    assert root_only and not keys & root_only
    assert {"net.ipv4.tcp_syncookies", "net.core.somaxconn", "net.ipv4.conf.all.rp_filter"} <= keys

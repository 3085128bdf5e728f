import pytest

from lab import hosts
from lab.errors import SysctlError


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

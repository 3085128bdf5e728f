"""Robustness in the suite (the full 200-run soak is `tcplab bench --only soak`)."""
import pytest

from lab import bench
from lab import sysctl as sysctls
from lab.network import sysctls as hostcfg

pytestmark = pytest.mark.root


def test_ten_consecutive_runs_leave_nothing_behind():
    figures = bench.soak(10, say=lambda text: None)
    assert figures["statuses"] == {"PASS": 10}
    assert figures["leak_runs"] == []


def test_two_runs_at_once_both_pass_and_leave_the_machine_as_it_was():
    before = hostcfg.read_machine_sysctls(sysctls.MACHINE_GUARDED)
    figures = bench.concurrent(say=lambda text: None)
    assert figures["exit_codes"] == [0, 0], figures["output"]
    # Each run snapshots the machine's settings and checks them at the end; if any run changed them while
    # up, the other would snapshot the changed values and put those "back".
    assert hostcfg.read_machine_sysctls(sysctls.MACHINE_GUARDED) == before


def test_leak_check_sees_a_leak():
    # The leak check itself must be able to fail: an extra record is a leak.
    before = bench.machine_state()
    after = dict(before, records=before["records"] | {"tzzz"}, links=before["links"] | {"tzzzs1"})
    assert bench.leaks(before, after) == {"links": ["tzzzs1"], "records": ["tzzz"]}

"""The tc commands a link's shaping becomes (netem's are checked here, where the kernel lacks netem)."""
from lab.network import shape_commands
from lab.network.lifecycle import htb_quantum


def test_bandwidth_only_uses_htb_with_a_small_burst():
    assert shape_commands("h1-eth0", bw=10) == [
        "tc qdisc replace dev h1-eth0 root handle 5: htb default 1",
        "tc class replace dev h1-eth0 parent 5: classid 5:1 htb rate 10mbit burst 6250 cburst 6250 quantum 125000"]
    assert shape_commands("x", bw=0.1, burst=100)[1].endswith("burst 100 cburst 100 quantum 1600")


def test_htb_quantum_stays_where_the_kernel_accepts_it_silently():
    # rate/r2q below 1000 or above 200000 bytes makes the kernel warn; a full frame at least.
    assert [htb_quantum(bw) for bw in (0.1, 1, 16, 100, 1000, 10000)] == [1600, 12500, 200000, 200000, 200000, 200000]


def test_delay_and_loss_use_netem():
    assert shape_commands("h1-eth0", delay="50ms", loss="1%") == [
        "tc qdisc replace dev h1-eth0 root netem delay 50ms loss 1%"]


def test_bandwidth_with_delay_puts_netem_under_htb():
    cmds = shape_commands("h1-eth0", bw=10, delay="20ms")
    assert cmds[-1] == "tc qdisc replace dev h1-eth0 parent 5:1 handle 10: netem delay 20ms"


def test_nothing_to_shape():
    assert shape_commands("h1-eth0") == []

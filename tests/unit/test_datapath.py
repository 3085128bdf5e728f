"""Which OVS datapath a network spec asks for (the kernel's only with `switch: ovs`)."""
from lab.network.lifecycle import LabNetwork, NetworkSpec


class FakeSwitch:   # stands for Mininet's classes: only the keywords chosen are looked at
    pass


CLASSES = {"OVSSwitch": FakeSwitch, "OVSBridge": FakeSwitch, "LinuxBridge": FakeSwitch}


def chosen(**spec):
    return LabNetwork(NetworkSpec(**spec))._switch_class(CLASSES)


def test_openflow_uses_the_userspace_datapath_by_default():
    assert chosen(controller="lab").keywords == {"datapath": "user", "protocols": "OpenFlow13",
                                                 "failMode": "secure"}


def test_openflow_on_the_kernel_datapath_with_switch_ovs():
    assert chosen(controller="lab", switch="ovs").keywords["datapath"] == "kernel"
    assert chosen(controller="lab", switch="ovs-user").keywords["datapath"] == "user"


def test_bridges_without_a_controller():
    assert chosen(switch="ovs").keywords == {"datapath": "kernel"}
    assert chosen(switch="ovs-user").keywords == {"datapath": "user"}
    assert chosen(switch="bridge") is FakeSwitch

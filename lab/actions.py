"""Scenario actions: one small class per kind, each with its fields (checked by the schema), what it needs
from the world (checked before anything is built) and how it acts on a running network.

To add a kind: write one class here (a `kind`, its fields, `needs()` and `apply()`) and a test. The
scenario schema, `tcplab show` and the docs' table pick it up from ACTIONS.

In a scenario file an action is `{at: SECONDS, KIND: FIELDS}`, e.g. `{at: 1, rate: {between: [h1, s1], mbit: 1}}`;
a kind with a `shorthand` also takes that one field alone: `{at: 2, link-down: [h1, s1]}`.
"""
import signal
from typing import ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import sysctl as sysctls
from .errors import SysctlError
from .names import NodeName, NodePair, SysctlKey, SysctlValue

SIGNALS = ("SIGTERM", "SIGINT", "SIGSTOP", "SIGCONT", "SIGUSR1", "SIGUSR2", "SIGKILL")
TCP_FLAGS = ("syn", "syn-ack", "ack", "rst", "fin")      # the controller matches exactly these flag sets


class Need:
    """What an action refers to, checked against the scenario's world before anything is built."""

    def __init__(self, field, kind, name):
        self.field, self.kind, self.name = field, kind, name   # kind: node | host | guest | link (a pair)


class Action(BaseModel):
    """Base of every action kind: the fields are the kind's own (see each subclass)."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, populate_by_name=False)
    kind: ClassVar[str]
    shorthand: ClassVar[Optional[str]] = None        # the one field a bare value stands for
    needs_controller: ClassVar[bool] = False
    summary: ClassVar[str] = ""
    example: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _kind_is_not_a_field(cls, data):
        # The schema carries the kind beside the fields to pick the class (lab/model.py Step); drop it here.
        if isinstance(data, dict) and data.get("kind") == cls.kind:
            data = {k: v for k, v in data.items() if k != "kind"}
        return data

    def needs(self):
        """[Need] this action refers to (nodes, hosts, guests)."""
        return []

    def apply(self, run):
        """Do it on RUN (a lab.runner.ScenarioRun: run.lab is the LabNetwork, run.guests the guests)."""
        raise NotImplementedError

    def describe(self):
        fields = self.model_dump(by_alias=True, exclude_none=True)
        return f"{self.kind} " + ", ".join(f"{k}={'-'.join(v) if isinstance(v, (list, tuple)) else v}"
                                           for k, v in fields.items())


class LinkDown(Action):
    kind = "link-down"
    shorthand = "between"
    summary = "take a link down: nothing crosses it until link-up"
    example = "{at: 2, link-down: [h1, s1]}"
    between: NodePair

    def needs(self):
        return [Need("between", "node", n) for n in self.between] + [Need("between", "link", tuple(self.between))]

    def apply(self, run):
        run.lab.set_link(*self.between, up=False)


class LinkUp(LinkDown):
    kind = "link-up"
    summary = "bring a link back up"
    example = "{at: 4, link-up: [h1, s1]}"

    def apply(self, run):
        run.lab.set_link(*self.between, up=True)


class Rate(Action):
    kind = "rate"
    summary = "shape a link to a new rate (htb), both directions"
    example = "{at: 1, rate: {between: [h1, s1], mbit: 1}}"
    between: NodePair
    mbit: float = Field(ge=0.01, le=10000)

    def needs(self):
        return [Need("between", "node", n) for n in self.between] + [Need("between", "link", tuple(self.between))]

    def apply(self, run):
        run.lab.shape(*self.between, bw=self.mbit)


class Sysctl(Action):
    kind = "sysctl"
    summary = "change a per-host sysctl during the run"
    example = "{at: 1, sysctl: {host: h1, key: net.ipv4.tcp_abort_on_overflow, value: 1}}"
    host: NodeName
    key: SysctlKey
    value: SysctlValue

    @model_validator(mode="after")
    def _value_fits_the_key(self):
        try:
            sysctls.check_value(self.key, self.value)
        except SysctlError as e:
            raise ValueError(str(e)) from None
        return self

    def needs(self):
        return [Need("host", "host", self.host)]

    def apply(self, run):
        run.lab.set_sysctls(self.host, {self.key: sysctls.normalize(self.value)})


class Signal(Action):
    kind = "signal"
    summary = "send a signal to a guest (SIGSTOP freezes it, SIGCONT resumes it)"
    example = "{at: 3, signal: {guest: server, signal: SIGSTOP}}"
    guest: NodeName
    signal: Literal[SIGNALS]

    def needs(self):
        return [Need("guest", "guest", self.guest)]

    def apply(self, run):
        run.guests[self.guest].send_signal(getattr(signal, self.signal))


class _Policy(Action):
    """Controller actions match IPv4 traffic from one host to another (either may be left out)."""

    needs_controller = True
    from_: Optional[NodeName] = Field(None, alias="from")
    to: Optional[NodeName] = None
    seconds: Optional[int] = Field(None, ge=1, le=600)

    def needs(self):
        return [Need(f, "host", getattr(self, a)) for f, a in (("from", "from_"), ("to", "to")) if getattr(self, a)]

    def request(self, run):
        return {"src": run.addresses.get(self.from_) if self.from_ else None,
                "dst": run.addresses.get(self.to) if self.to else None, "seconds": self.seconds}


class Drop(_Policy):
    kind = "drop"
    summary = "(OpenFlow) drop matching packets, for `seconds` or until restore"
    example = "{at: 1, drop: {from: h1, to: h2, flags: syn-ack, seconds: 3}}"
    flags: Optional[Literal[TCP_FLAGS]] = None

    def apply(self, run):
        run.lab.controller.command(cmd="drop", flags=self.flags, **self.request(run))


class Meter(_Policy):
    kind = "meter"
    summary = "(OpenFlow) cap matching traffic at kbps with a meter"
    example = "{at: 1.5, meter: {from: h2, to: h1, kbps: 10000}}"
    kbps: int = Field(ge=1, le=10_000_000)

    def apply(self, run):
        run.lab.controller.command(cmd="meter", kbps=self.kbps, **self.request(run))


class Restore(Action):
    kind = "restore"
    needs_controller = True
    summary = "(OpenFlow) remove every drop and meter rule"
    example = "{at: 4, restore: {}}"

    def apply(self, run):
        run.lab.controller.command(cmd="restore")


def _kinds(base):
    for cls in base.__subclasses__():
        if "kind" in cls.__dict__:
            yield cls
        yield from _kinds(cls)


ACTIONS = {cls.kind: cls for cls in _kinds(Action)}

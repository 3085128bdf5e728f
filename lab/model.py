"""The scenario schema: every key a scenario file may hold, its type and its range. Pure (pydantic, strict).

This is the one gate every scenario (library, teacher's, student's) passes before anything is imported,
built or started: unknown keys are refused, numbers are finite and in range, booleans are booleans, names
are names. lab/scenario.py maps a refusal back to the file's line; lab/validation.py then checks the file
against the world (the topology's hosts, this kernel's counters, the guests' own flags and events).
The format is documented in docs/scenarios.md and is a contract: files users wrote keep working.
"""
import re
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, PrivateAttr, StringConstraints, Tag,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from . import expect, topology
from .errors import SysctlError
from .sysctl import CONGESTION, DEFAULT_CONGESTION, check_value, normalize
from .actions import ACTIONS
from .names import LongText, Name, NodeName, NodePair, Port, Seconds, SysctlKey, SysctlValue, Title

PROGRAMS = ("server", "client", "synflood")          # guest programs a scenario may start (guest/*.py)
SWITCHES = {"bridge": "Linux bridge (kernel speed)", "ovs": "Open vSwitch, kernel datapath",
            "ovs-user": "Open vSwitch, userspace datapath"}
MAX_GUESTS = 1100


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, populate_by_name=False,
                              hide_input_in_errors=True)


def _error(code, text, **ctx):
    # pydantic fills the template itself and knows no conversions: "{a!r}" was printed as it stands
    for name in re.findall(r"\{(\w+)!r\}", text):
        ctx[name] = repr(ctx[name])
    return PydanticCustomError(code, text.replace("!r}", "}"), ctx)


# -- topology ----------------------------------------------------------------------------------------
Number = Union[Annotated[int, Field(ge=-(10 ** 9), le=10 ** 9)], float]


class TopologySpec(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
    file: Optional[Annotated[str, StringConstraints(max_length=300, pattern=r"^[^\x00\n]*\.py$")]] = None
    args: List[Number] = Field(default_factory=list, max_length=8)
    # Names and values are checked against what the topology class declares (lab/topology.py bind()), which
    # refuses anything else (Mininet's hopts, sopts, lopts, inNamespace...) by name.
    params: Dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")], Any] = \
        Field(default_factory=dict, max_length=8)

    @property
    def ref(self):
        return topology.Ref(self.name, self.file, list(self.args), dict(self.params))

    def __str__(self):
        return str(self.ref)


def _topology(value):
    """`single,2` (the string form, as with `mn --topo`) -> the mapping form."""
    if isinstance(value, str):
        try:
            ref = topology.parse_ref(value)
        except topology.TopologyError as e:
            raise _error("topology", "{msg}", msg=str(e)) from None
        if ref.file and not ref.name:
            raise _error("topology", "{f} is a file: say which of its topologies, {f}:NAME[,ARG...] (as `mn --custom "
                         "FILE --topo NAME` does)", f=ref.file)
        return {k: v for k, v in (("name", ref.name or ""), ("file", ref.file), ("args", ref.args),
                                  ("params", ref.params)) if v not in (None, [], {})}
    return value


# -- hosts and links ---------------------------------------------------------------------------------
class HostSpec(Strict):
    sysctl: Dict[SysctlKey, SysctlValue] = Field(default_factory=dict, max_length=50)

    @field_validator("sysctl")
    @classmethod
    def _values(cls, settings):
        for key, value in settings.items():
            try:
                check_value(key, value)
            except SysctlError as e:
                raise _error("sysctl", "{msg}", msg=str(e)) from None
        return settings

    @field_validator("sysctl", mode="before")
    @classmethod
    def _none_is_empty(cls, v):
        return {} if v is None else v


class LinkSpec(Strict):
    between: NodePair
    bw: Optional[float] = Field(None, ge=0.01, le=10000, description="Mbit/s, htb")
    burst: Optional[int] = Field(None, ge=1, le=64 << 20, description="htb token bucket, bytes")
    delay: Optional[Annotated[str, StringConstraints(pattern=r"^\d{1,5}(\.\d{1,3})?(us|ms|s)$")]] = None
    loss: Optional[Annotated[str, StringConstraints(pattern=r"^(100|\d{1,2}(\.\d{1,4})?)%$")]] = None
    only_from: Optional[NodeName] = Field(None, alias="from")
    _line: int = PrivateAttr(0)

    @property
    def needs_netem(self):
        return bool(self.delay or self.loss)

    @model_validator(mode="after")
    def _from_is_an_end(self):
        if self.only_from and self.only_from not in self.between:
            raise _error("from", "from: {f!r} is not one end of {a}-{b}", f=self.only_from, a=self.between[0],
                         b=self.between[1])
        return self


# -- guests ------------------------------------------------------------------------------------------
Line = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00\n\r]*$")]
Int = Annotated[int, Field(ge=-(2 ** 53), le=2 ** 53)]
ArgName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
ArgList = Annotated[List[Union[Line, Int, float]], Field(max_length=60)]
ArgMap = Annotated[Dict[ArgName, Optional[Union[Line, bool, Int, float]]], Field(max_length=40)]
# A list of arguments ([--port, 9000]) or a mapping of flags ({port: 9000, never-read: true}).
Args = Annotated[Union[Annotated[ArgList, Tag("list")], Annotated[ArgMap, Tag("mapping")]],
                 Discriminator(lambda v: "mapping" if isinstance(v, dict) else "list")]


class GuestSpec(Strict):
    name: Name
    host: NodeName
    program: Literal[PROGRAMS]
    args: Optional[Args] = None
    start: Seconds = 0.0
    after: Optional[Name] = None
    ready: Optional[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}$")]] = None
    stop: Optional[Seconds] = None
    wait: Optional[bool] = None

    def model_post_init(self, _):
        if self.ready is None and self.program == "server":
            self.ready = "listening"
        if self.wait is None:
            self.wait = self.program != "server"

    @property
    def argv(self):
        """args as the program's command line: a mapping {port: 9000, never-read: true} -> --port 9000 --never-read;
        for the client, `mode` and `server` (for synflood `server`) are its positional arguments."""
        value = self.args
        if value is None:
            return []
        if isinstance(value, list):
            return [_text(v) for v in value]
        argv = [_text(value[p]) for p in ("mode", "server") if value.get(p) is not None]
        for flag, v in value.items():
            if flag in ("mode", "server") or v is False or v is None:
                continue
            argv += [f"--{flag}"] if v is True else [f"--{flag}", _text(v)]
        return argv


def _text(v):
    return repr(v) if isinstance(v, float) else str(v)


# -- actions -----------------------------------------------------------------------------------------
ActionUnion = Annotated[Union[tuple(Annotated[cls, Tag(kind)] for kind, cls in ACTIONS.items())],
                        Discriminator(lambda v: v.get("kind") if isinstance(v, dict) else getattr(v, "kind", None))]


class Step(Strict):
    """`{at: 2, link-down: [h1, s1]}`: a time and exactly one action kind."""
    at: Seconds
    do: ActionUnion

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data):
        if not isinstance(data, dict) or "at" not in data:
            raise _error("action", "expected {{at: SECONDS, KIND: ...}} with KIND one of {kinds}", kinds=", ".join(ACTIONS))
        kinds = [k for k in data if k != "at"]
        if len(kinds) != 1 or kinds[0] not in ACTIONS:
            raise _error("action", "expected one action kind besides 'at' (kinds: {kinds})", kinds=", ".join(ACTIONS))
        kind, payload = kinds[0], data[kinds[0]]
        action = ACTIONS[kind]
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            if not action.shorthand:
                raise _error("action", "{kind}: expected a mapping of {fields}", kind=kind,
                             fields=", ".join(f.alias or n for n, f in action.model_fields.items()) or "nothing ({})")
            payload = {action.shorthand: payload}
        return {"at": data["at"], "do": {"kind": kind, **payload}}

    @property
    def action(self):
        return self.do

    @property
    def kind(self):
        return self.do.kind


# -- sampling and checks ------------------------------------------------------------------------------
class SampleSpec(Strict):
    hosts: List[NodeName] = Field(min_length=1, max_length=50)
    interval: float = Field(0.1, ge=0.01, le=10)
    port: Optional[Port] = None


def _check(item):
    """'server: TcpExt.ListenOverflows >= 1' or {check: ..., why: ...} -> expect.Check."""
    why, since = "", ""
    if isinstance(item, dict):
        unknown = set(item) - {"check", "why", "since"}
        if unknown:
            raise _error("check", "unknown key {k} (a check is a string or {{check: ..., why: ..., since: ...}})",
                         k=sorted(unknown)[0])
        why = item.get("why") or ""
        if not isinstance(why, str) or len(why) > 1000:
            raise _error("check", "why: expected text (at most 1000 characters)")
        since = item.get("since", "")
        if since != "" and not (isinstance(since, str) and re.fullmatch(r"\d{1,2}\.\d{1,3}", since)):
            raise _error("check", "since: expected a kernel version as text, MAJOR.MINOR (e.g. \"6.15\"): the "
                         "first kernel that shows what the check looks for; older kernels leave it unjudged")
        item = item.get("check")
    if not isinstance(item, str):
        raise _error("check", "expected a check like 'server: TcpExt.ListenOverflows >= 1'")
    try:
        check = expect.parse_check(item, why)
    except expect.CheckSyntaxError as e:
        raise _error("check", "{msg}", msg=str(e)) from None
    check.since = since
    return check


CheckItem = Annotated[Any, BeforeValidator(_check)]


# -- the scenario ---------------------------------------------------------------------------------------
class Scenario(Strict):
    name: Optional[Name] = None
    title: Title
    teaches: LongText = ""
    topology: Annotated[TopologySpec, BeforeValidator(_topology)] = TopologySpec(name="single")
    switch: Literal[tuple(SWITCHES)] = "bridge"
    controller: Optional[Literal["lab"]] = None
    hosts: Dict[Union[NodeName, Literal["*"]], HostSpec] = Field(default_factory=dict, max_length=1001)
    links: List[LinkSpec] = Field(default_factory=list, max_length=200)
    guests: List[GuestSpec] = Field(min_length=1, max_length=MAX_GUESTS)
    actions: List[Step] = Field(default_factory=list, max_length=200)
    sample: Optional[SampleSpec] = None
    duration: float = Field(30.0, ge=0.1, le=600)
    expect: List[CheckItem] = Field(min_length=1, max_length=200)
    # Not in the file: where it came from, and the line of every key (for errors found later).
    _path: str = PrivateAttr("<text>")
    _lines: dict = PrivateAttr(default_factory=dict)

    @field_validator("hosts", "links", "actions", mode="before")
    @classmethod
    def _none_is_empty(cls, v, info):
        return ({} if info.field_name == "hosts" else []) if v is None else v

    @model_validator(mode="after")
    def _guests_in_order(self):
        seen = set()
        for i, g in enumerate(self.guests):
            if g.name in seen:
                raise _error("guests", "guests[{i}].name: guest {n!r} is named twice", i=i, n=g.name)
            if g.after is not None and g.after not in seen:
                raise _error("guests", "guests[{i}].after: {a!r} is not a guest listed before this one", i=i, a=g.after)
            seen.add(g.name)
            # A time at or after the end never comes: `show` would list what the run never does.
            if g.start >= self.duration:
                raise _error("guests", "guests[{i}].start: {t} s is not before the end of the run (duration: {d} s)",
                             i=i, t=f"{g.start:g}", d=f"{self.duration:g}")
            if g.stop is not None and not g.start < g.stop <= self.duration:
                raise _error("guests", "guests[{i}].stop: {t} s must come after its start ({s} s) and by the end of "
                             "the run (duration: {d} s)", i=i, t=f"{g.stop:g}", s=f"{g.start:g}", d=f"{self.duration:g}")
        for i, step in enumerate(self.actions):
            if step.at >= self.duration:
                raise _error("actions", "actions[{i}].at: {t} s is not before the end of the run (duration: {d} s)",
                             i=i, t=f"{step.at:g}", d=f"{self.duration:g}")
            if step.do.needs_controller and self.controller != "lab":
                raise _error("actions", "actions[{i}].{k}: needs the OpenFlow controller: add `controller: lab` to the "
                             "scenario", i=i, k=step.kind)
        self.actions.sort(key=lambda s: s.at)
        return self

    # -- what the rest of the lab reads ----------------------------------------------------------
    @property
    def path(self):
        return self._path

    @property
    def lines(self):
        return self._lines

    @property
    def checks(self):
        return self.expect

    def guest(self, name):
        return next(g for g in self.guests if g.name == name)

    def sysctls(self, congestion=True):
        """{host or '*': {key: value as text}}: what the scenario sets (without the congestion control when
        CONGESTION is false: lab/runner.py applies that itself)."""
        return {h: {k: normalize(v) for k, v in spec.sysctl.items() if congestion or k != CONGESTION}
                for h, spec in self.hosts.items()}

    def congestion(self, host):
        """The congestion control HOST's guests use: its own setting, the scenario's for every host, or cubic."""
        for name in (host, "*"):
            spec = self.hosts.get(name)
            if spec and CONGESTION in spec.sysctl:
                return normalize(spec.sysctl[CONGESTION])
        return DEFAULT_CONGESTION

"""The control channel's requests: one JSON object per line in, one JSON answer per line out. Pure.

Everything a request may say is declared here as a strict pydantic model per command (unknown keys refused,
no type coercion: `"2"` is not 2 and `true` is not 1), so a bad request becomes an answer naming the key and
what is allowed, never an exception in the controller. The line itself is bounded before it is parsed:
at most MAX_LINE bytes, UTF-8, JSON nesting at most MAX_DEPTH, no duplicate keys, no NaN or Infinity.

    {"cmd": "drop", "src": "10.0.0.2", "dst": "10.0.0.1", "flags": "syn-ack", "seconds": 2}
    {"cmd": "meter", "src": "10.0.0.2", "dst": "10.0.0.1", "kbps": 5000, "seconds": 3}
    {"cmd": "restore"}          {"cmd": "switches"}
Answers: {"ok": true, ...} or {"ok": false, "error": "what was wrong and what is allowed"}.
"""
import ipaddress
import json
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

MAX_LINE = 64 * 1024          # bytes in one request line, newline excluded
MAX_DEPTH = 2                 # a request is one flat object; a little room for a clear error message
SECONDS = (1, 600)            # a rule's lifetime (OpenFlow hard_timeout), whole seconds
KBPS = (1, 10_000_000)        # a meter's rate: 1 kbit/s to 10 Gbit/s
# OpenFlow tcp_flags values for the flag combinations a lesson drops (exact match).
TCP_FLAGS = {"syn": 0x002, "syn-ack": 0x012, "ack": 0x010, "rst": 0x004, "fin": 0x001}


class ProtocolError(ValueError):
    """A request that cannot be served; its text is the answer's error."""


def _ipv4(text):
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not an IPv4 address") from None


IPv4 = Annotated[str, Field(max_length=15), AfterValidator(_ipv4)]
Seconds = Annotated[int, Field(ge=SECONDS[0], le=SECONDS[1])]
Kbps = Annotated[int, Field(ge=KBPS[0], le=KBPS[1])]
Flags = Literal[tuple(TCP_FLAGS)]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Drop(Request):
    """Drop IPv4 packets (from SRC, to DST, TCP segments with exactly FLAGS), for SECONDS or until restore."""
    cmd: Literal["drop"]
    src: Optional[IPv4] = None
    dst: Optional[IPv4] = None
    flags: Optional[Flags] = None
    seconds: Optional[Seconds] = None


class Meter(Request):
    """Rate-limit matching IPv4 packets to KBPS with an OpenFlow meter, for SECONDS or until restore."""
    cmd: Literal["meter"]
    kbps: Kbps
    src: Optional[IPv4] = None
    dst: Optional[IPv4] = None
    flags: Optional[Flags] = None
    seconds: Optional[Seconds] = None


class Restore(Request):
    """Remove every rule and meter this controller added."""
    cmd: Literal["restore"]


class Switches(Request):
    """The datapath ids of the connected switches."""
    cmd: Literal["switches"]


COMMANDS = {"drop": Drop, "meter": Meter, "restore": Restore, "switches": Switches}


def nesting_depth(text):
    """The deepest nesting of JSON arrays/objects in TEXT (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_duplicates(pairs):
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise ProtocolError(f"key {key[:40]!r} given twice")
        seen.add(key)
    return dict(pairs)


def _no_constant(name):
    raise ProtocolError(f"{name} is not a number here: give an integer")


ALLOWED = {"src": "an IPv4 address such as 10.0.0.1", "dst": "an IPv4 address such as 10.0.0.1",
           "flags": f"one of {', '.join(TCP_FLAGS)}", "seconds": f"an integer {SECONDS[0]}-{SECONDS[1]}",
           "kbps": f"an integer {KBPS[0]}-{KBPS[1]}"}


def _describe(error, cmd, model):
    """One clause per problem: the key, what was wrong, what is allowed."""
    parts, errors = [], error.errors(include_url=False)
    for e in errors[:3]:
        key = str(e["loc"][0])[:40] if e["loc"] else "request"
        if e["type"] == "extra_forbidden":
            takes = ", ".join(f for f in model.model_fields if f != "cmd") or "no other keys"
            parts.append(f"{key!r}: unknown key ({cmd} takes: {takes})")
        elif e["type"] == "missing":
            parts.append(f"{key}: missing ({ALLOWED.get(key, 'required')})")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"{key}: {msg} (allowed: {ALLOWED[key]})" if key in ALLOWED else f"{key}: {msg}")
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more")
    return "; ".join(parts)


def parse(line):
    """LINE (bytes, newline stripped) -> a Request model; raises ProtocolError saying what is allowed."""
    if len(line) > MAX_LINE:
        raise ProtocolError(f"request longer than {MAX_LINE} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("request is not UTF-8 text") from None
    if not text.strip():
        raise ProtocolError("empty request: send one JSON object per line, e.g. {\"cmd\": \"switches\"}")
    if nesting_depth(text) > MAX_DEPTH:
        raise ProtocolError(f"JSON nested deeper than {MAX_DEPTH} levels: a request is one flat object")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"not JSON: {str(e)[:80]}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"expected a JSON object with a \"cmd\" key, got {type(data).__name__}")
    cmd = data.get("cmd")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        shown = repr(cmd)[:40] if "cmd" in data else "nothing"
        raise ProtocolError(f"cmd: {shown} is not a command (commands: {', '.join(COMMANDS)})")
    model = COMMANDS[cmd]
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ProtocolError(f"{cmd}: {_describe(e, cmd, model)}") from None


def answer(result=None, error=None):
    """The answer line (bytes, newline included) for a served request or an error."""
    body = {"ok": False, "error": str(error)} if error is not None else {"ok": True, **(result or {})}
    return (json.dumps(body) + "\n").encode()


def request_line(**request):
    """The line a client sends; None values mean "not given" and are left out."""
    line = (json.dumps({k: v for k, v in request.items() if v is not None}) + "\n").encode()
    if len(line) > MAX_LINE:
        raise ProtocolError(f"request longer than {MAX_LINE} bytes")
    return line

"""The guests' argument types and event declarations: what the lab derives its scenario schema from."""
import argparse
import math
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "guest"))

import client  # noqa: E402
import kernel  # noqa: E402
import server  # noqa: E402
import sockconsole  # noqa: E402
import synflood  # noqa: E402

PROGRAMS = {"server": server, "client": client, "synflood": synflood, "sockconsole": sockconsole}
FIELD_TYPES = {"int", "float", "bool", "str"}


def actions(module):
    return [a for a in module.build_parser()._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("name", PROGRAMS)
def test_every_option_is_checked_and_carries_its_schema(name):
    for action in actions(PROGRAMS[name]):
        if action.choices or isinstance(action, argparse._StoreTrueAction):
            assert getattr(action.type, "schema", None) is None, action.dest
            continue
        schema = getattr(action.type, "schema", None)
        assert schema, f"{name} {action.dest}: no type schema"
        assert schema["type"] in ("int", "float", "str")
        if schema["type"] == "str":
            assert set(schema) <= {"type", "pattern", "max_length", "placeholder"}
            re.compile(schema["pattern"])
            assert 0 < schema["max_length"] <= 4096
        else:
            assert set(schema) <= {"type", "minimum", "maximum", "placeholder"}
            assert math.isfinite(schema["minimum"]) and math.isfinite(schema["maximum"])
            assert schema["minimum"] <= schema["maximum"]
        # the default is a value the type itself accepts (argparse does not check non-string defaults)
        if action.default is not None and action.option_strings:
            assert action.type(str(action.default)) == action.default, action.dest


@pytest.mark.parametrize("name", PROGRAMS)
def test_numbers_stay_in_the_documented_ranges(name):
    limits = {"port": (1, 65535), "size": (0, 64 << 20), "chunk": (1, 64 << 20), "count": (0, 100000),
              "seconds": (0, 600), "rate": (0, 1e6), "linger": (0, 600)}
    for action in actions(PROGRAMS[name]):
        schema = getattr(action.type, "schema", {})
        if action.type.__name__ in limits if action.type else False:
            assert (schema["minimum"], schema["maximum"]) == limits[action.type.__name__], action.dest
        if schema.get("type") in ("int", "float") and not schema.get("placeholder"):
            assert schema["maximum"] <= 64 << 20, action.dest


@pytest.mark.parametrize("argv, flag", [
    (["--port", "70000"], "--port"), (["--port", "0"], "--port"), (["--port", "9000.5"], "--port"),
    (["--read-pause", "nan"], "--read-pause"), (["--duration", "inf"], "--duration"),
    (["--duration", "-1"], "--duration"), (["--duration", "601"], "--duration"),
    (["--rcvbuf", "1e9"], "--rcvbuf"), (["--rcvbuf", "1000000000"], "--rcvbuf"),
    (["--read-size", "0"], "--read-size"), (["--backlog", "1_000"], "--backlog"),
    (["--bind", "10.0.0.1; touch /tmp/x"], "--bind"), (["--so-linger", "0.5"], "--so-linger"),
    (["--reply", "x" * 5000], "--reply"), (["--service-time", "NaN"], "--service-time"),
])
def test_server_refuses_absurd_values(argv, flag, capsys):
    with pytest.raises(SystemExit):
        server.parse_args(argv)
    assert f"argument {flag}" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["write", "10.0.0.1:70000"], ["write", "10.0.0.1"], ["write", "{h1}:9000"], ["write", "host:9000"],
    ["write", "10.0.0.256:9000"], ["write", "10.0.0.1:9000", "--write-size", "1e9"],
    ["write", "10.0.0.1:9000", "--write-size", "1000000000"], ["write", "10.0.0.1:9000", "--total", "nan"],
    ["connect", "10.0.0.1:9000", "--rate", "inf"], ["connect", "10.0.0.1:9000", "--count", "100001"],
    ["connect", "10.0.0.1:9000", "--timeout", "0"], ["read", "10.0.0.1:9000", "--start-at", "1e12"],
    ["read", "10.0.0.1:9000", "--linger", "nan"], ["read", "10.0.0.1:9000", "--so-linger", "-1"],
])
def test_client_refuses_absurd_values(argv, capsys):
    with pytest.raises(SystemExit):
        client.parse_args(argv)
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["10.0.0.1:9000", "--count", "50000"], ["10.0.0.1:9000", "--rate", "0"],
                                  ["10.0.0.1:9000", "--report", "0"], ["10.0.0.1:0"]])
def test_synflood_refuses_what_would_crash_it(argv, capsys):
    with pytest.raises(SystemExit):
        synflood.parse_args(argv)


def test_linger_is_an_alias_of_keep_open():
    a = client.parse_args(["write", "10.0.0.1:9000", "--linger", "0.3"])
    b = client.parse_args(["write", "10.0.0.1:9000", "--keep-open", "0.3"])
    assert a.keep_open == b.keep_open == 0.3
    assert a.so_linger is None                   # --linger is not SO_LINGER
    (action,) = [x for x in client.build_parser()._actions if x.dest == "keep_open"]
    assert action.option_strings == ["--keep-open", "--linger"]


def test_values_scenarios_write_are_accepted():
    """The shipped files' forms: integers and floats as YAML prints them, substituted placeholders."""
    args = client.parse_args(["connect", "10.0.0.3:9000", "--count", "5", "--timeout", "20", "--watch", "0.5",
                              "--start-at", f"{kernel.monotonic() + 0.5:.6f}", "--rate", "1e3"])
    assert args.count == 5 and args.timeout == 20.0 and args.rate == 1000.0
    assert kernel.parse_hostport(args.server) == ("10.0.0.3", 9000)
    assert server.parse_args(["--port", "65535", "--rcvbuf", "67108864", "--bind", "10.0.0.1"]).port == 65535


def test_placeholder_patterns_describe_what_a_scenario_writes():
    pattern = re.compile(kernel.HOSTPORT.schema["pattern"])
    assert kernel.HOSTPORT.schema["placeholder"] == "host"
    for good in ("{h1}:9000", "{server}:1", "10.0.0.1:65535"):
        assert pattern.fullmatch(good), good
    for bad in ("{h1}:65536", "{h1}", "h1:9000", "{H1}:9000", "10.0.0.1:0", "{h1}:9000 "):
        assert not pattern.fullmatch(bad), bad
    assert kernel.CLOCK.schema == {"type": "float", "minimum": 0, "maximum": kernel.CLOCK_MAX, "placeholder": "t0"}


def check_fields(where, fields, modes=None):
    for field, spec in fields.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", field), f"{where}.{field}"
        assert isinstance(spec, list) and len(spec) in (2, 3), f"{where}.{field}"
        assert spec[0] in FIELD_TYPES and spec[1], f"{where}.{field}"
        if len(spec) == 3:
            assert spec[2] and set(spec[2]) <= set(modes or ()), f"{where}.{field}: modes {spec[2]}"


def test_common_fields_are_declared():
    check_fields("common", kernel.COMMON_FIELDS)
    assert set(kernel.COMMON_FIELDS) == {"t", "prog", "event", "local", "peer", "syscall", "result", "errno"}


@pytest.mark.parametrize("name", PROGRAMS)
def test_events_are_declared_as_plain_data(name):
    module = PROGRAMS[name]
    modes = [a for a in actions(module) if a.dest == "mode"]
    all_modes = list(modes[0].choices) if modes else []
    for event, spec in module.EVENTS.items():
        assert set(spec) == {"doc", "modes", "fields"}, event
        assert re.fullmatch(r"[a-z][a-z-]*", event)
        assert spec["modes"] is None or (all_modes and set(spec["modes"]) <= set(all_modes)), event
        check_fields(f"{name}.{event}", spec["fields"], spec["modes"] or all_modes)
        assert not set(spec["fields"]) & set(kernel.COMMON_FIELDS), f"{event} repeats a common field"
    if module.EVENTS:
        assert {"error", "summary"} <= set(module.EVENTS)
        assert {"errors", "last_errno"} <= set(module.EVENTS["summary"]["fields"])


def test_events_count_failed_calls_for_the_summary():
    import io
    import json
    out = io.StringIO()
    ev = kernel.Events("client", out)
    ev.syscall("write", "send", -1, err=BlockingIOError(11, "x"))        # EAGAIN: not an error
    ev.syscall("write", "send", -1, err=ConnectionResetError(104, "x"))
    ev.summary(reason="done")
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["errors"] == 1 and last["last_errno"] == "ECONNRESET"

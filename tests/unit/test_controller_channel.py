"""The controller's control channel without os-ken: request checking (protocol.py), bounded line reading and
the owner check on real Unix sockets (channel.py), and the event table's shape (events.py)."""
import json
import os
import select
import socket
import stat
import subprocess
import sys
import threading

import pytest

from lab.controller import events, protocol
from lab.controller.channel import (CHUNK, ChannelError, ControlChannel, LineTooLong, Owner, peer_credentials,
                                    read_lines)
from lab.runrecord import process_start_time

GOOD = [
    (b'{"cmd": "drop", "src": "10.0.0.2", "dst": "10.0.0.1", "flags": "syn-ack", "seconds": 2}',
     {"cmd": "drop", "src": "10.0.0.2", "dst": "10.0.0.1", "flags": "syn-ack", "seconds": 2}),
    (b'{"cmd": "drop"}', {"cmd": "drop", "src": None, "dst": None, "flags": None, "seconds": None}),
    (b'{"cmd": "drop", "seconds": null}', {"cmd": "drop", "src": None, "dst": None, "flags": None, "seconds": None}),
    (b'{"cmd": "meter", "kbps": 10000, "src": "10.0.0.2", "seconds": 600}',
     {"cmd": "meter", "kbps": 10000, "src": "10.0.0.2", "dst": None, "flags": None, "seconds": 600}),
    (b'{"cmd": "meter", "kbps": 10000000}',
     {"cmd": "meter", "kbps": 10_000_000, "src": None, "dst": None, "flags": None, "seconds": None}),
    (b'{"cmd": "meter", "kbps": 1, "seconds": 1}',
     {"cmd": "meter", "kbps": 1, "src": None, "dst": None, "flags": None, "seconds": 1}),
    (b'{"cmd": "restore"}', {"cmd": "restore"}),
    (b'  {"cmd": "switches"}  \r', {"cmd": "switches"}),
]

# (line, words the error must contain): each names the key and what is allowed.
BAD = [
    (b"[]", ["JSON object", "list"]),
    (b"null", ["JSON object"]),
    (b'"drop"', ["JSON object"]),
    (b"", ["empty request"]),
    (b"hello", ["not JSON"]),
    (b'{"cmd": "drop"', ["not JSON"]),
    (b"\xff\xfe{}", ["not UTF-8"]),
    (b"{}", ["cmd", "commands: drop, meter, restore, switches"]),
    (b'{"cmd": "nope"}', ["'nope'", "commands: drop, meter, restore, switches"]),
    (b'{"cmd": 1}', ["cmd", "commands:"]),
    (b'{"cmd": ["drop"]}', ["cmd", "commands:"]),
    (b'{"cmd": "drop", "seconds": 70000}', ["seconds", "1-600"]),
    (b'{"cmd": "drop", "seconds": 0}', ["seconds", "1-600"]),
    (b'{"cmd": "drop", "seconds": -5}', ["seconds", "1-600"]),
    (b'{"cmd": "drop", "seconds": 2.5}', ["seconds", "integer"]),
    (b'{"cmd": "drop", "seconds": "2"}', ["seconds", "integer"]),
    (b'{"cmd": "drop", "seconds": true}', ["seconds", "integer"]),
    (b'{"cmd": "drop", "seconds": NaN}', ["NaN"]),
    (b'{"cmd": "drop", "seconds": Infinity}', ["Infinity"]),
    (b'{"cmd": "drop", "seconds": 1e400}', ["seconds", "integer"]),
    (b'{"cmd": "meter", "kbps": 5e9}', ["kbps", "1-10000000"]),
    (b'{"cmd": "meter", "kbps": 10000001}', ["kbps", "1-10000000"]),
    (b'{"cmd": "meter", "kbps": 0}', ["kbps", "1-10000000"]),
    (b'{"cmd": "meter", "kbps": 99999999999999999999999999}', ["kbps", "1-10000000"]),
    (b'{"cmd": "meter"}', ["kbps", "missing"]),
    (b'{"cmd": "drop", "src": "banana"}', ["src", "'banana'", "IPv4"]),
    (b'{"cmd": "drop", "dst": "10.0.0.256"}', ["dst", "IPv4"]),
    (b'{"cmd": "drop", "src": "::1"}', ["src", "IPv4"]),
    (b'{"cmd": "drop", "src": "10.0.0.1; rm -rf /"}', ["src", "IPv4"]),
    (b'{"cmd": "drop", "src": 167772161}', ["src", "string"]),
    (b'{"cmd": "drop", "src": ["10.0.0.1"]}', ["src"]),
    (b'{"cmd": "drop", "flags": "urg"}', ["flags", "syn, syn-ack, ack, rst, fin"]),
    (b'{"cmd": "drop", "flags": "SYN"}', ["flags", "syn, syn-ack, ack, rst, fin"]),
    (b'{"cmd": "drop", "from": "h1"}', ["'from'", "unknown key", "drop takes: src, dst, flags, seconds"]),
    (b'{"cmd": "restore", "seconds": 1}', ["'seconds'", "unknown key", "restore takes: no other keys"]),
    (b'{"cmd": "drop", "cmd": "restore"}', ["'cmd'", "twice"]),
    (b'{"cmd": "drop", "src": {"a": {"b": 1}}}', ["nested"]),
    (b"[" * 20000 + b"]" * 20000, ["nested"]),
    (b'{"cmd": "drop", "x": "' + b"[" * 50 + b'"}', ["'x'", "unknown key"]),   # brackets in a string are text
]


@pytest.mark.parametrize("line,expected", GOOD)
def test_good_requests_parse_to_their_model(line, expected):
    assert protocol.parse(line).model_dump() == expected


@pytest.mark.parametrize("line,words", BAD, ids=[repr(b[:40]) for b, _ in BAD])
def test_bad_requests_are_refused_saying_what_is_allowed(line, words):
    with pytest.raises(protocol.ProtocolError) as e:
        protocol.parse(line)
    for word in words:
        assert word in str(e.value), (word, str(e.value))
    assert len(str(e.value)) < 400            # one line, never the request echoed back whole


def test_every_command_has_a_model_with_its_name():
    for name, model in protocol.COMMANDS.items():
        assert protocol.parse(json.dumps({"cmd": name, **({"kbps": 1} if name == "meter" else {})}).encode()).cmd == name
        assert model.model_config["strict"] and model.model_config["extra"] == "forbid"


def test_a_line_over_the_limit_is_refused_before_parsing():
    with pytest.raises(protocol.ProtocolError, match=f"longer than {protocol.MAX_LINE}"):
        protocol.parse(b'{"cmd": "restore"}' + b" " * protocol.MAX_LINE)


def test_nesting_depth_ignores_brackets_in_strings():
    assert protocol.nesting_depth('{"a": "[[[{{{"}') == 1
    assert protocol.nesting_depth('{"a": "\\"[["}') == 1
    assert protocol.nesting_depth('[[1], [[2]]]') == 3


def test_a_huge_object_is_refused_fast():
    import time
    line = ('{"cmd": "drop", ' + ",".join(f'"k{i}": 1' for i in range(6000)) + "}").encode()
    assert len(line) < protocol.MAX_LINE
    start = time.monotonic()
    with pytest.raises(protocol.ProtocolError, match="and 5997 more") as e:
        protocol.parse(line)
    assert time.monotonic() - start < 0.5
    assert len(str(e.value)) < 400


def test_request_line_leaves_out_none_and_refuses_a_giant():
    assert json.loads(protocol.request_line(cmd="drop", src=None, seconds=2)) == {"cmd": "drop", "seconds": 2}
    with pytest.raises(protocol.ProtocolError):
        protocol.request_line(cmd="drop", src="x" * protocol.MAX_LINE)


def test_answers_are_one_json_line():
    assert protocol.answer({"rule": 3}) == b'{"ok": true, "rule": 3}\n'
    assert json.loads(protocol.answer(error=protocol.ProtocolError("bad\nthing"))) == {"ok": False, "error": "bad\nthing"}


# -- reading lines with bounded memory (real sockets) --------------------------------------------------------
def test_read_lines_splits_on_newlines_across_chunks():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b'{"cmd": "restore"}\n{"cmd"' + b': "switches"}\n' + b"tail")
        a.shutdown(socket.SHUT_WR)
        assert list(read_lines(b.recv)) == [b'{"cmd": "restore"}', b'{"cmd": "switches"}', b"tail"]


def test_read_lines_stops_an_endless_line_within_its_bound():
    received = []

    def endless(n):
        received.append(n)
        return b"x" * n

    with pytest.raises(LineTooLong):
        list(read_lines(endless, limit=protocol.MAX_LINE))
    assert sum(received) <= protocol.MAX_LINE + 2 * CHUNK


def test_read_lines_refuses_a_long_line_even_with_its_newline_in_one_chunk():
    data = iter([b"x" * 300 + b"\n"])
    with pytest.raises(LineTooLong):
        list(read_lines(lambda n: next(data, b""), limit=100))


# -- the channel on real Unix sockets ------------------------------------------------------------------------
def _me():
    return Owner(os.getpid(), process_start_time(os.getpid()), os.geteuid())


@pytest.fixture
def channel(tmp_path):
    served = []

    def handler(request):
        if request.cmd == "restore":
            raise RuntimeError("the switch went away")
        served.append(request)
        return {"cmd": request.cmd}

    tmp_path.chmod(0o700)
    ch = ControlChannel(tmp_path / "trun.ctl", _me(), handler)
    ch.served = served
    threading.Thread(target=ch.serve_forever, daemon=True).start()
    yield ch
    ch.close()


def _talk(path, *lines):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(path))
        answers = []
        for line in lines:
            s.sendall(line + b"\n")
            answers.append(json.loads(next(read_lines(s.recv))))
        return answers


def _flood(sock, total, chunk=65536):
    """Send one line of up to TOTAL bytes, as a client that listens: stop when an answer can be read.
    Returns (bytes sent, the answer or None)."""
    sent, data = 0, b"x" * chunk
    sock.setblocking(False)
    while sent < total:
        readable, writable, _ = select.select([sock], [sock], [], 10)
        if readable or not writable:
            break
        try:
            sent += sock.send(data)
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.settimeout(10)
    try:
        return sent, json.loads(next(read_lines(sock.recv)))
    except (OSError, StopIteration):
        return sent, None


def test_socket_is_0600_and_removed_on_close(tmp_path):
    tmp_path.chmod(0o700)
    ch = ControlChannel(tmp_path / "t1.ctl", _me(), lambda r: {})
    st = os.lstat(ch.path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    ch.close()
    assert not ch.path.exists()


def test_every_request_is_answered_on_one_connection(channel):
    lines = [b for b, _ in BAD if b"\n" not in b and len(b) < 1000] + [b'{"cmd": "switches"}', b'{"cmd": "restore"}']
    answers = _talk(channel.path, *lines)
    assert len(answers) == len(lines)
    assert all(a["ok"] is False for a in answers[:-2])
    assert answers[-2] == {"ok": True, "cmd": "switches"}
    # A handler that fails is answered too, and the connection's thread goes on.
    assert answers[-1]["ok"] is False and "the switch went away" in answers[-1]["error"]
    assert _talk(channel.path, b'{"cmd": "drop", "seconds": 3}') == [{"ok": True, "cmd": "drop"}]
    assert [r.cmd for r in channel.served] == ["switches", "drop"]


def test_an_oversized_line_is_answered_and_the_connection_closed(channel):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(channel.path))
        sent, answer = _flood(s, 200 * 1024 * 1024)
    assert sent < 200 * 1024 * 1024, "the channel kept reading a 200 MiB line"
    assert answer and answer["ok"] is False and f"longer than {protocol.MAX_LINE}" in answer["error"]
    assert _talk(channel.path, b'{"cmd": "switches"}') == [{"ok": True, "cmd": "switches"}]


def test_peer_credentials_name_the_connecting_process(channel):
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert peer_credentials(a) == (os.getpid(), os.geteuid(), os.getegid())


def test_another_process_is_refused(channel):
    code = ("import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
            "s.sendall(b'{\"cmd\": \"switches\"}\\n'); print(s.recv(4096).decode(), end='')")
    out = subprocess.run([sys.executable, "-c", code, str(channel.path)], capture_output=True, text=True, timeout=20)
    answer = json.loads(out.stdout)
    assert answer["ok"] is False and "is not the run that started this controller" in answer["error"]
    assert channel.served == []


def test_a_reused_pid_is_not_the_owner():
    me = _me()
    assert me.refuses(os.getpid(), os.geteuid()) is None
    assert "not the run" in Owner(me.pid, me.start + 1, me.uid).refuses(os.getpid(), os.geteuid())
    assert "uid" in me.refuses(os.getpid(), me.uid + 1)


def test_unsafe_places_are_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(ChannelError, match="writable only by it"):
        ControlChannel(shared / "t.ctl", _me(), lambda r: {})
    tmp_path.chmod(0o700)
    (tmp_path / "file.ctl").write_text("not a socket")
    with pytest.raises(ChannelError, match="not a socket"):
        ControlChannel(tmp_path / "file.ctl", _me(), lambda r: {})
    with pytest.raises(ChannelError, match="longer than"):
        ControlChannel(tmp_path / ("x" * 120), _me(), lambda r: {})


def test_a_stale_socket_of_a_killed_controller_is_replaced(tmp_path):
    tmp_path.chmod(0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "t2.ctl"))
    stale.close()                              # the file stays, as after a SIGKILL
    ch = ControlChannel(tmp_path / "t2.ctl", _me(), lambda r: {"ok2": 1})
    threading.Thread(target=ch.serve_forever, daemon=True).start()
    try:
        assert _talk(ch.path, b'{"cmd": "switches"}') == [{"ok": True, "ok2": 1}]
    finally:
        ch.close()


# -- the event table --------------------------------------------------------------------------------------
def test_event_table_has_the_declared_shape():
    for fields in [events.COMMON_FIELDS] + [spec["fields"] for spec in events.EVENTS.values()]:
        for name, (kind, doc) in fields.items():
            assert kind in events.TYPES and isinstance(doc, str) and doc, name
    for name, spec in events.EVENTS.items():
        assert set(spec) == {"doc", "modes", "fields"} and spec["modes"] is None
        assert "\n" not in spec["doc"] and not set(spec["fields"]) & set(events.COMMON_FIELDS), name
    assert set(events.EVENTS) == {"switch", "rule", "restore", "port-stats", "flow-stats", "control"}


def test_event_problems_name_typos_and_wrong_types():
    ok = {"t": 1.5, "prog": "controller", "event": "rule", "kind": "drop", "rule": 1, "seconds": 2}
    assert events.problems(ok) == []
    assert events.problems({**ok, "secnds": 2}) == ["rule: undeclared field 'secnds'"]
    assert events.problems({**ok, "rule": True}) == ["rule.rule: True is not int"]
    assert events.problems({**ok, "event": "rules"}) == ["unknown event 'rules'"]

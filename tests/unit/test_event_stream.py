"""Event streams read both ways: a thread per pipe (a lesson's guests), and the one shared reader thread
(lab/pipereader.py, a storm's forked guests). Real child processes (no network needed): what they print is
what the stream must hold, in order."""
import subprocess
import sys
import threading
import time

from lab.guests import EventStream


import pytest

BOTH = pytest.mark.parametrize("shared", [False, True], ids=["thread-per-pipe", "shared-reader"])


def child(code, shared=True):
    stream = EventStream()
    # as LabNetwork.start_guest opens an exec'd guest's pipes
    stream.attach(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, errors="replace"), shared_reader=shared)
    return stream


@BOTH
def test_events_in_order_with_output_and_an_unfinished_last_line(shared):
    code = ("import json, sys\n"
            "for i in range(500): print(json.dumps({'event': 'n', 'i': i}))\n"
            "print('not json')\n"
            "sys.stderr.write('first\\nlast words')\n"
            "sys.stdout.write('{\"event\": \"tail\"}')")
    s = child(code, shared)
    assert s.wait_event("tail", 10) == {"event": "tail"}
    s.proc.wait(10)
    s.wait_closed(10)
    assert [e["i"] for e in s.events if e["event"] == "n"] == list(range(500))
    assert [e["text"] for e in s.events if e["event"] == "output"] == ["not json"]
    assert s.stderr == "first\nlast words"


@BOTH
def test_wait_event_gives_up_when_the_child_has_ended(shared):
    s = child("print('{\"event\": \"one\"}')", shared)
    assert s.wait_event("two", 30) is None       # returns at the child's end, not after 30 s
    assert s.proc.poll() == 0 and s.events == [{"event": "one"}]


@BOTH
def test_a_line_that_is_json_but_not_an_object_is_output(shared):
    s = child("print('[1, 2]'); print('7')", shared)
    s.proc.wait(10)
    s.wait_closed(10)
    assert [e["text"] for e in s.events] == ["[1, 2]", "7"]


def test_many_children_share_one_reader_thread():
    before = threading.active_count()
    streams = [child(f"print('{{\"event\": \"hi\", \"n\": {n}}}')") for n in range(60)]
    assert threading.active_count() <= before + 1
    for n, s in enumerate(streams):
        assert s.wait_event("hi", 20)["n"] == n
        s.proc.wait(10)
        s.wait_closed(10)
        assert s.proc.stdout.closed and s.proc.stderr.closed


def test_a_bad_callback_does_not_deafen_the_other_streams(capsys):
    class Broken(EventStream):
        def decorate(self, event):
            raise RuntimeError("a bug in one stream")
    broken = Broken()
    broken.attach(subprocess.Popen([sys.executable, "-c", "print('{}')"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True), shared_reader=True)
    broken.proc.wait(10)
    broken.wait_closed(10)
    assert "a bug in one stream" in capsys.readouterr().err
    s = child("print('{\"event\": \"fine\"}')")
    assert s.wait_event("fine", 10) == {"event": "fine"}
    s.proc.wait(10)
    s.wait_closed(10)


@BOTH
def test_undecodable_output_ends_the_stream_instead_of_hanging_its_waiters(shared):
    s = child("import os; os.write(1, b'\\xff\\n'); os.write(2, b'\\xff\\n')", shared)
    started = time.monotonic()
    assert s.wait_event("never", 10) is None
    s.proc.wait(10)
    s.wait_closed(10)
    assert time.monotonic() - started < 5, "a waiter waited out its timeout"
    assert [e["text"] for e in s.events] == ["\ufffd"] and s.stderr == "\ufffd\n"

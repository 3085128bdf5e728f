"""One thread that reads the pipes of many children (the guests forked for a storm), through a selector.

A thread per pipe is what lab/guests.py does for a lesson's few guests; at a 1000-client storm that is 2000
threads, and each Thread.start() waits until the new thread has run, with the GIL shared among thousands:
4.3 s of a storm's start and 4.1 s of joins at its end (cProfile, docs/benchmarks.md).
"""
import os
import selectors
import threading
import traceback


class PipeReader:
    """One thread reads every pipe given to add(), through a selector. Lines go to ON_LINE as text; ON_EOF
    runs once when the child closes the pipe. Both run on the reader thread: keep them short."""

    def __init__(self):
        self._selector = None
        self._wake = None
        self._pending = []
        self._lock = threading.Lock()
        self._thread = None

    def add(self, pipe, on_line, on_eof):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._selector = selectors.DefaultSelector()
                self._wake = os.pipe()
                os.set_blocking(self._wake[0], False)
                os.set_blocking(self._wake[1], False)
                self._selector.register(self._wake[0], selectors.EVENT_READ, None)
                self._thread = threading.Thread(target=self._run, args=(self._selector, self._wake[0]),
                                                daemon=True, name="guest-pipes")
                self._thread.start()
            self._pending.append((pipe, on_line, on_eof))
            try:
                os.write(self._wake[1], b"+")
            except BlockingIOError:
                pass                    # the pipe is full of wake-ups already: the reader will look

    def _take_pending(self, selector, wake_fd):
        try:
            while os.read(wake_fd, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            pending, self._pending = self._pending, []
        for pipe, on_line, on_eof in pending:
            try:
                os.set_blocking(pipe.fileno(), False)
                selector.register(pipe.fileno(), selectors.EVENT_READ, [pipe, on_line, on_eof, b""])
            except (OSError, ValueError, KeyError):     # a pipe closed before it was read: its end, at once
                traceback.print_exc()
                pipe.close()
                on_eof()

    def _run(self, selector, wake_fd):
        while True:
            for key, _ in selector.select():
                if key.data is None:
                    self._take_pending(selector, wake_fd)
                    continue
                try:
                    self._read(selector, key)
                except Exception:       # a bug in one stream's callback must not deafen the others
                    traceback.print_exc()
                    if key.fd in selector.get_map():
                        selector.unregister(key.fd)
                        key.data[0].close()
                        key.data[2]()

    @staticmethod
    def _read(selector, key):
        pipe, on_line, on_eof, partial = key.data
        try:
            chunk = os.read(key.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        *lines, key.data[3] = (partial + chunk).split(b"\n")
        for line in lines:
            on_line(line.decode("utf-8", "replace") + "\n")
        if not chunk:
            if key.data[3]:
                on_line(key.data[3].decode("utf-8", "replace"))
            selector.unregister(key.fd)
            pipe.close()
            on_eof()


READER = PipeReader()
# A child forked from the lab (not exec'd) must not share the parent's selector, lock or pending pipes.
os.register_at_fork(after_in_child=lambda: globals().__setitem__("READER", PipeReader()))

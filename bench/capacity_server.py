"""``streamlit run`` with the server's own clock on every interaction (bench process only).

    python bench/capacity_server.py run app.py --server.port 8501 ...   (as ``streamlit run``)

bench_capacity.py starts the app through this file instead of ``python -m streamlit``. Before
Streamlit's CLI starts, it wraps three places of the installed Streamlit (1.67, Starlette
server), in this process only; the product is not changed:

* ``Runtime.handle_backmsg``: the websocket endpoint calls it right after it read and parsed
  a frame. A ``rerun_script`` message starts an interaction: **request received**.
* ``StarletteSessionClient.write_forward_msg``: the runtime queues each ForwardMsg for the
  socket; the wrapper notes what kind of message each queued payload is (no re-encoding).
* ``StarletteSessionClient._sender``: the task that writes the queue to the socket (a copy
  of Streamlit's, plus a clock after each ``send_bytes``). The interaction ends when the
  ``session_status_changed`` (script no longer running) that follows the run chain's final
  ``script_finished`` (not ``FINISHED_EARLY_FOR_RERUN``) has been handed to the socket:
  **last message sent**.

One JSON line per interaction goes to ``AA_CAPACITY_LOG``: the session id, its request
number, ``t0``/``t1`` (``time.monotonic``, the same clock as the clients' on this machine),
``server_s``, messages, bytes, script runs, and how the run ended.

``AA_CAPACITY_PROFILE=path``: a sampling profiler thread (``sys._current_frames`` every
``AA_CAPACITY_PROFILE_HZ`` s⁻¹, default 100). SIGUSR1 starts sampling (counts reset), SIGUSR2
writes the counts to ``path`` (JSON) and stops. Threads waiting (selectors, locks, queues,
sleeps) are counted as idle, apart from the rest.
"""

from __future__ import annotations

import collections
import functools
import json
import linecache
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.runtime import Runtime
from streamlit.web.server.starlette import starlette_websocket
from streamlit.web.server.starlette.starlette_websocket import StarletteSessionClient

EARLY = ForwardMsg.FINISHED_EARLY_FOR_RERUN
ROOT = Path(__file__).resolve().parents[1]
_lock = threading.Lock()
_log = None


def _write(record: dict) -> None:
    global _log
    path = os.environ.get("AA_CAPACITY_LOG")
    if not path:
        return
    with _lock:
        if _log is None:
            _log = open(path, "a", buffering=1)  # noqa: SIM115 - kept open for the process
        _log.write(json.dumps(record) + "\n")


class _Tracker:
    """One websocket's interactions: the open one and its counters."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.seq = 0
        self.open: dict[str, Any] | None = None

    def request(self, now: float) -> None:
        if self.open is not None:  # a rerun before the last one ended: it is cut short
            self._close(self.open.get("last", now), "superseded")
        self.seq += 1
        self.open = {"t0": now, "messages": 0, "bytes": 0, "runs": 0, "final": False}

    def sent(self, kind: str, detail: Any, size: int, now: float) -> None:
        cur = self.open
        if cur is None:
            return
        cur["messages"] += 1
        cur["bytes"] += size
        cur["last"] = now
        if kind == "new_session":
            cur["runs"] += 1
        elif kind == "script_finished" and detail != EARLY:
            cur["final"] = True
            cur["finished"] = now
            cur["status"] = ForwardMsg.ScriptFinishedStatus.Name(detail)
        elif kind == "session_status_changed" and detail is False and cur["final"]:
            self._close(now, cur.get("status", "?"))

    def _close(self, end: float, status: str) -> None:
        cur, self.open = self.open, None
        assert cur is not None
        _write(
            {
                "session": self.session_id,
                "seq": self.seq,
                "t0": cur["t0"],
                "t1": end,
                "server_s": end - cur["t0"],
                "to_script_finished_s": cur.get("finished", end) - cur["t0"],
                "messages": cur["messages"],
                "bytes": cur["bytes"],
                "runs": cur["runs"],
                "status": status,
            }
        )


_original_handle_backmsg = Runtime.handle_backmsg


def _handle_backmsg(self, session_id, msg, *, client=None):
    now = time.monotonic()
    if client is not None and msg.WhichOneof("type") == "rerun_script":
        tracker = getattr(client, "_bench_tracker", None)
        if tracker is None:
            tracker = client._bench_tracker = _Tracker(session_id)
        tracker.request(now)
    return _original_handle_backmsg(self, session_id, msg, client=client)


_original_write = StarletteSessionClient.write_forward_msg


def _write_forward_msg(self, msg):
    kind = msg.WhichOneof("type")
    detail = None
    if kind == "script_finished":
        detail = msg.script_finished
    elif kind == "session_status_changed":
        detail = msg.session_status_changed.script_is_running
    tags = self.__dict__.setdefault("_bench_tags", collections.deque())
    before = self._send_queue.qsize()
    _original_write(self, msg)
    if self._send_queue.qsize() > before:  # queued (not refused): the sender takes it in order
        tags.append((kind, detail))


async def _sender(self) -> None:
    """Streamlit's ``StarletteSessionClient._sender``, with a clock after each send."""
    from starlette.websockets import WebSocketDisconnect

    tags = self.__dict__.setdefault("_bench_tags", collections.deque())
    try:
        while True:
            payload = await self._send_queue.get()
            await self._websocket.send_bytes(payload)
            now = time.monotonic()
            kind, detail = tags.popleft() if tags else ("?", None)
            tracker = getattr(self, "_bench_tracker", None)
            if tracker is not None:
                tracker.sent(kind, detail, len(payload), now)
    except WebSocketDisconnect:
        pass
    except Exception:
        starlette_websocket._LOGGER.exception("Error sending websocket payload")
    finally:
        self._closed.set()


Runtime.handle_backmsg = _handle_backmsg
StarletteSessionClient.write_forward_msg = _write_forward_msg
StarletteSessionClient._sender = _sender


# ---------------------------------------------------------------------------------------
# the sampling profiler

# a thread whose innermost Python frame is one of these is waiting, not working
_IDLE = {
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("queue.py", "get"),
    ("thread.py", "_worker"),
}


class Sampler(threading.Thread):
    def __init__(self, path: str, hz: float) -> None:
        super().__init__(daemon=True, name="bench-sampler")
        self.path, self.interval = path, 1.0 / hz
        self.on = threading.Event()
        self.reset()

    def reset(self) -> None:
        self.samples = 0
        self.busy_threads = 0
        self.self_counts: collections.Counter = collections.Counter()
        self.total_counts: collections.Counter = collections.Counter()
        self.stacks: collections.Counter = collections.Counter()
        self.by_thread: collections.Counter = collections.Counter()
        self.started = time.monotonic()

    def run(self) -> None:
        me = threading.get_ident()
        while True:
            self.on.wait()
            names = {t.ident: t.name for t in threading.enumerate()}
            frames = sys._current_frames()
            self.samples += 1
            for ident, frame in frames.items():
                if ident == me:
                    continue
                stack = []
                f = frame
                while f is not None:
                    code = f.f_code
                    stack.append(f"{_short(code.co_filename)}:{code.co_name}:{f.f_lineno}")
                    f = f.f_back
                top = stack[0]
                if _waiting(frame):
                    continue
                self.busy_threads += 1
                name = names.get(ident, "?")
                self.by_thread[_thread_kind(name)] += 1
                self.self_counts[top] += 1
                seen = set()
                for entry in stack:
                    fn = entry.rsplit(":", 1)[0]
                    if fn not in seen:
                        seen.add(fn)
                        self.total_counts[fn] += 1
                self.stacks[" <- ".join(stack[:12])] += 1
            time.sleep(self.interval)

    def dump(self) -> None:
        self.on.clear()
        out = {
            "seconds": time.monotonic() - self.started,
            "samples": self.samples,
            "busy_thread_samples": self.busy_threads,
            "by_thread": dict(self.by_thread.most_common()),
            "self": self.self_counts.most_common(60),
            "inclusive": self.total_counts.most_common(120),
            "stacks": self.stacks.most_common(40),
        }
        with open(self.path, "w") as fh:
            json.dump(out, fh, indent=1)


_BLOCKING_CALLS = ("sleep(", ".wait(", ".acquire(", ".select(", ".poll(", "get(block=True)", ".recv(")


@functools.lru_cache(maxsize=4096)
def _line_blocks(filename: str, lineno: int) -> bool:
    """Whether the line calls something that blocks in C (a sleep, a lock, a select)."""
    text = linecache.getline(filename, lineno)
    return any(call in text for call in _BLOCKING_CALLS)


def _waiting(frame) -> bool:
    """Whether the thread whose innermost Python frame is ``frame`` waits rather than works."""
    code = frame.f_code
    if (os.path.basename(code.co_filename), code.co_name) in _IDLE:
        return True
    return _line_blocks(code.co_filename, frame.f_lineno)


def _short(path: str) -> str:
    path = re.sub(r"^.*/python3\.\d+/(site-packages/)?", "", path)
    root = str(ROOT) + "/"
    return path[len(root) :] if path.startswith(root) else path


def _thread_kind(name: str) -> str:
    if name.startswith("ScriptRunner") or "scriptrunner" in name.lower():
        return "script runs"
    if name == "MainThread":
        return "event loop (main)"
    return name.split("-")[0].split("_")[0]


def _start_sampler() -> None:
    path = os.environ.get("AA_CAPACITY_PROFILE")
    if not path:
        return
    sampler = Sampler(path, float(os.environ.get("AA_CAPACITY_PROFILE_HZ", "100")))
    sampler.start()

    def start(*_):
        sampler.reset()
        sampler.on.set()

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, lambda *_: sampler.dump())


if __name__ == "__main__":
    _start_sampler()
    from audit_analytics.ui.serve import main  # as ./run app starts it: the load with the server

    sys.exit(main())

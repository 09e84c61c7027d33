"""A Streamlit session without a browser: Streamlit's own websocket protocol from Python.

What the browser's app does on the wire, as far as the server can tell:

* connects to ``ws://host:port/_stcore/stream`` with ``Sec-WebSocket-Protocol: streamlit``
  (the browser adds the XSRF token and, on a reconnect, its old session id as further entries;
  both only matter for the OIDC cookie and reconnects, which the bench does not use);
* sends a ``BackMsg.rerun_script`` (``ClientState``: the address's query string, the current
  page's script hash, the browser's time zone and locale, every widget value it holds, the
  hashes of the big elements it has cached);
* reads the ``ForwardMsg`` stream: ``new_session`` (a run starts), ``navigation`` (the page),
  ``page_info_changed`` (the app rewrote the address: sent back with the next rerun), deltas
  (the elements; widgets carry their id and, when the script set one, their value), references
  to cached elements (``ref_hash``), ``script_finished`` and ``session_status_changed``.

Widgets are kept as the browser keeps them: every widget of the last run with its value
(taken from the element when it first appears or when the script sets it), sent with every
rerun; a button or a form's submit button adds a trigger for one rerun. Nothing is rendered:
the Arrow bytes of a table are not decoded.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

EARLY = ForwardMsg.FINISHED_EARLY_FOR_RERUN
CAPTION = re.compile(r"^([\d,]+) events? · ")
WIDGETS = {
    "text_input",
    "text_area",
    "radio",
    "multiselect",
    "selectbox",
    "checkbox",
    "number_input",
    "button",
    "button_group",
    "date_input",
    "dataframe",
}
MAX_CACHED_AGE = 2  # global.maxCachedMessageAge: runs an unused cached element is kept


@dataclass
class Widget:
    id: str
    kind: str
    label: str
    key: str | None
    form_id: str
    options: list[str] = field(default_factory=list)
    disabled: bool = False
    submit: bool = False


@dataclass
class Answer:
    """What one rerun brought back."""

    seconds: float  # request sent -> the last message of the answer (session idle) received
    messages: int = 0
    bytes: int = 0
    runs: int = 0
    exceptions: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)


class StreamlitSession:
    """One session: ``await connect()``, then ``await rerun(...)`` per interaction."""

    def __init__(self, url: str, *, timezone: str = "UTC", locale: str = "en-GB") -> None:
        self.base = url.rstrip("/") + "/"
        self.ws_url = self.base.replace("http://", "ws://", 1) + "_stcore/stream"
        self.timezone, self.locale = timezone, locale
        self.ws: Any = None
        self.session_id = ""
        self.page_script_hash = ""
        self.query_string = ""
        self.widgets: dict[str, Widget] = {}  # this run's widgets by id
        self.values: dict[str, WidgetState] = {}  # the value held per widget id
        self.cache: dict[str, tuple[ForwardMsg, int]] = {}  # hash -> (message, last run used)
        self.run_no = 0
        self.requests = 0
        self.sent: list[float] = []  # time.monotonic() of every rerun request
        self._reader: asyncio.Task | None = None
        self._answer: Answer | None = None
        self._done: asyncio.Event = asyncio.Event()
        self._final = False
        self._started = 0.0
        self.closed_reason: str | None = None

    # -- connection ------------------------------------------------------------------

    async def connect(self, timeout: float = 60.0) -> Answer:
        """Open the socket and run the script once (as a page load does)."""
        import websockets

        self.ws = await websockets.connect(
            self.ws_url,
            subprotocols=["streamlit"],
            max_size=None,
            open_timeout=timeout,
            ping_interval=None,  # the server pings; the client answers (as a browser does)
        )
        self._reader = asyncio.create_task(self._read())
        return await self.rerun(timeout=timeout)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass

    # -- widgets ---------------------------------------------------------------------

    def widget(self, name: str, kind: str | None = None) -> Widget:
        """This run's widget by its key (``f_search``), else by its label (``Apply``)."""
        found = [w for w in self.widgets.values() if w.key == name and (kind is None or w.kind == kind)]
        found = found or [
            w for w in self.widgets.values() if w.label == name and (kind is None or w.kind == kind)
        ]
        if not found:
            shown = sorted(f"{w.kind}:{w.key or w.label}" for w in self.widgets.values())
            raise LookupError(f"no widget {name!r} in the last run (it had {shown})")
        return found[0]

    def has(self, name: str) -> bool:
        return any(w.key == name or w.label == name for w in self.widgets.values())

    def set_text(self, name: str, text: str) -> None:
        w = self.widget(name)
        self.values[w.id] = WidgetState(id=w.id, string_value=text)

    def set_choice(self, name: str, option: str) -> None:
        w = self.widget(name)
        if option not in w.options:
            raise LookupError(f"{name}: no option {option!r} in {w.options}")
        self.values[w.id] = WidgetState(id=w.id, string_value=option)

    def set_choices(self, name: str, options: list[str]) -> None:
        w = self.widget(name)
        state = WidgetState(id=w.id)
        state.string_array_value.data.extend(options)
        self.values[w.id] = state

    # -- one interaction -------------------------------------------------------------

    async def rerun(self, *, trigger: str | None = None, timeout: float = 60.0) -> Answer:
        """Send a rerun with every widget value held (and ``trigger``'s button pressed);
        wait until the answer is complete: the run chain's final ``script_finished`` and the
        ``session_status_changed`` saying the script no longer runs."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string
        state.page_script_hash = self.page_script_hash
        info = state.context_info
        info.timezone = self.timezone
        info.timezone_offset = 0
        info.locale = self.locale
        info.url = self.base + (f"?{self.query_string}" if self.query_string else "")
        info.is_embedded = False
        info.color_scheme = "light"
        states = dict(self.values)
        if trigger is not None:
            w = self.widget(trigger)
            states[w.id] = WidgetState(id=w.id, trigger_value=True)
        state.widget_states.widgets.extend(states.values())
        state.cached_message_hashes.extend(self.cache)
        self._answer = Answer(seconds=0.0)
        self._final = False
        self._done.clear()
        self._started = time.monotonic()
        self.sent.append(self._started)
        self.requests += 1
        await self.ws.send(msg.SerializeToString())
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no complete answer in {timeout:.0f} s ({self._answer.messages} messages)"
                + (f"; socket closed: {self.closed_reason}" if self.closed_reason else "")
            ) from None
        answer = self._answer
        if self.closed_reason and not answer.runs:
            raise ConnectionError(f"socket closed: {self.closed_reason}")
        return answer

    # -- the stream ------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                now = time.monotonic()
                msg = ForwardMsg.FromString(data)
                answer = self._answer
                if answer is not None:
                    answer.messages += 1
                    answer.bytes += len(data)
                self._handle(msg, now)
        except Exception as exc:  # the socket went away: say so to whoever waits
            self.closed_reason = f"{type(exc).__name__}: {exc}"
        else:
            self.closed_reason = "closed by the server"
        self._done.set()

    def _handle(self, msg: ForwardMsg, now: float) -> None:
        if msg.HasField("ref_hash"):  # an element the client said it holds
            cached = self.cache.get(msg.ref_hash)
            if cached is None:
                if self._answer is not None:
                    self._answer.exceptions.append(f"reference to an element not cached: {msg.ref_hash}")
                return
            self.cache[msg.ref_hash] = (cached[0], self.run_no)
            full = ForwardMsg()
            full.CopyFrom(cached[0])
            full.metadata.CopyFrom(msg.metadata)
            msg = full
        elif msg.metadata.cacheable and msg.hash:
            self.cache[msg.hash] = (msg, self.run_no)
        kind = msg.WhichOneof("type")
        answer = self._answer
        if kind == "new_session":
            self.run_no += 1
            if msg.new_session.HasField("initialize") and msg.new_session.initialize.session_id:
                self.session_id = msg.new_session.initialize.session_id
            if msg.new_session.page_script_hash:
                self.page_script_hash = msg.new_session.page_script_hash
            self.widgets = {}
            if answer is not None:
                answer.runs += 1
                answer.exceptions.clear()
                answer.alerts.clear()
                answer.headings.clear()
                answer.captions.clear()
        elif kind == "navigation":
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element)
        elif kind == "script_finished":
            if msg.script_finished != EARLY:
                self._final = True
                self._forget_stale()
        elif kind == "session_status_changed":
            if not msg.session_status_changed.script_is_running and self._final and answer is not None:
                answer.seconds = now - self._started
                self._done.set()

    def _forget_stale(self) -> None:
        """After a run: widgets not drawn are gone (their values too), and cached elements
        unused for ``MAX_CACHED_AGE`` runs are dropped (as the browser does)."""
        self.values = {k: v for k, v in self.values.items() if k in self.widgets}
        self.cache = {h: (m, r) for h, (m, r) in self.cache.items() if self.run_no - r < MAX_CACHED_AGE}

    def _element(self, el) -> None:
        kind = el.WhichOneof("type")
        answer = self._answer
        if kind == "exception" and answer is not None:
            answer.exceptions.append(f"{el.exception.type}: {el.exception.message}"[:400])
            return
        if kind == "alert" and answer is not None:
            answer.alerts.append(el.alert.body[:200])
            return
        if kind == "heading" and answer is not None:
            answer.headings.append(el.heading.body)
            return
        if kind == "markdown" and answer is not None:
            answer.captions.append(el.markdown.body)
            return
        if kind not in WIDGETS:
            return
        proto = getattr(el, kind)
        wid = getattr(proto, "id", "")
        if not wid:
            return
        key = wid.split("-", 2)[2] if wid.startswith("$$ID-") and wid.count("-") >= 2 else None
        options = list(getattr(proto, "options", [])) if kind != "button_group" else []
        widget = Widget(
            id=wid,
            kind=kind,
            label=getattr(proto, "label", ""),
            key=None if key in (None, "None") else key,
            form_id=getattr(proto, "form_id", ""),
            options=[str(o) for o in options],
            disabled=bool(getattr(proto, "disabled", False)),
            submit=bool(getattr(proto, "is_form_submitter", False)),
        )
        new = wid not in self.values
        self.widgets[wid] = widget
        value = _initial_value(kind, proto, new)
        if value is not None:
            self.values[wid] = value


def _initial_value(kind: str, proto, new: bool) -> WidgetState | None:
    """The value the browser holds for a widget just drawn: the script's value when it set
    one, the default when the widget is new, else None (keep what is held)."""
    set_value = bool(getattr(proto, "set_value", False))
    if not (set_value or new):
        return None
    state = WidgetState(id=proto.id)
    if kind in ("text_input", "text_area"):
        if set_value and proto.HasField("value"):
            state.string_value = proto.value
        elif proto.HasField("default"):
            state.string_value = proto.default
        else:
            return None
    elif kind in ("radio", "selectbox"):
        if set_value and proto.HasField("raw_value"):
            state.string_value = proto.raw_value
        elif proto.HasField("default") and 0 <= proto.default < len(proto.options):
            state.string_value = proto.options[proto.default]
        else:
            return None
    elif kind == "multiselect":
        if set_value:
            state.string_array_value.data.extend(proto.raw_values)
        else:
            state.string_array_value.data.extend(
                proto.options[i] for i in proto.default if i < len(proto.options)
            )
    elif kind == "checkbox":
        state.bool_value = proto.value if set_value else proto.default
    elif kind == "number_input":
        if set_value and proto.HasField("value"):
            state.double_value = proto.value
        elif proto.HasField("default"):
            state.double_value = proto.default
        else:
            return None
    elif kind == "button_group" and set_value:
        state.string_array_value.data.extend(proto.raw_values)
    else:  # buttons (triggers only), dates, tables: the server keeps its own value
        return None
    return state

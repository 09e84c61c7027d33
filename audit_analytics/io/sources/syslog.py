"""Linux syslog authentication lines (``/var/log/auth.log``, ``/var/log/secure``): sshd,
sudo, su, PAM, useradd/userdel/usermod, passwd.

Classic lines (RFC 3164) carry no year and no zone: the year comes from ``--year`` or the
file's modification time (a line that would then lie more than a day after that time is taken
to be from the year before, as around New Year), and the time is read as UTC; the import says
both on stderr. ISO-stamped lines (rsyslog's high-precision format) carry their own.

One sign-in attempt is one ``login`` event, as a reviewer counts them. sshd writes several lines
for one password attempt (``Invalid user X``, ``pam_unix(sshd:auth): authentication failure``,
then the verdict ``Failed password for invalid user X``): the verdict is the event, and the other
lines of that connection (same host and pid) are kept as ``system``/``log`` lines that name it
(``params.attempt``). A connection with failure lines but no verdict (the client left after
``Invalid user``; only ``maximum authentication attempts exceeded``) is one failed ``login``,
from its strongest line. ``message repeated N times: [ … ]`` is N events. Old syslog's PAM-only
sshd (``sshd(pam_unix)[pid]: authentication failure; … rhost=R user=U``) is one attempt per
failure line, and its ``session opened`` the sign-in.

>>> rows = list(SOURCE.read(iter([(1, b"Mar 11 22:55:32 web sshd[3]: Failed password for root "
...     b"from 188.124.3.41 port 32889 ssh2")]), Context("auth.log", year=2025, year_from="--year")))
>>> row = rows[0][2]
>>> row["time"].isoformat(), row["actor"], row["type"], row["action"], row["result"], row["ip"]
('2025-03-11T22:55:32+00:00', 'root', 'auth', 'login', 'failed', '188.124.3.41')
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from audit_analytics.dates import instant
from audit_analytics.io.sources.base import (
    Context,
    Lines,
    RawRow,
    Row,
    Source,
    ip_or_none,
    raw_id,
    text_lines,
)

__all__ = ["MESSAGES", "SOURCE"]

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}
CLASSIC = re.compile(
    r"^(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2}) "
    r"(?P<hms>\d\d:\d\d:\d\d) (?P<host>\S+) +(?:-- )?(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$"
)
LOOSE = re.compile(
    r"^(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2}) "
    r"(?P<hms>\d\d:\d\d:\d\d) (?P<host>\S+) +(?P<msg>\S.*)$"
)
"""A classic header before a message without a ``program:`` tag (``syslogd 1.4.1: restart.``,
``last message repeated 3 times``): a line of the log all the same, kept as a system line."""
ISO = re.compile(
    r"^(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) "
    r"(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$"
)


class Message(NamedTuple):
    """One message pattern: the program (None: any), the pattern (named groups ``user``,
    ``ip``, ``by``, ``to``, ``cmd``, ``why``), our type and action, whether it is a failure,
    the sentence, and its part in an sshd sign-in attempt: ``verdict`` (the attempt's event),
    ``evidence`` (a failure line that stands for the attempt when no verdict comes; the higher
    ``strength`` wins), ``detail`` (a line of the attempt and nothing more), or ``""`` (an
    event of its own)."""

    program: str | None
    pattern: re.Pattern[str]
    kind: str
    action: str
    failed: bool
    text: str
    part: str = ""
    strength: int = 0
    first: bool = False  # sshd writes it once per connection, at its first request


def _message(program: str | None, pattern: str, *rest: Any) -> Message:
    return Message(program, re.compile(pattern), *rest)


MESSAGES: tuple[Message, ...] = (
    _message(
        "sshd",
        r"^Accepted (?P<method>\S+) for (?P<user>.+?) from (?P<ip>\S+) port \d+",
        "auth",
        "login",
        False,
        "{user} signed in over SSH ({method}) from {ip}",
        "verdict",
    ),
    _message(
        "sshd",
        r"^Failed (?P<method>\S+) for (?:invalid user )?(?P<user>.*?) ?from (?P<ip>\S+) port \d+",
        "auth",
        "login",
        True,
        "SSH sign-in ({method}) as {user} from {ip} failed",
        "verdict",
    ),
    _message(
        "sshd",
        r"^error: maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S+) "
        r"from (?P<ip>\S+)",
        "auth",
        "login",
        True,
        "SSH sign-in as {user} from {ip} exceeded the maximum authentication attempts",
        "evidence",
        4,
    ),
    _message(
        "sshd",
        r"^Invalid user (?P<user>.*?) from (?P<ip>\S+)(?: port \d+)?\s*$",
        "auth",
        "login",
        True,
        "SSH sign-in as the unknown user {user} from {ip} failed",
        "evidence",
        3,
        True,
    ),
    _message(
        "sshd",
        r"^User (?P<user>\S+) from (?P<ip>\S+) not allowed because (?P<why>.*)$",
        "auth",
        "login",
        True,
        "SSH sign-in as {user} from {ip} was refused: not allowed because {why}",
        "evidence",
        3,
    ),
    _message(
        "sshd",
        r"^pam_unix\(sshd:auth\): authentication failure;.*?rhost=(?P<ip>\S*)(?:\s+user=(?P<user>\S+))?",
        "auth",
        "login",
        True,
        "SSH sign-in as {user} from {ip} failed (PAM)",
        "evidence",
        2,
    ),
    _message(
        "sshd",
        r"^PAM \d+ more authentication failures?;.*?rhost=(?P<ip>\S*)(?:\s+user=(?P<user>\S+))?",
        "auth",
        "login",
        True,
        "more SSH sign-in failures as {user} from {ip} (PAM)",
        "evidence",
        2,
    ),
    _message(
        "sshd",
        r"^Disconnecting:? Too many authentication failures(?: for (?:invalid user )?(?P<user>\S+))?",
        "auth",
        "login",
        True,
        "SSH sign-in as {user} failed too many times",
        "evidence",
        1,
    ),
    _message(
        "sshd",
        r"^(?:Disconnected from|Connection closed by|Connection reset by) (?:authenticating|invalid) user (?P<user>\S+) "
        r"(?P<ip>\S+) port \d+ \[preauth\]",
        "auth",
        "login",
        True,
        "SSH sign-in as {user} from {ip} ended before authenticating",
        "evidence",
        0,
    ),
    _message(
        "sshd",
        r"^(?:input_userauth_request: invalid user .*|pam_unix\(sshd:auth\): check pass; user unknown)$",
        "system",
        "log",
        False,
        "",
        "detail",
    ),
    _message(
        "sshd",
        r"^refused connect from \S+ \((?P<ip>[^)]+)\)",
        "auth",
        "connect",
        True,
        "a connection from {ip} was refused (TCP wrappers)",
    ),
    _message(
        "sshd",
        r"^Unable to negotiate with (?P<ip>\S+) port \d+: (?P<why>.*?)\s*(?:\[preauth\])?\s*$",
        "auth",
        "key_exchange",
        True,
        "SSH connection from {ip} failed: {why}",
    ),
    _message(
        "sshd",
        r"^(?:fatal: )?Timeout before authentication for (?:connection from )?(?P<ip>\S+)",
        "auth",
        "timeout",
        True,
        "SSH connection from {ip} timed out before authenticating",
    ),
    _message(
        None,
        r"^pam_unix\((?P<svc>[^:)]+):auth\): authentication failure;.*?rhost=(?P<ip>\S*)"
        r"(?:\s+user=(?P<user>\S+))?",
        "auth",
        "authenticate",
        True,
        "{svc} authentication of {user} failed (PAM)",
    ),
    _message(
        None,
        r"^PAM \d+ more authentication failures?;.*?rhost=(?P<ip>\S*)(?:\s+user=(?P<user>\S+))?",
        "auth",
        "authenticate",
        True,
        "more authentication failures for {user} from {ip} (PAM)",
    ),
    _message(
        None,
        r"^pam_tally2?\((?P<svc>[^:)]+):auth\): user (?P<user>\S+) \(\d+\) tally (?P<n>\d+), deny (?P<deny>\d+)",
        "auth",
        "lock",
        True,
        "{user} is locked out of {svc} after {n} failures (deny {deny})",
    ),
    _message(
        None,
        r"^pam_unix\((?P<svc>[^:)]+):session\): session opened for user (?P<user>[^\s(]+)"
        r"(?:\(uid=\d+\))?(?: by (?P<by>\S+?)(?:\(uid=\d+\))?)?\s*$",
        "auth",
        "session_open",
        False,
        "{svc} session opened for {user}",
    ),
    _message(
        None,
        r"^pam_unix\((?P<svc>[^:)]+):session\): session closed for user (?P<user>\S+)",
        "auth",
        "session_close",
        False,
        "{svc} session closed for {user}",
    ),
    _message(
        "sudo",
        r"^\s*(?P<user>\S+) : (?:(?P<why>[^;]*?) ; )?TTY=\S+ ; PWD=\S+ ; USER=(?P<to>\S+) ;"
        r"(?: \w+=\S+ ;)* COMMAND=(?P<cmd>.*)$",
        "auth",
        "sudo",
        False,
        "{user} ran {cmd} as {to} with sudo",
    ),
    _message(
        "su",
        r"^(?:Successful su for (?P<to>\S+) by (?P<user>\S+)|\(to (?P<to2>\S+)\) (?P<user2>\S+) on \S+)",
        "auth",
        "su",
        False,
        "{user} became {to} with su",
    ),
    _message(
        "su",
        r"^FAILED su for (?P<to>\S+) by (?P<user>\S+)",
        "auth",
        "su",
        True,
        "{user} failed to become {to} with su",
    ),
    _message(
        "klogind",
        r"^Authentication failed from (?P<ip>\S+)(?: \([^)]*\))?:? ?(?P<why>.*)$",
        "auth",
        "login",
        True,
        "Kerberos sign-in (klogind) from {ip} failed",
    ),
    _message(
        "ftpd",
        r"^ANONYMOUS FTP LOGIN FROM (?P<ip>[^\s,]+),? *(?:\((?P<user>[^)\s]+)\))?",
        "auth",
        "login",
        False,
        "anonymous FTP sign-in as {user} from {ip}",
    ),
    _message(
        "useradd",
        r"^new user: name=(?P<to>[^,]+),",
        "user",
        "create",
        False,
        "the account {to} was created",
    ),
    _message(
        "userdel",
        r"^delete user '(?P<to>[^']+)'",
        "user",
        "delete",
        False,
        "the account {to} was deleted",
    ),
    _message(
        None,
        r"^(?:add|adding user) '?(?P<to>[^' ]+)'? to (?:group|shadow group) '?(?P<group>[^' ]+)'?",
        "user",
        "add_member",
        False,
        "{to} was added to the group {group}",
    ),
    _message(
        "passwd",
        r"^pam_unix\(passwd:chauthtok\): password changed for (?P<to>\S+)",
        "auth",
        "password_change",
        False,
        "the password of {to} was changed",
    ),
)
"""Message patterns -> (type, action, failed); any other line is a ``system``/``log`` event."""

OLD_PAM = re.compile(r"^(?P<svc>[\w.-]+)\(pam_unix\)$")
"""Old syslog's PAM lines name the program ``sshd(pam_unix)``, ``login(pam_unix)``, …"""

OLD_PAM_MESSAGES: tuple[Message, ...] = (
    _message(
        None,
        r"^authentication failure;.*?rhost=(?P<ip>\S*)(?:\s+user=(?P<user>\S+))?",
        "auth",
        "login",
        True,
        "{svc} sign-in as {user} from {ip} failed (PAM)",
    ),
    _message(
        None,
        r"^session opened for user (?P<user>[^\s(]+)(?:\(uid=\d+\))?(?: by (?P<by>\S+?)?(?:\(uid=\d+\))?)?\s*$",
        "auth",
        "login",
        False,
        "{user} signed in ({svc}, PAM)",
    ),
    _message(
        None,
        r"^session closed for user (?P<user>\S+)",
        "auth",
        "logout",
        False,
        "{user} signed out ({svc}, PAM)",
    ),
)
"""Old PAM lines of a sign-in service: each failure is one attempt, a session opened its
sign-in (old sshd wrote no ``Accepted`` line). For ``su(pam_unix)`` the su tables below apply."""

OLD_PAM_SU: tuple[Message, ...] = (
    _message(
        None,
        r"^authentication failure;.*?(?:\s+user=(?P<to>\S+))?\s*$",
        "auth",
        "su",
        True,
        "su to {to} failed (PAM)",
    ),
    _message(
        None,
        r"^session opened for user (?P<to>[^\s(]+)(?:\(uid=\d+\))?(?: by (?P<user>[^\s(]+)?(?:\(uid=\d+\))?)?\s*$",
        "auth",
        "su",
        False,
        "{user} became {to} with su",
    ),
)

_SUDO_FAILED = re.compile(r"incorrect password|NOT in sudoers|not allowed|authentication failure", re.I)
_REPEATED = re.compile(r"^message repeated (?P<n>\d+) times: \[ ?(?P<msg>.*?) ?\]\s*$")
MAX_REPEATS = 100_000
"""The most events one ``message repeated N times`` line becomes (syslog daemons fold a burst
between flushes, seconds apart; a larger N is a damaged or forged line, rejected)."""
_LAST_REPEATED = re.compile(r"^last message repeated (?P<n>\d+) times?\s*$")
_SESSION_GAP = timedelta(hours=1)
"""A pid whose next line comes more than an hour later is another connection (so is one that
writes ``Invalid user`` a second time: sshd writes it at a connection's first request)."""


def _when_classic(match: re.Match[str], context: Context) -> datetime:
    year = context.year or datetime.now(UTC).year
    hour, minute, second = (int(x) for x in match["hms"].split(":"))
    when = datetime(year, _MONTHS[match["mon"]], int(match["day"]), hour, minute, second, tzinfo=UTC)
    if (
        context.modified is not None
        and context.year_from != "--year"
        and when > context.modified + timedelta(days=1)
    ):
        when = when.replace(year=year - 1)  # a December line in a file written in January
    return when


def _fill(text: str, values: dict[str, Any]) -> str:
    return text.format_map(
        {k: (v if v else "an unknown user" if k == "user" else "?") for k, v in values.items()}
    )


def _plain(prog: str, host: str, msg: str, when: datetime | str) -> Row:
    return {
        "time": when,
        "type": "system",
        "action": "log",
        "target": host,
        "result": "done",
        "description": (f"{prog}: {msg}" if prog else msg)[:2000],
    }


def map_line(prog: str, host: str, msg: str, when: datetime | str) -> tuple[Row, Message | None]:
    """A message as our row, and the pattern that read it (None: a plain ``system`` line)."""
    msg = msg.strip()
    old = OLD_PAM.match(prog)
    table: tuple[Message, ...] = MESSAGES
    extra: dict[str, Any] = {}
    if old is not None:
        extra["svc"] = old["svc"]
        table = OLD_PAM_SU if old["svc"] == "su" else OLD_PAM_MESSAGES
    elif prog.startswith("sshd"):  # sshd-session, sshd-auth (OpenSSH 9.8+)
        prog = "sshd"
    for message in table:
        if message.program is not None and prog != message.program:
            continue
        found = message.pattern.search(msg)
        if found is None:
            continue
        if message.part == "detail":
            return _plain(prog, host, msg, when), message
        values = extra | {k: v for k, v in found.groupdict().items()}
        values["user"] = values.get("user") or values.pop("user2", None)
        values["to"] = values.get("to") or values.pop("to2", None)
        values.pop("user2", None)
        values.pop("to2", None)
        failed = message.failed
        if prog == "sudo" and values.get("why") and _SUDO_FAILED.search(values["why"] or ""):
            failed = True
        user = values.get("user")
        user = user.strip() if isinstance(user, str) else user
        by = values.get("by")
        if message.action == "session_open" and by and not by.startswith("("):
            # "session opened for user root by alice": alice acted on root
            values["to"], user = user, by
        actor = user if user and user not in ("?", "(unknown)") else None
        target = values.get("to") or values.get("cmd") or host
        sentence = _fill(message.text, dict(values)) + f" on {host}"
        row: Row = {
            "time": when,
            "actor": actor,
            "type": message.kind,
            "action": message.action,
            "target": target,
            "result": "failed" if failed else "done",
            "ip": ip_or_none(values.get("ip")),
            "description": sentence,
            "error": values.get("why") if failed else None,
        }
        return row, message
    return _plain(prog, host, msg, when), None


@dataclass
class _Held:
    """A line read: its event, and how it would read as a plain line of an attempt."""

    number: int
    text: str
    row: Row
    message: Message | None
    line: tuple[str, str, str]  # program, host, message: for the plain twin, made when needed

    @property
    def plain(self) -> Row:
        prog, host, msg = self.line
        return _plain(prog, host, msg, self.row["time"]) | {
            "id": self.row["id"],
            "params": self.row["params"],
        }

    @property
    def strength(self) -> int:
        """How strongly the line says the attempt failed; -1: a detail line, never the attempt."""
        message = self.message
        return message.strength if message is not None and message.part == "evidence" else -1


@dataclass
class _Connection:
    """The lines of one sshd connection (host and pid) so far."""

    last: datetime
    verdict: str | None = None  # id of its newest verdict
    opened: bool = False  # it had the line sshd writes at a connection's first request
    held: list[_Held] = field(default_factory=list)


def _folded(held: _Held, attempt: str | None) -> Row:
    row = dict(held.plain)
    if attempt is not None:
        row["params"] = dict(row.get("params") or {}) | {"attempt": attempt}
        row["description"] = f"{row['description']} (a line of the sign-in attempt {attempt})"[:2000]
    return row


class _Attempts:
    """sshd's connections with lines waiting for their verdict: one attempt, one event."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], _Connection] = {}
        self.seen = 0

    def take(self, key: tuple[str, str] | None, at: datetime, held: _Held) -> Iterator[tuple[int, str, Row]]:
        message = held.message
        part = message.part if message is not None else ""
        if key is None or part not in ("verdict", "evidence", "detail"):
            if part == "detail":
                yield held.number, held.text, held.plain
            else:
                yield held.number, held.text, held.row
            return
        connection = self.open.get(key)
        if connection is not None and (
            at - connection.last > _SESSION_GAP
            # a second "Invalid user" (or one after a verdict): the pid serves another connection
            or (message is not None and message.first and (connection.opened or connection.verdict))
        ):
            yield from self._close(key)
            connection = None
        if connection is None:
            connection = self.open[key] = _Connection(at)
        connection.last = max(connection.last, at)
        connection.opened = connection.opened or (message is not None and message.first)
        if part == "verdict":
            connection.verdict = held.row["id"]
            for waiting in connection.held:
                yield waiting.number, waiting.text, _folded(waiting, connection.verdict)
            connection.held.clear()
            yield held.number, held.text, held.row
        elif connection.verdict is not None:
            yield held.number, held.text, _folded(held, connection.verdict)
        else:
            connection.held.append(held)
        self.seen += 1
        if self.seen % 1024 == 0:  # connections silent for an hour are over
            for stale in [k for k, c in self.open.items() if at - c.last > _SESSION_GAP]:
                yield from self._close(stale)

    def _close(self, key: tuple[str, str]) -> Iterator[tuple[int, str, Row]]:
        connection = self.open.pop(key)
        evidence = [h for h in connection.held if h.strength >= 0]
        attempt = max(evidence, key=lambda h: h.strength) if evidence else None  # the first of the strongest
        for held in connection.held:
            if held is attempt:
                yield held.number, held.text, held.row
            else:
                yield held.number, held.text, _folded(held, attempt.row["id"] if attempt else None)

    def close_all(self) -> Iterator[tuple[int, str, Row]]:
        for key in list(self.open):
            yield from self._close(key)


def _read(lines: Lines, context: Context) -> Iterator[RawRow]:
    previous, repeat = "", 0
    said = False
    attempts = _Attempts()
    last: tuple[str, str, str | None, str] | None = None  # program, host, pid, message
    body = ""
    for number, text, why in text_lines(lines):
        if why is not None or text is None:
            yield number, text or "", None, why or "unreadable line"
            continue
        match = CLASSIC.match(text) or LOOSE.match(text)
        when: datetime | str
        if match is not None:
            when = _when_classic(match, context)
            at = when
            if not said:
                said = True
                source = context.year_from or "the clock"
                hint = "" if source == "--year" else " (use --year to set it)"
                context.note(
                    f"syslog lines have no year: took {context.year or datetime.now(UTC).year} from "
                    f"{source}{hint}; times read as UTC"
                )
        else:
            match = ISO.match(text)
            if match is None:
                yield (
                    number,
                    text[:65_536],
                    None,
                    "not a syslog line (expected 'Mon DD HH:MM:SS host program[pid]: message')",
                )
                continue
            when = match["iso"]
            at = instant(when) or datetime.min.replace(tzinfo=UTC)
        # identical lines (a burst in one second) are distinct events: number the repeats
        repeat = repeat + 1 if text == previous else 0
        previous = text
        stamp = when.isoformat() if isinstance(when, datetime) else when
        groups = match.groupdict()
        prog, host, pid = groups.get("prog") or "", match["host"], groups.get("pid")
        msg = match["msg"].strip()
        folded = _REPEATED.match(msg)
        if folded is None and not prog and last is not None and last[1] == host:
            # sysklogd: "last message repeated N times" is the line before, N more times
            folded = _LAST_REPEATED.match(msg)
            if folded is not None:
                prog, pid, body = last[0], last[2], last[3]
        copies = [(msg, "")]
        if folded is not None and int(folded["n"]) > MAX_REPEATS:
            yield (
                number,
                text[:65_536],
                None,
                (
                    f"says the message was repeated {int(folded['n']):,} times: more than {MAX_REPEATS:,} "
                    "events from one line is not believed; not imported"
                ),
            )
            continue
        if folded is not None and int(folded["n"]) == 0:
            folded = None  # repeated 0 times: the line itself, as written
        if folded is not None:
            body = folded.groupdict().get("msg") or body
            # the first copy keeps the line's id
            copies = [(body, f"|{k}" if k else "") for k in range(int(folded["n"]))]
        elif prog:
            last = (prog, host, pid, msg)
        params = {"source": "linux.syslog", "host": host, "program": prog, "pid": pid, "line": text}
        connection = (host, pid) if pid and prog.startswith("sshd") and not OLD_PAM.match(prog) else None
        for body, copy in copies:
            row, message = map_line(prog, host, body, when)
            row["id"] = raw_id("syslog", f"{stamp}|{text}|{repeat}{copy}")
            row["params"] = dict(params, repeated=int(folded["n"])) if folded is not None else params
            held = _Held(number, text, row, message, (prog, host, msg))
            for line, raw, event in attempts.take(connection, at, held):
                yield line, raw, event, None
    for line, raw, event in attempts.close_all():
        yield line, raw, event, None


def _sniff(head: list[str]) -> bool:
    if not head:
        return False
    hits = sum(1 for line in head if CLASSIC.match(line) or ISO.match(line))
    return hits * 2 > len(head)


SOURCE = Source(
    name="syslog",
    title="Linux syslog auth lines (sshd, sudo, su, PAM)",
    shape="lines",
    detected_by="most of the first lines read 'Mon DD HH:MM:SS host program[pid]: message' "
    "(or an ISO time first)",
    fields=(
        ("id", "hash of the time, the line and its repeat number"),
        ("time", "the line's stamp; the year from --year or the file's time; read as UTC"),
        (
            "actor",
            "the user the message names (Accepted/Failed … for USER, sudo's user, su's by, who opened a session)",
        ),
        ("type", "message pattern (table); others system"),
        (
            "action",
            "message pattern (table): login (one per sign-in attempt), logout, sudo, su, session_open, …; "
            "others log",
        ),
        ("target", "the account switched to or created, sudo's command, else the host"),
        ("result", "failed for Failed/Invalid user/authentication failure/FAILED su/…"),
        ("ip", "from IP / rhost="),
        ("description", "one sentence from the message, with the host"),
        (
            "params",
            "{source, host, program, pid, line}; repeated: N for 'message repeated N times'; "
            "attempt: the id of the sign-in attempt a line belongs to",
        ),
    ),
    sniff=_sniff,
    read=_read,
    caveats="One sign-in attempt is one login event. sshd writes several lines for one attempt "
    "('Invalid user X', 'pam_unix(sshd:auth): authentication failure', then the verdict 'Failed "
    "password for invalid user X'): the verdict is the event and the connection's other lines "
    "(same host and pid) are system/log lines naming it (params.attempt); a connection with "
    "failure lines and no verdict is one failed login, from its strongest line (maximum attempts "
    "exceeded, then Invalid user or not allowed, then PAM's failure, then too many failures, "
    "then a client leaving before authenticating); sshd writes 'Invalid user' at a connection's "
    "first request, so a second one on the same pid is another connection. 'message repeated N "
    "times: [ … ]' (and sysklogd's 'last message repeated N times') is N events. Old syslog's PAM-only lines (sshd(pam_unix), login(pam_unix)): each authentication "
    "failure is one attempt, a session opened the sign-in, a session closed the sign-out. "
    "Identical lines are told apart by their repeat number, so an overlapping file adds nothing "
    "only when its repeats are whole.",
    actions={
        **{
            f"{m.program or 'any program'}: {m.text}" + (" (failed)" if m.failed else ""): (m.kind, m.action)
            for m in MESSAGES
            if m.part != "detail"
        },
        **{
            f"PROGRAM(pam_unix): {m.text}" + (" (failed)" if m.failed else ""): (m.kind, m.action)
            for m in (*OLD_PAM_MESSAGES, *OLD_PAM_SU)
        },
    },
)

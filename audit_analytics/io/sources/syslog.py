"""Linux syslog authentication lines (``/var/log/auth.log``, ``/var/log/secure``): sshd,
sudo, su, PAM, useradd/userdel/usermod, passwd.

Classic lines (RFC 3164) carry no year and no zone: the year comes from ``--year`` or the
file's modification time (a line that would then lie more than a day after that time is taken
to be from the year before, as around New Year), and the time is read as UTC; the import says
both on stderr. ISO-stamped lines (rsyslog's high-precision format) carry their own.

>>> rows = list(SOURCE.read(iter([(1, b"Mar 11 22:55:32 web sshd[3]: Failed password for root "
...     b"from 188.124.3.41 port 32889 ssh2")]), Context("auth.log", year=2025, year_from="--year")))
>>> row = rows[0][2]
>>> row["time"].isoformat(), row["actor"], row["type"], row["action"], row["result"], row["ip"]
('2025-03-11T22:55:32+00:00', 'root', 'auth', 'login', 'failed', '188.124.3.41')
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

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
    r"(?P<hms>\d\d:\d\d:\d\d) (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$"
)
ISO = re.compile(
    r"^(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) "
    r"(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$"
)

# (program or None for any, pattern, type, action, failed, what the sentence says)
# named groups: user, ip, by, to, cmd, why
MESSAGES: tuple[tuple[str | None, re.Pattern[str], str, str, bool, str], ...] = tuple(
    (prog, re.compile(pattern), kind, action, failed, text)
    for prog, pattern, kind, action, failed, text in (
        (
            "sshd",
            r"^Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<ip>\S+) port \d+",
            "auth",
            "login",
            False,
            "{user} signed in over SSH ({method}) from {ip}",
        ),
        (
            "sshd",
            r"^Failed (?P<method>\S+) for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+) port \d+",
            "auth",
            "login",
            True,
            "SSH sign-in ({method}) as {user} from {ip} failed",
        ),
        (
            "sshd",
            r"^Invalid user (?P<user>.*?) from (?P<ip>\S+)(?: port \d+)?\s*$",
            "auth",
            "login",
            True,
            "SSH sign-in as the unknown user {user} from {ip} failed",
        ),
        (
            "sshd",
            r"^(?:Disconnected from|Connection closed by|Connection reset by) (?:authenticating|invalid) user (?P<user>\S+) "
            r"(?P<ip>\S+) port \d+ \[preauth\]",
            "auth",
            "login",
            True,
            "SSH sign-in as {user} from {ip} ended before authenticating",
        ),
        (
            "sshd",
            r"^User (?P<user>\S+) from (?P<ip>\S+) not allowed because (?P<why>.*)$",
            "auth",
            "login",
            True,
            "SSH sign-in as {user} from {ip} was refused: not allowed because {why}",
        ),
        (
            "sshd",
            r"^refused connect from \S+ \((?P<ip>[^)]+)\)",
            "auth",
            "connect",
            True,
            "a connection from {ip} was refused (TCP wrappers)",
        ),
        (
            "sshd",
            r"^error: maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S+) "
            r"from (?P<ip>\S+)",
            "auth",
            "max_attempts",
            True,
            "SSH sign-in as {user} from {ip} exceeded the maximum authentication attempts",
        ),
        (
            "sshd",
            r"^Unable to negotiate with (?P<ip>\S+) port \d+: (?P<why>.*?)\s*(?:\[preauth\])?\s*$",
            "auth",
            "key_exchange",
            True,
            "SSH connection from {ip} failed: {why}",
        ),
        (
            "sshd",
            r"^(?:fatal: )?Timeout before authentication for (?:connection from )?(?P<ip>\S+)",
            "auth",
            "timeout",
            True,
            "SSH connection from {ip} timed out before authenticating",
        ),
        (
            None,
            r"^pam_unix\((?P<svc>[^:)]+):auth\): authentication failure;.*?rhost=(?P<ip>\S*)"
            r"(?:\s+user=(?P<user>\S+))?",
            "auth",
            "authenticate",
            True,
            "{svc} authentication of {user} failed (PAM)",
        ),
        (
            None,
            r"^PAM \d+ more authentication failures?;.*?rhost=(?P<ip>\S*)(?:\s+user=(?P<user>\S+))?",
            "auth",
            "authenticate",
            True,
            "more authentication failures for {user} from {ip} (PAM)",
        ),
        (
            None,
            r"^pam_tally2?\((?P<svc>[^:)]+):auth\): user (?P<user>\S+) \(\d+\) tally (?P<n>\d+), deny (?P<deny>\d+)",
            "auth",
            "lock",
            True,
            "{user} is locked out of {svc} after {n} failures (deny {deny})",
        ),
        (
            None,
            r"^pam_unix\((?P<svc>[^:)]+):session\): session opened for user (?P<user>[^\s(]+)"
            r"(?:\(uid=\d+\))?(?: by (?P<by>\S+?)(?:\(uid=\d+\))?)?\s*$",
            "auth",
            "session_open",
            False,
            "{svc} session opened for {user}",
        ),
        (
            None,
            r"^pam_unix\((?P<svc>[^:)]+):session\): session closed for user (?P<user>\S+)",
            "auth",
            "session_close",
            False,
            "{svc} session closed for {user}",
        ),
        (
            "sudo",
            r"^\s*(?P<user>\S+) : (?:(?P<why>[^;]*?) ; )?TTY=\S+ ; PWD=\S+ ; USER=(?P<to>\S+) ;"
            r"(?: \w+=\S+ ;)* COMMAND=(?P<cmd>.*)$",
            "auth",
            "sudo",
            False,
            "{user} ran {cmd} as {to} with sudo",
        ),
        (
            "su",
            r"^(?:Successful su for (?P<to>\S+) by (?P<user>\S+)|\(to (?P<to2>\S+)\) (?P<user2>\S+) on \S+)",
            "auth",
            "su",
            False,
            "{user} became {to} with su",
        ),
        (
            "su",
            r"^FAILED su for (?P<to>\S+) by (?P<user>\S+)",
            "auth",
            "su",
            True,
            "{user} failed to become {to} with su",
        ),
        (
            "useradd",
            r"^new user: name=(?P<to>[^,]+),",
            "user",
            "create",
            False,
            "the account {to} was created",
        ),
        (
            "userdel",
            r"^delete user '(?P<to>[^']+)'",
            "user",
            "delete",
            False,
            "the account {to} was deleted",
        ),
        (
            None,
            r"^(?:add|adding user) '?(?P<to>[^' ]+)'? to (?:group|shadow group) '?(?P<group>[^' ]+)'?",
            "user",
            "add_member",
            False,
            "{to} was added to the group {group}",
        ),
        (
            "passwd",
            r"^pam_unix\(passwd:chauthtok\): password changed for (?P<to>\S+)",
            "auth",
            "password_change",
            False,
            "the password of {to} was changed",
        ),
    )
)
"""Message patterns -> (type, action, failed); any other line is a ``system``/``log`` event."""

_SUDO_FAILED = re.compile(r"incorrect password|NOT in sudoers|not allowed|authentication failure", re.I)


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


def map_line(match: re.Match[str], when: datetime | str) -> Row:
    prog, msg = match["prog"], match["msg"].strip()
    if prog.startswith("sshd"):  # sshd-session, sshd-auth (OpenSSH 9.8+)
        prog = "sshd"
    for wanted, pattern, kind, action, failed, text in MESSAGES:
        if wanted is not None and prog != wanted:
            continue
        found = pattern.search(msg)
        if found is None:
            continue
        values = {k: v for k, v in found.groupdict().items()}
        values["user"] = values.get("user") or values.pop("user2", None)
        values["to"] = values.get("to") or values.pop("to2", None)
        values.pop("user2", None)
        values.pop("to2", None)
        if prog == "sudo" and values.get("why") and _SUDO_FAILED.search(values["why"] or ""):
            failed = True
        user = values.get("user")
        by = values.get("by")
        if by and not by.startswith("("):  # "session opened for user root by alice": alice acted on root
            values["to"], user = user, by
        actor = user if user and user not in ("?", "(unknown)") else None
        target = values.get("to") or values.get("cmd") or match["host"]
        sentence = _fill(text, dict(values)) + f" on {match['host']}"
        return {
            "time": when,
            "actor": actor,
            "type": kind,
            "action": action,
            "target": target,
            "result": "failed" if failed else "done",
            "ip": ip_or_none(values.get("ip")),
            "description": sentence,
            "error": values.get("why") if failed else None,
        }
    return {
        "time": when,
        "type": "system",
        "action": "log",
        "target": match["host"],
        "result": "done",
        "description": f"{prog}: {msg}"[:2000],
    }


def _read(lines: Lines, context: Context) -> Iterator[RawRow]:
    previous, repeat = "", 0
    said = False
    for number, text, why in text_lines(lines):
        if why is not None or text is None:
            yield number, text or "", None, why or "unreadable line"
            continue
        match = CLASSIC.match(text)
        when: datetime | str
        if match is not None:
            when = _when_classic(match, context)
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
        # identical lines (a burst in one second) are distinct events: number the repeats
        repeat = repeat + 1 if text == previous else 0
        previous = text
        row = map_line(match, when)
        stamp = when.isoformat() if isinstance(when, datetime) else when
        row["id"] = raw_id("syslog", f"{stamp}|{text}|{repeat}")
        row["params"] = {
            "source": "linux.syslog",
            "host": match["host"],
            "program": match["prog"],
            "pid": match["pid"],
            "line": text,
        }
        yield number, text, row, None


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
        ("action", "message pattern (table): login, authenticate, sudo, su, session_open, …; others log"),
        ("target", "the account switched to or created, sudo's command, else the host"),
        ("result", "failed for Failed/Invalid user/authentication failure/FAILED su/…"),
        ("ip", "from IP / rhost="),
        ("description", "one sentence from the message, with the host"),
        ("params", "{source, host, program, pid, line}"),
    ),
    sniff=_sniff,
    read=_read,
    caveats="sshd logs 'Invalid user X' and then 'Failed password for invalid user X' for one "
    "attempt: both are failures, as sshd's own brute-force tools count them. Identical lines are "
    "told apart by their repeat number, so an overlapping file adds nothing only when its "
    "repeats are whole.",
    actions={
        f"{p or 'any program'}: {t}" + (" (failed)" if f else ""): (k, a) for p, _, k, a, f, t in MESSAGES
    },
)

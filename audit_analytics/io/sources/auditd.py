"""Linux auditd (``/var/log/audit/audit.log``): ``type=USER_LOGIN msg=audit(EPOCH.MS:SERIAL): …``.

Records sharing ``(EPOCH.MS:SERIAL)`` are one event (SYSCALL + EXECVE + PATH + PROCTITLE …):
they become one row, named after the most telling record type. Records of one event are
written together; the reader holds at most :data:`OPEN_EVENTS` events open, so a huge file
streams. Hex-encoded values (``acct=28696E76…``) are decoded.

>>> rows = list(SOURCE.read(iter([(1, b"type=USER_LOGIN msg=audit(1492896301.818:19955): pid=1 uid=0 "
...     b"auid=4294967295 ses=4294967295 msg='op=login acct=\\"root\\" exe=\\"/usr/sbin/sshd\\" "
...     b"hostname=? addr=179.38.151.221 terminal=sshd res=failed'")]), Context("audit.log")))
>>> row = rows[0][2]
>>> row["actor"], row["type"], row["action"], row["result"], row["ip"]
('root', 'auth', 'login', 'failed', '179.38.151.221')
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime

from audit_analytics.io.sources.base import (
    ActionRule,
    Context,
    Lines,
    RawRow,
    Row,
    Source,
    ip_or_none,
    raw_id,
    snake,
    text_lines,
)

__all__ = ["ACTIONS", "OPEN_EVENTS", "SOURCE", "parse_fields"]

OPEN_EVENTS = 1_000

ACTIONS: dict[str, ActionRule] = {
    "USER_LOGIN": ("auth", "login"),
    "USER_LOGOUT": ("auth", "logout"),
    "USER_AUTH": ("auth", "authenticate"),
    "USER_ACCT": ("auth", "authorize"),
    "USER_ERR": ("auth", "error"),
    "USER_START": ("auth", "session_open"),
    "USER_END": ("auth", "session_close"),
    "CRED_ACQ": ("auth", "credential_acquire"),
    "CRED_DISP": ("auth", "credential_dispose"),
    "CRED_REFR": ("auth", "credential_refresh"),
    "USER_CHAUTHTOK": ("auth", "password_change"),
    "USER_CMD": ("auth", "sudo"),
    # the SELinux role a session takes (PAM at every sign-in, newrole): no grant; the
    # administrator's role changes are ROLE_ASSIGN/REMOVE/MODIFY
    "USER_ROLE_CHANGE": ("auth", "select_role"),
    "ROLE_ASSIGN": ("user", "assign_role"),
    "ROLE_REMOVE": ("user", "unassign_role"),
    "ROLE_MODIFY": ("user", "role_update"),
    "ADD_USER": ("user", "create"),
    "DEL_USER": ("user", "delete"),
    "USER_MGMT": ("user", "update"),
    "ADD_GROUP": ("organization", "create"),
    "DEL_GROUP": ("organization", "delete"),
    "GRP_MGMT": ("organization", "add_member"),
    "GRP_CHAUTHTOK": ("organization", "update"),
    "CHGRP_ID": ("organization", "update"),
    "CHUSER_ID": ("user", "update"),
    "CONFIG_CHANGE": ("audit", "configure"),
    "DAEMON_START": ("audit", "enable"),
    "DAEMON_END": ("audit", "disable"),
    "DAEMON_ABORT": ("audit", "abort"),
    "DAEMON_CONFIG": ("audit", "configure"),
    "SERVICE_START": ("service", "start"),
    "SERVICE_STOP": ("service", "stop"),
    "SYSTEM_BOOT": ("system", "boot"),
    "SYSTEM_SHUTDOWN": ("system", "shutdown"),
    "SYSTEM_RUNLEVEL": ("system", "runlevel"),
    "NETFILTER_CFG": ("infra", "configure"),
    "ANOM_PROMISCUOUS": ("infra", "promiscuous"),
    "AVC": ("system", "access_check"),
    "SELINUX_ERR": ("system", "access_check"),
    "MAC_POLICY_LOAD": ("system", "policy_change"),
    "EXECVE": ("system", "execute"),
    "SYSCALL": ("system", "syscall"),
    "USER_AVC": ("system", "access_check"),
    "ANOM_ABEND": ("system", "crash"),
    "KERN_MODULE": ("system", "module_load"),
}
"""Record type -> (type, action); other types become ``system`` and their name in snake case."""

_MANAGED = frozenset(
    {"ADD_USER", "DEL_USER", "USER_MGMT", "ADD_GROUP", "DEL_GROUP", "GRP_MGMT", "USER_CHAUTHTOK", "CHUSER_ID"}
)
"""Record types whose acct/id is the account acted on, not the one acting."""

# which record names the event when several share a serial (first listed wins)
_PRIORITY = (*[t for t in ACTIONS if t not in ("SYSCALL", "EXECVE")], "EXECVE", "SYSCALL")
_LINE = re.compile(
    r"^(?:node=(?P<node>\S+) )?type=(?P<type>\S+) msg=audit\((?P<stamp>\d+\.\d+):(?P<serial>\d+)\):?\s?(?P<rest>.*)$"
)
_PAIR = re.compile(r"""(\w[\w-]*)=("[^"]*"|'[^']*'|\S+)""")
_HEX_FIELDS = frozenset(
    {"acct", "cmd", "proctitle", "exe", "comm", "name", "cwd", "data", "a0", "a1", "a2", "a3"}
)
_UNSET = frozenset({"4294967295", "-1", "?", "(null)", "unset", ""})


def _decode_hex(key: str, value: str) -> str:
    if key not in _HEX_FIELDS or len(value) % 2 or not value or not re.fullmatch(r"[0-9A-Fa-f]+", value):
        return value
    if key.startswith("a") and len(key) == 2:  # syscall arguments are numbers, not text
        return value
    try:
        return bytes.fromhex(value).replace(b"\x00", b" ").decode("utf-8", "backslashreplace").strip()
    except ValueError:
        return value


def parse_fields(text: str) -> dict[str, str]:
    """``key=value`` pairs, quoted or hex-encoded, the inner ``msg='…'`` merged in.

    Older kernels wrote a PAM record's end in parentheses, separated by commas; the
    punctuation is not part of the values:

    >>> parse_fields("pid=1 msg='op=login acct=726F6F74 res=failed'")
    {'pid': '1', 'op': 'login', 'acct': 'root', 'res': 'failed'}
    >>> parse_fields('exe="/usr/sbin/crond" (hostname=?, addr=?, terminal=cron res=success)')
    {'exe': '/usr/sbin/crond', 'hostname': '?', 'addr': '?', 'terminal': 'cron', 'res': 'success'}
    """
    out: dict[str, str] = {}
    for key, value in _PAIR.findall(text):
        if key == "msg" and value[:1] == "'":
            out.update(parse_fields(value[1:-1]))
            continue
        if value[:1] in ('"', "'"):
            out[key] = value[1:-1]
            continue
        if value.endswith(","):  # "hostname=?, addr=?" (an SELinux range's commas are inside)
            value = value[:-1]
        if value.endswith(")") and "(" not in value:  # "(… res=success)"
            value = value[:-1]
        out[key] = _decode_hex(key, value)
    return out


def _event(key: str, node: str | None, records: list[tuple[str, str, dict[str, str]]]) -> Row:
    types = [t for t, _, _ in records]
    main = next((t for t in _PRIORITY if t in types), types[0])
    fields: dict[str, str] = {}
    for _kind, _, values in sorted(records, key=lambda r: r[0] == main):  # the naming record wins
        fields.update(values)
    rule = ACTIONS.get(main)
    our_type, action = rule if rule else ("system", snake(main)[:100])
    if main == "SYSCALL" and "EXECVE" in types:
        action = "execute"
    res = fields.get("res", "").lower()
    failed = (
        res in ("failed", "fail", "0", "no")
        or fields.get("success") == "no"
        or fields.get("apparmor", "").upper() == "DENIED"
        or " denied " in f" {fields.get('seresult', '')} {fields.get('avc', '')} ".lower()
        or (main in ("AVC", "USER_AVC") and "denied" in " ".join(r for _, r, _ in records).lower()[:2000])
    )
    acct = fields.get("acct")
    managed = main in _MANAGED  # acct/id name the account changed; the login uid changed it
    actor = None if managed or acct is None or acct in _UNSET or acct.startswith("(") else acct
    if actor is None and (managed or acct is None):  # a numeric user: the id, else the login uid
        keys = ("auid",) if managed else ("id", "auid")
        uid = next((fields[k] for k in keys if k in fields and fields[k] not in _UNSET), None)
        actor = f"uid:{uid}" if uid is not None else None
    exe = fields.get("exe") or fields.get("comm")
    target = fields.get("cmd") if main == "USER_CMD" else None
    if managed:
        target = fields.get("acct") or fields.get("id")
    host = fields.get("hostname") if fields.get("hostname") not in _UNSET else None
    target = target or node or host or exe
    who = actor or ("an invalid user" if acct and acct.startswith("(") else "someone")
    where = fields.get("addr") if fields.get("addr") not in _UNSET else None
    op = fields.get("op") or fields.get("operation") or ""
    text = (
        f"{who}: {main}"
        + (f" {op}" if op else "")
        + (f" ran {fields['cmd']}" if main == "USER_CMD" and fields.get("cmd") else "")
        + (f" via {exe}" if exe else "")
        + (f" from {where}" if where else "")
    )
    text += " failed" if failed else ""
    when = datetime.fromtimestamp(float(key.split(":", 1)[0]), tz=UTC)
    return {
        "time": when,
        "actor": actor,
        "type": our_type,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip_or_none(fields.get("addr")),
        "request_id": f"{key}",
        "description": text,
        "error": (fields.get("apparmor") or res or fields.get("success")) if failed else None,
        "params": {
            "source": "linux.auditd",
            "source_action": main,
            "node": node,
            "serial": key,
            "records": [{"type": t, **v} for t, _, v in records],
            "lines": [r for _, r, _ in records],
        },
    }


def _read(lines: Lines, context: Context) -> Iterator[RawRow]:
    # (node, stamp:serial) -> (first line, records)
    open_events: OrderedDict[tuple[str | None, str], tuple[int, list[tuple[str, str, dict[str, str]]]]] = (
        OrderedDict()
    )

    def close(key: tuple[str | None, str]) -> RawRow:
        first, records = open_events.pop(key)
        raw = "\n".join(r for _, r, _ in records)
        row = _event(key[1], key[0], records)
        row["id"] = raw_id("auditd", f"{key[0]}|{raw}")
        return first, raw, row, None

    for number, text, why in text_lines(lines):
        if why is not None or text is None:
            yield number, text or "", None, why or "unreadable line"
            continue
        match = _LINE.match(text)
        if match is None:
            yield (
                number,
                text[:65_536],
                None,
                "not an auditd record (expected 'type=… msg=audit(EPOCH:SERIAL): …')",
            )
            continue
        key = (match["node"], f"{match['stamp']}:{match['serial']}")
        if key in open_events:
            open_events[key][1].append((match["type"], text, parse_fields(match["rest"])))
            continue
        open_events[key] = (number, [(match["type"], text, parse_fields(match["rest"]))])
        if match["type"] == "EOE" or len(open_events) > OPEN_EVENTS:
            yield close(next(iter(open_events)))
    while open_events:
        yield close(next(iter(open_events)))


def _sniff(head: list[str]) -> bool:
    hits = sum(1 for line in head if _LINE.match(line))
    return bool(head) and hits * 2 > len(head)


SOURCE = Source(
    name="auditd",
    title="Linux auditd",
    shape="lines",
    detected_by="most of the first lines read 'type=… msg=audit(EPOCH.MS:SERIAL): …'",
    fields=(
        ("id", "hash of the event's records"),
        ("time", "EPOCH.MS of msg=audit(…) (UTC)"),
        (
            "actor",
            "acct (hex decoded; '(invalid user)' stays empty), else uid:<id>, else uid:<auid>; "
            "for account changes (ADD_USER, GRP_MGMT, …) uid:<auid>",
        ),
        ("type", "the naming record's type (table); others system"),
        ("action", "the naming record's type (table): USER_LOGIN -> login, ADD_USER -> create, …"),
        ("target", "USER_CMD's cmd; the account of ADD_USER/DEL_USER; node or hostname; exe"),
        ("result", "failed for res=failed, success=no, AppArmor/SELinux DENIED"),
        ("ip", "addr"),
        ("request_id", "EPOCH.MS:SERIAL"),
        (
            "params",
            "{source, source_action: the naming record's type, node, serial, records: every record's fields, lines}",
        ),
    ),
    sniff=_sniff,
    read=_read,
    caveats="Records of one event that lie more than 1,000 events apart in the file become two "
    "events. SYSCALL records without a naming record become system/syscall events.",
    actions=ACTIONS,
)

"""Identity providers and office suites: the Okta System Log, Google Workspace activity
(Admin SDK Reports API) and the Microsoft 365 unified audit log (Management Activity API).

>>> row = map_okta({"uuid": "u1", "published": "2024-01-01T00:00:00.000Z", "eventType": "user.session.start",
...     "actor": {"alternateId": "ann@example.com", "type": "User"}, "client": {"ipAddress": "192.0.2.1"},
...     "outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}})
>>> row["id"], row["type"], row["action"], row["result"], row["error"]
('okta-u1', 'auth', 'login', 'failed', 'INVALID_CREDENTIALS')
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from audit_analytics.io.sources.base import (
    ActionRule,
    Context,
    Lines,
    RawRow,
    Row,
    Source,
    as_dict,
    as_list,
    cut,
    dig,
    email_of,
    first_text,
    ip_or_none,
    json_records,
    keys_of,
    mapped,
    raw_id,
    rule_for,
    snake,
    stable_id,
)

__all__ = [
    "M365_ACTIONS",
    "M365_SOURCE",
    "OKTA_ACTIONS",
    "OKTA_SOURCE",
    "WORKSPACE_ACTIONS",
    "WORKSPACE_SOURCE",
    "map_m365",
    "map_okta",
]

# ---------------------------------------------------------------------------------------
# Okta

OKTA_ACTIONS: dict[str, ActionRule] = {
    "user.session.start": ("auth", "login"),
    "user.authentication.sso": ("auth", "sso"),
    "user.authentication.auth_via_mfa": ("auth", "mfa"),
    "user.authentication.verify": ("auth", "login"),
    "user.session.end": ("auth", "logout"),
    "user.account.lock": ("auth", "lock"),
    "user.account.unlock": ("auth", "unlock"),
    "user.account.update_password": ("auth", "password_change"),
    "user.account.reset_password": ("auth", "password_reset"),
    "user.mfa.factor.activate": ("auth", "enable"),
    "user.mfa.factor.deactivate": ("auth", "disable"),
    "user.account.privilege.grant": ("user", "grant"),
    "user.account.privilege.revoke": ("user", "revoke"),
    "group.privilege.grant": ("organization", "grant"),
    "group.privilege.revoke": ("organization", "revoke"),
    "group.user_membership.add": ("organization", "add_member"),
    "group.user_membership.remove": ("organization", "revoke"),
    "application.user_membership.add": ("user", "grant"),
    "application.user_membership.remove": ("user", "revoke"),
    "application.user_membership.change_username": ("user", "update"),
    "user.lifecycle.create": ("user", "create"),
    "user.lifecycle.activate": ("user", "enable"),
    "user.lifecycle.reactivate": ("user", "enable"),
    "user.lifecycle.deactivate": ("user", "disable"),
    "user.lifecycle.suspend": ("user", "disable"),
    "user.lifecycle.unsuspend": ("user", "enable"),
    "user.lifecycle.delete.initiated": ("user", "delete"),
    "system.api_token.create": ("secret", "create"),
    "system.api_token.revoke": ("secret", "delete"),
    "policy.lifecycle.update": ("organization", "policy_change"),
    "policy.rule.update": ("organization", "policy_change"),
}
"""eventType -> (type, action); others by their prefix (user.session -> auth, group -> organization, …)."""

_OKTA_PREFIXES = {
    "user.session": "auth",
    "user.authentication": "auth",
    "user.mfa": "auth",
    "user.account": "user",
    "user.lifecycle": "user",
    "group": "organization",
    "application": "service",
    "app.": "service",
    "policy": "organization",
    "system.api_token": "secret",
    "system": "system",
    "security": "monitoring",
    "zone": "infra",
    "org": "organization",
}


def map_okta(event: dict[str, Any]) -> Row:
    kind_name = first_text(event.get("eventType"))
    if kind_name is None:
        raise ValueError("not an Okta System Log event: no eventType")
    kind, action = rule_for(kind_name, OKTA_ACTIONS, _OKTA_PREFIXES)
    actor = as_dict(event.get("actor"))
    who = first_text(actor.get("alternateId"), actor.get("displayName"), actor.get("id"))
    outcome = first_text(dig(event, "outcome", "result")) or ""
    failed = outcome.upper() in ("FAILURE", "DENY")
    reason = first_text(dig(event, "outcome", "reason"))
    targets = as_list(event.get("target"))
    target = None
    for item in targets:
        if isinstance(item, dict):
            target = first_text(item.get("alternateId"), item.get("displayName"), item.get("id"))
            if target:
                break
    display = first_text(event.get("displayMessage")) or kind_name
    text = f"{who or 'an unknown actor'}: {display}" + (f" ({target})" if target else "")
    text += f"; {outcome.lower()}" + (f": {reason}" if reason else "") if failed else ""
    own = first_text(event.get("uuid"))
    return {
        "id": stable_id("okta", own) if own else raw_id("okta", json.dumps(event, sort_keys=True)),
        "time": event.get("published"),
        "actor": who,
        "email": email_of(who),
        "type": kind,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip_or_none(dig(event, "client", "ipAddress")),
        "request_id": first_text(
            dig(event, "debugContext", "debugData", "requestId"), dig(event, "transaction", "id")
        ),
        "description": text,
        "error": (reason or outcome) if failed else None,
        "params": {"source": "okta.systemlog", "source_action": kind_name, "record": event},
    }


def _okta_sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    return {"eventType", "published"} <= keys and ("uuid" in keys or "actor" in keys)


OKTA_SOURCE = Source(
    name="okta",
    title="Okta System Log",
    shape="json",
    detected_by="events with eventType and published (and uuid or actor)",
    fields=(
        ("id", "okta-<uuid>"),
        ("time", "published"),
        ("actor", "actor.alternateId (else displayName, id)"),
        ("email", "the actor when it is an address"),
        ("type", "eventType (table), else its prefix (user.session -> auth, group -> organization)"),
        ("action", "eventType (table: user.session.start -> login, group.user_membership.add -> add_member)"),
        ("target", "target[0].alternateId (else displayName, id)"),
        ("result", "failed for outcome.result FAILURE or DENY"),
        ("ip", "client.ipAddress"),
        ("request_id", "debugContext.debugData.requestId, else transaction.id"),
        ("error", "outcome.reason"),
        ("params", "{source, source_action: eventType, record}"),
    ),
    sniff=_okta_sniff,
    read=lambda lines, context: mapped(json_records(lines), map_okta),
    actions=OKTA_ACTIONS,
)

# ---------------------------------------------------------------------------------------
# Google Workspace

WORKSPACE_ACTIONS: dict[str, ActionRule] = {
    "login_success": ("auth", "login"),
    "login_failure": ("auth", "login"),
    "login_challenge": ("auth", "challenge"),
    "login_verification": ("auth", "mfa"),
    "logout": ("auth", "logout"),
    "suspicious_login": ("auth", "login"),
    "password_edit": ("auth", "password_change"),
    "CHANGE_PASSWORD": ("auth", "password_change"),
    "GRANT_ADMIN_PRIVILEGE": ("user", "grant"),
    "REVOKE_ADMIN_PRIVILEGE": ("user", "revoke"),
    "ASSIGN_ROLE": ("user", "assign_role"),
    "UNASSIGN_ROLE": ("user", "unassign_role"),
    "CREATE_ROLE": ("user", "role_update"),
    "ADD_PRIVILEGE": ("user", "role_update"),
    "REMOVE_PRIVILEGE": ("user", "role_update"),
    "CREATE_USER": ("user", "create"),
    "DELETE_USER": ("user", "delete"),
    "SUSPEND_USER": ("user", "disable"),
    "UNSUSPEND_USER": ("user", "enable"),
    "ADD_GROUP_MEMBER": ("organization", "add_member"),
    "REMOVE_GROUP_MEMBER": ("organization", "revoke"),
    "UPDATE_GROUP_MEMBER": ("organization", "member_role_update"),
    "CREATE_GROUP": ("organization", "create"),
    "DELETE_GROUP": ("organization", "delete"),
    "CHANGE_APPLICATION_SETTING": ("organization", "configure"),
    "TOGGLE_SERVICE_ENABLED": ("organization", "configure"),
    "ENFORCE_STRONG_AUTHENTICATION": ("auth", "policy_change"),
}
"""events[].name -> (type, action); others: the application's type and the name's verb."""

_WORKSPACE_APPS = {
    "login": "auth",
    "admin": "organization",
    "token": "secret",
    "saml": "auth",
    "drive": "system",
}
_WORKSPACE_TARGETS = (
    "USER_EMAIL",
    "GROUP_EMAIL",
    "ROLE_NAME",
    "APPLICATION_NAME",
    "doc_title",
    "DOMAIN_NAME",
)


def _parameters(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in event.get("parameters") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            for key in ("value", "boolValue", "intValue", "multiValue"):
                if key in item:
                    out[item["name"]] = item[key]
                    break
    return out


def _workspace_rows(activity: dict[str, Any]) -> list[Row]:
    app = first_text(dig(activity, "id", "applicationName")) or ""
    when = dig(activity, "id", "time")
    unique = first_text(dig(activity, "id", "uniqueQualifier"))
    if when is None:
        raise ValueError("id.time: missing")
    events = activity.get("events")
    if not isinstance(events, list) or not events:
        raise ValueError("not a Workspace activity: no events")
    who = first_text(dig(activity, "actor", "email"), dig(activity, "actor", "profileId"))
    rows = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise ValueError(f"events[{index}] is not an object")
        name = first_text(event.get("name")) or "unknown"
        kind, action = rule_for(
            name, WORKSPACE_ACTIONS, {}, default_type=_WORKSPACE_APPS.get(app, "system"), split=""
        )
        params = _parameters(event)
        failed = name in ("login_failure",) or "fail" in name.lower()
        target = next((str(params[k]) for k in _WORKSPACE_TARGETS if params.get(k)), None)
        if target is None and action == "login":
            target = app or None
        text = f"{who or 'an unknown actor'}: {app} {name.lower().replace('_', ' ')}" + (
            f" ({target})" if target else ""
        )
        if params.get("ROLE_NAME") and target != params["ROLE_NAME"]:
            text += f", role {params['ROLE_NAME']}"
        own = f"{unique}-{index}" if unique else None
        rows.append(
            {
                "id": stable_id("gws", own)
                if own
                else raw_id("gws", json.dumps([activity, index], sort_keys=True)),
                "time": when,
                "actor": who,
                "email": email_of(who),
                "type": kind,
                "action": action,
                "target": target,
                "result": "failed" if failed else "done",
                "ip": ip_or_none(activity.get("ipAddress")),
                "request_id": unique,
                "description": text,
                "error": first_text(params.get("login_failure_type")) if failed else None,
                "params": {
                    "source": "google.workspace",
                    "source_action": f"{app}.{name}",
                    "record": activity,
                    "event": index,
                },
            }
        )
    return rows


def _workspace_read(lines: Lines, context: Context) -> Iterator[RawRow]:
    for number, raw, obj, why in json_records(lines):
        if why is not None or not isinstance(obj, dict):
            yield number, raw, None, why or "a JSON value where an activity object was expected"
            continue
        try:
            rows = _workspace_rows(obj)
        except ValueError as exc:
            yield number, cut(raw), None, str(exc)
            continue
        for row in rows:
            yield number, raw, row, None


def _workspace_sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    return (
        obj.get("kind") == "admin#reports#activity"
        if "kind" in keys
        else ("events" in keys and isinstance(dig(obj, "id", "applicationName"), str))
    )


WORKSPACE_SOURCE = Source(
    name="workspace",
    title="Google Workspace activity (Reports API)",
    shape="json",
    detected_by="activities with kind admin#reports#activity (or id.applicationName and events)",
    fields=(
        ("id", "gws-<id.uniqueQualifier>-<index of the event>"),
        ("time", "id.time"),
        ("actor", "actor.email (else profileId)"),
        ("email", "actor.email"),
        ("type", "events[].name (table), else id.applicationName (login -> auth, admin -> organization)"),
        (
            "action",
            "events[].name (table: login_failure -> login, ASSIGN_ROLE -> assign_role), else its verb",
        ),
        ("target", "parameter USER_EMAIL, GROUP_EMAIL, ROLE_NAME, …"),
        ("result", "failed for login_failure and other names with 'fail'"),
        ("ip", "ipAddress"),
        ("request_id", "id.uniqueQualifier"),
        ("error", "parameter login_failure_type"),
        ("params", "{source, source_action: application.name, record, event: its index}"),
    ),
    sniff=_workspace_sniff,
    read=_workspace_read,
    caveats="An activity holding several events becomes one row per event.",
    actions=WORKSPACE_ACTIONS,
)

# ---------------------------------------------------------------------------------------
# Microsoft 365

M365_ACTIONS: dict[str, ActionRule] = {
    "UserLoggedIn": ("auth", "login"),
    "UserLoginFailed": ("auth", "login"),
    "Add member to role.": ("user", "add_role"),
    "Remove member from role.": ("user", "remove_role"),
    "Add member to group.": ("organization", "add_member"),
    "Remove member from group.": ("organization", "revoke"),
    "Add user.": ("user", "create"),
    "Delete user.": ("user", "delete"),
    "Update user.": ("user", "update"),
    "Change user password.": ("auth", "password_change"),
    "Reset user password.": ("auth", "password_reset"),
    "Add-MailboxPermission": ("user", "grant"),
    "Remove-MailboxPermission": ("user", "revoke"),
    "Add-RoleGroupMember": ("organization", "add_member"),
    "Remove-RoleGroupMember": ("organization", "revoke"),
    "New-ManagementRoleAssignment": ("user", "assign_role"),
    "Set-AdminAuditLogConfig": ("audit", "configure"),
    "New-InboxRule": ("organization", "create"),
    "Set-InboxRule": ("organization", "update"),
    "FileAccessed": ("system", "read"),
    "FileDownloaded": ("system", "download"),
}
"""Operation -> (type, action); others: the workload's type and the verb (Set-… -> update)."""

_M365_WORKLOADS = {
    "azureactivedirectory": "user",
    "exchange": "organization",
    "sharepoint": "system",
    "onedrive": "system",
    "microsoftteams": "organization",
    "securitycompliancecenter": "monitoring",
}
_M365_OK = frozenset({"succeeded", "success", "true", "partiallysucceeded"})


def map_m365(record: dict[str, Any]) -> Row:
    operation = first_text(record.get("Operation"))
    if operation is None:
        raise ValueError("not a unified audit log record: no Operation")
    workload = (first_text(record.get("Workload")) or "").lower()
    kind, action = rule_for(
        operation, M365_ACTIONS, {}, default_type=_M365_WORKLOADS.get(workload, "system"), split=""
    )
    if operation not in M365_ACTIONS and "-" in operation:  # an Exchange cmdlet: Set-MailboxPlan
        action = rule_for(snake(operation.split("-", 1)[0]), {}, {})[1]
    status = first_text(record.get("ResultStatus")) or ""
    failed = operation == "UserLoginFailed" or (status != "" and status.lower() not in _M365_OK)
    who = first_text(record.get("UserId"), record.get("UserKey"))
    target = first_text(record.get("ObjectId"))
    text = f"{who or 'an unknown user'}: {record.get('Workload', '')} {operation}" + (
        f" on {target}" if target else ""
    )
    text += f"; result {status}" if failed and status else ""
    own = first_text(record.get("Id"))
    return {
        "id": stable_id("m365", own) if own else raw_id("m365", json.dumps(record, sort_keys=True)),
        "time": record.get("CreationTime"),
        "actor": who,
        "email": email_of(who),
        "type": kind,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip_or_none(
            first_text(record.get("ClientIP"), record.get("ActorIpAddress"), record.get("ClientIPAddress"))
        ),
        "request_id": own,
        "description": text,
        "error": first_text(record.get("LogonError"), status) if failed else None,
        "params": {
            "source": "m365.unified",
            "source_action": f"{record.get('Workload', '')} {operation}",
            "record": record,
        },
    }


def _m365_sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    return {"CreationTime", "Operation"} <= keys and ("Workload" in keys or "RecordType" in keys)


M365_SOURCE = Source(
    name="m365",
    title="Microsoft 365 unified audit log",
    shape="json",
    detected_by="records with CreationTime and Operation (and Workload or RecordType)",
    fields=(
        ("id", "m365-<Id>"),
        ("time", "CreationTime (UTC)"),
        ("actor", "UserId (else UserKey)"),
        ("email", "UserId when it is an address"),
        ("type", "Operation (table), else Workload (AzureActiveDirectory -> user, Exchange -> organization)"),
        ("action", "Operation (table: UserLoggedIn -> login), else the cmdlet's verb (Set- -> update)"),
        ("target", "ObjectId"),
        ("result", "failed for UserLoginFailed or a ResultStatus other than Succeeded/Success/True"),
        ("ip", "ClientIP (port removed) / ActorIpAddress"),
        ("request_id", "Id"),
        ("error", "LogonError, else ResultStatus"),
        ("params", "{source, source_action: Workload Operation, record}"),
    ),
    sniff=_m365_sniff,
    read=lambda lines, context: mapped(json_records(lines), map_m365),
    actions=M365_ACTIONS,
)

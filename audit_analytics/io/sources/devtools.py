"""Code hosting: the GitHub audit log (organisation or enterprise export as JSON or CSV, and
the streaming shape, one JSON event per line) and GitLab (the ``audit_json.log`` audit
events, and sign-in requests of ``production_json.log``, where GitLab records failed sign-ins).

>>> row = map_github({"@timestamp": 1700000000000, "_document_id": "d1", "action": "org.update_member",
...     "actor": "ann", "user": "bob", "org": "acme", "permission": "admin", "old_permission": "read"})
>>> row["id"], row["type"], row["action"], row["target"]
('gh-d1', 'organization', 'member_role_update', 'bob')
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
    as_list,
    csv_records,
    dig,
    email_of,
    first_text,
    ip_or_none,
    json_records,
    keys_of,
    mapped,
    raw_id,
    rule_for,
    stable_id,
)

__all__ = [
    "GITHUB_ACTIONS",
    "GITHUB_CSV_SOURCE",
    "GITHUB_SOURCE",
    "GITLAB_ACTIONS",
    "GITLAB_SOURCE",
    "map_github",
    "map_gitlab",
]

# ---------------------------------------------------------------------------------------
# GitHub

GITHUB_ACTIONS: dict[str, ActionRule] = {
    "user.login": ("auth", "login"),
    "user.failed_login": ("auth", "login"),
    "user.logout": ("auth", "logout"),
    "user.two_factor_requested": ("auth", "mfa"),
    "two_factor_authentication.enabled": ("auth", "enable"),
    "two_factor_authentication.disabled": ("auth", "disable"),
    "org.add_member": ("organization", "add_member"),
    "org.remove_member": ("organization", "revoke"),
    "org.update_member": ("organization", "member_role_update"),
    "org.invite_member": ("organization", "invite"),
    "org.add_billing_manager": ("organization", "grant"),
    "org.remove_billing_manager": ("organization", "revoke"),
    "org.update_default_repository_permission": ("organization", "permission_change"),
    "org.update_member_repository_creation_permission": ("organization", "permission_change"),
    "business.add_admin": ("organization", "grant"),
    "business.remove_admin": ("organization", "revoke"),
    "team.add_member": ("organization", "add_member"),
    "team.remove_member": ("organization", "revoke"),
    "team.promote_maintainer": ("organization", "member_role_update"),
    "team.demote_maintainer": ("organization", "member_role_update"),
    "team.add_repository": ("organization", "grant"),
    "team.remove_repository": ("organization", "revoke"),
    "team.update_repository_permission": ("organization", "permission_change"),
    "repo.add_member": ("organization", "add_member"),
    "repo.remove_member": ("organization", "revoke"),
    "repo.update_member": ("organization", "member_role_update"),
    "repo.access": ("service", "visibility_change"),
    "repo.create": ("service", "create"),
    "repo.destroy": ("service", "delete"),
    "repo.archived": ("service", "archive"),
    "protected_branch.destroy": ("service", "delete"),
    "protected_branch.policy_override": ("service", "policy_override"),
    "oauth_access.create": ("secret", "create"),
    "oauth_access.destroy": ("secret", "delete"),
    "personal_access_token.request_created": ("secret", "create"),
    "personal_access_token.access_granted": ("secret", "grant"),
    "public_key.create": ("secret", "create"),
    "public_key.delete": ("secret", "delete"),
    "git.clone": ("service", "read"),
    "git.push": ("service", "push"),
    "workflows.completed_workflow_run": ("service", "deploy"),
}
"""action -> (type, action); others by the part before the dot (repo -> service, hook -> webhook, …)."""

_GITHUB_PREFIXES = {
    "org.": "organization",
    "team.": "organization",
    "business": "organization",
    "enterprise": "organization",
    "members_can": "organization",
    "repo.": "service",
    "repository_": "service",
    "protected_branch": "service",
    "environment": "service",
    "workflows": "service",
    "git.": "service",
    "packages": "service",
    "codespaces": "service",
    "hook.": "webhook",
    "integration": "service",
    "oauth": "secret",
    "personal_access_token": "secret",
    "secret_scanning": "secret",
    "org_secret": "secret",
    "repository_secret": "secret",
    "public_key": "secret",
    "user.": "user",
    "two_factor": "auth",
    "dependabot": "monitoring",
    "audit_log_streaming": "audit",
    "ip_allow_list": "infra",
    "sso": "auth",
    "org_credential_authorization": "auth",
}


def map_github(event: dict[str, Any]) -> Row:
    name = first_text(event.get("action"))
    if name is None or "." not in name:
        raise ValueError("not a GitHub audit event: no action like 'org.add_member'")
    kind, action = rule_for(name, GITHUB_ACTIONS, _GITHUB_PREFIXES)
    when = first_text(event.get("@timestamp"), event.get("created_at"), event.get("timestamp"))
    if when is None:
        raise ValueError("@timestamp: missing")
    if when.isdigit():
        when_value: Any = int(when)
    else:
        when_value = when
    who = first_text(event.get("actor"))
    failed = "failed" in name or "denied" in name
    target = first_text(
        event.get("user"), event.get("repo"), event.get("team"), event.get("org"), event.get("business")
    )
    details = [
        f"{k} {event[k]}"
        for k in ("permission", "old_permission", "repo", "team", "org")
        if first_text(event.get(k)) and event.get(k) != target
    ]
    text = f"{who or 'an unknown actor'}: {name}" + (f" {target}" if target else "")
    text += f" ({', '.join(details)})" if details else ""
    own = first_text(event.get("_document_id"), event.get("document_id"))
    return {
        "id": stable_id("gh", own) if own else raw_id("gh", json.dumps(event, sort_keys=True)),
        "time": when_value,
        "actor": who,
        "email": email_of(event.get("actor_email"), event.get("external_identity_nameid"), who),
        "type": kind,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip_or_none(first_text(event.get("actor_ip"), event.get("ip"))),
        "request_id": first_text(event.get("request_id"), own),
        "description": text,
        "error": name if failed else None,
        "params": {"source": "github.audit", "source_action": name, "record": event},
    }


def _github_sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    action = obj.get("action") if isinstance(obj, dict) else None
    return (
        isinstance(action, str)
        and "." in action
        and " " not in action
        and "actor" in keys
        and bool({"@timestamp", "created_at", "_document_id"} & keys)
        and not ({"type", "category", "result", "status", "time"} & keys)
    )


GITHUB_FIELDS = (
    ("id", "gh-<_document_id> (else a hash of the event)"),
    ("time", "@timestamp (else created_at; epoch ms or ISO)"),
    ("actor", "actor"),
    ("email", "actor_email / external_identity_nameid / the actor when it is an address"),
    ("type", "action (table), else its prefix (org -> organization, repo -> service, hook -> webhook)"),
    ("action", "action (table: org.update_member -> member_role_update), else its last part's verb"),
    ("target", "user, else repo, team, org, business"),
    ("result", "failed for actions that say failed or denied (user.failed_login)"),
    ("ip", "actor_ip"),
    ("request_id", "request_id, else _document_id"),
    ("params", "{source, source_action: action, record}"),
)

GITHUB_SOURCE = Source(
    name="github",
    title="GitHub audit log (JSON export and streaming)",
    shape="json",
    detected_by="events with a dotted action (org.add_member), actor and @timestamp/created_at/_document_id",
    fields=GITHUB_FIELDS,
    sniff=_github_sniff,
    read=lambda lines, context: mapped(json_records(lines), map_github),
    actions=GITHUB_ACTIONS,
)


def _github_csv_sniff(header: Any) -> bool:
    names = {str(h).strip().lower() for h in header} if isinstance(header, list) else set()
    return (
        {"action", "actor"} <= names
        and bool({"@timestamp", "created_at"} & names)
        and not ({"type", "category", "result", "status"} & names)
    )


def _github_csv_read(lines: Lines, context: Context) -> Iterator[RawRow]:
    def clean(row: dict[str, Any]) -> Row | None:
        return map_github({k: v for k, v in row.items() if v != ""})

    return mapped(csv_records(lines), clean)


GITHUB_CSV_SOURCE = Source(
    name="github-csv",
    title="GitHub audit log (CSV export)",
    shape="csv",
    detected_by="a CSV header with action, actor and @timestamp or created_at (and no type/result column)",
    fields=GITHUB_FIELDS,
    sniff=_github_csv_sniff,
    read=_github_csv_read,
    caveats="The CSV export flattens nested fields into text; they stay in params as read.",
    actions=GITHUB_ACTIONS,
)

# ---------------------------------------------------------------------------------------
# GitLab

GITLAB_ACTIONS: dict[str, ActionRule] = {
    "user_access_locked": ("auth", "lock"),
    "user_access_unlocked": ("auth", "unlock"),
    "user_logged_in": ("auth", "login"),
    "user_authenticated_using_two_factor": ("auth", "mfa"),
    "login_failed_with_standard_authentication": ("auth", "login"),
    "login_failed_with_otp_authentication": ("auth", "login"),
    "member_created": ("organization", "add_member"),
    "member_updated": ("organization", "member_role_update"),
    "member_destroyed": ("organization", "revoke"),
    "user_admin_status_updated": ("user", "role_change"),
    "user_created": ("user", "create"),
    "user_destroyed": ("user", "delete"),
    "user_blocked": ("user", "disable"),
    "personal_access_token_created": ("secret", "create"),
    "personal_access_token_revoked": ("secret", "delete"),
    "project_created": ("service", "create"),
    "project_destroyed": ("service", "delete"),
    "protected_branch_created": ("service", "configure"),
    "sign_in POST": ("auth", "login"),
    "ldap_callback": ("auth", "login"),
}
"""event_name (audit_json) -> (type, action); production_json sign-in requests are auth/login."""

_SIGN_IN_PATHS = ("/users/sign_in", "/users/auth/")
_GITLAB_ENTITIES = {"project": "service", "group": "organization", "user": "user", "instance": "system"}


def map_gitlab(record: dict[str, Any]) -> Row | None:
    if "path" in record and "method" in record:  # production_json.log: a request
        path = str(record.get("path", ""))
        if not path.startswith(_SIGN_IN_PATHS) or record.get("method") != "POST":
            raise ValueError(f"a GitLab request that is not a sign-in ({record.get('method')} {path[:80]})")
        status = record.get("status")
        failed = (
            status == 0
            or record.get("action") == "failure"
            or (path == "/users/sign_in" and status not in (302, 303))
        )
        params = as_list(record.get("params"))
        login = None
        for item in params:
            if not isinstance(item, dict):
                continue
            if item.get("key") == "user":  # the password form: user[login]
                login = first_text(dig(item, "value", "login"), dig(item, "value", "username"))
            elif item.get("key") in ("username", "login") and login is None:  # the LDAP form
                login = first_text(item.get("value"))
        who = first_text(record.get("username"), record.get("meta.user"), login)
        ip = first_text(record.get("remote_ip"), record.get("meta.remote_ip"))
        provider = "LDAP" if "ldap" in path else "password"
        text = f"GitLab sign-in ({provider}) as {who or 'an unknown user'} from {ip or 'an unknown address'}"
        text += f" failed (HTTP status {status}, action {record.get('action')})" if failed else ""
        return {
            "id": raw_id("gitlab", json.dumps(record, sort_keys=True)),
            "time": record.get("time"),
            "actor": who,
            "email": email_of(who),
            "type": "auth",
            "action": "login",
            "target": path,
            "result": "failed" if failed else "done",
            "ip": ip_or_none(ip),
            "request_id": first_text(record.get("correlation_id"))
            if record.get("correlation_id") != "..."
            else None,
            "description": text,
            "error": f"status {status}, action {record.get('action')}" if failed else None,
            "params": {
                "source": "gitlab.production",
                "source_action": f"{record.get('method')} {path}",
                "record": record,
            },
        }
    # audit_json.log / the audit events API
    name = first_text(record.get("event_name"), dig(record, "details", "event_name"))
    change = first_text(record.get("change"), dig(record, "details", "change"))
    custom = first_text(record.get("custom_message"), dig(record, "details", "custom_message"))
    if name:
        kind, action = rule_for(
            name,
            GITLAB_ACTIONS,
            {"user_": "user", "member_": "organization", "project_": "service"},
            split="",
        )
    elif change:
        kind, action = (
            ("organization", "member_role_update")
            if "access level" in change.lower().replace("_", " ")
            else (_GITLAB_ENTITIES.get(str(record.get("entity_type", "")).lower(), "system"), "update")
        )
    elif custom:
        kind, action = (
            ("auth", "login")
            if "login" in custom.lower() or "sign" in custom.lower()
            else ("system", "update")
        )
    else:
        raise ValueError("not a GitLab audit event: no event_name, change or custom_message")
    failed = "fail" in (name or custom or "").lower()
    who = first_text(
        record.get("author_name"), dig(record, "details", "author_name"), record.get("author_id")
    )
    target = first_text(
        record.get("target_details"), dig(record, "details", "target_details"), record.get("entity_path")
    )
    text = f"{who or 'an unknown user'}: {custom or name or change}"
    if change:
        text += f" ({change}: {record.get('from', '')} -> {record.get('to', '')})"
    own = first_text(record.get("id"))
    return {
        "id": stable_id("gitlab", own) if own else raw_id("gitlab", json.dumps(record, sort_keys=True)),
        "time": first_text(record.get("time"), record.get("created_at")),
        "actor": who,
        "email": email_of(record.get("author_email"), dig(record, "details", "author_email"), who),
        "type": kind,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip_or_none(first_text(record.get("ip_address"), dig(record, "details", "ip_address"))),
        "request_id": first_text(record.get("correlation_id")),
        "description": text,
        "error": custom if failed else None,
        "params": {"source": "gitlab.audit", "source_action": name or change or custom, "record": record},
    }


def _gitlab_sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    if {"method", "path", "controller", "remote_ip"} <= keys:
        return True
    return ("author_id" in keys or "author_name" in keys) and ("entity_type" in keys or "entity_id" in keys)


GITLAB_SOURCE = Source(
    name="gitlab",
    title="GitLab audit events and sign-in requests",
    shape="json",
    detected_by="audit_json records (author_id/author_name with entity_type), or production_json "
    "requests (method, path, controller, remote_ip)",
    fields=(
        ("id", "gitlab-<id> (requests: a hash of the record)"),
        ("time", "time (else created_at)"),
        ("actor", "author_name; requests: username, else the login posted (user[login], LDAP's username)"),
        ("type", "event_name (table); requests: auth"),
        ("action", "event_name (table: member_updated -> member_role_update); requests: login"),
        ("target", "target_details; requests: the path"),
        (
            "result",
            "failed for failed logins; requests: status 0, action failure, or sign_in without a redirect",
        ),
        ("ip", "ip_address; requests: remote_ip"),
        ("request_id", "correlation_id"),
        ("params", "{source, source_action, record}"),
    ),
    sniff=_gitlab_sniff,
    read=lambda lines, context: mapped(json_records(lines), map_gitlab),
    caveats="Of production_json.log only sign-in POSTs are events; other requests are rejected "
    "with the reason (it is a request log, not an audit log).",
    actions=GITLAB_ACTIONS,
)

"""Cloud control planes besides AWS: Google Cloud Audit Logs (a LogEntry with an AuditLog
``protoPayload``) and the Azure Activity log (the portal/Event Hub camelCase shape and the
Python SDK's snake_case one) with Entra ID sign-in logs.

>>> row = map_gcp({"insertId": "x", "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
...     "timestamp": "2024-12-03T10:00:00Z", "protoPayload": {
...     "@type": "type.googleapis.com/google.cloud.audit.AuditLog", "serviceName": "iam.googleapis.com",
...     "methodName": "google.iam.admin.v1.CreateServiceAccount", "status": {"code": 7, "message": "denied"},
...     "authenticationInfo": {"principalEmail": "ann@example.com"}}})
>>> row["type"], row["action"], row["result"], row["email"]
('user', 'create', 'failed', 'ann@example.com')
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

__all__ = ["AZURE_ACTIONS", "AZURE_PROVIDERS", "AZURE_SOURCE", "GCP_ACTIONS", "GCP_SERVICES", "GCP_SOURCE"]

# ---------------------------------------------------------------------------------------
# Google Cloud

GCP_SERVICES: dict[str, str] = {
    "iam.googleapis.com": "user",
    "iamcredentials.googleapis.com": "secret",
    "cloudresourcemanager.googleapis.com": "organization",
    "admin.googleapis.com": "organization",
    "login.googleapis.com": "auth",
    "sts.googleapis.com": "auth",
    "compute.googleapis.com": "infra",
    "container.googleapis.com": "infra",
    "storage.googleapis.com": "infra",
    "secretmanager.googleapis.com": "secret",
    "cloudkms.googleapis.com": "secret",
    "sqladmin.googleapis.com": "database",
    "spanner.googleapis.com": "database",
    "bigquery.googleapis.com": "database",
    "cloudfunctions.googleapis.com": "service",
    "run.googleapis.com": "service",
    "appengine.googleapis.com": "service",
    "cloudbuild.googleapis.com": "service",
    "logging.googleapis.com": "audit",
    "monitoring.googleapis.com": "monitoring",
    "dns.googleapis.com": "domain",
    "pubsub.googleapis.com": "webhook",
}
"""serviceName -> our type."""

GCP_ACTIONS: dict[str, ActionRule] = {
    "SetIamPolicy": ("organization", "permission_change"),
    "setIamPolicy": ("organization", "permission_change"),
    "CreateRole": ("user", "role_update"),
    "UpdateRole": ("user", "role_update"),
    "DeleteRole": ("user", "remove_role"),
    "CreateServiceAccountKey": ("secret", "create"),
    "DeleteServiceAccountKey": ("secret", "delete"),
    "GenerateAccessToken": ("secret", "create"),
    "AccessSecretVersion": ("secret", "read"),
}
"""The last part of methodName -> (type, action); others take the service's type and the verb."""

_GCP_CODES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
}


def map_gcp(entry: dict[str, Any]) -> Row:
    payload = entry.get("protoPayload")
    if not isinstance(payload, dict) or "AuditLog" not in str(payload.get("@type", "AuditLog")):
        raise ValueError("not a Cloud Audit Logs entry (no AuditLog protoPayload)")
    method = first_text(payload.get("methodName"))
    if method is None:
        raise ValueError("protoPayload.methodName: missing")
    service = first_text(payload.get("serviceName")) or ""
    last = method.rsplit(".", 1)[-1]
    kind, action = rule_for(last, GCP_ACTIONS, {}, default_type=GCP_SERVICES.get(service, "system"), split="")
    principal = first_text(
        dig(payload, "authenticationInfo", "principalEmail"),
        dig(payload, "authenticationInfo", "principalSubject"),
    )
    code = dig(payload, "status", "code")
    failed = isinstance(code, int) and code != 0
    message = first_text(dig(payload, "status", "message"))
    error = None
    if failed:
        error = f"{_GCP_CODES.get(code, code)}" + (f": {message}" if message else "")
    target = first_text(payload.get("resourceName"))
    text = f"{principal or 'an unknown principal'} called {method}" + (f" on {target}" if target else "")
    text += f"; it failed: {_GCP_CODES.get(code, code)}" if failed else ""
    insert = first_text(entry.get("insertId"))
    own = f"{entry.get('logName', '')}|{insert}|{entry.get('timestamp', '')}"
    return {
        "id": raw_id("gcp", own) if insert else raw_id("gcp", json.dumps(entry, sort_keys=True)),
        "time": first_text(entry.get("timestamp"), entry.get("receiveTimestamp")),
        "actor": principal,
        "email": email_of(principal),
        "type": kind,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip_or_none(dig(payload, "requestMetadata", "callerIp")),
        "request_id": first_text(dig(entry, "operation", "id"), insert),
        "description": text,
        "error": error,
        "params": {"source": "gcp.audit", "source_action": f"{service} {method}", "record": entry},
    }


def _gcp_sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    return "protoPayload" in keys or ("logName" in keys and "insertId" in keys)


def _gcp_read(lines: Lines, context: Context) -> Iterator[RawRow]:
    return mapped(json_records(lines), map_gcp)


GCP_SOURCE = Source(
    name="gcp",
    title="Google Cloud Audit Logs",
    shape="json",
    detected_by="LogEntry objects with protoPayload (or logName and insertId)",
    fields=(
        ("id", "hash of logName, insertId and timestamp"),
        ("time", "timestamp"),
        ("actor", "protoPayload.authenticationInfo.principalEmail"),
        ("email", "the same, when it is an address"),
        ("type", "last part of methodName (table), else serviceName (table)"),
        ("action", "last part of methodName (table: SetIamPolicy -> permission_change), else its verb"),
        ("target", "protoPayload.resourceName"),
        ("result", "failed when protoPayload.status.code is not 0"),
        ("ip", "protoPayload.requestMetadata.callerIp"),
        ("request_id", "operation.id, else insertId"),
        ("error", "the status code's name: status.message"),
        ("params", "{source, source_action: serviceName methodName, record}"),
    ),
    sniff=_gcp_sniff,
    read=_gcp_read,
    caveats="Entries that are not audit entries (textPayload, jsonPayload) are rejected with the reason.",
    actions=GCP_ACTIONS,
)

# ---------------------------------------------------------------------------------------
# Azure

AZURE_PROVIDERS: dict[str, str] = {
    "microsoft.authorization": "user",
    "microsoft.aad": "user",
    "microsoft.managedidentity": "user",
    "microsoft.keyvault": "secret",
    "microsoft.compute": "infra",
    "microsoft.network": "infra",
    "microsoft.storage": "infra",
    "microsoft.containerservice": "infra",
    "microsoft.resources": "service",
    "microsoft.web": "service",
    "microsoft.containerinstance": "service",
    "microsoft.sql": "database",
    "microsoft.dbforpostgresql": "database",
    "microsoft.dbformysql": "database",
    "microsoft.documentdb": "database",
    "microsoft.recoveryservices": "backup",
    "microsoft.dataprotection": "backup",
    "microsoft.insights": "monitoring",
    "microsoft.operationalinsights": "monitoring",
    "microsoft.security": "monitoring",
    "microsoft.cdn": "domain",
    "microsoft.management": "organization",
}
"""Resource provider of operationName -> our type."""

AZURE_ACTIONS: dict[str, ActionRule] = {
    "microsoft.authorization/roleassignments/write": ("user", "assign_role"),
    "microsoft.authorization/roleassignments/delete": ("user", "unassign_role"),
    "microsoft.authorization/roledefinitions/write": ("user", "role_update"),
    "microsoft.authorization/roledefinitions/delete": ("user", "remove_role"),
    "microsoft.authorization/policyassignments/write": ("organization", "policy_change"),
    "microsoft.authorization/policyassignments/delete": ("organization", "policy_change"),
    "microsoft.keyvault/vaults/secrets/write": ("secret", "update"),
    "microsoft.keyvault/vaults/accesspolicies/write": ("user", "permission_change"),
    "microsoft.resources/deployments/write": ("service", "deploy"),
    "sign-in activity": ("auth", "login"),
    "signinlogs": ("auth", "login"),
}
"""operationName (lower case) -> (type, action); others: the provider's type and the verb."""

_UPN_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
_AZURE_VERBS = {"write": "update", "delete": "delete", "read": "read", "action": "execute"}


def _value(obj: Any) -> str | None:
    if isinstance(obj, dict):
        return first_text(obj.get("value"), obj.get("localizedValue"), obj.get("localized_value"))
    return first_text(obj)


def _azure_rule(operation: str) -> ActionRule:
    lowered = operation.lower()
    if lowered in AZURE_ACTIONS:
        return AZURE_ACTIONS[lowered]
    parts = lowered.split("/")
    kind = AZURE_PROVIDERS.get(parts[0], "system")
    verb = parts[-1]
    if verb == "action" and len(parts) > 2:
        return kind, parts[-2][:100]
    return kind, _AZURE_VERBS.get(verb, verb[:100])


def map_azure(record: dict[str, Any]) -> Row:
    props = as_dict(record.get("properties"))
    sign_in = (
        "userPrincipalName" in record
        or "userPrincipalName" in props
        or str(record.get("category", "")).lower() == "signinlogs"
    )
    operation = _value(record.get("operationName")) or _value(record.get("operation_name"))
    if sign_in:
        operation = operation or "Sign-in activity"
    if operation is None:
        raise ValueError("not an Azure log record: no operationName")
    kind, action = ("auth", "login") if sign_in else _azure_rule(operation)
    status = _value(record.get("status")) or first_text(dig(record, "status", "errorCode"))
    result_type = first_text(record.get("resultType"), record.get("resultSignature"))
    error_code = dig(record, "status", "errorCode") if isinstance(record.get("status"), dict) else None
    error_code = error_code if error_code is not None else dig(props, "status", "errorCode")
    if sign_in:
        failed = (error_code not in (None, 0, "0")) or (
            result_type not in (None, "0", "Success", "Succeeded")
        )
    else:
        failed = str(status or result_type or "").lower() in ("failed", "failure", "error") or (
            str(result_type or "").lower() in ("failed", "failure")
        )
    claims = as_dict(dig(record, "identity", "claims")) or as_dict(record.get("claims"))
    who = first_text(
        record.get("userPrincipalName"),
        props.get("userPrincipalName"),
        record.get("caller"),
        record.get("identity") if isinstance(record.get("identity"), str) else None,
        claims.get(_UPN_CLAIM),
        claims.get("upn"),
        claims.get("name"),
        claims.get("appid"),
    )
    when = first_text(
        record.get("eventTimestamp"),
        record.get("event_timestamp"),
        record.get("time"),
        record.get("createdDateTime"),
        props.get("createdDateTime"),
    )
    ip = first_text(
        record.get("callerIpAddress"),
        record.get("ipAddress"),
        props.get("ipAddress"),
        dig(record, "httpRequest", "clientIpAddress"),
        dig(record, "http_request", "client_ip_address"),
    )
    target = first_text(
        record.get("resourceId"),
        record.get("resource_id"),
        record.get("appDisplayName"),
        props.get("appDisplayName"),
        record.get("resourceDisplayName"),
    )
    own = first_text(
        record.get("eventDataId"),
        record.get("event_data_id"),
        record.get("id") if sign_in else None,
        props.get("id"),
    )
    reason = first_text(
        dig(record, "status", "failureReason"),
        dig(props, "status", "failureReason"),
        record.get("resultDescription"),
        _value(record.get("subStatus")) or _value(record.get("sub_status")),
        props.get("statusCode"),
        record.get("resultSignature") if failed else None,
    )
    if sign_in:
        text = f"sign-in of {who or 'an unknown user'}" + (f" to {target}" if target else "")
        text += f" failed: {reason or error_code}" if failed else ""
    else:
        text = f"{who or 'an unknown caller'}: {operation}" + (
            f" on {target.rsplit('/', 1)[-1]}" if target else ""
        )
        text += f" ({status})" if status else ""
        text += f"; it failed: {reason or error_code or status or result_type}" if failed else ""
    return {
        "id": stable_id("azure", own) if own else raw_id("azure", json.dumps(record, sort_keys=True)),
        "time": when,
        "actor": who,
        "email": email_of(who),
        "type": kind,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip_or_none(ip),
        "request_id": first_text(
            record.get("correlationId"), record.get("correlation_id"), record.get("operationId"), own
        ),
        "description": text,
        "error": (reason or str(error_code or status or result_type)) if failed else None,
        "params": {
            "source": "azure.activity" if not sign_in else "azure.signin",
            "source_action": operation,
            "record": record,
        },
    }


def _azure_sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    if {"operation_name", "event_timestamp"} <= keys or {"operationName", "caller"} <= keys:
        return True
    if "operationName" in keys and ("resourceId" in keys or "correlationId" in keys) and "time" in keys:
        return True
    return "userPrincipalName" in keys and ("createdDateTime" in keys or "appDisplayName" in keys)


def _azure_read(lines: Lines, context: Context) -> Iterator[RawRow]:
    return mapped(json_records(lines), map_azure)


AZURE_SOURCE = Source(
    name="azure",
    title="Azure Activity log and Entra ID sign-in logs",
    shape="json",
    detected_by="records with operationName and caller/resourceId/correlationId (or the SDK's "
    "operation_name and event_timestamp), or sign-ins with userPrincipalName and createdDateTime",
    fields=(
        ("id", "azure-<eventDataId> (sign-ins: azure-<id>)"),
        ("time", "eventTimestamp / event_timestamp / time / createdDateTime"),
        ("actor", "caller, else identity.claims' upn, name or appid; sign-ins: userPrincipalName"),
        ("email", "the actor when it is an address"),
        ("type", "operationName (table), else its resource provider (table); sign-ins auth"),
        ("action", "operationName (table: roleAssignments/write -> assign_role), else write/delete/read"),
        ("target", "resourceId; sign-ins: appDisplayName"),
        ("result", "failed for status Failed; sign-ins: errorCode not 0"),
        ("ip", "callerIpAddress / httpRequest.clientIpAddress / ipAddress"),
        ("request_id", "correlationId"),
        ("error", "status.failureReason / resultDescription / subStatus"),
        ("params", "{source, source_action: operationName, record}"),
    ),
    sniff=_azure_sniff,
    read=_azure_read,
    caveats="A long operation is logged at its start (status Started) and at its end; both are "
    "imported (Started as done: the start happened).",
    actions=AZURE_ACTIONS,
)

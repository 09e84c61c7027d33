"""AWS CloudTrail: S3 log files (``{"Records": [...]}``), one record per line, bare arrays,
and the ``lookup-events`` shape (``CloudTrailEvent`` holding the record as a JSON string).

>>> row = map_record({"eventVersion": "1.08", "eventID": "e1", "eventTime": "2024-01-01T00:00:00Z",
...     "eventSource": "iam.amazonaws.com", "eventName": "AttachUserPolicy",
...     "userIdentity": {"type": "IAMUser", "userName": "alice"}, "sourceIPAddress": "10.0.0.1",
...     "requestParameters": {"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
...     "errorCode": "AccessDenied"})
>>> row["id"], row["type"], row["action"], row["result"], row["target"]
('aws-e1', 'user', 'grant', 'failed', 'bob')
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from audit_analytics.io.sources.base import (
    ActionRule,
    Context,
    Lines,
    RawRow,
    Row,
    Source,
    dig,
    email_of,
    first_text,
    ip_or_none,
    json_records,
    keys_of,
    mapped,
    raw_id,
    rule_for,
)

__all__ = ["ACTIONS", "SERVICES", "SOURCE", "map_record"]

ACTIONS: dict[str, ActionRule] = {
    # sign-in and credentials
    "ConsoleLogin": ("auth", "login"),
    "CheckMfa": ("auth", "mfa"),
    "SwitchRole": ("auth", "assume_role"),
    "AssumeRole": ("auth", "assume_role"),
    "AssumeRoleWithSAML": ("auth", "assume_role"),
    "AssumeRoleWithWebIdentity": ("auth", "assume_role"),
    "GetFederationToken": ("auth", "federation_token"),
    "GetSessionToken": ("auth", "session_token"),
    "CreateLoginProfile": ("auth", "password_change"),
    "UpdateLoginProfile": ("auth", "password_change"),
    "DeleteLoginProfile": ("auth", "delete"),
    "ChangePassword": ("auth", "password_change"),
    "EnableMFADevice": ("auth", "enable"),
    "DeactivateMFADevice": ("auth", "disable"),
    "SendSSHPublicKey": ("auth", "ssh_key"),
    "SendSerialConsoleSSHPublicKey": ("auth", "ssh_key"),
    # IAM: who may do what (permission changes)
    "AttachUserPolicy": ("user", "grant"),
    "AttachRolePolicy": ("user", "grant"),
    "AttachGroupPolicy": ("user", "grant"),
    "PutUserPolicy": ("user", "grant"),
    "PutRolePolicy": ("user", "grant"),
    "PutGroupPolicy": ("user", "grant"),
    "AddUserToGroup": ("user", "add_member"),
    "AddRoleToInstanceProfile": ("user", "grant"),
    "DetachUserPolicy": ("user", "revoke"),
    "DetachRolePolicy": ("user", "revoke"),
    "DetachGroupPolicy": ("user", "revoke"),
    "DeleteUserPolicy": ("user", "revoke"),
    "DeleteRolePolicy": ("user", "revoke"),
    "DeleteGroupPolicy": ("user", "revoke"),
    "RemoveUserFromGroup": ("user", "revoke"),
    "UpdateAssumeRolePolicy": ("user", "permission_change"),
    "CreatePolicyVersion": ("user", "permission_change"),
    "SetDefaultPolicyVersion": ("user", "permission_change"),
    "PutUserPermissionsBoundary": ("user", "permission_change"),
    "PutRolePermissionsBoundary": ("user", "permission_change"),
    "AddPermission": ("user", "grant"),  # lambda resource policy
    "RemovePermission": ("user", "revoke"),
    "CreateAccessKey": ("secret", "create"),
    "UpdateAccessKey": ("secret", "update"),
    "DeleteAccessKey": ("secret", "delete"),
    # secrets
    "GetSecretValue": ("secret", "read"),
    "BatchGetSecretValue": ("secret", "read"),
    "GetPasswordData": ("secret", "read"),
    "GetParameter": ("secret", "read"),
    "GetParameters": ("secret", "read"),
    "GetParametersByPath": ("secret", "read"),
    "Decrypt": ("secret", "read"),
    "RotateSecret": ("secret", "rotate"),
    # the audit trail itself
    "StopLogging": ("audit", "disable"),
    "StartLogging": ("audit", "enable"),
    "DeleteTrail": ("audit", "delete"),
    "UpdateTrail": ("audit", "configure"),
    "PutEventSelectors": ("audit", "configure"),
    "DeleteFlowLogs": ("audit", "delete"),
    "DeleteResolverQueryLogConfig": ("audit", "delete"),
    # organisations
    "LeaveOrganization": ("organization", "delete"),
    "InviteAccountToOrganization": ("organization", "invite"),
    "RemoveAccountFromOrganization": ("organization", "revoke"),
    "AttachPolicy": ("organization", "grant"),  # a service control policy
    "DetachPolicy": ("organization", "revoke"),
    # network exposure and sharing
    "AuthorizeSecurityGroupIngress": ("infra", "grant_access"),
    "ModifyImageAttribute": ("infra", "share"),
    "ModifySnapshotAttribute": ("backup", "share"),
    "ModifyDBSnapshotAttribute": ("db_backup", "share"),
    "RunInstances": ("infra", "create"),
    "StartSession": ("system", "session_open"),
    "TerminateSession": ("system", "session_close"),
    "SendCommand": ("system", "execute"),
    "UpdateFunctionCode": ("service", "deploy"),
}
"""eventName -> (type, action); other names take the service's type and the verb's action."""

SERVICES: dict[str, str] = {
    "signin": "auth",
    "sts": "auth",
    "sso": "auth",
    "rolesanywhere": "auth",
    "ec2-instance-connect": "auth",
    "iam": "user",
    "identitystore": "user",
    "organizations": "organization",
    "account": "organization",
    "secretsmanager": "secret",
    "kms": "secret",
    "acm-pca": "secret",
    "ssm": "system",
    "cloudtrail": "audit",
    "config": "audit",
    "guardduty": "monitoring",
    "securityhub": "monitoring",
    "cloudwatch": "monitoring",
    "monitoring": "monitoring",
    "logs": "monitoring",
    "ec2": "infra",
    "elasticloadbalancing": "infra",
    "autoscaling": "infra",
    "eks": "infra",
    "s3": "infra",
    "cloudformation": "service",
    "lambda": "service",
    "ecs": "service",
    "ecr": "service",
    "bedrock": "service",
    "apigateway": "service",
    "rds": "database",
    "dynamodb": "database",
    "redshift": "database",
    "backup": "backup",
    "route53": "domain",
    "route53domains": "domain",
    "route53resolver": "domain",
    "acm": "domain",
    "sns": "webhook",
    "events": "webhook",
    "ec2vpn": "vpn",
    "clientvpn": "vpn",
}
"""The service of ``eventSource`` (``iam`` of ``iam.amazonaws.com``) -> type."""

_API_VERSION = re.compile(r"\d{8}(v\d+)?$")  # lambda's AddPermission20150331v2
_TARGET_KEYS = (
    "userName",
    "roleName",
    "groupName",
    "policyArn",
    "secretId",
    "functionName",
    "bucketName",
    "instanceId",
    "trailName",
    "name",
    "keyId",
    "snapshotId",
    "dBSnapshotIdentifier",
    "imageId",
    "groupId",
    "target",
    "roleArn",
)


def _actor(identity: Any) -> str | None:
    if not isinstance(identity, dict):
        return None
    kind = identity.get("type")
    if kind == "AssumedRole":
        arn = identity.get("arn")
        if isinstance(arn, str) and "assumed-role/" in arn:
            return arn.split("assumed-role/", 1)[1]
    if kind == "FederatedUser":
        arn = identity.get("arn")
        if isinstance(arn, str) and "federated-user/" in arn:
            return arn.split("federated-user/", 1)[1]
    if kind == "AWSService":
        return first_text(identity.get("invokedBy"))
    if kind == "Root":
        return "root"
    return first_text(
        identity.get("userName"),
        identity.get("arn"),
        identity.get("principalId"),
        identity.get("invokedBy"),
    )


def _target(record: dict[str, Any]) -> str | None:
    resources = record.get("resources")
    if isinstance(resources, list) and resources and isinstance(resources[0], dict):
        found = first_text(resources[0].get("ARN"), resources[0].get("arn"))
        if found:
            return found
    params = record.get("requestParameters")
    if isinstance(params, dict):
        for key in _TARGET_KEYS:
            value = first_text(params.get(key))
            if value:
                return value
        items = dig(params, "instancesSet", "items")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            return first_text(items[0].get("instanceId"))
    return None


def map_record(record: dict[str, Any]) -> Row:
    """One CloudTrail record (or a lookup-events item) -> a row of our schema."""
    if isinstance(record.get("CloudTrailEvent"), str):
        try:
            inner = json.loads(record["CloudTrailEvent"])
        except ValueError as exc:
            raise ValueError(f"CloudTrailEvent is not valid JSON ({exc})") from None
        if not isinstance(inner, dict):
            raise ValueError("CloudTrailEvent does not hold a JSON object")
        record = inner
    if isinstance(record.get("detail"), dict) and "eventName" in record["detail"]:
        record = record["detail"]  # an EventBridge event: "AWS API Call via CloudTrail"
    name = record.get("eventName")
    source = record.get("eventSource")
    if not isinstance(name, str) or not name:
        raise ValueError("not a CloudTrail record: no eventName")
    if not record.get("eventTime"):
        raise ValueError("eventTime: missing")
    service = source.split(".", 1)[0] if isinstance(source, str) else "aws"
    bare = _API_VERSION.sub("", name)
    kind, action = rule_for(bare, ACTIONS, {}, default_type=SERVICES.get(service, "system"), split="")
    identity = record.get("userIdentity")
    actor = _actor(identity)
    error_code = first_text(record.get("errorCode"))
    login_failed = dig(record, "responseElements", "ConsoleLogin") == "Failure"
    failed = bool(error_code) or login_failed
    error = None
    if error_code:
        error = error_code + (f": {record['errorMessage']}" if record.get("errorMessage") else "")
    elif login_failed:
        error = "ConsoleLogin: Failure"
    region = first_text(record.get("awsRegion"))
    target = _target(record)
    who = actor or "an unknown principal"
    text = f"{who} called {service}:{name}" + (f" on {target}" if target else "")
    text += f" in {region}" if region else ""
    text += f"; it failed: {error_code or 'Failure'}" if failed else ""
    event_id = first_text(record.get("eventID"))
    return {
        "id": f"aws-{event_id}" if event_id else raw_id("aws", json.dumps(record, sort_keys=True)),
        "time": record["eventTime"],
        "actor": actor,
        "email": email_of(actor, dig(identity, "principalId")),
        "type": kind,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip_or_none(record.get("sourceIPAddress")),
        "request_id": first_text(record.get("requestID"), event_id),
        "description": text,
        "error": error,
        "params": {"source": "aws.cloudtrail", "source_action": f"{service}:{name}", "record": record},
    }


def _sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    if "detail" in keys and "detail-type" in keys:  # EventBridge
        keys = keys_of(obj["detail"])
    return {"eventName", "eventSource", "eventTime"} <= keys or "CloudTrailEvent" in keys


def _read(lines: Lines, context: Context) -> Iterator[RawRow]:
    return mapped(json_records(lines), map_record)


SOURCE = Source(
    name="cloudtrail",
    title="AWS CloudTrail",
    shape="json",
    detected_by="records with eventName, eventSource and eventTime (a Records object, an array, "
    "one per line), lookup-events items with CloudTrailEvent, or EventBridge events holding a record "
    "in detail",
    fields=(
        ("id", "aws-<eventID> (else a hash of the record)"),
        ("time", "eventTime"),
        (
            "actor",
            "userIdentity.userName; <role>/<session> of an assumed role; the federated user; arn; "
            "principalId; invokedBy (a service)",
        ),
        ("email", "actor or principalId when it is an address"),
        ("type", "eventName (table), else the service of eventSource (table)"),
        ("action", "eventName (table), else its verb (Describe -> read, Delete -> delete, …)"),
        ("target", "resources[0].ARN, else requestParameters (userName, roleName, instanceId, …)"),
        ("result", "failed when errorCode is set or ConsoleLogin is Failure"),
        ("ip", "sourceIPAddress when it is an address (not a service name)"),
        ("request_id", "requestID, else eventID"),
        ("error", "errorCode: errorMessage"),
        ("params", "{source, source_action: service:eventName, record}"),
    ),
    sniff=_sniff,
    read=_read,
    caveats="sourceIPAddress that is a service name (ec2.amazonaws.com) or not a valid address "
    "(anonymised 035.1.2.3) leaves ip empty; the record keeps it.",
    actions=ACTIONS,
)

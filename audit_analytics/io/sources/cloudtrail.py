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

import polars as pl

from audit_analytics.io.sources.base import (
    IPV4,
    PY_SPACE,
    ActionRule,
    Context,
    LineMapper,
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


def classify(source: Any, name: str) -> tuple[str, str, str, str]:
    """(service, type, action, the params' source_action as JSON text) of an eventSource and
    an eventName: the tables' rule, the one used for every record."""
    service = source.split(".", 1)[0] if isinstance(source, str) else "aws"
    bare = _API_VERSION.sub("", name)
    kind, action = rule_for(bare, ACTIONS, {}, default_type=SERVICES.get(service, "system"), split="")
    return service, kind, action, json.dumps(f"{service}:{name}", ensure_ascii=False)


def who(identity: Any) -> tuple[str | None, str | None]:
    """(actor, email) of a userIdentity."""
    actor = _actor(identity)
    return actor, email_of(actor, dig(identity, "principalId"))


def describe(
    actor: str | None,
    service: str,
    name: str,
    target: str | None,
    region: str | None,
    failure: str | None,
    granting: str | None = None,
) -> str:
    """The one readable sentence of a record (``failure``: what it failed with, else None;
    ``granting``: the policy it attaches)."""
    text = f"{actor or 'an unknown principal'} called {service}:{name}" + (f" on {target}" if target else "")
    text += f" granting {granting}" if granting else ""
    text += f" in {region}" if region else ""
    return text + (f"; it failed: {failure}" if failure is not None else "")


ATTACH_POLICY = frozenset({"AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy"})
"""IAM calls that grant a managed policy (``requestParameters.policyArn``)."""


def granted(name: str | None, policy_arn: str | None) -> tuple[str | None, str | None]:
    """(the policy's name, ``after`` as JSON) of a call that attaches a managed policy: the
    name is what the grant gives (``AdministratorAccess``), kept as the role after, so the
    permission-changes detection flags an admin grant and a search for the name finds it.

    >>> granted("AttachUserPolicy", "arn:aws:iam::aws:policy/AdministratorAccess")
    ('AdministratorAccess', '{"role": "AdministratorAccess", "policy": "arn:aws:iam::aws:policy/AdministratorAccess"}')
    >>> granted("GetUser", None)
    (None, None)
    """
    arn = policy_arn.strip() if isinstance(policy_arn, str) else ""
    if name not in ATTACH_POLICY or not arn:
        return None, None
    policy = arn.rsplit("/", 1)[-1]
    return policy, json.dumps({"role": policy, "policy": arn})


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
    service, kind, action, _ = classify(source, name)
    identity = record.get("userIdentity")
    actor, email = who(identity)
    error_code = first_text(record.get("errorCode"))
    login_failed = dig(record, "responseElements", "ConsoleLogin") == "Failure"
    failed = bool(error_code) or login_failed
    error = None
    if error_code:
        error = error_code + (f": {record['errorMessage']}" if record.get("errorMessage") else "")
    elif login_failed:
        error = "ConsoleLogin: Failure"
    target = _target(record)
    event_id = first_text(record.get("eventID"))
    granting, after = granted(name, first_text(dig(record, "requestParameters", "policyArn")))
    return {
        "id": f"aws-{event_id}" if event_id else raw_id("aws", json.dumps(record, sort_keys=True)),
        "time": record["eventTime"],
        "actor": actor,
        "email": email,
        "type": kind,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip_or_none(record.get("sourceIPAddress")),
        "request_id": first_text(record.get("requestID"), event_id),
        "description": describe(
            actor,
            service,
            name,
            target,
            first_text(record.get("awsRegion")),
            (error_code or "Failure") if failed else None,
            granting,
        ),
        "after": after,
        "error": error,
        "params": {"source": "aws.cloudtrail", "source_action": f"{service}:{name}", "record": record},
    }


# ---------------------------------------------------------------------------------------
# one record per line, a batch at a time (the fast path of a big file)

_TEXT = pl.String
_IDENTITY = pl.Struct({k: _TEXT for k in ("type", "arn", "userName", "principalId", "invokedBy")})
_DTYPE = pl.Struct(
    {
        "eventName": _TEXT,
        "eventSource": _TEXT,
        "eventTime": _TEXT,
        "eventID": _TEXT,
        "requestID": _TEXT,
        "awsRegion": _TEXT,
        "sourceIPAddress": _TEXT,
        "errorCode": _TEXT,
        "errorMessage": _TEXT,
        "userIdentity": _IDENTITY,
        "responseElements": pl.Struct({"ConsoleLogin": _TEXT}),
        "resources": pl.List(pl.Struct({"ARN": _TEXT, "arn": _TEXT})),
        "requestParameters": pl.Struct(
            {
                **{k: _TEXT for k in _TARGET_KEYS},
                "instancesSet": pl.Struct({"items": pl.List(pl.Struct({"instanceId": _TEXT}))}),
            }
        ),
    }
)
"""What the batch path decodes of a record (the fields the rules read; the rest stays in the
raw line). A record whose fields have other types fails to decode and goes the record path."""

_TEXT_FIELDS: tuple[str, ...] = ("eventName", "eventSource", "eventTime", "eventID", "requestID")
_TEXT_FIELDS += ("awsRegion", "sourceIPAddress", "errorCode", "errorMessage")
_TOP: tuple[str, ...] = (*_TEXT_FIELDS, "userIdentity", "responseElements", "resources", "requestParameters")
"""The record's fields the rules read."""
_LEAVES: tuple[str, ...] = (*_TEXT_FIELDS, "type", "arn", "userName", "principalId", "invokedBy")
_LEAVES += ("ConsoleLogin", "ARN", *(k for k in _TARGET_KEYS if k != "userName"))
"""Every key whose value the rules read as text, at any depth."""


def _keys(names: tuple[str, ...]) -> str:
    return '"(?:' + "|".join(names) + r')"\s*:\s*'


# a line the batch path leaves to the record path, before decoding: a lookup-events item or
# an EventBridge event (their record is inside); a surrogate escape (a lone one becomes NUL
# in polars); a field the rules read holding a number or true/false (Python and polars write
# them differently) or an object where text is read, or the other way round
_RECORD_PATH = "|".join(
    [
        r'"CloudTrailEvent"|"detail"|\\u[dD][89a-fA-F]',
        _keys(_LEAVES) + r'[^"\sn]',
        _keys(("userIdentity", "responseElements", "requestParameters", "instancesSet")) + r"[^{\sn]",
        _keys(("resources", "items")) + r"[^\[\sn]",
    ]
)
_NAME_IS_TEXT = _keys(("eventName",)) + '"'
_TOP_KEY = _keys(_TOP) + r"[^\sn]"  # a key the rules read, holding something (not null)


def map_lines(texts: pl.Series) -> pl.DataFrame:
    """Lines, each one CloudTrail record, -> rows of our schema (``time`` as the record's
    text) and ``batch``: whether the row was mapped here. Rows where it is false are mapped by
    :func:`map_record` instead (the caller's part). The rules are :func:`map_record`'s: the
    per-value ones (:func:`classify`, :func:`who`, :func:`~.base.ip_or_none`) run once per
    distinct value, the rest as polars expressions. Raises ``polars`` errors when a line does
    not decode.

    ``params`` holds the raw line as the record, so nothing is re-serialised.
    """
    line = pl.col("line")
    trimmed = line.str.strip_chars(PY_SPACE)
    here = (
        trimmed.str.starts_with("{")  # an object, not an array or a line that is not JSON
        & trimmed.str.ends_with("}")
        & ~line.str.contains(_RECORD_PATH)
    )
    frame = pl.DataFrame({"line": texts}).with_columns(
        here.alias("_here"), line.str.count_matches(_TOP_KEY).alias("_keys")
    )
    frame = frame.with_columns(
        pl.when("_here").then(line).otherwise(pl.lit(None, pl.String)).str.json_decode(_DTYPE).alias("r")
    )
    frame = frame.unnest("r")
    # a key the rules read written twice (Python's json takes the last, polars the first)
    # goes the record path too: more keys in the text than fields decoded (a nested key of
    # the same name sends a line there needlessly, no more)
    decoded = pl.sum_horizontal(pl.col(k).is_not_null().cast(pl.UInt32) for k in _TOP)
    frame = frame.with_columns((pl.col("_here") & (pl.col("_keys") == decoded)).alias("_here"))
    first = _first_text
    event_id = first(pl.col("eventID"))
    error_code = first(pl.col("errorCode"))
    login_failed = pl.col("responseElements").struct.field("ConsoleLogin").fill_null("") == "Failure"
    failed = error_code.is_not_null() | login_failed
    params = pl.col("requestParameters")
    target = pl.coalesce(
        first(pl.col("resources").list.first().struct.field("ARN")),
        first(pl.col("resources").list.first().struct.field("arn")),
        *(first(params.struct.field(k)) for k in _TARGET_KEYS),
        first(
            params.struct.field("instancesSet").struct.field("items").list.first().struct.field("instanceId")
        ),
    )
    batch = (
        pl.col("_here")
        & line.str.contains(_NAME_IS_TEXT)
        & (pl.col("eventName").fill_null("") != "")
        & event_id.is_not_null()
        & (pl.col("eventTime").fill_null("") != "")
    )
    frame = frame.with_columns(
        batch.alias("batch"),
        event_id.alias("_event_id"),
        error_code.alias("_code"),
        failed.alias("_failed"),
        target.alias("target"),
        first(pl.col("awsRegion")).alias("_region"),
    )
    rules = _per_value(
        frame,
        ["eventSource", "eventName"],
        ["_service", "type", "action", "_source_action"],
        lambda source, name: classify(source, name or ""),
    )
    # principalId names the actor only when neither userName nor arn does, and is an email
    # only with an @: elsewhere it is left out, so a principal's records share one identity
    person = pl.col("userIdentity")
    principal = person.struct.field("principalId")
    needed = principal.str.contains("@", literal=True) | (
        first(person.struct.field("userName")).is_null() & first(person.struct.field("arn")).is_null()
    )
    frame = frame.with_columns(
        person.struct.with_fields(pl.when(needed).then(principal).alias("principalId")).alias("_who")
    )
    people = _per_value(frame, ["_who"], ["actor", "email"], lambda identity: who(identity))
    frame = frame.with_columns(first(params.struct.field("policyArn")).alias("_policy"))
    grants = _per_value(frame, ["eventName", "_policy"], ["_granting", "after"], granted)
    frame = frame.join(grants, on=["eventName", "_policy"], how="left", nulls_equal=True)
    frame = frame.join(rules, on=["eventSource", "eventName"], how="left", nulls_equal=True)
    frame = frame.join(people, on="_who", how="left", nulls_equal=True)
    ip = pl.col("sourceIPAddress")
    canonical_v4 = ip.str.contains(f"^{IPV4.pattern}$").fill_null(False)
    # the other forms by ip_or_none, once per distinct value (Python, outside polars)
    odd = frame.filter(ip.is_not_null() & ~canonical_v4).select(ip.unique())
    ips = _per_value(odd, ["sourceIPAddress"], ["ip"], lambda value: (ip_or_none(value),))
    frame = frame.join(ips, on="sourceIPAddress", how="left").with_columns(
        pl.when(canonical_v4).then(ip).otherwise(pl.col("ip")).alias("ip")
    )
    message = pl.col("errorMessage")
    return frame.select(
        pl.concat_str(pl.lit("aws-"), "_event_id").alias("id"),
        pl.col("eventTime").alias("time"),
        "actor",
        "email",
        "type",
        "action",
        "target",
        pl.when("_failed").then(pl.lit("failed")).otherwise(pl.lit("done")).alias("result"),
        "ip",
        pl.coalesce(first(pl.col("requestID")), "_event_id").alias("request_id"),
        pl.concat_str(
            pl.when(pl.col("actor").fill_null("") != "")
            .then("actor")
            .otherwise(pl.lit("an unknown principal")),
            pl.lit(" called "),
            "_service",
            pl.lit(":"),
            "eventName",
            pl.concat_str(pl.lit(" on "), "target").fill_null(""),
            pl.concat_str(pl.lit(" granting "), "_granting").fill_null(""),
            pl.concat_str(pl.lit(" in "), "_region").fill_null(""),
            pl.when("_failed")
            .then(pl.concat_str(pl.lit("; it failed: "), pl.col("_code").fill_null("Failure")))
            .otherwise(pl.lit("")),
        ).alias("description"),
        pl.when(pl.col("_code").is_not_null())
        .then(
            pl.concat_str(
                "_code",
                pl.when(message.fill_null("") != "")
                .then(pl.concat_str(pl.lit(": "), message))
                .otherwise(pl.lit("")),
            )
        )
        .when(login_failed)
        .then(pl.lit("ConsoleLogin: Failure"))
        .alias("error"),
        "after",
        pl.concat_str(
            pl.lit('{"record": '),
            "line",
            pl.lit(', "source": "aws.cloudtrail", "source_action": '),
            "_source_action",
            pl.lit("}"),
        ).alias("params"),
        "batch",
    )


def _first_text(expr: pl.Expr) -> pl.Expr:
    """:func:`~.base.first_text` of one value: the text stripped, or null when blank."""
    stripped = expr.str.strip_chars(PY_SPACE)
    return pl.when(stripped != "").then(stripped)


def _per_value(frame: pl.DataFrame, keys: list[str], names: list[str], rule: Any) -> pl.DataFrame:
    """``rule`` of each distinct value of ``keys`` (Python objects), as columns ``names``."""
    distinct = frame.select(keys).unique()
    values = [rule(*row) for row in distinct.iter_rows()]
    out = pl.DataFrame(values, schema=[(n, _TEXT) for n in names], orient="row")
    return pl.concat([distinct, out], how="horizontal")


def _sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    if "detail" in keys and "detail-type" in keys:  # EventBridge
        keys = keys_of(obj["detail"])
    return {"eventName", "eventSource", "eventTime"} <= keys or "CloudTrailEvent" in keys


def _read(lines: Lines, context: Context) -> Iterator[RawRow]:
    return mapped(json_records(lines), map_record)


def _read_alone(lines: Lines, context: Context) -> Iterator[RawRow]:
    return mapped(json_records(lines, documents=False), map_record)


def _starts(text: str) -> bool:
    """Whether a file's first line is one CloudTrail record (not a Records document)."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("eventName"), str)
        and not isinstance(obj.get("Records"), list)
    )


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
        ("after", "Attach*Policy: {role: the policy's name, policy: policyArn}"),
        ("params", "{source, source_action: service:eventName, record}"),
    ),
    sniff=_sniff,
    read=_read,
    caveats="sourceIPAddress that is a service name (ec2.amazonaws.com) or not a valid address "
    "(anonymised 035.1.2.3) leaves ip empty; the record keeps it.",
    actions=ACTIONS,
    lines=LineMapper(starts=_starts, map=map_lines, read=_read_alone),
)

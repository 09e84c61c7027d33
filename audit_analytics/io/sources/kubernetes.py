"""Kubernetes API server audit (``audit.k8s.io/v1`` and ``v1beta1`` Event lines, or an
``EventList``): one row per ``auditID``, not one per stage.

A request is logged at up to four stages (RequestReceived, ResponseStarted, ResponseComplete,
Panic); the row is the ResponseComplete or Panic stage, which knows the response code. An
earlier stage is held until its completion arrives (at most :data:`OPEN_REQUESTS` at once;
one that never completes is imported as it is). The stages folded away are not counted as rows.

>>> rows = list(SOURCE.read(iter([
...     (1, b'{"kind":"Event","auditID":"a1","stage":"RequestReceived","verb":"create",'
...         b'"user":{"username":"ann"},"objectRef":{"resource":"clusterrolebindings","name":"x"},'
...         b'"requestReceivedTimestamp":"2023-05-17T15:08:22Z"}'),
...     (2, b'{"kind":"Event","auditID":"a1","stage":"ResponseComplete","verb":"create",'
...         b'"user":{"username":"ann"},"objectRef":{"resource":"clusterrolebindings","name":"x"},'
...         b'"responseStatus":{"code":403},"requestReceivedTimestamp":"2023-05-17T15:08:22Z"}')]),
...     Context("audit.log")))
>>> [(line, row["id"], row["type"], row["action"], row["result"]) for line, _, row, _ in rows]
[(2, 'k8s-a1', 'user', 'grant', 'failed')]
"""

from __future__ import annotations

import json
from collections import OrderedDict
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
    cut,
    dig,
    first_text,
    ip_or_none,
    json_records,
    keys_of,
    raw_id,
    stable_id,
)

__all__ = ["OPEN_REQUESTS", "RESOURCES", "SOURCE", "VERBS", "map_event"]

OPEN_REQUESTS = 10_000
_FINAL = ("ResponseComplete", "Panic")

VERBS: dict[str, str] = {
    "create": "create",
    "update": "update",
    "patch": "update",
    "delete": "delete",
    "deletecollection": "delete",
    "get": "read",
    "list": "read",
    "watch": "read",
    "proxy": "proxy",
    "impersonate": "impersonate",
    "escalate": "permission_change",
    "bind": "grant",
}
"""Kubernetes verb -> our action (for resources without a rule)."""

RESOURCES: dict[str, str] = {
    "roles": "user",
    "clusterroles": "user",
    "rolebindings": "user",
    "clusterrolebindings": "user",
    "serviceaccounts": "user",
    "users": "user",
    "groups": "organization",
    "certificatesigningrequests": "auth",
    "tokenreviews": "auth",
    "subjectaccessreviews": "auth",
    "selfsubjectaccessreviews": "auth",
    "selfsubjectrulesreviews": "auth",
    "secrets": "secret",
    "namespaces": "infra",
    "nodes": "infra",
    "persistentvolumes": "infra",
    "persistentvolumeclaims": "infra",
    "networkpolicies": "infra",
    "pods": "service",
    "deployments": "service",
    "replicasets": "service",
    "statefulsets": "service",
    "daemonsets": "service",
    "jobs": "service",
    "cronjobs": "service",
    "services": "service",
    "configmaps": "service",
    "horizontalpodautoscalers": "service",
    "ingresses": "domain",
    "certificates": "domain",
    "events": "monitoring",
    "mutatingwebhookconfigurations": "webhook",
    "validatingwebhookconfigurations": "webhook",
}
"""objectRef.resource -> our type; other resources are ``system``."""

# (resource, verb) -> (type, action) where the verb alone says too little
ACTIONS: dict[str, ActionRule] = {
    "rolebindings create": ("user", "grant"),
    "clusterrolebindings create": ("user", "grant"),
    "rolebindings update": ("user", "role_change"),
    "clusterrolebindings update": ("user", "role_change"),
    "rolebindings patch": ("user", "role_change"),
    "clusterrolebindings patch": ("user", "role_change"),
    "rolebindings delete": ("user", "revoke"),
    "clusterrolebindings delete": ("user", "revoke"),
    "roles create": ("user", "role_update"),
    "clusterroles create": ("user", "role_update"),
    "roles update": ("user", "role_update"),
    "clusterroles update": ("user", "role_update"),
    "roles patch": ("user", "role_update"),
    "clusterroles patch": ("user", "role_update"),
    "roles delete": ("user", "remove_role"),
    "clusterroles delete": ("user", "remove_role"),
    "pods/exec create": ("service", "exec"),
    "pods/exec get": ("service", "exec"),
    "pods/attach create": ("service", "attach"),
    "pods/portforward create": ("service", "port_forward"),
    "deployments create": ("service", "deploy"),
    "deployments update": ("service", "deploy"),
    "deployments patch": ("service", "deploy"),
    "tokenreviews create": ("auth", "token_review"),
    "serviceaccounts/token create": ("secret", "create"),
}
"""``resource[/subresource] verb`` -> (type, action)."""


def map_event(event: dict[str, Any]) -> Row:
    """One audit Event (its completing stage) -> a row of our schema."""
    audit_id = first_text(event.get("auditID"))
    verb = first_text(event.get("verb"))
    when = first_text(
        event.get("requestReceivedTimestamp"), event.get("timestamp"), event.get("stageTimestamp")
    )
    if verb is None:
        raise ValueError("not a Kubernetes audit event: no verb")
    if when is None:
        raise ValueError("requestReceivedTimestamp: missing")
    ref = as_dict(event.get("objectRef"))
    resource = first_text(ref.get("resource"))
    sub = first_text(ref.get("subresource"))
    full = f"{resource}/{sub}" if resource and sub else resource
    if full:
        rule = ACTIONS.get(f"{full} {verb}") or (
            RESOURCES.get(resource or "", "system"),
            VERBS.get(verb, verb),
        )
    else:
        rule = ("system", VERBS.get(verb, verb))
    kind, action = rule
    user = as_dict(event.get("user"))
    actor = first_text(user.get("username"))
    impersonated = first_text(dig(event, "impersonatedUser", "username"))
    ips = event.get("sourceIPs")
    ip = ip_or_none(ips[0]) if isinstance(ips, list) and ips else None
    code = dig(event, "responseStatus", "code")
    failed = isinstance(code, int) and code >= 400 or event.get("stage") == "Panic"
    target: str | None
    if full:
        target = "/".join(
            x for x in (first_text(ref.get("namespace")), full, first_text(ref.get("name"))) if x
        )
    else:
        target = first_text(event.get("requestURI"))
    message = first_text(dig(event, "responseStatus", "message"), dig(event, "responseStatus", "reason"))
    # a role binding's role: what it grants (kept as the role after, named in the sentence)
    role = (
        first_text(
            dig(event, "requestObject", "roleRef", "name"), dig(event, "responseObject", "roleRef", "name")
        )
        if resource in ("rolebindings", "clusterrolebindings") and verb in ("create", "update", "patch")
        else None
    )
    text = f"{actor or 'an unknown user'} {verb} {target or 'the API'}"
    text += f" granting {role}" if role else ""
    text += f" as {impersonated}" if impersonated else ""
    text += f" (HTTP {code})" if code is not None else ""
    return {
        "id": stable_id("k8s", audit_id) if audit_id else raw_id("k8s", repr(sorted(event.items()))),
        "time": when,
        "actor": actor,
        "type": kind,
        "action": action,
        "target": target,
        "result": "failed" if failed else "done",
        "ip": ip,
        "request_id": audit_id,
        "description": text,
        "error": (message or f"HTTP {code}") if failed else None,
        "after": json.dumps({"role": role}) if role else None,
        "params": {
            "source": "kubernetes.audit",
            "source_action": f"{full or 'nonResource'} {verb}",
            "record": event,
        },
    }


def _read(lines: Lines, context: Context) -> Iterator[RawRow]:
    held: OrderedDict[str, tuple[int, str, dict[str, Any]]] = OrderedDict()

    def emit(number: int, raw: str, event: dict[str, Any]) -> RawRow:
        try:
            return number, raw, map_event(event), None
        except ValueError as exc:
            return number, cut(raw), None, str(exc)

    for number, raw, obj, why in json_records(lines):
        if why is not None or not isinstance(obj, dict):
            yield number, raw, None, why or "a JSON value where an audit Event object was expected"
            continue
        audit_id = obj.get("auditID")
        stage = obj.get("stage")
        if not isinstance(audit_id, str) or stage in _FINAL or stage is None:
            if isinstance(audit_id, str):
                held.pop(audit_id, None)
            yield emit(number, raw, obj)
            continue
        held[audit_id] = (number, raw, obj)  # a later stage of the same request replaces it
        held.move_to_end(audit_id)
        if len(held) > OPEN_REQUESTS:
            _, oldest = held.popitem(last=False)
            yield emit(*oldest)
    for number, raw, obj in held.values():
        yield emit(number, raw, obj)


def _sniff(obj: Any) -> bool:
    keys = keys_of(obj)
    return "auditID" in keys and "verb" in keys and ("stage" in keys or "requestURI" in keys)


SOURCE = Source(
    name="kubernetes",
    title="Kubernetes API server audit",
    shape="json",
    detected_by="Event objects with auditID, verb and stage (one per line, or an EventList)",
    fields=(
        ("id", "k8s-<auditID>"),
        ("time", "requestReceivedTimestamp (v1beta1: timestamp)"),
        ("actor", "user.username"),
        ("type", "objectRef.resource (table); rolebindings/roles are user"),
        ("action", "resource + verb (table: a rolebinding create is grant), else the verb"),
        ("target", "namespace/resource[/subresource]/name, else requestURI"),
        ("result", "failed when responseStatus.code >= 400 or the stage is Panic"),
        ("ip", "sourceIPs[0]"),
        ("request_id", "auditID"),
        ("error", "responseStatus.message or reason"),
        ("after", "a role binding's create/update/patch: {role: roleRef.name}"),
        ("params", "{source, source_action, record: the completing stage's event}"),
    ),
    sniff=_sniff,
    read=_read,
    caveats="One row per auditID: the earlier stages' lines are not counted as rows.",
    actions=ACTIONS,
)

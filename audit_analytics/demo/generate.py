"""Deterministic demo data: an audit log with a working rhythm and injected security stories.

`generate` builds ``n_events`` events over the ``days`` days before ``now``: 200 people
(``first.last@corp.example``) in four home time zones, all 16 categories with fitting actions,
targets, JSON ``params`` / ``before`` / ``after``, multi-step operations sharing a
``request_id``, failures with error text, and asynchronous work that is still ``pending`` or
``processing`` only in the last hour. Its ordinary traffic has the rhythm of a real
organisation:

* each person has a working day of their own in their home zone (starting between 07:00 and
  10:00, 8 to 10 hours long, see `users`), mostly on weekdays; 4 % of their operations spill
  next to it, an early hour before it or an evening up to 22:00, never the middle of the night;
* `N_ON_CALL` operators and developers take a one-week on-call turn in rotation (each one week
  in four, see `on_call_slot`); during their turn 3 % of their operations are night incidents
  between 00:00 and 06:00 home time (a login, an acknowledged alert, a rollback, a scale-up);
* service accounts (``svc-*``) work around the clock, a quarter of their operations in the
  nightly batch window (01:00-04:00 UTC);
* now and then someone mistypes a password: one or two failures, then a success.

Into that traffic it injects known stories (brute force, password spray, account takeover,
off-hours backup deletion, permission escalation, stuck operations), each at least a week after
the period's start (so habit-based detections have history to judge by), and returns their
ground truth, so detections, pages and tests can check that they find exactly what was planted.

Ordinary traffic is built to stay under the default thresholds of the login detections
(see `ORDINARY_LOGIN_LIMITS`): only the stories raise brute-force, spray, account-attack or
success-after-failure findings.

Everything is vectorised with numpy and polars; the output depends only on
``(n_events, seed, now, days)``.

Examples
--------
>>> from datetime import UTC, datetime
>>> from audit_analytics.demo import generate as demo
>>> data = demo.generate(5_000, seed=1, now=datetime(2025, 6, 2, 12, 0, tzinfo=UTC))
>>> data.events.height
5000
>>> data.stories.filter(pl.col("story") == "password_spray")["detection"].item()
'spray'
>>> data.events.filter(pl.col("actor").str.starts_with("svc-"))["time"].dt.hour().n_unique()
24
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from audit_analytics import schema

__all__ = [
    "EMAIL_DOMAIN",
    "HOME_TIME_ZONES",
    "N_ON_CALL",
    "ORDINARY_LOGIN_LIMITS",
    "ROLES",
    "SERVICE_ACCOUNTS",
    "STORIES",
    "STORY_NETWORKS",
    "DemoData",
    "generate",
    "on_call_slot",
    "users",
]

EMAIL_DOMAIN = "corp.example"
HOME_TIME_ZONES: tuple[str, ...] = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC")
ROLES: tuple[str, ...] = ("viewer", "developer", "operator", "auditor", "admin")
SERVICE_ACCOUNTS: tuple[str, ...] = (
    "svc-ci",
    "svc-backup",
    "svc-monitoring",
    "svc-terraform",
    "svc-scheduler",
)
N_PEOPLE = 200

STORIES: dict[str, tuple[str, ...]] = {
    "brute_force": ("brute_force",),
    "password_spray": ("spray",),
    "account_takeover": ("account_attack", "success_after_failure", "permission_changes"),
    "off_hours_backup_deletion": ("off_hours",),
    "permission_escalation": ("permission_changes",),
    "credential_probing": ("denied_calls",),
    "stuck_operation": ("stuck",),
}
"""Story name -> the detections that must find it (the first one is the story's ``detection``)."""

STORY_NETWORKS: dict[str, str] = {
    "brute_force": "203.0.113.0/25",
    "off_hours_backup_deletion": "203.0.113.128/25",
    "password_spray": "192.0.2.0/25",
    "permission_escalation": "192.0.2.128/25",
    "account_takeover": "198.51.100.0/24",
    "credential_probing": "2001:db8:bad::/48",
}
"""Where story IPs come from: the RFC 5737 documentation blocks, never given to ordinary users."""

ORDINARY_LOGIN_LIMITS: dict[str, int] = {
    "consecutive_failures_per_account": 2,
    "max_failures_per_ip_in_120s": 7,
    "max_accounts_failing_per_ip_in_300s": 9,
    "max_failures_before_success_in_600s": 4,
    "max_ips_failing_per_account_in_600s": 4,
}
"""What ordinary (non-story) login traffic never exceeds: one below each detection's default."""

_MINUTE_US = 60_000_000
_HOUR_US = 60 * _MINUTE_US
_DAY_US = 24 * _HOUR_US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MIN_EVENTS = 1_000
_MIN_DAYS = 7
_SERVICE_SHARE = 0.12
# A person's operations outside their own working day: an early hour before it or an evening
# after it (up to _EVENING_END), never the middle of the night.
_EXTRA_HOURS_SHARE = 0.04
_EARLY_HOURS = 1.0
_EVENING_END = 22.0
# Service accounts: around the clock, with a share in the nightly batch window (UTC).
_BATCH_SHARE = 0.25
_BATCH_HOURS = (1.0, 4.0)
# On-call engineers: a few operators/developers taking a week each in turn; during their week a
# share of their operations are night incidents (00:00-06:00 home time).
N_ON_CALL = 4
_ON_CALL_NIGHT_SHARE = 0.03
_NIGHT_END = 6.0
_NIGHT_KINDS: dict[tuple[str, ...], float] = {
    ("auth/login",): 0.3,
    ("vpn/connect",): 0.15,
    ("monitoring/acknowledge",): 0.2,
    ("service/rollback", "monitoring/acknowledge"): 0.1,
    ("service/scale",): 0.1,
    ("infra/scale",): 0.05,
    ("service/configure",): 0.05,
    ("service/configure", "service/deploy", "monitoring/update"): 0.05,
}
# A story starts at least this many whole days after the period's start: the off-hours
# detection needs a week of log before it judges anyone.
_STORY_MIN_DAYS = 8
# Ordinary pending/processing stay younger than this, under the 1 h "stuck" threshold;
# only the stuck_operation story is older.
_RECENT_ASYNC_US = 50 * _MINUTE_US
# Login-failure operations of one account closer than this are turned into successes, which
# keeps every ordinary account (and so every ordinary IP: IPs are never shared) at <= 2
# failures per 10 minutes.
_FAILURE_SPACING_US = 15 * _MINUTE_US
_TZ_WEIGHTS = (0.4, 0.3, 0.15, 0.15)
# The role a role change gives (ROLES order): admin rights are granted seldom.
_ROLE_TO_WEIGHTS = np.array([0.35, 0.35, 0.2, 0.07, 0.03])
_WEEKDAY_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.97, 0.9, 0.1, 0.08])

_FIRST_NAMES = (
    "alice", "bruno", "chloe", "david", "emma", "farid", "grace", "hugo", "ines", "jules",
    "kenji", "laura", "marc", "nadia", "omar", "paula", "quentin", "rosa", "sami", "tara",
    "ugo", "vera", "william", "xavier", "yuki", "zoe", "adam", "beatrice", "carlos", "diane",
    "elena", "felix", "gina", "haruto", "ivan", "julia", "karim", "lina", "mateo", "noah",
)  # fmt: skip
_LAST_NAMES = (
    "martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy",
    "moreau", "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis",
    "wilson", "taylor", "sato", "suzuki", "takahashi", "tanaka", "watanabe", "ito", "nakamura",
    "kobayashi", "kato", "yamamoto", "rossi", "silva", "novak", "costa", "weber", "fischer",
    "kowalski", "larsen", "nielsen", "murphy",
)  # fmt: skip
# Home ISP prefixes per time zone (ordinary users' second and third addresses).
_ISP_PREFIX = {"Europe/Paris": "90.84", "America/New_York": "73.162", "Asia/Tokyo": "126.77", "UTC": "81.2"}

_TARGETS: dict[str, tuple[str, ...]] = {
    "device": tuple(
        f"{kind}-{site}-{num:04d}"
        for kind in ("laptop", "phone", "yubikey")
        for site in ("par", "nyc", "tyo", "lon")
        for num in (112, 347, 1088, 2215)
    ),
    "infra": (
        "k8s-prod-eu1", "k8s-prod-us1", "k8s-prod-ap1", "k8s-staging-eu1", "vpc-core", "vpc-edge",
        "node-pool-a", "node-pool-b", "node-pool-gpu", "lb-public-eu", "lb-public-us", "bastion-eu1",
    ),
    "service": (
        "payments-api", "orders-api", "checkout-web", "search-api", "auth-gateway",
        "notifications-worker", "billing-worker", "inventory-api", "reporting-batch", "pricing-api",
    ),
    "auth": ("console", "api", "cli", "sso"),
    "backup": (
        "bkp-orders-db-daily", "bkp-payments-db-daily", "bkp-users-db-weekly", "bkp-files-nightly",
        "bkp-analytics-weekly", "bkp-config-hourly", "bkp-inventory-db-daily", "bkp-mail-archive",
    ),
    "database": (
        "orders-db", "payments-db", "users-db", "analytics-warehouse", "inventory-db",
        "sessions-redis", "search-es",
    ),
    "user": (),  # people: filled per row
    "organization": ("team-platform", "team-payments", "team-security", "team-data", "team-mobile", "org-settings"),
    "audit": ("audit-log", "retention-policy", "audit-export"),
    "vpn": ("vpn-gw-paris", "vpn-gw-nyc", "vpn-gw-tokyo", "tunnel-paris-aws", "tunnel-nyc-gcp"),
    "secret": (
        "prod/payments/stripe-key", "prod/orders/db-password", "prod/auth/jwt-signing-key",
        "staging/orders/db-password", "ci/deploy-token", "prod/mail/smtp-password", "prod/search/api-key",
    ),
    "domain": ("corp.example", "api.corp.example", "shop.corp.example", "status.corp.example", "staging.corp.example"),
    "monitoring": (
        "alert-high-latency", "alert-error-rate", "alert-disk-full", "dashboard-sre-overview",
        "slo-checkout-availability", "alert-cert-expiry",
    ),
    "system": ("platform", "scheduler", "control-plane", "os-patching", "licence-server"),
    "webhook": ("wh-slack-alerts", "wh-pagerduty", "wh-github-ci", "wh-billing-events", "wh-jira-sync"),
    "db_backup": ("snap-orders-db", "snap-payments-db", "pitr-users-db", "snap-analytics-warehouse", "snap-inventory-db"),
}  # fmt: skip

_ERRORS: dict[str, tuple[str, ...]] = {
    "device": ("device not found in inventory", "serial number already registered", "permission denied"),
    "infra": ("quota exceeded for region", "timeout waiting for cloud provider", "invalid CIDR overlaps existing network"),
    "service": ("health check failed after deploy", "image pull failed: manifest unknown", "timeout waiting for rollout"),
    "auth": ("invalid username or password", "MFA code rejected", "invalid username or password"),
    "backup": ("storage bucket unreachable", "checksum mismatch", "backup is locked by retention policy"),
    "database": ("insufficient storage for resize", "connection refused", "parameter value out of range"),
    "user": ("user already exists", "permission denied", "invalid email address"),
    "organization": ("permission denied", "team not found", "member already in team"),
    "audit": ("export too large, narrow the period", "permission denied", "archive destination unavailable"),
    "vpn": ("tunnel negotiation failed (IKE timeout)", "certificate expired", "gateway unreachable"),
    "secret": ("access denied by policy", "secret version not found", "KMS key disabled"),
    "domain": ("DNS propagation timeout", "ACME challenge failed", "record conflicts with existing CNAME"),
    "monitoring": ("invalid query expression", "notification channel unreachable", "rule already exists"),
    "system": ("maintenance window closed", "node drain timed out", "package repository unreachable"),
    "webhook": ("endpoint returned HTTP 500", "TLS handshake failed", "endpoint timed out after 10 s"),
    "db_backup": ("snapshot quota exceeded", "point-in-time target outside retention", "replica lag too high"),
}  # fmt: skip

_REGIONS = ("eu-west-1", "us-east-1", "ap-northeast-1", "eu-central-1")
_ENVS = ("prod", "staging", "dev")
_INSTANCE_CLASSES = ("db.m6.large", "db.m6.xlarge", "db.r6.2xlarge", "db.r6.4xlarge")
_ALERT_SEVERITIES = ("warning", "critical", "info")
_DNS_TYPES = ("A", "AAAA", "CNAME", "TXT")
_DEVICE_OS = ("macOS 14.5", "Windows 11 23H2", "Ubuntu 24.04", "iOS 17.5", "Android 14")
_ROLE_CHANGE_SUFFIX = " from <role_from> to <role_to>"


@dataclass(frozen=True, slots=True)
class _Action:
    """One (category, action) with its wording and JSON templates (``<slot>`` placeholders)."""

    type: str
    action: str
    past: str
    verb: str
    text: str
    human: float
    service: float = 0.0
    params: str | None = None
    before: str | None = None
    after: str | None = None
    asynchronous: bool = False
    fail_rate: float = 0.03
    admin_only: bool = False


def _a(type_: str, action: str, past: str, verb: str, noun: str, human: float, **kw: Any) -> _Action:
    text = kw.pop("text", f"<actor> <did> {noun} <target>" if noun else "<actor> <did> <target>")
    return _Action(type_, action, past, verb, text, human, **kw)


_REPLICAS = '"replicas":<n>'
_ACTIONS: tuple[_Action, ...] = (
    # device
    _a("device", "register", "registered", "register", "device", 1.0,
       params='{"serial":"SN<build>","os":"<os>"}',
       after='{"owner":"<actor>","os":"<os>","encryption":{"enabled":true,"method":"FileVault"},"managed":true}'),
    _a("device", "update", "updated", "update", "device", 1.5,
       params='{"fields":["os","compliance"]}',
       before='{"owner":"<actor>","os":"<os>","compliance":{"status":"non_compliant","checks":<n>},"managed":true}',
       after='{"owner":"<actor>","os":"<os2>","compliance":{"status":"compliant","checks":<n>},"managed":true}'),
    _a("device", "remove", "removed", "remove", "device", 0.4,
       params='{"reason":"decommissioned"}',
       before='{"owner":"<actor>","os":"<os>","encryption":{"enabled":true},"managed":true}'),
    # infra
    _a("infra", "create", "created", "create", "infrastructure resource", 0.5, service=1.0, asynchronous=True,
       params='{"region":"<region>","ticket":"<ticket>"}',
       after='{"region":"<region>","nodes":<n>,"network":{"cidr":"<cidr>","private":true},"tags":{"env":"<env>"}}'),
    _a("infra", "update", "updated", "update", "infrastructure resource", 1.0, service=2.0,
       params='{"ticket":"<ticket>"}',
       before='{"region":"<region>","nodes":<n>,"network":{"cidr":"<cidr>","private":true},"tags":{"env":"<env>"}}',
       after='{"region":"<region>","nodes":<n2>,"network":{"cidr":"<cidr>","private":true},"tags":{"env":"<env>"}}'),
    _a("infra", "scale", "scaled", "scale", "infrastructure resource", 0.8, service=1.5, asynchronous=True,
       params='{"nodes":<n2>}', before='{"nodes":<n>,"autoscaling":{"min":1,"max":<n2>}}',
       after='{"nodes":<n2>,"autoscaling":{"min":1,"max":<n2>}}'),
    _a("infra", "delete", "deleted", "delete", "infrastructure resource", 0.15, asynchronous=True,
       params='{"ticket":"<ticket>","force":false}',
       before='{"region":"<region>","nodes":<n>,"tags":{"env":"<env>"}}'),
    # service
    _a("service", "deploy", "deployed", "deploy", "service", 2.0, service=4.0, asynchronous=True,
       params='{"image":"<target>:<version2>","strategy":"rolling","build":<build>}',
       before='{"image":{"name":"<target>","tag":"<version>"},' + _REPLICAS + ',"env":"<env>"}',
       after='{"image":{"name":"<target>","tag":"<version2>"},' + _REPLICAS + ',"env":"<env>"}', fail_rate=0.05),
    _a("service", "rollback", "rolled back", "roll back", "service", 0.3, asynchronous=True,
       params='{"to_version":"<version>","reason":"error rate above SLO"}',
       before='{"image":{"name":"<target>","tag":"<version2>"},' + _REPLICAS + "}",
       after='{"image":{"name":"<target>","tag":"<version>"},' + _REPLICAS + "}"),
    _a("service", "scale", "scaled", "scale", "service", 1.0, service=1.0,
       params='{"replicas":<n2>}', before='{"replicas":<n>,"autoscaling":{"enabled":<bool>,"max":<n2>}}',
       after='{"replicas":<n2>,"autoscaling":{"enabled":<bool>,"max":<n2>}}'),
    _a("service", "configure", "configured", "configure", "service", 1.5,
       params='{"keys":["timeout_ms","log_level"]}',
       before='{"env":"<env>","config":{"timeout_ms":<ttl>,"log_level":"info","feature_flags":{"new_checkout":<bool>}}}',
       after='{"env":"<env>","config":{"timeout_ms":<ttl2>,"log_level":"debug","feature_flags":{"new_checkout":<bool>}}}'),
    _a("service", "create", "created", "create", "service", 0.2,
       params='{"template":"http-api","env":"<env>"}',
       after='{"image":{"name":"<target>","tag":"<version>"},' + _REPLICAS + ',"env":"<env>","port":<port>}'),
    # auth: failures come only from the login kinds below (sparse, spaced; see _FAILURE_SPACING_US)
    _a("auth", "login", "signed in to", "sign in to", "", 14.0, params='{"method":"<login_method>","mfa":true}', fail_rate=0.0),
    _a("auth", "logout", "signed out of", "sign out of", "", 7.0, params='{"reason":"user"}', fail_rate=0.0),
    _a("auth", "password_change", "changed the password of", "change the password of", "account", 0.4,
       params='{"forced":false}', fail_rate=0.0),
    _a("auth", "mfa_enable", "enabled MFA for", "enable MFA for", "account", 0.15,
       params='{"factor":"totp"}', before='{"mfa":{"enabled":false,"factors":[]}}',
       after='{"mfa":{"enabled":true,"factors":["totp"]}}', fail_rate=0.0),
    _a("auth", "mfa_verify", "verified MFA for", "verify MFA for", "account", 2.0, params='{"factor":"totp"}', fail_rate=0.0),
    # backup: people delete backups only in office hours (off-hours deletion is a story)
    _a("backup", "create", "created", "create", "backup", 0.4, service=5.0, asynchronous=True,
       params='{"type":"full","compression":"zstd"}',
       after='{"size_gb":<size>,"location":{"region":"<region>","bucket":"backups-<env>"},"encrypted":true,"retention_days":<days>}'),
    _a("backup", "restore", "restored", "restore", "backup", 0.15, asynchronous=True,
       params='{"target":"<env>","point":"latest"}',
       before='{"state":"available","size_gb":<size>}', after='{"state":"restored","size_gb":<size>,"restored_to":"<env>"}'),
    _a("backup", "delete", "deleted", "delete", "backup", 0.2,
       params='{"reason":"expired"}',
       before='{"size_gb":<size>,"location":{"region":"<region>","bucket":"backups-<env>"},"retention_days":<days>}'),
    _a("backup", "update", "updated", "update", "backup", 0.2,
       params='{"fields":["retention_days"]}',
       before='{"retention_days":<days>,"encrypted":true,"schedule":{"cron":"0 <hour> * * *"}}',
       after='{"retention_days":<days2>,"encrypted":true,"schedule":{"cron":"0 <hour> * * *"}}'),
    # database
    _a("database", "create", "created", "create", "database", 0.2, asynchronous=True,
       params='{"engine":"postgres","version":"16"}',
       after='{"engine":"postgres","class":"<class>","storage_gb":<size>,"ha":{"enabled":<bool>,"replicas":<n>}}'),
    _a("database", "resize", "resized", "resize", "database", 0.4, asynchronous=True,
       params='{"class":"<class2>"}', before='{"class":"<class>","storage_gb":<size>}',
       after='{"class":"<class2>","storage_gb":<size2>}'),
    _a("database", "configure", "configured", "configure", "database", 0.8,
       params='{"parameters":["max_connections","work_mem"]}',
       before='{"parameters":{"max_connections":<count>,"work_mem_mb":<n>},"ha":{"enabled":<bool>}}',
       after='{"parameters":{"max_connections":<count2>,"work_mem_mb":<n2>},"ha":{"enabled":<bool>}}'),
    _a("database", "export", "exported", "export", "database", 0.2, params='{"format":"csv","tables":<n>}'),
    _a("database", "delete", "deleted", "delete", "database", 0.05,
       params='{"final_snapshot":true}', before='{"engine":"postgres","class":"<class>","storage_gb":<size>}'),
    # user (targets are people)
    _a("user", "create", "created", "create", "user", 0.2, admin_only=True,
       params='{"invite":true}', after='{"username":"<target>","email":"<target>@corp.example","role":"viewer","mfa":{"required":true}}'),
    _a("user", "update", "updated", "update", "user", 0.6,
       params='{"fields":["display_name","locale"]}',
       before='{"username":"<target>","profile":{"locale":"en","timezone":"UTC"},"active":true}',
       after='{"username":"<target>","profile":{"locale":"fr","timezone":"Europe/Paris"},"active":true}'),
    _a("user", "role_change", "changed", "change", "", 0.03, admin_only=True, fail_rate=0.005,
       text="<actor> <did> the role of <target>" + _ROLE_CHANGE_SUFFIX,
       params='{"reason":"<ticket>"}', before='{"role":"<role_from>"}', after='{"role":"<role_to>"}'),
    _a("user", "disable", "disabled", "disable", "user", 0.08, admin_only=True,
       params='{"reason":"offboarding"}', before='{"active":true,"sessions":<n>}', after='{"active":false,"sessions":0}'),
    # organization
    _a("organization", "update", "updated", "update", "organization setting", 0.2, admin_only=True,
       params='{"fields":["session_timeout_min"]}',
       before='{"session_timeout_min":<ttl_min>,"sso":{"enforced":true,"provider":"okta"}}',
       after='{"session_timeout_min":<ttl_min2>,"sso":{"enforced":true,"provider":"okta"}}'),
    _a("organization", "permission_change", "changed permissions on", "change permissions on", "", 0.03, admin_only=True,
       fail_rate=0.005,
       params='{"member":"<member>"}',
       before='{"member":"<member>","permissions":{"deploy":false,"billing":false}}',
       after='{"member":"<member>","permissions":{"deploy":true,"billing":false}}'),
    _a("organization", "add_member", "added", "add", "", 0.05, admin_only=True, fail_rate=0.005,
       text="<actor> <did> <member> to <target>",
       params='{"member":"<member>"}', after='{"member":"<member>","team_role":"member"}'),
    _a("organization", "remove_member", "removed", "remove", "", 0.1, admin_only=True,
       text="<actor> <did> <member> from <target>",
       params='{"member":"<member>"}', before='{"member":"<member>","team_role":"member"}'),
    # audit
    _a("audit", "read", "searched", "search", "", 0.8, params='{"query":"type:auth result:failed","rows":<count>}'),
    _a("audit", "export", "exported", "export", "", 0.3, params='{"format":"xlsx","rows":<count>}'),
    _a("audit", "policy_change", "changed the retention policy of", "change the retention policy of", "", 0.03,
       admin_only=True, params='{"group":"security"}',
       before='{"retention":{"security_days":<days>,"operational_days":30},"archive":true}',
       after='{"retention":{"security_days":<days2>,"operational_days":30},"archive":true}'),
    _a("audit", "archive", "archived", "archive", "", 0.0, service=0.5,
       params='{"older_than_days":<days>,"rows":<count>}'),
    # vpn
    _a("vpn", "connect", "connected to", "connect to", "", 3.0, params='{"client":"wireguard","client_ip":"10.99.<n>.<hour>"}'),
    _a("vpn", "disconnect", "disconnected from", "disconnect from", "", 2.0, params='{"duration_s":<count>}', fail_rate=0.0),
    _a("vpn", "update", "updated", "update", "VPN gateway", 0.1,
       params='{"ticket":"<ticket>"}',
       before='{"cipher":"aes-256-gcm","peers":<n>,"routes":{"cidr":"<cidr>","nat":<bool>}}',
       after='{"cipher":"aes-256-gcm","peers":<n2>,"routes":{"cidr":"<cidr>","nat":<bool>}}'),
    _a("vpn", "revoke", "revoked a client certificate on", "revoke a client certificate on", "", 0.05,
       params='{"serial":"<build>"}', before='{"certificate":{"serial":"<build>","revoked":false}}',
       after='{"certificate":{"serial":"<build>","revoked":true}}'),
    # secret
    _a("secret", "read", "read", "read", "secret", 2.0, service=4.0, params='{"version":<n>}'),
    _a("secret", "create", "created", "create", "secret", 0.2,
       params='{"kms_key":"kms-<env>"}', after='{"version":1,"rotation":{"enabled":<bool>,"days":<days>},"kms_key":"kms-<env>"}'),
    _a("secret", "rotate", "rotated", "rotate", "secret", 0.3, service=0.5,
       params='{"kms_key":"kms-<env>"}', before='{"version":<n>,"rotation":{"enabled":true,"days":<days>}}',
       after='{"version":<n2>,"rotation":{"enabled":true,"days":<days>}}'),
    _a("secret", "delete", "deleted", "delete", "secret", 0.03,
       params='{"recovery_window_days":7}', before='{"version":<n>,"rotation":{"enabled":<bool>,"days":<days>}}'),
    # domain
    _a("domain", "create", "created", "create", "DNS record for", 0.2,
       params='{"type":"<dns_type>"}', after='{"record":{"type":"<dns_type>","ttl":<ttl>,"value":"<ip_value>"},"proxied":<bool>}'),
    _a("domain", "update", "updated", "update", "DNS record for", 0.4,
       params='{"type":"<dns_type>"}',
       before='{"record":{"type":"<dns_type>","ttl":<ttl>,"value":"<ip_value>"},"proxied":<bool>}',
       after='{"record":{"type":"<dns_type>","ttl":<ttl2>,"value":"<ip_value>"},"proxied":<bool2>}'),
    _a("domain", "renew", "renewed the certificate of", "renew the certificate of", "", 0.1, service=0.5, asynchronous=True,
       params='{"issuer":"letsencrypt"}', before='{"certificate":{"expires_in_days":<n>,"issuer":"letsencrypt"}}',
       after='{"certificate":{"expires_in_days":90,"issuer":"letsencrypt"}}'),
    # monitoring
    _a("monitoring", "create", "created", "create", "monitoring rule", 0.3,
       params='{"severity":"<severity>"}',
       after='{"query":"p99_latency_ms > <count>","severity":"<severity>","notify":{"channel":"#oncall","pager":<bool>}}'),
    _a("monitoring", "update", "updated", "update", "monitoring rule", 0.6, service=0.5,
       params='{"fields":["threshold"]}',
       before='{"threshold_pct":<pct>,"severity":"<severity>","notify":{"channel":"#oncall","pager":<bool>}}',
       after='{"threshold_pct":<pct2>,"severity":"<severity>","notify":{"channel":"#oncall","pager":<bool>}}'),
    _a("monitoring", "acknowledge", "acknowledged", "acknowledge", "alert", 1.0, service=1.0,
       params='{"incident":"INC-<build>"}', fail_rate=0.0),
    _a("monitoring", "delete", "deleted", "delete", "monitoring rule", 0.05,
       before='{"threshold_pct":<pct>,"severity":"<severity>"}'),
    # system
    _a("system", "maintenance", "ran maintenance on", "run maintenance on", "", 0.1, service=1.5, asynchronous=True,
       params='{"window":"<hour>:00-<hour>:30","reason":"patching"}'),
    _a("system", "update", "updated", "update", "system component", 0.1, service=0.5, asynchronous=True,
       params='{"ticket":"<ticket>"}', before='{"version":"<version>","nodes":<n>}', after='{"version":"<version2>","nodes":<n>}'),
    _a("system", "configure", "configured", "configure", "system component", 0.1,
       before='{"settings":{"max_workers":<n>,"log_level":"info"}}', after='{"settings":{"max_workers":<n2>,"log_level":"info"}}'),
    # webhook
    _a("webhook", "create", "created", "create", "webhook", 0.1,
       params='{"events":["deploy","alert"]}', after='{"url":"https://hooks.corp.example/<target>","events":["deploy","alert"],"active":true}'),
    _a("webhook", "update", "updated", "update", "webhook", 0.1,
       before='{"url":"https://hooks.corp.example/<target>","events":["deploy"],"active":true}',
       after='{"url":"https://hooks.corp.example/<target>","events":["deploy","alert"],"active":true}'),
    _a("webhook", "deliver", "delivered", "deliver", "webhook", 0.0, service=6.0,
       params='{"event":"deploy","attempt":<attempt>,"status":<http_status>}', fail_rate=0.06),
    _a("webhook", "delete", "deleted", "delete", "webhook", 0.03, before='{"url":"https://hooks.corp.example/<target>","active":true}'),
    # db_backup
    _a("db_backup", "create", "created", "create", "database snapshot", 0.2, service=3.0, asynchronous=True,
       params='{"consistent":true}', after='{"size_gb":<size>,"engine":"postgres","region":"<region>","retention_days":<days>}'),
    _a("db_backup", "restore", "restored", "restore", "database snapshot", 0.05, asynchronous=True,
       params='{"point_in_time":"latest","target":"<env>"}', before='{"state":"available"}', after='{"state":"restored","target":"<env>"}'),
    _a("db_backup", "delete", "deleted", "delete", "database snapshot", 0.05, before='{"size_gb":<size>,"retention_days":<days>}'),
)  # fmt: skip

_ACTION_INDEX: dict[str, int] = {f"{a.type}/{a.action}": i for i, a in enumerate(_ACTIONS)}
# People do these only in office hours, so off-hours findings come from the stories alone.
_OFFICE_HOURS_ACTIONS = frozenset(
    {
        "delete",
        "remove",
        "remove_member",
        "role_change",
        "permission_change",
        "disable",
        "revoke",
        "restore",
        "export",
    }
)


@dataclass(frozen=True, slots=True)
class _Kind:
    """One kind of operation: its steps (actions) share actor, IP, request_id and target slot."""

    steps: tuple[str, ...]
    human: float
    service: float = 0.0
    failures: int = 0  # leading failed login attempts


_MULTI_STEP_KINDS: tuple[_Kind, ...] = (
    _Kind(("service/configure", "service/deploy", "monitoring/update"), 1.0, 3.0),
    _Kind(("service/rollback", "monitoring/acknowledge"), 0.2),
    _Kind(("db_backup/create", "database/configure", "service/deploy"), 0.2, 0.5),
    _Kind(("infra/create", "database/create", "domain/create", "secret/create"), 0.1, 0.3),
    _Kind(("user/disable", "organization/remove_member", "secret/rotate", "vpn/revoke"), 0.05),
    _Kind(("backup/restore", "database/configure", "monitoring/acknowledge"), 0.05),
    _Kind(("domain/renew", "webhook/deliver"), 0.0, 0.5),
    _Kind(("auth/login", "auth/login"), 0.45, failures=1),
    _Kind(("auth/login", "auth/login", "auth/login"), 0.1, failures=2),
)
_KINDS: tuple[_Kind, ...] = (
    *(_Kind((f"{a.type}/{a.action}",), a.human, a.service) for a in _ACTIONS),
    *_MULTI_STEP_KINDS,
)


@dataclass(frozen=True, slots=True)
class DemoData:
    """Generated demo events and the ground truth of the stories injected into them.

    Attributes
    ----------
    events
        The audit events, exactly `schema.SCHEMA`, sorted by time.
    stories
        One row per injected story: ``story``, ``detection`` (the detection that must find
        it), ``detections`` (every detection that must find it), ``key`` (the IP or account
        at the centre), ``actor``, ``ip``, ``start``, ``end``, ``event_ids``, ``description``.
    """

    events: pl.DataFrame
    stories: pl.DataFrame


# --------------------------------------------------------------------------------------
# people


def users(seed: int = 0) -> pl.DataFrame:
    """The demo's people and service accounts.

    Parameters
    ----------
    seed
        The same seed as `generate`; names, roles, zones and IPs depend on it.

    Returns
    -------
    DataFrame
        ``username``, ``email`` (null for service accounts), ``role``, ``time_zone``,
        ``ips`` (1-3 usual addresses, never shared between accounts), ``service``,
        ``activity`` (relative share of a person's events), ``day_start`` and ``day_hours``
        (a person's working day in their home zone: it starts between 07:00 and 10:00 and
        lasts 8 to 10 hours; null for service accounts) and ``on_call`` (the slot of the
        `N_ON_CALL` operators and developers who take on-call weeks in turn, see
        `on_call_slot`; null for everyone else).

    Examples
    --------
    >>> people = users(0)
    >>> people.height
    205
    >>> people.filter(~pl.col("service"))["email"].str.ends_with("@corp.example").all()
    True
    >>> sorted(people["on_call"].drop_nulls().to_list())
    [0, 1, 2, 3]
    >>> people.filter(pl.col("on_call").is_not_null())["role"].is_in(["operator", "developer"]).all()
    True
    """
    rng = np.random.default_rng([seed, 0])
    pair = rng.choice(len(_FIRST_NAMES) * len(_LAST_NAMES), size=N_PEOPLE, replace=False)
    names = [f"{_FIRST_NAMES[p // len(_LAST_NAMES)]}.{_LAST_NAMES[p % len(_LAST_NAMES)]}" for p in pair]
    zone = rng.choice(len(HOME_TIME_ZONES), size=N_PEOPLE, p=_TZ_WEIGHTS)
    role = rng.choice(len(ROLES), size=N_PEOPLE, p=[0.3, 0.34, 0.14, 0.08, 0.14])
    # Stories need admins in Paris and New York, and non-admins to compromise.
    role[:3] = ROLES.index("admin")
    zone[:3] = [0, 1, 2]
    role[3:5] = ROLES.index("developer")
    n_ips = rng.choice([1, 2, 3], size=N_PEOPLE, p=[0.3, 0.45, 0.25])
    last_octet = rng.integers(2, 255, size=(N_PEOPLE, 3))
    ipv6 = rng.random(N_PEOPLE) < 0.1
    ips: list[list[str]] = []
    for i in range(N_PEOPLE):
        # Office/VPN address first, then home ISP addresses; the third octet is the person's index.
        own = [f"10.20.{i}.{last_octet[i, 0]}"]
        prefix = _ISP_PREFIX[HOME_TIME_ZONES[zone[i]]]
        for j in range(1, n_ips[i]):
            own.append(
                f"2001:db8:4a:{i:x}::{j:x}" if ipv6[i] and j == 1 else f"{prefix}.{i}.{last_octet[i, j]}"
            )
        ips.append(own)
    activity = rng.lognormal(0.0, 0.6, size=N_PEOPLE)
    day_start = 7.0 + 0.25 * rng.integers(0, 13, size=N_PEOPLE)  # 07:00-10:00, quarter hours
    day_hours = 8.0 + 0.25 * rng.integers(0, 9, size=N_PEOPLE)  # 8-10 h
    # On call: operators and developers (not the two the stories may need), in rotation order.
    candidates = np.flatnonzero(np.isin(role, [ROLES.index("operator"), ROLES.index("developer")]))
    candidates = candidates[candidates >= 5]
    on_call: list[int | None] = [None] * N_PEOPLE
    for slot, person in enumerate(rng.choice(candidates, size=N_ON_CALL, replace=False)):
        on_call[int(person)] = slot
    people = pl.DataFrame(
        {
            "username": names,
            "email": [f"{n}@{EMAIL_DOMAIN}" for n in names],
            "role": [ROLES[r] for r in role],
            "time_zone": [HOME_TIME_ZONES[z] for z in zone],
            "ips": ips,
            "service": [False] * N_PEOPLE,
            "activity": activity / activity.sum(),
            "day_start": day_start,
            "day_hours": day_hours,
            "on_call": pl.Series(on_call, dtype=pl.Int8),
        }
    )
    services = pl.DataFrame(
        {
            "username": list(SERVICE_ACCOUNTS),
            "email": [None] * len(SERVICE_ACCOUNTS),
            "role": ["service"] * len(SERVICE_ACCOUNTS),
            "time_zone": ["UTC"] * len(SERVICE_ACCOUNTS),
            "ips": [[f"10.30.0.{10 + k}"] for k in range(len(SERVICE_ACCOUNTS))],
            "service": [True] * len(SERVICE_ACCOUNTS),
            "activity": [1.0 / len(SERVICE_ACCOUNTS)] * len(SERVICE_ACCOUNTS),
            "day_start": [None] * len(SERVICE_ACCOUNTS),
            "day_hours": [None] * len(SERVICE_ACCOUNTS),
            "on_call": [None] * len(SERVICE_ACCOUNTS),
        },
        schema_overrides={
            "email": pl.String,
            "day_start": pl.Float64,
            "day_hours": pl.Float64,
            "on_call": pl.Int8,
        },
    )
    return pl.concat([people, services])


_ROTATION_MONDAY = date(1970, 1, 5)


def on_call_slot(day: date) -> int:
    """The `users` ``on_call`` slot on call in the week (Monday to Sunday) holding ``day``.

    Turns go round the `N_ON_CALL` slots a week each, so everyone on call is on call one
    week in four; a turn runs from Monday 00:00 to Sunday 24:00 in the engineer's home zone.

    Examples
    --------
    >>> [on_call_slot(date(2025, 6, d)) for d in (1, 2, 8, 9, 16, 23, 30)]
    [2, 3, 3, 0, 1, 2, 3]
    """
    return (day - _ROTATION_MONDAY).days // 7 % N_ON_CALL


# --------------------------------------------------------------------------------------
# helpers


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def _hex_ids(prefix: str, keys: np.ndarray) -> pl.Series:
    """``prefix`` + 16 hex digits of splitmix64(keys): distinct keys give distinct ids."""
    z = keys.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    byte_hex = digits[np.arange(256) >> 4].astype(np.uint16) | (
        digits[np.arange(256) & 15].astype(np.uint16) << 8
    )
    chars = np.empty((len(z), len(prefix) + 16), dtype=np.uint8)
    chars[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    chars[:, len(prefix) :] = (
        byte_hex[z.astype(">u8").view(np.uint8).reshape(-1, 8)].view(np.uint8).reshape(-1, 16)
    )
    return pl.Series(chars.view(f"S{len(prefix) + 16}").ravel()).cast(pl.String)


def _seed_key(seed: int, salt: int) -> np.uint64:
    return np.uint64((seed * 0x100000001B3 + salt * 0x9E3779B1) % 2**64)


def _pick(values: tuple[Any, ...], by: pl.Expr) -> pl.Expr:
    return pl.lit(pl.Series(values)).gather(by % len(values))


def _slots() -> dict[str, pl.Expr]:
    """Template slot -> expression over the skeleton's random columns r1, r2 (per operation), r3."""
    r1, r2, r3 = (pl.col(c).cast(pl.Int64) for c in ("r1", "r2", "r3"))
    n = r1 % 8 + 1
    size = (r1 % 50 + 1) * 10
    ttl = (60, 300, 3600, 86400)
    days = (7, 30, 90, 365)
    return {
        "actor": pl.col("actor"),
        "target": pl.col("target"),
        "member": pl.col("member"),
        "role_from": pl.col("role_from"),
        "role_to": pl.col("role_to"),
        "n": n,
        "n2": n + r2 % 4 + 1,
        "size": size,
        "size2": size * 2,
        "count": r1 % 5000 + 10,
        "count2": r1 % 5000 + 60,
        "build": r3 % 90000 + 10000,
        "ticket": pl.concat_str([pl.lit("CHG-"), (r1 % 9000 + 1000).cast(pl.String)]),
        "region": _pick(_REGIONS, r2),
        "version": pl.format("2.{}.{}", r1 % 30, r2 % 10),
        "version2": pl.format("2.{}.{}", r1 % 30, r2 % 10 + 1),
        "env": _pick(_ENVS, r2 // 7),
        "bool": _pick(("true", "false"), r2 // 3),
        "bool2": _pick(("false", "true"), r2 // 3),
        "ttl": _pick(ttl, r2 // 5),
        "ttl2": _pick(ttl, r2 // 5 + 1),
        "ttl_min": _pick((15, 30, 60, 480), r2 // 5),
        "ttl_min2": _pick((15, 30, 60, 480), r2 // 5 + 1),
        "days": _pick(days, r2 // 11),
        "days2": _pick(days, r2 // 11 + 1),
        "pct": r2 % 40 + 50,
        "pct2": r2 % 40 + 55,
        "hour": r1 % 24,
        "port": _pick((443, 8443, 8080, 9000), r2 // 13),
        "cidr": pl.format("10.{}.0.0/16", r1 % 250),
        "class": _pick(_INSTANCE_CLASSES, r2),
        "class2": _pick(_INSTANCE_CLASSES, r2 + 1),
        "severity": _pick(_ALERT_SEVERITIES, r2),
        "dns_type": _pick(_DNS_TYPES, r2 // 17),
        "ip_value": pl.format("34.{}.{}.{}", r1 % 250, r2 % 250, r3 % 250),
        "os": _pick(_DEVICE_OS, r2),
        "os2": _pick(_DEVICE_OS, r2 + 1),
        "login_method": _pick(("password", "sso", "password", "passkey"), r3),
        "attempt": r3 % 3 + 1,
        "http_status": pl.when(pl.col("result") == "failed")
        .then(pl.lit(500))
        .otherwise(_pick((200, 202, 204), r3)),
    }


_SLOT_RE = re.compile(r"<(\w+)>")


def _render(template: str, slots: dict[str, pl.Expr]) -> pl.Expr:
    parts = _SLOT_RE.split(template)
    pieces = [
        pl.lit(p) if i % 2 == 0 else slots[p].cast(pl.String) for i, p in enumerate(parts) if p or i % 2
    ]
    return pl.concat_str(pieces)


def _render_group(group: pl.DataFrame, action: _Action, slots: dict[str, pl.Expr]) -> pl.DataFrame:
    """Description, params, before, after and error for the rows of one action."""
    result = pl.col("result")
    did = (
        pl.when(result == "done")
        .then(pl.lit(action.past))
        .when(result == "failed")
        .then(pl.lit(f"failed to {action.verb}"))
        .otherwise(pl.lit(f"started to {action.verb}"))
    )
    slots = {**slots, "did": did}
    null = pl.lit(None, dtype=pl.String)
    errors = _ERRORS[action.type]
    return group.select(
        "row",
        description=_render(action.text, slots),
        params=_render(action.params, slots) if action.params else null,
        before=_render(action.before, slots) if action.before else null,
        # A change that failed or has not finished has no "after" yet.
        after=pl.when(result == "done").then(_render(action.after, slots)) if action.after else null,
        error=pl.when(result == "failed").then(_pick(errors, pl.col("r3").cast(pl.Int64) // 3)),
    )


# --------------------------------------------------------------------------------------
# ordinary traffic


def _local_midnights(start_us: int, now_us: int) -> tuple[np.ndarray, np.ndarray, list[date]]:
    """UTC µs of local midnight per (calendar day, home zone), the day's weekday and the days.

    The offset is taken at local noon: DST switches at night, and office hours are what count.
    """
    first = _from_us(start_us).date() - timedelta(days=1)
    n_days = (_from_us(now_us).date() - first).days + 2
    dates = [first + timedelta(days=d) for d in range(n_days)]
    midnight = np.empty((n_days, len(HOME_TIME_ZONES)), dtype=np.int64)
    for z, name in enumerate(HOME_TIME_ZONES):
        zone = ZoneInfo(name)
        for d, day in enumerate(dates):
            offset = datetime(day.year, day.month, day.day, 12, tzinfo=zone).utcoffset() or timedelta(0)
            midnight[d, z] = _to_us(datetime(day.year, day.month, day.day, tzinfo=UTC)) - offset // timedelta(
                microseconds=1
            )
    weekday = np.array([day.weekday() for day in dates])
    return midnight, weekday, dates


def _turn_days(
    people: pl.DataFrame, midnight: np.ndarray, dates: list[date], start_us: int, now_us: int
) -> list[np.ndarray]:
    """Per on-call slot: the indices into ``dates`` of the days of its engineer's turns whose
    night (00:00-06:00 home time) lies inside the period."""
    zone = {
        slot: HOME_TIME_ZONES.index(z)
        for slot, z in people.filter(pl.col("on_call").is_not_null()).select("on_call", "time_zone").rows()
    }
    slots = np.array([on_call_slot(d) for d in dates])
    days: list[np.ndarray] = []
    for k in range(N_ON_CALL):
        night = midnight[:, zone[k]]
        inside = (night >= start_us) & (night + int(_NIGHT_END * _HOUR_US) < now_us - _HOUR_US)
        days.append(np.flatnonzero((slots == k) & inside))
    return days


def _ordinary(n_rows: int, people: pl.DataFrame, seed: int, start_us: int, now_us: int) -> pl.DataFrame:
    """The skeleton (time, who, what, result, ...) of ``n_rows`` ordinary events."""
    rng = np.random.default_rng([seed, 1, n_rows])
    n_people = int((~people["service"]).sum())
    n_accounts = people.height
    admins = np.flatnonzero((people["role"] == "admin").to_numpy())
    zone_of = np.array([HOME_TIME_ZONES.index(z) for z in people["time_zone"]])

    kind_sizes = np.array([len(k.steps) for k in _KINDS])
    kind_failures = np.array([k.failures for k in _KINDS])
    kind_steps = np.array([_ACTION_INDEX[s] for k in _KINDS for s in k.steps])
    kind_first_step = np.concatenate([[0], np.cumsum(kind_sizes)[:-1]])
    kind_admin = np.array([any(_ACTIONS[_ACTION_INDEX[s]].admin_only for s in k.steps) for k in _KINDS])
    kind_office = np.array([any(s.split("/")[1] in _OFFICE_HOURS_ACTIONS for s in k.steps) for k in _KINDS])
    kind_login = np.array([k.steps[0] == "auth/login" for k in _KINDS])
    human_p = np.array([k.human for k in _KINDS])
    service_p = np.array([k.service for k in _KINDS])
    human_p, service_p = human_p / human_p.sum(), service_p / service_p.sum()

    # Operations until they cover n_rows rows (the last one may be cut short).
    mean_size = (1 - _SERVICE_SHARE) * human_p @ kind_sizes + _SERVICE_SHARE * service_p @ kind_sizes
    n_ops = int(n_rows / mean_size * 1.1) + 64
    is_service = rng.random(n_ops) < _SERVICE_SHARE
    kind = np.where(
        is_service, rng.choice(len(_KINDS), n_ops, p=service_p), rng.choice(len(_KINDS), n_ops, p=human_p)
    )
    # Every category at least once, whatever n_rows.
    coverage = [
        next(i for i, k in enumerate(_KINDS) if k.steps[0].startswith(f"{c}/")) for c in schema.CATEGORY_CODES
    ]
    kind[: len(coverage)] = coverage
    is_service[: len(coverage)] = False

    actor = np.where(
        is_service,
        n_people + rng.integers(0, n_accounts - n_people, n_ops),
        rng.choice(n_people, n_ops, p=people["activity"][:n_people].to_numpy()),
    )
    actor = np.where(kind_admin[kind], admins[rng.integers(0, len(admins), n_ops)], actor)

    # On-call nights: a share of an on-call engineer's operations become night incidents
    # (a login, an acknowledged alert, a rollback, ...) on a day of one of their turns.
    midnight, weekday, dates = _local_midnights(start_us, now_us)
    on_call = people["on_call"].fill_null(-1).to_numpy()
    turn_days = _turn_days(people, midnight, dates, start_us, now_us)
    night = (
        (on_call[actor] >= 0)
        & ~is_service
        & (rng.random(n_ops) < _ON_CALL_NIGHT_SHARE)
        & (np.arange(n_ops) >= len(coverage))
    )
    has_turns = np.array([len(days) > 0 for days in turn_days] + [False])
    night &= has_turns[np.where(on_call >= 0, on_call, N_ON_CALL)][actor]
    night_kinds = np.array([next(i for i, k in enumerate(_KINDS) if k.steps == s) for s in _NIGHT_KINDS])
    night_p = np.array(list(_NIGHT_KINDS.values()))
    kind = np.where(night, night_kinds[rng.choice(len(night_kinds), n_ops, p=night_p / night_p.sum())], kind)

    size = kind_sizes[kind]
    ends = np.cumsum(size)
    if ends[-1] < n_rows:  # pragma: no cover - the 10 % margin makes this practically unreachable
        raise RuntimeError("demo: not enough operations drawn")
    n_ops = int(np.searchsorted(ends, n_rows) + 1)
    kind, is_service, size, ends = kind[:n_ops], is_service[:n_ops], size[:n_ops], ends[:n_ops]
    actor, night = actor[:n_ops], night[:n_ops]

    # When: people on their own working day in their home zone, mostly weekdays, now and
    # then an early hour before it or an evening after it; on-call nights in their turns;
    # service accounts around the clock with a nightly batch window.
    day_p = _WEEKDAY_WEIGHTS[weekday] / _WEEKDAY_WEIGHTS[weekday].sum()
    day = rng.choice(len(day_p), n_ops, p=day_p)
    turn_pool = np.concatenate([turn_days[k] for k in range(N_ON_CALL)] + [np.zeros(1, dtype=np.int64)])
    turn_len = np.array([len(turn_days[k]) for k in range(N_ON_CALL)] + [1])
    turn_offset = np.concatenate([[0], np.cumsum(turn_len)[:-1]])
    slot = np.where(night, on_call[actor], N_ON_CALL)
    turn_day = turn_pool[turn_offset[slot] + (rng.random(n_ops) * turn_len[slot]).astype(np.int64)]
    day = np.where(night, turn_day, day)
    day_start = people["day_start"].fill_null(9.0).to_numpy()[actor]
    day_end = day_start + people["day_hours"].fill_null(8.0).to_numpy()[actor]
    extra = (rng.random(n_ops) < _EXTRA_HOURS_SHARE) & ~kind_office[kind]
    early = day_start - _EARLY_HOURS * rng.random(n_ops)
    evening = day_end + np.maximum(_EVENING_END - day_end, 0.5) * rng.random(n_ops)
    hours = np.where(
        night,
        _NIGHT_END * rng.random(n_ops),
        np.where(
            extra,
            np.where(rng.random(n_ops) < 0.3, early, evening),
            day_start + (day_end - day_start) * rng.beta(2.2, 2.4, n_ops),
        ),
    )
    human_t0 = midnight[day, zone_of[actor]] + (hours * _HOUR_US).astype(np.int64)
    batch = rng.random(n_ops) < _BATCH_SHARE
    utc_day = (
        start_us - start_us % _DAY_US + _DAY_US * rng.integers(0, (now_us - start_us) // _DAY_US + 1, n_ops)
    )
    batch_t0 = utc_day + (
        (_BATCH_HOURS[0] + (_BATCH_HOURS[1] - _BATCH_HOURS[0]) * rng.random(n_ops)) * _HOUR_US
    ).astype(np.int64)
    service_t0 = np.where(batch, batch_t0, rng.integers(start_us, now_us, n_ops))
    t0 = np.where(is_service, service_t0, human_t0)
    gap = np.where(
        kind_login[kind],
        rng.integers(4_000_000, 30_000_000, n_ops),
        rng.integers(5_000_000, 150_000_000, n_ops),
    )
    # Shift whole weeks to keep the local hour and weekday, then clip, so each operation fits.
    latest = now_us - (size - 1) * gap - 1_000_000
    week = 7 * _DAY_US
    t0 = np.where(t0 > latest, t0 - week, t0)
    t0 = np.where(t0 < start_us, t0 + week, t0)
    t0 = np.clip(t0, start_us, latest)

    # Keep ordinary login failures sparse: an account's failure operations at least
    # _FAILURE_SPACING_US apart; closer ones become plain successful logins.
    voided = np.zeros(n_ops, dtype=bool)
    failing = np.flatnonzero(kind_failures[kind] > 0)
    order = failing[np.lexsort((t0[failing], actor[failing]))]
    too_close = (actor[order][1:] == actor[order][:-1]) & (np.diff(t0[order]) < _FAILURE_SPACING_US)
    voided[order[1:][too_close]] = True

    # Operations in start order, so rows come out nearly sorted and the row sort below is cheap.
    size[-1] = n_rows - (ends[-1] - size[-1])  # the last operation is cut to fit n_rows exactly
    by_start = np.argsort(t0)
    kind, size, actor, t0, gap, voided = (a[by_start] for a in (kind, size, actor, t0, gap, voided))
    ends = np.cumsum(size)

    # Operation-level random values, repeated onto rows.
    op_r1 = rng.integers(0, 2**31, n_ops)
    op_r2 = rng.integers(0, 2**31, n_ops)
    op_target = rng.integers(0, 2**31, n_ops)
    op_ip = rng.integers(0, 3, n_ops)
    op_fails = rng.random(n_ops)
    op_pending = rng.random(n_ops)
    request_null = (size == 1) & (rng.random(n_ops) < 0.15)

    op = np.repeat(np.arange(n_ops), size)
    step = np.arange(n_rows) - (ends - size)[op]
    action = kind_steps[kind_first_step[kind[op]] + step]
    time = t0[op] + step * gap[op] + rng.integers(0, 1_000_000, n_rows)
    # Rows in time order from here on: the string columns are then built already sorted,
    # which is far cheaper than sorting strings afterwards.
    order = np.argsort(time, kind="stable")
    op, step, action, time = op[order], step[order], action[order], time[order]
    row_actor = actor[op]
    last = step == size[op] - 1

    fail_rate = np.array([a.fail_rate for a in _ACTIONS])
    is_async = np.array([a.asynchronous for a in _ACTIONS])
    failed = ((step < kind_failures[kind[op]]) & ~voided[op]) | (last & (op_fails[op] < fail_rate[action]))
    # Only recent asynchronous work may still be running; older work has finished.
    running = last & is_async[action] & (time > now_us - _RECENT_ASYNC_US) & (op_pending[op] < 0.7)
    result = np.where(running, np.where(op_pending[op] < 0.35, 2, 3), np.where(failed, 1, 0))

    # Targets: a category's resource list; people for `user`; the account itself for auth changes.
    type_of = np.array([schema.CATEGORY_CODES.index(a.type) for a in _ACTIONS])
    lists = [_TARGETS[c] for c in schema.CATEGORY_CODES]
    list_len = np.array([max(len(t), 1) for t in lists])
    list_start = np.concatenate([[0], np.cumsum([len(t) for t in lists])[:-1]])
    row_type = type_of[action]
    target_index = list_start[row_type] + op_target[op] % list_len[row_type]
    other_person = (
        np.where(row_actor < n_people, row_actor, 0) + 1 + op_target[op] % (n_people - 1)
    ) % n_people
    role_index = np.array([ROLES.index(r) for r in people["role"][:n_people]])
    role_from = role_index[other_person]
    # a role change moves someone to another role, seldom to admin (_ROLE_TO_WEIGHTS)
    weights = np.tile(_ROLE_TO_WEIGHTS, (role_from.shape[0], 1))
    weights[np.arange(role_from.shape[0]), role_from] = 0.0
    cumulative = weights.cumsum(axis=1) / weights.sum(axis=1, keepdims=True)
    draw = (op_r2[op] % 1_000_000) / 1_000_000
    role_to = np.minimum((draw[:, None] >= cumulative).sum(axis=1), len(ROLES) - 1)

    ip_lists = people["ips"]
    ip_count = ip_lists.list.len().to_numpy()
    ip_start = np.concatenate([[0], np.cumsum(ip_count)[:-1]])
    ip_index = ip_start[row_actor] + op_ip[op] % ip_count[row_actor]

    names = people["username"]
    action_names = pl.Series([a.action for a in _ACTIONS])
    is_role_change = action == _ACTION_INDEX["user/role_change"]
    self_target = np.isin(
        action, [_ACTION_INDEX[f"auth/{a}"] for a in ("password_change", "mfa_enable", "mfa_verify")]
    )
    frame = pl.DataFrame(
        {
            "time": time,
            "actor": names.gather(row_actor),
            "email": people["email"].gather(row_actor),
            "type": pl.Series(type_of[action]),
            "action_index": pl.Series(action, dtype=pl.Int16),
            "action": action_names.gather(action),
            "target": pl.Series([t for ts in lists for t in ts]).gather(target_index),
            "member": names.gather(other_person),
            "result": pl.Series(result),
            "ip": ip_lists.explode().gather(ip_index),
            "request_id": _hex_ids("req-", op.astype(np.uint64) + _seed_key(seed, 2)),
            "request_null": request_null[op],
            "role_from": pl.Series([ROLES[r] for r in range(len(ROLES))]).gather(role_from),
            "role_to": pl.Series(list(ROLES)).gather(role_to),
            "is_role_change": is_role_change,
            "self_target": self_target,
            "r1": op_r1[op],
            "r2": op_r2[op],
            "r3": rng.integers(0, 2**31, n_rows),
        }
    )
    return frame.with_columns(
        target=pl.when(pl.col("type") == schema.CATEGORY_CODES.index("user"))
        .then(pl.col("member"))
        .when(pl.col("self_target"))
        .then(pl.col("actor"))
        .otherwise(pl.col("target")),
        request_id=pl.when(pl.col("request_null")).then(None).otherwise(pl.col("request_id")),
        role_from=pl.when(pl.col("is_role_change")).then(pl.col("role_from")),
        role_to=pl.when(pl.col("is_role_change")).then(pl.col("role_to")),
        story=pl.lit(-1, dtype=pl.Int8),
    ).drop("request_null", "is_role_change", "self_target")


# --------------------------------------------------------------------------------------
# stories


@dataclass(slots=True)
class _StoryEvents:
    """Rows of one story before rendering, plus the facts of its ground-truth row."""

    story: str
    key: str
    actor: str | None
    ip: str
    description: str
    rows: list[dict[str, Any]]


def _row(
    time_us: int, actor: str, action: str, target: str, ip: str, result: str = "done", **extra: Any
) -> dict[str, Any]:
    return {
        "time": int(time_us),
        "actor": actor,
        "action_key": action,
        "target": target,
        "ip": ip,
        "result": result,
        **extra,
    }


def _stories(people: pl.DataFrame, seed: int, start_us: int, now_us: int) -> list[_StoryEvents]:
    """The injected stories, at offsets from ``now`` drawn from the seed."""
    rng = np.random.default_rng([seed, 7])
    humans = people.filter(~pl.col("service"))
    names = humans["username"].to_list()
    roles = dict(zip(names, humans["role"], strict=True))
    zones = dict(zip(names, humans["time_zone"], strict=True))
    non_admins = [n for n in names if roles[n] != "admin"]
    span_days = (now_us - start_us) // _DAY_US
    # Five distinct whole days inside the period (never today, so nothing lands after now),
    # at least _STORY_MIN_DAYS days after its start when the period is long enough (>= 13 days).
    long_enough = span_days - _STORY_MIN_DAYS >= 5
    latest = span_days - _STORY_MIN_DAYS if long_enough else span_days - 1
    days_ago = rng.choice(np.arange(1, latest + 1), size=5, replace=False)
    earliest_us = start_us + (_STORY_MIN_DAYS - 1) * _DAY_US if long_enough else start_us

    def at(days: int, hour: float) -> int:
        return now_us - int(days) * _DAY_US - (now_us % _DAY_US) + int(hour * _HOUR_US)

    stories: list[_StoryEvents] = []

    # 1. brute force: one IP, 40-80 failures within ~3 minutes against accounts that do not exist.
    ip = f"203.0.113.{rng.integers(10, 120)}"
    accounts = [
        str(a)
        for a in rng.choice(
            ["admin", "root", "administrator", "test", "oracle"], rng.integers(1, 4), replace=False
        )
    ]
    n = int(rng.integers(40, 81))
    t = at(days_ago[0], rng.uniform(0, 23)) + np.cumsum(rng.integers(1_000_000, 4_000_000, n))
    who = [accounts[i] for i in rng.integers(0, len(accounts), n)]
    stories.append(
        _StoryEvents(
            "brute_force", ip, max(accounts, key=who.count), ip,
            f"{n} failed sign-ins from {ip} against {', '.join(accounts)} within {int((t[-1] - t[0]) / 60e6) + 1} minutes.",
            [_row(t[i], who[i], "auth/login", "api", ip, "failed", r3=0) for i in range(n)],
        )
    )  # fmt: skip

    # 2. password spray: another IP, one failure for each of 25-32 real accounts in ~4 minutes.
    ip = f"192.0.2.{rng.integers(10, 120)}"
    victims = [str(v) for v in rng.choice(names, int(rng.integers(25, 33)), replace=False)]
    t = at(days_ago[1], rng.uniform(0, 23)) + np.sort(rng.integers(0, 220_000_000, len(victims)))
    stories.append(
        _StoryEvents(
            "password_spray", ip, None, ip,
            f"{ip} tried one password against {len(victims)} different accounts within 4 minutes.",
            [_row(t[i], v, "auth/login", "sso", ip, "failed", r3=0) for i, v in enumerate(victims)],
        )
    )  # fmt: skip

    # 3. account takeover: failures from 10-14 IPs in 8 minutes, a success, self-granted admin, secret reads.
    victim = str(non_admins[int(rng.integers(0, len(non_admins)))])
    ips = [
        f"198.51.100.{o}" for o in rng.choice(np.arange(10, 250), int(rng.integers(10, 15)), replace=False)
    ]
    attempts = ips + [ips[i] for i in rng.integers(0, len(ips), int(rng.integers(0, 4)))]
    rng.shuffle(attempts)
    t0 = at(days_ago[2], rng.uniform(0, 22))
    t = t0 + np.sort(rng.integers(0, 420_000_000, len(attempts)))
    ip = str(attempts[int(rng.integers(0, len(attempts)))])
    rows = [_row(t[i], victim, "auth/login", "console", a, "failed", r3=0) for i, a in enumerate(attempts)]
    success = t0 + 450_000_000 + int(rng.integers(0, 20_000_000))
    rows.append(_row(success, victim, "auth/login", "console", ip))
    # Within 30 minutes of the success: at most 8 min to the grant, then at most 6 reads 2.5 min apart.
    grant = success + int(rng.integers(180_000_000, 480_000_000))
    rows.append(
        _row(
            grant,
            victim,
            "user/role_change",
            victim,
            ip,
            role_from=roles[victim],
            role_to="admin",
            member=victim,
        )
    )
    reads = rng.choice(_TARGETS["secret"], int(rng.integers(3, 7)), replace=False)
    read_times = grant + np.cumsum(rng.integers(60_000_000, 150_000_000, len(reads)))
    rows.extend(_row(read_times[i], victim, "secret/read", str(s), ip) for i, s in enumerate(reads))
    stories.append(
        _StoryEvents(
            "account_takeover", victim, victim, ip,
            f"{victim} failed to sign in from {len(ips)} IPs within 8 minutes, then signed in from {ip}, "
            f"made itself admin and read {len(reads)} secrets.",
            rows,
        )
    )  # fmt: skip

    # 4. off-hours backup deletion: an admin deletes backups at 03:00 home time on a weekday night.
    admin = next(n for n in names if roles[n] == "admin" and zones[n] in ("Europe/Paris", "UTC"))
    zone = ZoneInfo(zones[admin])
    drawn = _from_us(at(days_ago[3], 0)).astimezone(zone).date()
    day = drawn
    while day.weekday() not in (1, 2, 3, 4):  # the night after Monday-Thursday
        day -= timedelta(days=1)
    if _to_us(datetime(day.year, day.month, day.day, 3, tzinfo=zone)) < earliest_us:
        day = drawn  # too early: the next such night instead
        while day.weekday() not in (1, 2, 3, 4):
            day += timedelta(days=1)
    t0 = _to_us(datetime(day.year, day.month, day.day, 3, tzinfo=zone)) + int(
        rng.integers(0, 10 * _MINUTE_US)
    )
    ip = f"203.0.113.{rng.integers(130, 250)}"
    backups = rng.choice(_TARGETS["backup"], int(rng.integers(4, 7)), replace=False)
    t = t0 + np.cumsum(rng.integers(30_000_000, 120_000_000, len(backups)))
    stories.append(
        _StoryEvents(
            "off_hours_backup_deletion", admin, admin, ip,
            f"{admin} deleted {len(backups)} backups around 03:00 {zones[admin]} time on the night to "
            f"{day:%A %Y-%m-%d}.",
            [_row(t[i], admin, "backup/delete", str(b), ip) for i, b in enumerate(backups)],
        )
    )  # fmt: skip

    # 5. permission escalation: a non-admin grants themselves admin.
    climber = next(n for n in non_admins if n != victim)
    ip = f"192.0.2.{rng.integers(130, 250)}"
    t_grant = at(days_ago[4], rng.uniform(9, 18))
    stories.append(
        _StoryEvents(
            "permission_escalation", climber, climber, ip,
            f"{climber} ({roles[climber]}) granted themselves the admin role.",
            [_row(t_grant, climber, "user/role_change", climber, ip, role_from=roles[climber], role_to="admin", member=climber)],
        )
    )  # fmt: skip

    # 6. credential probing: a developer's stolen token tries what it may do from an unknown
    # address, 20-40 calls in about four minutes, every one refused. Drawn from its own random
    # stream, so the other stories stay where they were.
    probe_rng = np.random.default_rng([seed, 8])
    developers = [n for n in non_admins if n not in (victim, climber)]
    owner = developers[int(probe_rng.integers(0, len(developers)))]
    ip = f"2001:db8:bad::{int(probe_rng.integers(1, 0xFFFF)):x}"
    probe_day = int(probe_rng.integers(1, latest + 1))
    n = int(probe_rng.integers(20, 41))
    t = at(probe_day, probe_rng.uniform(0, 23)) + np.cumsum(probe_rng.integers(2_000_000, 12_000_000, n))
    # (action, r3): r3 // 3 picks the category's "permission denied" error text
    tries = (("audit/export", 3), ("user/update", 3), ("organization/update", 0), ("device/remove", 6))
    rows = []
    for i in range(n):
        action, r3 = tries[int(probe_rng.integers(0, len(tries)))]
        category = action.split("/")[0]
        choices = _TARGETS[category] or tuple(names)  # a user's target is a person
        target = str(choices[int(probe_rng.integers(0, len(choices)))])
        extra = {"member": target} if category == "user" else {}
        rows.append(_row(t[i], owner, action, target, ip, "failed", r3=r3, **extra))
    stories.append(
        _StoryEvents(
            "credential_probing", owner, owner, ip,
            f"{owner}'s credentials tried {n} actions from {ip} within {int((t[-1] - t[0]) / 60e6) + 1} "
            "minutes; every one was refused.",
            rows,
        )
    )  # fmt: skip

    # 7. stuck operations: asynchronous work still pending/processing more than an hour after it started.
    usual_ip = dict(zip(people["username"], people["ips"].list.first(), strict=True))
    stuck = (("svc-backup", "backup/create"), ("svc-ci", "service/deploy"), (names[0], "db_backup/create"))
    for i, (who_, action) in enumerate(stuck):
        started = now_us - int(rng.integers(62 * _MINUTE_US, 100 * _MINUTE_US)) - i * 7 * _MINUTE_US
        state = ("pending", "processing")[int(rng.integers(0, 2))]
        category = action.split("/")[0]
        target = str(_TARGETS[category][int(rng.integers(0, len(_TARGETS[category])))])
        stories.append(
            _StoryEvents(
                "stuck_operation", target, who_, usual_ip[who_],
                f"{action} on {target} started by {who_} has been {state} for more than an hour.",
                [_row(started, who_, action, target, usual_ip[who_], state, request_id=True)],
            )
        )  # fmt: skip
    return stories


def _story_frame(stories: list[_StoryEvents], people: pl.DataFrame, seed: int) -> pl.DataFrame:
    emails = dict(zip(people["username"], people["email"], strict=True))
    rows = [dict(row, story=s) for s, story in enumerate(stories) for row in story.rows]
    rng = np.random.default_rng([seed, 8])
    n = len(rows)
    request_ids = _hex_ids("req-", np.arange(n, dtype=np.uint64) + _seed_key(seed, 3))
    return pl.DataFrame(
        {
            "time": [r["time"] for r in rows],
            "actor": [r["actor"] for r in rows],
            "email": [emails.get(r["actor"]) for r in rows],
            "type": [schema.CATEGORY_CODES.index(r["action_key"].split("/")[0]) for r in rows],
            "action_index": pl.Series([_ACTION_INDEX[r["action_key"]] for r in rows], dtype=pl.Int16),
            "action": [r["action_key"].split("/")[1] for r in rows],
            "target": [r["target"] for r in rows],
            "member": [r.get("member") for r in rows],
            "result": [schema.RESULTS.index(r["result"]) for r in rows],
            "ip": [r["ip"] for r in rows],
            # Attack traffic comes without trace ids; the stuck operations have theirs.
            "request_id": [
                rid if r.get("request_id") else None for r, rid in zip(rows, request_ids, strict=True)
            ],
            "role_from": [r.get("role_from") for r in rows],
            "role_to": [r.get("role_to") for r in rows],
            "r1": rng.integers(0, 2**31, n),
            "r2": rng.integers(0, 2**31, n),
            "r3": [r.get("r3", int(v)) for r, v in zip(rows, rng.integers(0, 2**31, n), strict=True)],
            "story": pl.Series([r["story"] for r in rows], dtype=pl.Int8),
        },
        schema_overrides={
            "email": pl.String,
            "member": pl.String,
            "request_id": pl.String,
            "role_from": pl.String,
            "role_to": pl.String,
        },
    )


# --------------------------------------------------------------------------------------
# public


def generate(
    n_events: int = 50_000, *, seed: int = 0, now: datetime | None = None, days: int = 90
) -> DemoData:
    """Generate ``n_events`` demo audit events with injected, known security stories.

    Parameters
    ----------
    n_events
        Exact number of events, stories included (at least 1,000).
    seed
        Seed of every random choice; the same ``(n_events, seed, now, days)`` gives the same
        frames, byte for byte. Story times depend on ``seed``, ``now`` and ``days`` only.
    now
        End of the period; naive datetimes are taken as UTC. Defaults to the current UTC
        time truncated to the minute.
    days
        Length of the period before ``now`` (at least 7).

    Returns
    -------
    DemoData
        ``events`` (exactly `schema.SCHEMA`, sorted by time, ids ``evt-`` + 16 hex digits)
        and ``stories`` (the ground truth; see `DemoData`).

    Raises
    ------
    ValueError
        If ``n_events`` < 1,000 or ``days`` < 7.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> data = generate(2_000, seed=3, now=datetime(2025, 3, 14, 9, 30, tzinfo=UTC), days=30)
    >>> data.events.schema == schema.SCHEMA
    True
    >>> data.stories.select("story", "detection").head(3).rows()
    [('brute_force', 'brute_force'), ('password_spray', 'spray'), ('account_takeover', 'account_attack')]
    """
    if n_events < _MIN_EVENTS:
        raise ValueError(f"n_events must be at least {_MIN_EVENTS:,} (got {n_events:,}) to hold the stories")
    if days < _MIN_DAYS:
        raise ValueError(f"days must be at least {_MIN_DAYS} (got {days})")
    if now is None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now_us = _to_us(now.astimezone(UTC))
    start_us = now_us - days * _DAY_US

    people = users(seed)
    stories = _stories(people, seed, start_us, now_us)
    story_rows = _story_frame(stories, people, seed)
    ordinary = _ordinary(n_events - story_rows.height, people, seed, start_us, now_us)

    # Both parts are in time order; a merge keeps it without sorting the string columns.
    skeleton = ordinary.merge_sorted(
        story_rows.select(ordinary.columns).sort("time", maintain_order=True), key="time"
    )
    del ordinary
    skeleton = skeleton.with_columns(
        id=_hex_ids("evt-", np.arange(skeleton.height, dtype=np.uint64) + _seed_key(seed, 1)),
        type=pl.lit(pl.Series(schema.CATEGORY_CODES, dtype=schema.TypeDtype)).gather(pl.col("type")),
        result=pl.lit(pl.Series(schema.RESULTS, dtype=schema.ResultDtype)).gather(pl.col("result")),
        time=pl.col("time").cast(pl.Datetime("us", "UTC")),
        row=pl.int_range(pl.len(), dtype=pl.UInt32),
    )
    # Render each action's text and JSON on its own rows, then put them back in time order.
    inputs = skeleton.select(
        "action_index", "row", "actor", "target", "member", "role_from", "role_to", "result", "r1", "r2", "r3"
    )
    groups = sorted(inputs.partition_by("action_index", as_dict=True, maintain_order=True).items())
    del inputs
    slots = _slots()
    rendered = pl.concat([_render_group(group, _ACTIONS[index], slots) for (index,), group in groups]).sort(
        "row"
    )
    del groups
    events = schema.conform(
        pl.concat([skeleton, rendered.drop("row")], how="horizontal").select(schema.COLUMNS)
    )
    rendered = skeleton.select("story", "id", "time")

    story_ids = (
        rendered.lazy()
        .filter(pl.col("story") >= 0)
        .group_by("story")
        .agg(pl.col("id"), pl.col("time").min().alias("start"), pl.col("time").max().alias("end"))
        .sort("story")
        .collect()
    )
    truth = pl.DataFrame(
        {
            "story": [s.story for s in stories],
            "detection": [STORIES[s.story][0] for s in stories],
            "detections": [list(STORIES[s.story]) for s in stories],
            "key": [s.key for s in stories],
            "actor": [s.actor for s in stories],
            "ip": [s.ip for s in stories],
            "start": story_ids["start"],
            "end": story_ids["end"],
            "event_ids": story_ids["id"],
            "description": [s.description for s in stories],
        },
        schema_overrides={"actor": pl.String},
    )
    return DemoData(events=events, stories=truth)

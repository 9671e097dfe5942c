"""The shipped config/ builds the Spec that /work/shared/MSEDB.md describes, value for value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Collection, Field, FieldType, Index, Spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"
DAY = 86400

T = FieldType
S, N, B, D, OID = T.STRING, T.NUMBER, T.BOOL, T.DATE, T.OBJECT_ID
OBJ, A, MAP = T.OBJECT, T.ARRAY, T.MAP
TOKENS = {"encrypted": S, "iv": S, "tag": S}


def tokens(prefix: str) -> dict[str, FieldType]:
    out: dict[str, FieldType] = {f"{prefix}": OBJ}
    for kind in ("accessToken", "refreshToken"):
        out[f"{prefix}.{kind}"] = OBJ
        out.update({f"{prefix}.{kind}.{name}": t for name, t in TOKENS.items()})
    out[f"{prefix}.expiresAt"] = D
    return out


# name -> (model, timestamps, types of every field (dotted; `[]` for array items, `{}` for map values),
#          required, refs, enums, defaults, indexes as (keys, options))
MSEDB: dict[str, dict[str, Any]] = {
    "users": {
        "model": "User",
        "timestamps": False,
        "types": {
            "email": S,
            "microsoftId": S,
            "displayName": S,
            "role": S,
            "isActive": B,
            "preferences": OBJ,
            "preferences.automationPaused": B,
            "preferences.workingHoursStart": N,
            "preferences.workingHoursEnd": N,
            "preferences.aggressiveness": S,
            **tokens("encryptedTokens"),
            "msalCache": S,
            "invitedBy": OID,
            "lastLoginAt": D,
        },
        "required": {"email"},
        "refs": {"invitedBy": "users"},
        "enums": {"role": ("admin", "user"), "preferences.aggressiveness": ("conservative", "moderate", "aggressive")},
        "defaults": {
            "role": "user",
            "isActive": True,
            "preferences.automationPaused": False,
            "preferences.aggressiveness": "moderate",
        },
        "indexes": [((("email", 1),), {"unique": True}), ((("microsoftId", 1),), {"unique": True, "sparse": True})],
    },
    "mailboxes": {
        "model": "Mailbox",
        "timestamps": False,
        "types": {
            "userId": OID,
            "email": S,
            "displayName": S,
            "tenantId": S,
            "isConnected": B,
            **tokens("encryptedTokens"),
            "msalCache": S,
            "lastSyncAt": D,
            "deltaLinks": MAP,
            "deltaLinks.{}": S,
            "settings": OBJ,
            "settings.automationPaused": B,
            "settings.whitelistedSenders": A,
            "settings.whitelistedSenders.[]": S,
            "settings.whitelistedDomains": A,
            "settings.whitelistedDomains.[]": S,
        },
        "required": {"userId", "email"},
        "refs": {"userId": "users"},
        "enums": {},
        "defaults": {"isConnected": True},
        "indexes": [((("userId", 1), ("email", 1)), {"unique": True}), ((("userId", 1),), {})],
    },
    "emailevents": {
        "model": "EmailEvent",
        "timestamps": True,
        "types": {
            "userId": OID,
            "mailboxId": OID,
            "messageId": S,
            "internetMessageId": S,
            "eventType": S,
            "timestamp": D,
            "sender": OBJ,
            "sender.name": S,
            "sender.email": S,
            "sender.domain": S,
            "subject": S,
            "subjectNormalized": S,
            "receivedAt": D,
            "timeToAction": N,
            "fromFolder": S,
            "toFolder": S,
            "importance": S,
            "hasAttachments": B,
            "conversationId": S,
            "categories": A,
            "categories.[]": S,
            "isRead": B,
            "metadata": OBJ,
            "metadata.hasListUnsubscribe": B,
            "metadata.isNewsletter": B,
            "metadata.isAutomated": B,
            "metadata.automatedByRule": OID,
        },
        "required": {"userId", "mailboxId", "messageId", "eventType"},
        "refs": {"userId": "users", "mailboxId": "mailboxes", "metadata.automatedByRule": "rules"},
        "enums": {
            "eventType": ("arrived", "deleted", "moved", "read", "flagged", "categorized"),
            "importance": ("low", "normal", "high"),
        },
        "defaults": {"timestamp": "now", "importance": "normal", "hasAttachments": False, "isRead": False},
        "indexes": [
            ((("userId", 1), ("sender.domain", 1), ("timestamp", -1)), {}),
            ((("userId", 1), ("eventType", 1), ("timestamp", -1)), {}),
            ((("userId", 1), ("mailboxId", 1), ("messageId", 1), ("eventType", 1)), {"unique": True}),
            ((("timestamp", 1),), {"ttl": 90 * DAY}),
        ],
    },
    "patterns": {
        "model": "Pattern",
        "timestamps": True,
        "types": {
            "userId": OID,
            "mailboxId": OID,
            "patternType": S,
            "status": S,
            "confidence": N,
            "sampleSize": N,
            "exceptionCount": N,
            "condition": OBJ,
            "condition.senderEmail": S,
            "condition.senderDomain": S,
            "condition.fromFolder": S,
            "condition.subjectPattern": S,
            "suggestedAction": OBJ,
            "suggestedAction.actionType": S,
            "suggestedAction.toFolder": S,
            "suggestedAction.category": S,
            "evidence": A,
            "evidence.[]": OBJ,
            "evidence.[].messageId": S,
            "evidence.[].timestamp": D,
            "evidence.[].action": S,
            "rejectedAt": D,
            "rejectionCooldownUntil": D,
            "approvedAt": D,
            "lastAnalyzedAt": D,
        },
        "required": {"userId", "mailboxId", "patternType", "confidence", "sampleSize"},
        "refs": {"userId": "users", "mailboxId": "mailboxes"},
        "enums": {
            "patternType": ("sender", "folder-routing"),
            "status": ("detected", "suggested", "approved", "rejected", "expired"),
            "suggestedAction.actionType": ("delete", "move", "archive", "markRead", "flag", "categorize"),
        },
        "defaults": {"status": "detected", "exceptionCount": 0},
        "indexes": [
            ((("userId", 1), ("mailboxId", 1), ("status", 1)), {}),
            ((("userId", 1), ("patternType", 1), ("condition.senderDomain", 1)), {}),
            ((("rejectionCooldownUntil", 1),), {"sparse": True}),
        ],
    },
    "rules": {
        "model": "Rule",
        "timestamps": True,
        "types": {
            "userId": OID,
            "mailboxId": OID,
            "name": S,
            "sourcePatternId": OID,
            "isEnabled": B,
            "priority": N,
            "conditions": OBJ,
            "conditions.senderEmail": S,
            "conditions.senderDomain": S,
            "conditions.subjectContains": S,
            "conditions.fromFolder": S,
            "actions": A,
            "actions.[]": OBJ,
            "actions.[].actionType": S,
            "actions.[].toFolder": S,
            "actions.[].category": S,
            "actions.[].order": N,
            "stats": OBJ,
            "stats.totalExecutions": N,
            "stats.lastExecutedAt": D,
            "stats.emailsProcessed": N,
            "graphRuleId": S,
            "scope": S,
            "createdBy": OID,
        },
        "required": {"userId", "mailboxId", "name"},
        "refs": {"userId": "users", "mailboxId": "mailboxes", "sourcePatternId": "patterns", "createdBy": "users"},
        "enums": {
            "actions.[].actionType": ("move", "delete", "markRead", "flag", "categorize", "archive"),
            "scope": ("user", "org"),
        },
        "defaults": {
            "isEnabled": True,
            "priority": 0,
            "stats.totalExecutions": 0,
            "stats.emailsProcessed": 0,
            "scope": "user",
        },
        "indexes": [
            ((("userId", 1), ("mailboxId", 1), ("isEnabled", 1), ("priority", 1)), {}),
            ((("graphRuleId", 1),), {"sparse": True}),
        ],
    },
    "stagedemails": {
        "model": "StagedEmail",
        "timestamps": True,
        "types": {
            "userId": OID,
            "mailboxId": OID,
            "ruleId": OID,
            "messageId": S,
            "originalFolder": S,
            "stagedAt": D,
            "expiresAt": D,
            "status": S,
            "actions": A,
            "actions.[]": OBJ,
            "actions.[].actionType": S,
            "actions.[].toFolder": S,
            "executedAt": D,
            "rescuedAt": D,
        },
        "required": {"userId", "mailboxId", "ruleId", "messageId", "originalFolder", "expiresAt"},
        "refs": {"userId": "users", "mailboxId": "mailboxes", "ruleId": "rules"},
        "enums": {"status": ("staged", "executed", "rescued", "expired")},
        "defaults": {"stagedAt": "now", "status": "staged"},
        "indexes": [
            ((("userId", 1), ("status", 1), ("expiresAt", 1)), {}),
            ((("expiresAt", 1),), {"ttl": 0}),
        ],
    },
    "auditlogs": {
        "model": "AuditLog",
        "timestamps": True,
        "types": {
            "userId": OID,
            "mailboxId": OID,
            "action": S,
            "targetType": S,
            "targetId": S,
            "details": OBJ,
            "undoable": B,
            "undoneAt": D,
            "undoneBy": OID,
        },
        "required": {"userId", "action", "targetType"},
        "refs": {"userId": "users", "mailboxId": "mailboxes", "undoneBy": "users"},
        "enums": {
            "action": (
                "rule_created",
                "rule_updated",
                "rule_deleted",
                "rule_executed",
                "email_staged",
                "email_rescued",
                "email_executed",
                "pattern_approved",
                "pattern_rejected",
                "automation_paused",
                "automation_resumed",
                "undo_action",
                "whitelist_updated",
            ),
            "targetType": ("email", "rule", "pattern", "settings"),
        },
        "defaults": {"undoable": False},
        "indexes": [
            ((("userId", 1), ("action", 1), ("createdAt", -1)), {}),
            ((("userId", 1), ("mailboxId", 1), ("createdAt", -1)), {}),
            ((("targetType", 1), ("targetId", 1)), {}),
        ],
    },
    "notifications": {
        "model": "Notification",
        "timestamps": True,
        "types": {
            "userId": OID,
            "type": S,
            "title": S,
            "message": S,
            "isRead": B,
            "readAt": D,
            "relatedEntity": OBJ,
            "relatedEntity.entityType": S,
            "relatedEntity.entityId": OID,
            "priority": S,
        },
        "required": {"userId", "type", "title", "message"},
        "refs": {"userId": "users"},
        "enums": {
            "type": ("pattern_detected", "rule_executed", "staging_alert", "system", "inactivity_warning"),
            "relatedEntity.entityType": ("pattern", "rule", "staged_email"),
            "priority": ("low", "normal", "high"),
        },
        "defaults": {"isRead": False, "priority": "normal"},
        "indexes": [
            ((("userId", 1), ("isRead", 1), ("createdAt", -1)), {}),
            ((("createdAt", 1),), {"ttl": 30 * DAY}),
        ],
    },
    "webhooksubscriptions": {
        "model": "WebhookSubscription",
        "timestamps": True,
        "types": {
            "userId": OID,
            "mailboxId": OID,
            "subscriptionId": S,
            "resource": S,
            "changeType": S,
            "expiresAt": D,
            "notificationUrl": S,
            "lifecycleNotificationUrl": S,
            "clientState": S,
            "status": S,
            "lastNotificationAt": D,
            "errorCount": N,
        },
        "required": {
            "userId",
            "mailboxId",
            "subscriptionId",
            "resource",
            "changeType",
            "expiresAt",
            "notificationUrl",
            "clientState",
        },
        "refs": {"userId": "users", "mailboxId": "mailboxes"},
        "enums": {"status": ("active", "expired", "failed")},
        "defaults": {"status": "active", "errorCount": 0},
        "indexes": [
            ((("subscriptionId", 1),), {"unique": True}),
            ((("userId", 1), ("mailboxId", 1)), {}),
            ((("expiresAt", 1), ("status", 1)), {}),
        ],
    },
}


def walk(fields: tuple[Field, ...], prefix: str = "") -> dict[str, Field]:
    """Every field by dotted path; array items are `path.[]`, map values `path.{}`."""
    out: dict[str, Field] = {}
    for fld in fields:
        path = f"{prefix}{fld.name}"
        out[path] = fld
        out.update(walk(fld.fields, f"{path}."))
        for sub in (fld.items, fld.values):
            if sub is not None:
                out[f"{path}.{sub.name}"] = sub
                out.update(walk(sub.fields, f"{path}.{sub.name}."))
    return out


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(SHIPPED, {})


def test_counts(spec: Spec) -> None:
    assert len(spec.collections) == 9
    assert sum(len(c.indexes) for c in spec.collections) == 23
    assert len(spec.queues) == 5
    assert len(spec.schedules) == 5
    assert {c.name for c in spec.collections} == set(MSEDB)


@pytest.mark.parametrize("name", list(MSEDB))
def test_collection_matches_msedb(spec: Spec, name: str) -> None:
    truth, coll = MSEDB[name], spec.collection(name)
    fields = walk(coll.fields)
    assert coll.model == truth["model"]
    assert coll.timestamps is truth["timestamps"]
    assert (coll.validation_level, coll.validation_action) == ("strict", "error")
    assert {path: f.type for path, f in fields.items()} == truth["types"]
    assert {path for path, f in fields.items() if f.required} == truth["required"]
    assert {path: f.ref for path, f in fields.items() if f.ref} == truth["refs"]
    assert {path: f.enum for path, f in fields.items() if f.enum} == truth["enums"]
    assert {path: f.default for path, f in fields.items() if f.has_default} == truth["defaults"]
    assert [(ix.keys, options(ix)) for ix in coll.indexes] == truth["indexes"]


def options(index: Index) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if index.unique:
        out["unique"] = True
    if index.sparse:
        out["sparse"] = True
    if index.ttl is not None:
        out["ttl"] = index.ttl
    assert index.partial is None and index.collation is None and not index.hidden
    return out


def test_ttl_values(spec: Spec) -> None:
    def ttl(coll: Collection) -> list[tuple[str, int]]:
        return [(ix.name, ix.ttl) for ix in coll.indexes if ix.ttl is not None]

    assert ttl(spec.collection("emailevents")) == [("timestamp_1", 7776000)]
    assert ttl(spec.collection("stagedemails")) == [("expiresAt_1", 0)]
    assert ttl(spec.collection("notifications")) == [("createdAt_1", 2592000)]
    assert sum(len(ttl(c)) for c in spec.collections) == 3


def test_users_microsoft_id_is_unique_and_sparse(spec: Spec) -> None:
    index = next(ix for ix in spec.collection("users").indexes if ix.keys == (("microsoftId", 1),))
    assert (index.name, index.unique, index.sparse) == ("microsoftId_1", True, True)


def test_patterns_evidence_at_most_ten(spec: Spec) -> None:
    evidence = walk(spec.collection("patterns").fields)["evidence"]
    assert evidence.max_items == 10


def test_patterns_confidence_range(spec: Spec) -> None:
    confidence = walk(spec.collection("patterns").fields)["confidence"]
    assert (confidence.minimum, confidence.maximum) == (0, 100)


def test_queues(spec: Spec) -> None:
    assert [q.name for q in spec.queues] == [
        "webhook-renewal",
        "delta-sync",
        "pattern-analysis",
        "staging-processor",
        "token-refresh",
    ]
    tasks = {q.name: [t.name for t in q.tasks] for q in spec.queues}
    assert tasks == {
        "webhook-renewal": ["renew-webhooks"],
        "delta-sync": ["run-delta-sync"],
        "pattern-analysis": ["analyze-patterns"],
        "staging-processor": ["process-staging"],
        "token-refresh": ["refresh-tokens"],
    }
    for queue in spec.queues:
        assert (queue.completed.max_age, queue.completed.max_count) == (3600, 200)
        assert (queue.failed.max_age, queue.failed.max_count) == (24 * 3600, 1000)
        assert all(task.handler is None for task in queue.tasks)  # the default, logging handler


def test_schedules(spec: Spec) -> None:
    table = [(s.id, s.queue, s.task, s.cron, s.every) for s in spec.schedules]
    assert table == [
        ("webhook-renewal-schedule", "webhook-renewal", "renew-webhooks", "0 */2 * * *", None),
        ("delta-sync-schedule", "delta-sync", "run-delta-sync", None, 15 * 60),
        ("pattern-analysis-schedule", "pattern-analysis", "analyze-patterns", "0 2 * * *", None),
        ("staging-processor-schedule", "staging-processor", "process-staging", None, 30 * 60),
        ("token-refresh-schedule", "token-refresh", "refresh-tokens", None, 45 * 60),
    ]
    for schedule in spec.schedules:
        retry = schedule.retry
        assert (retry.attempts, retry.backoff, retry.delay) == (3, "exponential", 5)
        assert [retry.delay_before(n) for n in (1, 2)] == [5, 10]
        assert schedule.enabled and schedule.timezone == "UTC" and schedule.misfire == "run_once"
        assert not schedule.align  # as BullMQ: the first job when registered, then an interval apart


def test_mongodb_settings(spec: Spec) -> None:
    mongo = spec.mongodb
    assert mongo.uri == "mongodb://127.0.0.1:27017/msedb"
    assert mongo.database == "msedb"
    assert (mongo.pool_max, mongo.pool_min) == (50, 5)
    assert (mongo.server_selection_timeout, mongo.socket_timeout, mongo.connect_timeout) == (5, 45, 10)
    assert mongo.ipv4_only is True
    retry = mongo.connect_retry
    # The seed's numbers: max 10 retries, base delay 1000 ms, max delay 30000 ms.
    assert (retry.retries, retry.attempts, retry.backoff) == (10, 11, "exponential")
    assert (retry.delay, retry.max_delay) == (1, 30)
    assert retry.jitter is True
    assert [retry.wait(n, draw=lambda low, high: high) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert spec.redis.connect_retry == retry


def test_redis_settings(spec: Spec) -> None:
    redis = spec.redis
    assert redis.url == "redis://127.0.0.1:6379/0"
    assert redis.key_prefix == "msedb"
    assert redis.maxmemory_policy == "noeviction"


def test_connection_settings_come_from_the_environment() -> None:
    env = {"MONGODB_URI": "mongodb://db.internal:27018/prod", "REDIS_HOST": "cache", "REDIS_PORT": "6390"}
    spec = load_spec(SHIPPED, env)
    assert spec.mongodb.uri == "mongodb://db.internal:27018/prod"
    assert spec.mongodb.database == "prod"
    assert spec.redis.url == "redis://cache:6390/0"
    url = load_spec(SHIPPED, {"REDIS_URL": "rediss://:pw@cache:6380/2", "REDIS_HOST": "ignored"}).redis.url
    assert url == "rediss://:pw@cache:6380/2"

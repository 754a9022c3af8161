//! Audit events: who did what to which record, when, with before/after. Written in the same
//! transaction as the change they describe.

use crate::ids::{AuditEventId, SubscriberId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Who caused a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `operator:<id>` for staff and API tokens, `system:<component>` for the platform itself.
    pub id: String,
    /// Display name, as it was at the time.
    pub name: String,
}

impl Actor {
    pub fn system(component: &str) -> Self {
        Self {
            id: format!("system:{component}"),
            name: component.to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub at: Timestamp,
    pub actor: Actor,
    /// Set when the entity belongs to a subscriber (distribution key).
    pub subscriber_id: Option<SubscriberId>,
    /// `subscriber`, `plan`, `service`, `nas`, `provisioning_job`, `api_token` …
    pub entity_type: String,
    pub entity_id: String,
    /// Dotted verb, e.g. `service.suspend`.
    pub action: String,
    /// Snapshots of the entity; when there are both, only the fields that differ between
    /// them (an activation stores its status and revision, not the whole service twice).
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
}

impl AuditEvent {
    /// A new audit event; `before`/`after` are serialised snapshots of the entity, reduced to
    /// what changed when both are given.
    #[allow(clippy::too_many_arguments)]
    pub fn new<B: Serialize, A: Serialize>(
        at: Timestamp,
        actor: &Actor,
        subscriber_id: Option<SubscriberId>,
        entity_type: &str,
        entity_id: impl ToString,
        action: &str,
        before: Option<&B>,
        after: Option<&A>,
    ) -> Self {
        let mut before = before.and_then(|b| serde_json::to_value(b).ok());
        let mut after = after.and_then(|a| serde_json::to_value(a).ok());
        // Compared before redaction, so that a changed secret still shows as changed.
        let entity_id = entity_id.to_string();
        match (before.as_mut(), after.as_mut()) {
            (Some(b), Some(a)) => changed_fields(b, a),
            (Some(only), None) | (None, Some(only)) => {
                compact_snapshot(only, at, &entity_id, subscriber_id)
            }
            (None, None) => {}
        }
        let (before, after) = (redacted(before), redacted(after));
        Self {
            id: AuditEventId::generate(),
            at,
            actor: actor.clone(),
            subscriber_id,
            entity_type: entity_type.to_string(),
            entity_id,
            action: action.to_string(),
            before,
            after,
            reason: None,
        }
    }

    pub fn with_reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }
}

/// Secrets never reach the audit trail, even encrypted.
const SECRET_FIELDS: &[&str] = &[
    "password_ciphertext",
    "secret",
    "shared_secret",
    "token_hash",
];

/// Keeps in two object snapshots only the fields whose values differ (a field missing on one
/// side counts as null there). Snapshots that are not both objects stay whole.
fn changed_fields(before: &mut serde_json::Value, after: &mut serde_json::Value) {
    let (Some(b), Some(a)) = (before.as_object_mut(), after.as_object_mut()) else {
        return;
    };
    let same: Vec<String> = b
        .iter()
        .filter(|(k, v)| a.get(*k).unwrap_or(&serde_json::Value::Null) == *v)
        .map(|(k, _)| k.clone())
        .collect();
    for k in &same {
        b.remove(k);
        a.remove(k);
    }
    // Fields only `after` has, and null there, did not change either.
    a.retain(|k, v| b.contains_key(k) || !v.is_null());
}

/// A snapshot with nothing to compare against (a create, a delete) keeps what a reader cannot
/// find elsewhere: no null fields, no object whose fields are all null or that is empty, and
/// not the id, owner or timestamps the event's own columns already say. At 100,000
/// subscribers this is two thirds of the audit trail's size.
fn compact_snapshot(
    snapshot: &mut serde_json::Value,
    at: Timestamp,
    entity_id: &str,
    subscriber_id: Option<SubscriberId>,
) {
    let Some(obj) = snapshot.as_object_mut() else {
        return;
    };
    let at = serde_json::to_value(at).unwrap_or_default();
    let owner = subscriber_id.map(|s| serde_json::Value::String(s.0.to_string()));
    obj.retain(|k, v| {
        let duplicate = match k.as_str() {
            "id" => v.as_str() == Some(entity_id),
            "created_at" | "updated_at" => *v == at,
            "subscriber_id" => Some(&*v) == owner.as_ref(),
            _ => false,
        };
        !duplicate && !is_blank(v)
    });
}

/// Null, or an object (recursively) of nothing but blanks.
fn is_blank(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Object(o) => o.values().all(is_blank),
        _ => false,
    }
}

fn redacted(v: Option<serde_json::Value>) -> Option<serde_json::Value> {
    let mut v = v?;
    if let Some(obj) = v.as_object_mut() {
        for f in SECRET_FIELDS {
            if let Some(x) = obj.get_mut(*f) {
                if !x.is_null() {
                    *x = serde_json::Value::String("[redacted]".into());
                }
            }
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_keeps_only_what_changed() {
        let before = serde_json::json!({"id": "s1", "status": "pending", "revision": 1, "nas_id": null, "gone": 3});
        let after = serde_json::json!({"id": "s1", "status": "active", "revision": 2, "nas_id": null, "new": null, "added": 4});
        let e = AuditEvent::new(
            Timestamp::UNIX_EPOCH,
            &Actor::system("test"),
            None,
            "service",
            "s1",
            "service.activate",
            Some(&before),
            Some(&after),
        );
        assert_eq!(
            e.before.unwrap(),
            serde_json::json!({"status": "pending", "revision": 1, "gone": 3})
        );
        assert_eq!(
            e.after.unwrap(),
            serde_json::json!({"status": "active", "revision": 2, "added": 4})
        );
    }

    #[test]
    fn a_creation_keeps_what_was_set_and_not_what_the_event_says() {
        let owner = SubscriberId::generate();
        let at = Timestamp::UNIX_EPOCH;
        let created = serde_json::json!({
            "id": "s1", "subscriber_id": owner.0.to_string(), "status": "pending",
            "revision": 1, "nas_id": null, "created_at": at, "updated_at": at,
            "address": {"city": null, "line1": null}, "custom_fields": {},
            "location": {"city": "Ghent", "line1": null}, "tags": [], "other_id": "s2",
        });
        let c = AuditEvent::new::<(), _>(
            at,
            &Actor::system("test"),
            Some(owner),
            "service",
            "s1",
            "service.create",
            None,
            Some(&created),
        );
        assert_eq!(
            c.after.unwrap(),
            serde_json::json!({
                "status": "pending", "revision": 1, "location": {"city": "Ghent", "line1": null},
                "tags": [], "other_id": "s2",
            })
        );
        // Timestamps other than the event's, and another subscriber's id, stay.
        let later = Timestamp::from_second(60).unwrap_or(at);
        let deleted = serde_json::json!({"id": "x", "created_at": later, "subscriber_id": "other"});
        let d = AuditEvent::new::<_, ()>(
            at,
            &Actor::system("test"),
            Some(owner),
            "service",
            "s1",
            "service.delete",
            Some(&deleted),
            None,
        );
        assert_eq!(d.before.unwrap(), deleted);
    }

    #[test]
    fn secrets_are_redacted() {
        let after =
            serde_json::json!({"name": "x", "shared_secret": [1, 2], "password_ciphertext": null});
        let e = AuditEvent::new::<(), _>(
            Timestamp::UNIX_EPOCH,
            &Actor::system("test"),
            None,
            "nas",
            "n1",
            "nas.create",
            None,
            Some(&after),
        );
        let a = e.after.unwrap();
        assert_eq!(a["shared_secret"], "[redacted]");
        assert_eq!(a["password_ciphertext"], serde_json::Value::Null);
        assert_eq!(a["name"], "x");
    }
}

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
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
}

impl AuditEvent {
    /// A new audit event; `before`/`after` are serialised snapshots of the entity.
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
        Self {
            id: AuditEventId::generate(),
            at,
            actor: actor.clone(),
            subscriber_id,
            entity_type: entity_type.to_string(),
            entity_id: entity_id.to_string(),
            action: action.to_string(),
            before: before.and_then(|b| redacted(serde_json::to_value(b).ok())),
            after: after.and_then(|a| redacted(serde_json::to_value(a).ok())),
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

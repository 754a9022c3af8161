//! Smoke test: a fresh database of the test cluster, one subscriber in and out through the
//! `Store` trait. The full behaviour is covered by the shared conformance suite.

use jiff::Timestamp;
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::ids::SubscriberId;
use lastmile_domain::subscriber::{
    Address, BillingDay, Subscriber, SubscriberNumber, SubscriberStatus,
};
use lastmile_domain::validate::Currency;
use lastmile_store::ports::*;
use lastmile_store::{AuditFilter, Page, SubscriberFilter};
use lastmile_store_postgres::PgStore;

#[tokio::test]
async fn insert_and_read_back_a_subscriber() {
    let Some(url) = lastmile_testing::pg::database_url().await else {
        return;
    };
    let store = PgStore::connect(&url)
        .await
        .expect("connect to the test database");
    assert_eq!(store.backend(), "postgres");
    store.ping().await.expect("ping");
    // Migrating again is a no-op.
    store.db.migrate().await.expect("second migrate");

    let at = Timestamp::from_second(1_750_000_000).expect("timestamp");
    let mut custom = serde_json::Map::new();
    custom.insert(
        "olt".into(),
        serde_json::json!({"port": 7, "tags": ["a", "b"]}),
    );
    let s = Subscriber {
        id: SubscriberId::generate(),
        number: SubscriberNumber::from_sequence(
            store
                .next_counter("subscriber_number")
                .await
                .expect("counter") as u64,
        ),
        name: "Ada Lovelace".into(),
        email: Some("ada@example.net".into()),
        phone: None,
        billing_address: Address {
            city: Some("London".into()),
            country: Some("GB".into()),
            ..Address::default()
        },
        currency: Currency::parse("EUR").expect("currency"),
        tax_zone: None,
        dunning_policy: None,
        billing_day: BillingDay::new(15).expect("billing day"),
        status: SubscriberStatus::Active,
        custom_fields: custom,
        created_at: at,
        updated_at: at,
        revision: 1,
    };
    let audit = AuditEvent::new::<(), _>(
        at,
        &Actor::system("smoke"),
        Some(s.id),
        "subscriber",
        s.id,
        "subscriber.create",
        None,
        Some(&s),
    );
    store.insert_subscriber(&s, &audit).await.expect("insert");

    let back = store
        .get_subscriber(s.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(back, s);

    let found = store
        .list_subscribers(
            &SubscriberFilter {
                q: Some("LOVELACE".into()),
                status: None,
                number: None,
            },
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("search");
    assert_eq!(found, vec![s.clone()]);

    let trail = store
        .list_audit_events(
            &AuditFilter {
                subscriber_id: Some(s.id),
                ..AuditFilter::default()
            },
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("audit");
    assert_eq!(trail, vec![audit]);
    store.close().await;
}

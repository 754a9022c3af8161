//! Conformance cases of the RADIUS port: accounting into sessions and hourly usage, the
//! session listings, the directory loads and the change feed.

use super::*;
use crate::radius::{ChangeCursor, ChangedEntity, SessionFilter};
use lastmile_domain::radius::{AccountingEvent, AcctStatus, Octets, RadiusSession, SessionEnd};

/// An accounting event of `svc` through `nas` with Acct-Session-Id `sid`.
fn acct(
    nas: &Nas,
    svc: &Service,
    sid: &str,
    status: AcctStatus,
    at: i64,
    octets: Option<(u64, u64)>,
) -> AccountingEvent {
    AccountingEvent {
        nas_id: nas.id,
        status,
        acct_session_id: sid.to_string(),
        service_id: Some(svc.id),
        subscriber_id: Some(svc.subscriber_id),
        username: svc.username.clone(),
        framed_ip: None,
        calling_station_id: Some("AA-BB-CC-00-11-22".into()),
        nas_port_id: Some("ether1".into()),
        session_time: u32::try_from(at).ok(),
        octets: octets.map(|(download, upload)| Octets { download, upload }),
        terminate_cause: (status == AcctStatus::Stop).then_some(1),
        event_time: t(at),
    }
}

fn nas_event(nas: &Nas, status: AcctStatus, at: i64) -> AccountingEvent {
    AccountingEvent {
        nas_id: nas.id,
        status,
        acct_session_id: String::new(),
        service_id: None,
        subscriber_id: None,
        username: None,
        framed_ip: None,
        calling_station_id: None,
        nas_port_id: None,
        session_time: None,
        octets: None,
        terminate_cause: None,
        event_time: t(at),
    }
}

async fn record_ok(store: &dyn Store, events: Vec<AccountingEvent>) {
    let n = events.len();
    let out = store
        .record_accounting(events)
        .await
        .expect("record_accounting");
    assert_eq!(out.len(), n, "one outcome per event");
    for (i, r) in out.into_iter().enumerate() {
        r.unwrap_or_else(|e| panic!("event {i}: {e}"));
    }
}

async fn sessions(store: &dyn Store, filter: SessionFilter) -> Vec<RadiusSession> {
    store
        .list_sessions(&filter, page(None, 1000))
        .await
        .expect("list_sessions")
}

fn of_service(svc: &Service) -> SessionFilter {
    SessionFilter {
        service_id: Some(svc.id),
        ..SessionFilter::default()
    }
}

async fn only_session(store: &dyn Store, svc: &Service) -> RadiusSession {
    let mut v = sessions(store, of_service(svc)).await;
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

/// Download and upload of a subscriber over the whole day around `t0`.
async fn usage_total(store: &dyn Store, sub: SubscriberId) -> (u64, u64) {
    let rows = store
        .usage_hourly(sub, t(-86_400), t(86_400))
        .await
        .expect("usage_hourly");
    rows.iter().fold((0, 0), |(d, u), r| {
        (d + r.octets.download, u + r.octets.upload)
    })
}

pub async fn radius_accounting_start_interim_stop(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let svc = new_service(store, &w).await;
    let sid = tag();
    record_ok(
        store,
        vec![acct(&w.nas, &svc, &sid, AcctStatus::Start, 0, Some((0, 0)))],
    )
    .await;
    let s = only_session(store, &svc).await;
    assert!(s.is_open());
    assert_eq!(s.started_at, t(0));
    assert_eq!(s.username, svc.username);
    assert_eq!(s.subscriber_id, Some(w.sub.id));
    assert_eq!(store.get_session(s.id).await.expect("get"), Some(s.clone()));

    // An interim update, then the same one again (a retransmission the cache missed).
    let interim = acct(
        &w.nas,
        &svc,
        &sid,
        AcctStatus::InterimUpdate,
        600,
        Some((6_000, 600)),
    );
    record_ok(store, vec![interim.clone()]).await;
    record_ok(store, vec![interim]).await;
    let s = only_session(store, &svc).await;
    assert_eq!(
        s.total,
        Octets {
            download: 6_000,
            upload: 600
        }
    );
    assert_eq!(s.session_time, 600);
    assert_eq!(usage_total(store, w.sub.id).await, (6_000, 600));

    // An older update arriving late counts nothing.
    let late = acct(
        &w.nas,
        &svc,
        &sid,
        AcctStatus::InterimUpdate,
        300,
        Some((3_000, 300)),
    );
    record_ok(store, vec![late]).await;
    assert_eq!(usage_total(store, w.sub.id).await, (6_000, 600));

    // The Stop closes it with the final counters.
    let stop = acct(
        &w.nas,
        &svc,
        &sid,
        AcctStatus::Stop,
        1_200,
        Some((9_000, 900)),
    );
    record_ok(store, vec![stop.clone()]).await;
    let s = only_session(store, &svc).await;
    assert!(!s.is_open());
    assert_eq!(s.stopped_at, Some(t(1_200)));
    assert_eq!(s.end, Some(SessionEnd::Stop));
    assert_eq!(s.terminate_cause, Some(1));
    assert_eq!(
        s.total,
        Octets {
            download: 9_000,
            upload: 900
        }
    );

    // A Stop without octets (some NASes send one more) never zeroes the usage.
    let mut bare = stop;
    bare.octets = None;
    record_ok(store, vec![bare]).await;
    assert_eq!(only_session(store, &svc).await.total.download, 9_000);
    assert_eq!(usage_total(store, w.sub.id).await, (9_000, 900));

    // A new Start with the same Acct-Session-Id (a NAS reusing ids) is a new session.
    record_ok(
        store,
        vec![acct(
            &w.nas,
            &svc,
            &sid,
            AcctStatus::Start,
            2_000,
            Some((0, 0)),
        )],
    )
    .await;
    let all = sessions(store, of_service(&svc)).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all.iter().filter(|s| s.is_open()).count(), 1);
}

/// A NAS's accounting as a batch sees it: several sessions interleaved, retransmissions,
/// late and out-of-order updates, a counter going back, a Stop without counters, an
/// Acct-Session-Id reused, an Accounting-On in the middle. `seed` varies the interleaving.
fn busy_nas_traffic(nas: &Nas, svc: &Service, sids: &[String], seed: u64) -> Vec<AccountingEvent> {
    let mut events = Vec::new();
    let mut rng = seed | 1;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut clock = [0i64; 3];
    let mut started = [0i64; 3];
    let mut octets = [0u64; 3];
    for step in 0..90 {
        if step == 45 {
            events.push(nas_event(nas, AcctStatus::AccountingOn, 40_000));
            clock = [40_100, 40_200, 40_300];
            started = clock;
            octets = [0; 3];
            continue;
        }
        let i = next(3) as usize;
        let sid = &sids[i];
        let (status, at, counted) = match next(12) {
            0 if clock[i] > 0 => (AcctStatus::Stop, clock[i] + 60, Some(octets[i] + 500)),
            1 if clock[i] > 0 => (AcctStatus::Stop, clock[i] + 60, None),
            2 => (AcctStatus::Start, clock[i] + 120, Some(0)),
            // A late update: older than what was counted.
            3 if clock[i] > 300 => (
                AcctStatus::InterimUpdate,
                clock[i] - 300,
                Some(octets[i] / 2),
            ),
            // A NAS that reset its counters.
            4 => (AcctStatus::InterimUpdate, clock[i] + 300, Some(next(1_000))),
            _ => (
                AcctStatus::InterimUpdate,
                clock[i] + 300,
                Some(octets[i] + next(50_000)),
            ),
        };
        let start_offset = clock[i];
        clock[i] = at.max(clock[i]);
        if status == AcctStatus::Start {
            started[i] = at;
        }
        if let Some(o) = counted {
            if status != AcctStatus::InterimUpdate || at >= start_offset {
                octets[i] = o;
            }
        }
        let mut e = acct(nas, svc, sid, status, at, counted.map(|o| (o, o / 10)));
        // Seconds since the session's Start, so sessions start at distinct times.
        e.session_time = u32::try_from((at - started[i]).max(0)).ok();
        events.push(e.clone());
        if next(5) == 0 {
            // A retransmission the server's cache did not catch.
            events.push(e);
        }
    }
    events
}

/// What a session looks like without the ids that differ between two worlds.
fn comparable(s: &RadiusSession) -> impl PartialEq + std::fmt::Debug {
    (
        s.acct_session_id.clone(),
        s.started_at,
        s.updated_at,
        s.stopped_at,
        s.end,
        s.terminate_cause,
        s.session_time,
        s.total,
        s.base,
    )
}

pub async fn radius_accounting_batch_equals_one_by_one(store: Arc<dyn Store>) {
    let store = &*store;
    for seed in [7, 1_234_567, 0x9e37_79b9] {
        let (batched, single) = (world(store).await, world(store).await);
        let (svc_b, svc_s) = (
            new_service(store, &batched).await,
            new_service(store, &single).await,
        );
        let sids = [tag(), tag(), tag()];
        let traffic_b = busy_nas_traffic(&batched.nas, &svc_b, &sids, seed);
        let traffic_s = busy_nas_traffic(&single.nas, &svc_s, &sids, seed);
        record_ok(store, traffic_b).await;
        for e in traffic_s {
            record_ok(store, vec![e]).await;
        }
        let view = |mut all: Vec<RadiusSession>| {
            all.sort_by(|a, b| {
                (a.started_at, &a.acct_session_id, a.stopped_at).cmp(&(
                    b.started_at,
                    &b.acct_session_id,
                    b.stopped_at,
                ))
            });
            all.iter().map(comparable).collect::<Vec<_>>()
        };
        let (b, s) = (
            view(sessions(store, of_service(&svc_b)).await),
            view(sessions(store, of_service(&svc_s)).await),
        );
        assert!(b.len() >= 3, "seed {seed}: the traffic makes sessions");
        assert_eq!(
            b, s,
            "seed {seed}: the batch's sessions are the one-by-one sessions"
        );
        let hourly = |sub| async move {
            store
                .usage_hourly(sub, t(-86_400), t(86_400))
                .await
                .expect("usage")
                .into_iter()
                .map(|u| (u.hour_start, u.octets))
                .collect::<Vec<_>>()
        };
        let (ub, us) = (hourly(batched.sub.id).await, hourly(single.sub.id).await);
        assert!(!ub.is_empty(), "seed {seed}: the traffic counts usage");
        assert_eq!(
            ub, us,
            "seed {seed}: the batch's usage is the one-by-one usage"
        );
    }
}

pub async fn radius_usage_split_by_clock_hour(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let svc = new_service(store, &w).await;
    let sid = tag();
    // t0 is 15:06:40 UTC: an update covering an hour from there is 3,200 s in the 15:00
    // bucket and 400 s in the 16:00 one.
    record_ok(
        store,
        vec![
            acct(&w.nas, &svc, &sid, AcctStatus::Start, 0, Some((0, 0))),
            acct(
                &w.nas,
                &svc,
                &sid,
                AcctStatus::InterimUpdate,
                3_600,
                Some((36_000, 3_600)),
            ),
        ],
    )
    .await;
    let rows = store
        .usage_hourly(w.sub.id, t(-86_400), t(86_400))
        .await
        .expect("usage_hourly");
    let hour = |s: i64| Timestamp::from_second(s).expect("valid");
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.hour_start, r.service_id, r.octets))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                hour(1_749_999_600),
                svc.id,
                Octets {
                    download: 32_000,
                    upload: 3_200
                }
            ),
            (
                hour(1_750_003_200),
                svc.id,
                Octets {
                    download: 4_000,
                    upload: 400
                }
            ),
        ]
    );
    // The range is half-open on hour starts.
    let first = store
        .usage_hourly(w.sub.id, hour(1_749_999_600), hour(1_750_003_200))
        .await
        .expect("usage_hourly");
    assert_eq!(first.len(), 1);
}

pub async fn radius_accounting_batch_isolates_a_failing_event(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let svc = new_service(store, &w).await;
    // A service the store does not know: its row would break a foreign key.
    let mut ghost = svc.clone();
    ghost.id = ServiceId::generate();
    let (a, b) = (tag(), tag());
    let out = store
        .record_accounting(vec![
            acct(&w.nas, &svc, &a, AcctStatus::Start, 0, Some((0, 0))),
            acct(&w.nas, &ghost, &tag(), AcctStatus::Start, 0, Some((0, 0))),
            acct(&w.nas, &svc, &b, AcctStatus::Start, 0, Some((0, 0))),
        ])
        .await
        .expect("record_accounting");
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    assert!(out[1].is_err(), "{out:?}");
    let mut ids: Vec<_> = sessions(store, of_service(&svc))
        .await
        .into_iter()
        .map(|s| s.acct_session_id)
        .collect();
    ids.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(ids, want);
}

pub async fn radius_accounting_on_closes_the_nas_sessions(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let svc = new_service(store, &w).await;
    let other = nas(unique_ipv4());
    add_nas(store, &other).await;
    record_ok(
        store,
        vec![
            acct(&w.nas, &svc, &tag(), AcctStatus::Start, 0, None),
            acct(
                &w.nas,
                &svc,
                &tag(),
                AcctStatus::InterimUpdate,
                100,
                Some((10, 1)),
            ),
            acct(&other, &svc, &tag(), AcctStatus::Start, 0, None),
        ],
    )
    .await;
    record_ok(
        store,
        vec![nas_event(&w.nas, AcctStatus::AccountingOn, 500)],
    )
    .await;
    let all = sessions(store, of_service(&svc)).await;
    assert_eq!(all.len(), 3);
    for s in &all {
        if s.nas_id == w.nas.id {
            assert_eq!(s.end, Some(SessionEnd::NasRestart), "{s:?}");
            assert_eq!(s.stopped_at, Some(t(500)));
        } else {
            assert!(s.is_open(), "another NAS's session stays open: {s:?}");
        }
    }
    record_ok(
        store,
        vec![nas_event(&other, AcctStatus::AccountingOff, 600)],
    )
    .await;
    let open = SessionFilter {
        active: Some(true),
        ..of_service(&svc)
    };
    assert!(sessions(store, open).await.is_empty());
}

pub async fn radius_stale_sessions_close_and_reopen(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let svc = new_service(store, &w).await;
    let (quiet, busy) = (tag(), tag());
    record_ok(
        store,
        vec![
            acct(&w.nas, &svc, &quiet, AcctStatus::Start, 0, Some((0, 0))),
            acct(&w.nas, &svc, &busy, AcctStatus::Start, 900, Some((0, 0))),
        ],
    )
    .await;
    let closed = store
        .close_stale_sessions(w.nas.id, t(600))
        .await
        .expect("close_stale_sessions");
    assert_eq!(closed, 1);
    let by_id = |v: &[RadiusSession], id: &str| {
        v.iter()
            .find(|s| s.acct_session_id == id)
            .cloned()
            .expect("session")
    };
    let all = sessions(store, of_service(&svc)).await;
    let q = by_id(&all, &quiet);
    assert_eq!(q.end, Some(SessionEnd::Stale));
    assert_eq!(q.stopped_at, Some(t(0)), "stopped when last heard of");
    assert!(by_id(&all, &busy).is_open());

    // It was alive after all: its next update reopens it and counts.
    record_ok(
        store,
        vec![acct(
            &w.nas,
            &svc,
            &quiet,
            AcctStatus::InterimUpdate,
            1_200,
            Some((500, 50)),
        )],
    )
    .await;
    let all = sessions(store, of_service(&svc)).await;
    let q = by_id(&all, &quiet);
    assert!(q.is_open(), "{q:?}");
    assert_eq!(
        q.total,
        Octets {
            download: 500,
            upload: 50
        }
    );
    assert_eq!(all.len(), 2);
}

pub async fn radius_sessions_list_filters_and_policy(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let a = new_service(store, &w).await;
    let b = new_service(store, &w).await;
    let ip = unique_ipv4();
    let mut with_ip = acct(&w.nas, &a, &tag(), AcctStatus::Start, 0, None);
    with_ip.framed_ip = Some(ip);
    record_ok(
        store,
        vec![
            with_ip,
            acct(&w.nas, &a, &tag(), AcctStatus::Stop, 100, None),
            acct(&w.nas, &b, &tag(), AcctStatus::Start, 0, None),
        ],
    )
    .await;
    let of_sub = SessionFilter {
        subscriber_id: Some(w.sub.id),
        ..SessionFilter::default()
    };
    assert_eq!(sessions(store, of_sub.clone()).await.len(), 3);
    let active = SessionFilter {
        active: Some(true),
        ..of_sub.clone()
    };
    assert_eq!(sessions(store, active).await.len(), 2);
    let ended = SessionFilter {
        active: Some(false),
        ..of_sub.clone()
    };
    assert_eq!(sessions(store, ended).await.len(), 1);
    assert_eq!(sessions(store, of_service(&a)).await.len(), 2);
    let by_ip = SessionFilter {
        framed_ip: Some(ip.to_string()),
        ..SessionFilter::default()
    };
    let found = sessions(store, by_ip).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].framed_ip, Some(ip));
    let by_user = SessionFilter {
        username: b.username.clone(),
        ..SessionFilter::default()
    };
    assert_eq!(sessions(store, by_user).await.len(), 1);
    let by_nas = SessionFilter {
        nas_id: Some(w.nas.id),
        ..SessionFilter::default()
    };
    assert_eq!(sessions(store, by_nas).await.len(), 3);

    // Keyset pages in id order.
    let first = store
        .list_sessions(&of_sub, page(None, 2))
        .await
        .expect("page 1");
    let rest = store
        .list_sessions(&of_sub, page(first.last().map(|s| s.id.0), 2))
        .await
        .expect("page 2");
    assert_eq!(first.len(), 2);
    assert_eq!(rest.len(), 1);
    assert!(first[1].id.0 < rest[0].id.0);

    // The tier a NAS acknowledged.
    let s = &found[0];
    store
        .set_session_policy(s.id, "home-100", t(50))
        .await
        .expect("set_session_policy");
    let s = store.get_session(s.id).await.expect("get").expect("exists");
    assert_eq!(s.accepted_policy.as_deref(), Some("home-100"));
    assert_eq!(s.policy_updated_at, Some(t(50)));
    assert!(matches!(
        store
            .set_session_policy(SessionId::generate(), "x", t(50))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.get_session(SessionId::generate()).await.expect("get"),
        None
    );
}

pub async fn radius_directory_loads_services_with_terms(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let a = new_service(store, &w).await;
    let b = new_service(store, &w).await;
    // Terminate `b`: the full load leaves it out, a load by id still finds it.
    let b = record(
        store,
        &change(&b, 1, EventKind::Activated, t(5), t(5), vec![]),
    )
    .await;
    let b = record(
        store,
        &change(&b, 2, EventKind::Terminated, t(10), t(10), vec![]),
    )
    .await;
    assert_eq!(b.status, ServiceStatus::Terminated);

    // Page through everything just before `a` onwards and find ours.
    let mut found = Vec::new();
    let mut after = Some(just_before_service(a.id));
    loop {
        let page = store
            .directory_services(after, 50)
            .await
            .expect("directory_services");
        let Some(last) = page.last() else { break };
        after = Some(last.service.id);
        let ids: Vec<_> = page.iter().map(|d| d.service.id).collect();
        assert!(ids.windows(2).all(|p| p[0] < p[1]), "id order");
        found.extend(
            page.into_iter()
                .filter(|d| d.service.subscriber_id == w.sub.id),
        );
        if found.len() > 2 || after.is_some_and(|x| x > b.id && x > a.id) {
            break;
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    let d = &found[0];
    assert_eq!(d.service, a);
    assert_eq!(d.terms, w.plan.current.terms);
    assert_eq!(d.plan_code, w.plan.code);

    let mut both = store
        .directory_services_by_id(&[a.id, b.id, ServiceId::generate()])
        .await
        .expect("directory_services_by_id");
    both.sort_by_key(|d| d.service.id);
    let mut want = vec![a.id, b.id];
    want.sort();
    assert_eq!(both.iter().map(|d| d.service.id).collect::<Vec<_>>(), want);
    assert!(store
        .directory_services_by_id(&[])
        .await
        .expect("empty")
        .is_empty());
}

/// The id just below `id`, so a page `after` it starts at `id`.
fn just_before_service(id: ServiceId) -> ServiceId {
    ServiceId(Uuid::from_u128(id.0.as_u128().saturating_sub(1)))
}

/// Follows the feed from `from` until it has nothing more, and returns what it reported.
async fn follow(
    store: &dyn Store,
    from: ChangeCursor,
    limit: u32,
) -> (Vec<ChangedEntity>, ChangeCursor) {
    let mut cursor = from;
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let batch = store
            .directory_changes(cursor, limit)
            .await
            .expect("directory_changes");
        assert!(batch.next >= cursor, "the feed never moves backwards");
        seen.extend(batch.changes);
        cursor = batch.next;
        if !batch.more {
            return (seen, cursor);
        }
    }
    panic!("the change feed did not come to an end");
}

pub async fn radius_change_feed_reports_services_and_nas(store: Arc<dyn Store>) {
    let store = &*store;
    let start = store.directory_cursor().await.expect("directory_cursor");
    let w = world(store).await;
    let a = new_service(store, &w).await;
    let b = new_service(store, &w).await;
    let (seen, cursor) = follow(store, start, 1).await;
    for want in [
        ChangedEntity::Nas(w.nas.id),
        ChangedEntity::Service(a.id),
        ChangedEntity::Service(b.id),
    ] {
        assert!(seen.contains(&want), "{want:?} missing from {seen:?}");
    }

    // A service change through the timeline, and a NAS update and delete.
    let a2 = record(
        store,
        &change(&a, 1, EventKind::Activated, t(5), t(5), vec![]),
    )
    .await;
    assert_eq!(a2.status, ServiceStatus::Active);
    let other = nas(unique_ipv4());
    add_nas(store, &other).await;
    let mut renamed = other.clone();
    renamed.name = format!("renamed-{}", tag());
    renamed.revision += 1;
    store
        .update_nas(
            &renamed,
            other.revision,
            &audit_of(t(6), None, "nas", other.id, "nas.update", &renamed),
        )
        .await
        .expect("update_nas");
    let (seen, cursor) = follow(store, cursor, 1_000).await;
    assert!(seen.contains(&ChangedEntity::Service(a.id)), "{seen:?}");
    assert!(seen.contains(&ChangedEntity::Nas(other.id)), "{seen:?}");
    store
        .delete_nas(
            other.id,
            &audit_of(t(7), None, "nas", other.id, "nas.delete", &renamed),
        )
        .await
        .expect("delete_nas");
    let (seen, _) = follow(store, cursor, 1_000).await;
    assert!(seen.contains(&ChangedEntity::Nas(other.id)), "{seen:?}");
}

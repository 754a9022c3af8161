use super::*;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn event(
    status: AcctStatus,
    at: &str,
    time: Option<u32>,
    octets: Option<(u64, u64)>,
) -> AccountingEvent {
    AccountingEvent {
        nas_id: NasId(uuid::Uuid::from_u128(1)),
        status,
        acct_session_id: "s-1".into(),
        service_id: Some(ServiceId(uuid::Uuid::from_u128(2))),
        subscriber_id: Some(SubscriberId(uuid::Uuid::from_u128(3))),
        username: Some("alice".into()),
        framed_ip: None,
        calling_station_id: None,
        nas_port_id: None,
        session_time: time,
        octets: octets.map(|(download, upload)| Octets { download, upload }),
        terminate_cause: None,
        event_time: ts(at),
    }
}

/// Feeds events through `apply_accounting` like the store does; returns the session and
/// the octets attributed.
fn run(events: &[AccountingEvent]) -> (Option<RadiusSession>, Octets) {
    let mut latest: Option<RadiusSession> = None;
    let mut counted = Octets::default();
    for (i, e) in events.iter().enumerate() {
        let (change, usage) = apply_accounting(latest.as_ref(), e, || {
            SessionId(uuid::Uuid::from_u128(i as u128 + 10))
        });
        if let Some(u) = usage {
            counted = add(counted, u.octets);
        }
        match change {
            SessionChange::Insert(s) | SessionChange::Update(s) => latest = Some(s),
            SessionChange::Ignore => {}
        }
    }
    (latest, counted)
}

#[test]
fn start_interim_stop_counts_each_byte_once() {
    let (s, counted) = run(&[
        event(AcctStatus::Start, "2026-01-01T10:00:00Z", Some(0), None),
        event(
            AcctStatus::InterimUpdate,
            "2026-01-01T10:05:00Z",
            Some(300),
            Some((1000, 100)),
        ),
        event(
            AcctStatus::InterimUpdate,
            "2026-01-01T10:10:00Z",
            Some(600),
            Some((5000, 300)),
        ),
        event(
            AcctStatus::Stop,
            "2026-01-01T10:12:00Z",
            Some(720),
            Some((6000, 400)),
        ),
    ]);
    let s = s.unwrap();
    assert_eq!(
        counted,
        Octets {
            download: 6000,
            upload: 400
        }
    );
    assert_eq!(s.total, counted);
    assert_eq!(s.end, Some(SessionEnd::Stop));
    assert_eq!(s.stopped_at, Some(ts("2026-01-01T10:12:00Z")));
    assert_eq!(s.session_time, 720);
}

#[test]
fn duplicates_and_late_packets_change_nothing() {
    let i1 = event(
        AcctStatus::InterimUpdate,
        "2026-01-01T10:05:00Z",
        Some(300),
        Some((1000, 100)),
    );
    let i2 = event(
        AcctStatus::InterimUpdate,
        "2026-01-01T10:10:00Z",
        Some(600),
        Some((5000, 300)),
    );
    let stop = event(
        AcctStatus::Stop,
        "2026-01-01T10:12:00Z",
        Some(720),
        Some((6000, 400)),
    );
    let (_, counted) = run(&[
        i1.clone(),
        i2.clone(),
        i2.clone(),
        i1.clone(),
        stop.clone(),
        stop,
        i2,
    ]);
    assert_eq!(
        counted,
        Octets {
            download: 6000,
            upload: 400
        }
    );
}

#[test]
fn stop_without_octets_keeps_usage() {
    let (s, counted) = run(&[
        event(
            AcctStatus::InterimUpdate,
            "2026-01-01T10:05:00Z",
            Some(300),
            Some((1000, 100)),
        ),
        event(AcctStatus::Stop, "2026-01-01T10:06:00Z", Some(360), None),
    ]);
    assert_eq!(
        counted,
        Octets {
            download: 1000,
            upload: 100
        }
    );
    assert_eq!(s.unwrap().total, counted);
}

#[test]
fn a_counter_going_backwards_starts_a_new_base() {
    let (_, counted) = run(&[
        event(
            AcctStatus::InterimUpdate,
            "2026-01-01T10:05:00Z",
            Some(300),
            Some((1000, 100)),
        ),
        event(
            AcctStatus::InterimUpdate,
            "2026-01-01T10:10:00Z",
            Some(600),
            Some((200, 150)),
        ),
        event(
            AcctStatus::InterimUpdate,
            "2026-01-01T10:15:00Z",
            Some(900),
            Some((700, 160)),
        ),
    ]);
    // 1000, then a reset showing 200 new, then 500 more; upload simply grows.
    assert_eq!(
        counted,
        Octets {
            download: 1700,
            upload: 160
        }
    );
}

#[test]
fn lost_start_opens_the_session_from_zero() {
    let (s, counted) = run(&[event(
        AcctStatus::InterimUpdate,
        "2026-01-01T10:05:00Z",
        Some(300),
        Some((1000, 100)),
    )]);
    let s = s.unwrap();
    assert_eq!(s.started_at, ts("2026-01-01T10:00:00Z"));
    assert!(s.is_open());
    assert_eq!(counted.download, 1000);
}

#[test]
fn a_start_after_a_stop_is_a_new_session_and_an_update_reopens_a_stale_one() {
    let mut stale = run(&[event(
        AcctStatus::InterimUpdate,
        "2026-01-01T10:05:00Z",
        Some(300),
        Some((1000, 100)),
    )])
    .0
    .unwrap();
    stale.stopped_at = Some(ts("2026-01-01T10:30:00Z"));
    stale.end = Some(SessionEnd::Stale);
    let i = event(
        AcctStatus::InterimUpdate,
        "2026-01-01T10:35:00Z",
        Some(2100),
        Some((3000, 100)),
    );
    let (change, usage) = apply_accounting(Some(&stale), &i, SessionId::generate);
    let SessionChange::Update(s) = change else {
        panic!("expected an update")
    };
    assert!(s.is_open());
    assert_eq!(usage.unwrap().octets.download, 2000);

    let mut stopped = s;
    stopped.end = Some(SessionEnd::Stop);
    stopped.stopped_at = Some(ts("2026-01-01T11:00:00Z"));
    let start = event(AcctStatus::Start, "2026-01-02T08:00:00Z", Some(0), None);
    let (change, _) = apply_accounting(Some(&stopped), &start, || {
        SessionId(uuid::Uuid::from_u128(99))
    });
    let SessionChange::Insert(n) = change else {
        panic!("expected a new session")
    };
    assert_eq!(n.id, SessionId(uuid::Uuid::from_u128(99)));
    assert_eq!(n.total, Octets::default());
}

#[test]
fn unattributed_sessions_count_no_usage() {
    let mut e = event(
        AcctStatus::InterimUpdate,
        "2026-01-01T10:05:00Z",
        Some(300),
        Some((1000, 100)),
    );
    e.service_id = None;
    e.subscriber_id = None;
    let (change, usage) = apply_accounting(None, &e, SessionId::generate);
    assert!(matches!(change, SessionChange::Insert(ref s) if s.total.download == 1000));
    assert_eq!(usage, None);
}

fn delta(from: &str, to: &str, down: u64, up: u64) -> UsageDelta {
    UsageDelta {
        service_id: ServiceId(uuid::Uuid::from_u128(2)),
        subscriber_id: SubscriberId(uuid::Uuid::from_u128(3)),
        from: ts(from),
        to: ts(to),
        octets: Octets {
            download: down,
            upload: up,
        },
    }
}

#[test]
fn an_update_straddling_an_hour_is_split_by_time_share() {
    let b = split_by_hour(&delta(
        "2026-01-01T10:50:00Z",
        "2026-01-01T11:05:00Z",
        1500,
        3,
    ));
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].hour_start, ts("2026-01-01T10:00:00Z"));
    assert_eq!(
        b[0].octets,
        Octets {
            download: 1000,
            upload: 2
        }
    );
    assert_eq!(b[1].hour_start, ts("2026-01-01T11:00:00Z"));
    assert_eq!(
        b[1].octets,
        Octets {
            download: 500,
            upload: 1
        }
    );
    // On the hour sharp: the hour before.
    let b = split_by_hour(&delta(
        "2026-01-01T10:55:00Z",
        "2026-01-01T11:00:00Z",
        10,
        0,
    ));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].hour_start, ts("2026-01-01T10:00:00Z"));
}

proptest! {
    #[test]
    fn hourly_buckets_sum_to_the_delta(
        start in 1_700_000_000_000_000i64..1_800_000_000_000_000,
        span in 0i64..400_000_000_000,
        down in any::<u64>(),
        up in 0u64..1_000_000,
    ) {
        let from = Timestamp::from_microsecond(start).unwrap();
        let to = Timestamp::from_microsecond(start + span).unwrap();
        let d = UsageDelta { from, to, ..delta("2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z", down, up) };
        let buckets = split_by_hour(&d);
        let sum_down: u128 = buckets.iter().map(|b| b.octets.download as u128).sum();
        let sum_up: u64 = buckets.iter().map(|b| b.octets.upload).sum();
        prop_assert_eq!(sum_down, down as u128);
        prop_assert_eq!(sum_up, up);
        for w in buckets.windows(2) {
            prop_assert!(w[0].hour_start < w[1].hour_start);
        }
        for b in &buckets {
            prop_assert_eq!(b.hour_start.as_microsecond() % 3_600_000_000, 0);
            prop_assert!(b.hour_start <= to);
        }
    }

    /// Whatever order and repetition interim updates of one session arrive in, the octets
    /// counted equal the highest counters sent (counters only grow in this run).
    #[test]
    fn reordering_and_duplication_never_double_count(
        steps in proptest::collection::vec((1u32..600, 0u64..1_000_000, 0u64..1_000), 1..12),
        order in proptest::collection::vec(0usize..100, 0..30),
    ) {
        let mut events = Vec::new();
        let (mut t, mut down, mut up) = (0u32, 0u64, 0u64);
        for (dt, dd, du) in &steps {
            t += dt; down += dd; up += du;
            let mut e = event(AcctStatus::InterimUpdate, "2026-01-01T10:00:00Z", Some(t), Some((down, up)));
            e.event_time = ts("2026-01-01T10:00:00Z") + SignedDuration::from_secs(i64::from(t));
            events.push(e);
        }
        // Random packets in random order and repetition, then every packet in order.
        let mut feed: Vec<_> = order.iter().map(|i| events[i % events.len()].clone()).collect();
        feed.extend(events.iter().cloned());
        let (s, counted) = run(&feed);
        prop_assert_eq!(counted, Octets { download: down, upload: up });
        prop_assert_eq!(s.unwrap().total, counted);
    }
}

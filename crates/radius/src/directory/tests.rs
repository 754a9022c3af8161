use super::*;
use lastmile_domain::ids::SubscriberId;
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::service::AccessKind;

fn record(username: Option<&str>, mac: Option<&str>, circuit: Option<&str>) -> AuthRecord {
    AuthRecord {
        service_id: ServiceId::generate(),
        subscriber_id: SubscriberId::generate(),
        status: ServiceStatus::Active,
        username: username.map(String::from),
        password: Some("pw".into()),
        mac: mac.map(|m| m.parse().unwrap()),
        circuit_id: circuit.map(String::from),
        access_kind: AccessKind::Pppoe,
        static_ip: None,
        ip_pool: None,
        nas_id: None,
        tier: Tier {
            download_kbps: 10_000,
            upload_kbps: 2_000,
            burst: None,
            policy_name: "basic".into(),
        },
        simultaneous_use: 1,
    }
}

fn nas(ip: [u8; 4]) -> NasEntry {
    NasEntry::new(
        NasId::generate(),
        "nas",
        IpAddr::from(ip),
        b"secret".to_vec(),
        VendorProfile::Mikrotik,
    )
}

#[test]
fn every_key_finds_the_service() {
    let d = Directory::new();
    let r = record(
        Some("alice"),
        Some("aa:bb:cc:dd:ee:ff"),
        Some("olt1 eth 1/1/1:100"),
    );
    let id = r.service_id;
    d.replace_all([nas([10, 0, 0, 1])], [r]);
    assert_eq!(d.by_username("alice").unwrap().service_id, id);
    assert!(
        d.by_username("Alice").is_none(),
        "RADIUS compares logins exactly"
    );
    let mac = MacAddr::parse(b"AA-BB-CC-DD-EE-FF").unwrap();
    assert_eq!(d.by_mac(mac).unwrap().service_id, id);
    assert_eq!(
        d.by_circuit_id(b"olt1 eth 1/1/1:100").unwrap().service_id,
        id
    );
    assert_eq!(d.service(id).unwrap().service_id, id);
    assert_eq!(d.service_count(), 1);
    assert_eq!(d.nas_count(), 1);
    assert!(d.nas(IpAddr::from([10, 0, 0, 1])).is_some());
    // A dual-stack socket sees an IPv4 NAS as ::ffff:10.0.0.1.
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    assert!(d.nas(mapped).is_some());
    assert!(d.nas(IpAddr::from([10, 0, 0, 2])).is_none());
}

#[test]
fn changing_keys_removes_the_old_ones() {
    let d = Directory::new();
    let mut r = record(Some("alice"), Some("aa:bb:cc:dd:ee:ff"), Some("c1"));
    let id = r.service_id;
    d.apply([DirectoryChange::UpsertService(r.clone())]);
    r.username = Some("alice2".into());
    r.mac = Some("00:11:22:33:44:55".parse().unwrap());
    r.circuit_id = None;
    r.status = ServiceStatus::Suspended;
    d.apply([DirectoryChange::UpsertService(r.clone())]);
    assert!(d.by_username("alice").is_none());
    assert!(d.by_mac("aa:bb:cc:dd:ee:ff".parse().unwrap()).is_none());
    assert!(d.by_circuit_id(b"c1").is_none());
    let now = d.by_username("alice2").unwrap();
    assert_eq!(now.service_id, id);
    assert_eq!(now.status, ServiceStatus::Suspended);
    assert!(d.by_mac("00:11:22:33:44:55".parse().unwrap()).is_some());
    d.apply([DirectoryChange::RemoveService(id)]);
    assert!(d.by_username("alice2").is_none());
    assert!(d.service(id).is_none());
    assert_eq!(d.service_count(), 0);
}

#[test]
fn a_terminated_service_never_shadows_a_live_one() {
    let live = record(Some("bob"), None, None);
    let mut dead = record(Some("bob"), None, None);
    dead.status = ServiceStatus::Terminated;
    // Whatever the load order, the live service keeps the login.
    for order in [[live.clone(), dead.clone()], [dead.clone(), live.clone()]] {
        let d = Directory::new();
        d.replace_all([], order);
        assert_eq!(d.by_username("bob").unwrap().service_id, live.service_id);
    }
    let d = Directory::new();
    d.apply([
        DirectoryChange::UpsertService(live.clone()),
        DirectoryChange::UpsertService(dead.clone()),
    ]);
    assert_eq!(d.by_username("bob").unwrap().service_id, live.service_id);
    // Removing the terminated one does not take the live one's key with it.
    d.apply([DirectoryChange::RemoveService(dead.service_id)]);
    assert_eq!(d.by_username("bob").unwrap().service_id, live.service_id);
    // A terminated service alone is found (and rejected as terminated, not unknown).
    let d = Directory::new();
    d.apply([DirectoryChange::UpsertService(dead.clone())]);
    assert_eq!(
        d.by_username("bob").unwrap().status,
        ServiceStatus::Terminated
    );
}

#[test]
fn nas_changes_copy_the_table() {
    let d = Directory::new();
    let a = nas([10, 0, 0, 1]);
    d.apply([DirectoryChange::UpsertNas(a.clone())]);
    let before = d.nas(a.ip).unwrap();
    let mut moved = a.clone();
    moved.ip = IpAddr::from([10, 0, 0, 9]);
    moved.name = "moved".into();
    d.apply([DirectoryChange::UpsertNas(moved.clone())]);
    assert!(
        d.nas(a.ip).is_none(),
        "a NAS that changed address is not found at the old one"
    );
    assert_eq!(d.nas(moved.ip).unwrap().name, "moved");
    assert_eq!(before.name, "nas", "readers keep the entry they hold");
    assert_eq!(d.nas_by_id(a.id).unwrap().name, "moved");
    d.apply([DirectoryChange::RemoveNas(a.id)]);
    assert_eq!(d.nas_count(), 0);
}

#[test]
fn readers_run_while_a_writer_updates() {
    let d = Arc::new(Directory::new());
    let services: Vec<_> = (0..2000)
        .map(|i| record(Some(&format!("user{i}")), None, None))
        .collect();
    d.replace_all([], services.clone());
    let reader = {
        let d = d.clone();
        std::thread::spawn(move || {
            let mut found = 0;
            for round in 0..20 {
                for i in 0..2000 {
                    if d.by_username(&format!("user{i}")).is_some() {
                        found += 1;
                    }
                }
                let _ = round;
            }
            found
        })
    };
    for s in services.iter().take(500) {
        let mut s = s.clone();
        s.status = ServiceStatus::Suspended;
        d.apply([DirectoryChange::UpsertService(s)]);
    }
    // Key-preserving updates never make a service disappear.
    assert_eq!(reader.join().unwrap(), 40_000);
    assert_eq!(
        d.by_username("user1").unwrap().status,
        ServiceStatus::Suspended
    );
}

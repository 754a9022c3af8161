//! ARCHITECTURE.md's permission table must say exactly what `Role::allows` does.

use lastmile_domain::auth::{Permission, Role};

const DOC: &str = include_str!("../../../ARCHITECTURE.md");

fn permission(name: &str) -> Permission {
    match name {
        "read" => Permission::Read,
        "write subscribers" => Permission::WriteSubscribers,
        "write plans" => Permission::WritePlans,
        "write nas" => Permission::WriteNas,
        "write services" => Permission::WriteServices,
        "suspend services" => Permission::SuspendServices,
        "retry jobs" => Permission::RetryJobs,
        "read audit" => Permission::ReadAudit,
        "read billing" => Permission::ReadBilling,
        "run billing" => Permission::RunBilling,
        "write billing" => Permission::WriteBilling,
        other => panic!("ARCHITECTURE.md names an unknown permission {other:?}"),
    }
}

#[test]
fn architecture_permission_table_matches_the_code() {
    let mut lines = DOC.lines().skip_while(|l| !l.starts_with("| permission |"));
    let header: Vec<&str> = lines
        .next()
        .expect("permission table")
        .split('|')
        .map(str::trim)
        .collect();
    let roles: Vec<Role> = header[2..header.len() - 1]
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
    assert_eq!(roles, Role::ALL);
    let mut seen = Vec::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let p = permission(cells[1]);
        for (role, cell) in roles.iter().zip(&cells[2..]) {
            let documented = match *cell {
                "yes" => true,
                "no" => false,
                other => panic!("cell {other:?}"),
            };
            assert_eq!(role.allows(p), documented, "{role} / {}", cells[1]);
        }
        seen.push(p);
    }
    assert_eq!(
        seen,
        Permission::ALL,
        "every permission documented once, in order"
    );
}

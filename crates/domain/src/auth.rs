//! Operators, roles and what each role may do.

use crate::ids::OperatorId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    Admin,
    Billing,
    Support,
    Noc,
    Readonly,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Billing,
        Role::Support,
        Role::Noc,
        Role::Readonly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Billing => "billing",
            Self::Support => "support",
            Self::Noc => "noc",
            Self::Readonly => "readonly",
        }
    }

    /// The permission table (ARCHITECTURE.md repeats it; a test keeps them in step).
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match p {
            Read => true,
            WriteSubscribers => matches!(self, Admin | Billing | Support),
            WritePlans => matches!(self, Admin),
            WriteNas => matches!(self, Admin | Noc),
            WriteServices => matches!(self, Admin | Support),
            SuspendServices => matches!(self, Admin | Billing | Support | Noc),
            RetryJobs => matches!(self, Admin | Noc),
            ReadAudit => matches!(self, Admin | Billing | Support | Noc | Readonly),
            ReadBilling => matches!(self, Admin | Billing | Support | Readonly),
            RunBilling => matches!(self, Admin | Billing),
            WriteBilling => matches!(self, Admin | Billing),
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role `{s}` (expected admin, billing, support, noc or readonly)")
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request needs. Coarse on purpose: one line per kind of work an ISP divides by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Read subscribers, plans, NAS, services, timelines, jobs.
    Read,
    /// Create, update and close subscribers.
    WriteSubscribers,
    /// Create, version and retire plans.
    WritePlans,
    /// Create, update and delete NAS.
    WriteNas,
    /// Create services; activate, change plan, terminate.
    WriteServices,
    /// Suspend and resume services.
    SuspendServices,
    /// Retry failed provisioning jobs.
    RetryJobs,
    /// Read the audit trail.
    ReadAudit,
    /// Read invoices and billing runs.
    ReadBilling,
    /// Start billing and dunning runs.
    RunBilling,
    /// Issue, void and credit invoices; record payments and refunds; billing configuration
    /// (tax zones, dunning policies, discounts).
    WriteBilling,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::Read,
        Permission::WriteSubscribers,
        Permission::WritePlans,
        Permission::WriteNas,
        Permission::WriteServices,
        Permission::SuspendServices,
        Permission::RetryJobs,
        Permission::ReadAudit,
        Permission::ReadBilling,
        Permission::RunBilling,
        Permission::WriteBilling,
    ];
}

/// A staff member or integration. Authenticates with API tokens (hashed at rest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub id: OperatorId,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_may_do_everything_readonly_only_read() {
        for p in Permission::ALL {
            assert!(Role::Admin.allows(p));
            assert_eq!(
                Role::Readonly.allows(p),
                matches!(
                    p,
                    Permission::Read | Permission::ReadAudit | Permission::ReadBilling
                )
            );
        }
    }

    #[test]
    fn roles_parse() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }
}

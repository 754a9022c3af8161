//! Typed identifiers. UUIDv7: time-ordered, so cursor pagination by id is pagination by
//! creation time, and ids can be minted on any node without coordination.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(SubscriberId);
id_type!(PlanId);
id_type!(PlanVersionId);
id_type!(ServiceId);
id_type!(ServiceEventId);
id_type!(NasId);
id_type!(AuditEventId);
id_type!(JobId);
id_type!(OperatorId);
id_type!(
    /// A RADIUS session: one Acct-Session-Id of one NAS, from Start to Stop.
    SessionId
);
id_type!(TokenId);
id_type!(InvoiceId);
id_type!(InvoiceLineId);
id_type!(BillingRunId);
id_type!(DiscountId);
id_type!(TaxZoneId);
id_type!(CreditNoteId);
id_type!(PaymentId);
id_type!(RefundId);
id_type!(AllocationId);
id_type!(DunningPolicyId);
id_type!(DunningActionId);

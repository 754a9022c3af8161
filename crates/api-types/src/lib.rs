//! Requests and responses of the HTTP API, `/api/v1`. Separate from the domain types so the
//! wire format changes only on purpose: responses are built from domain values with `From`,
//! requests are validated into domain values by the use cases (`lastmile-app`).
//!
//! Conventions: ids are UUIDs; timestamps RFC 3339 in UTC; money in integer minor units
//! (`*_minor`); rates in kbit/s; requests reject unknown fields.

pub mod requests;
pub mod responses;

pub use requests::*;
pub use responses::*;

/// Deserialises a field that may be absent (`None`), `null` (`Some(None)`: clear it) or a
/// value (`Some(Some(v))`), for PATCH bodies.
pub fn nullable<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    Option::<T>::deserialize(d).map(Some)
}

//! Requests and responses of the HTTP API, `/api/v1`. Separate from the domain types so the
//! wire format changes only on purpose: responses are built from domain values with `From`,
//! requests are validated into domain values by the use cases (`lastmile-app`).
//!
//! Conventions: ids are UUIDs; timestamps RFC 3339 in UTC; dates `YYYY-MM-DD`; money in
//! integer minor units (`*_minor`); rates in kbit/s; requests reject unknown fields. Request
//! schemas carry every constraint the server checks that JSON Schema can express.

pub mod inputs;
pub mod openapi;
pub mod requests;
pub mod responses;

pub use inputs::*;
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

/// Integers in request bodies: a JSON integer, or a number without a fraction (`5.0`), which
/// JSON Schema's `integer` includes and some encoders write for whole numbers. Out of range
/// or fractional is refused as serde refuses it.
pub mod ints {
    use serde::de::{Deserializer, Error, Unexpected, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    /// Floats are exact integers up to 2^53.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    struct Int<T>(PhantomData<T>);

    impl<'de, T: TryFrom<i64> + TryFrom<u64>> Visitor<'de> for Int<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(std::any::type_name::<T>())
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
            if v.fract() == 0.0 && v.abs() <= EXACT {
                // Exact: a whole number of at most 2^53 in magnitude.
                self.visit_i64(v as i64)
            } else {
                Err(E::invalid_type(Unexpected::Float(v), &self))
            }
        }
    }

    struct OptInt<T>(PhantomData<T>);

    impl<'de, T: TryFrom<i64> + TryFrom<u64>> Visitor<'de> for OptInt<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{} or null", std::any::type_name::<T>())
        }

        fn visit_none<E: Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            int(d).map(Some)
        }
    }

    /// For `#[serde(deserialize_with = "crate::ints::int")]`.
    pub fn int<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + TryFrom<u64>,
    {
        d.deserialize_any(Int(PhantomData))
    }

    /// For PATCH fields: absent (`None`), `null` (`Some(None)`) or an integer, as
    /// `#[serde(default, deserialize_with = "crate::ints::nullable_int")]`.
    pub fn nullable_int<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + TryFrom<u64>,
    {
        opt_int(d).map(Some)
    }

    /// For `#[serde(default, deserialize_with = "crate::ints::opt_int")]`.
    pub fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + TryFrom<u64>,
    {
        d.deserialize_option(OptInt(PhantomData))
    }
}

/// Dates in request bodies are exactly `YYYY-MM-DD` (what the schema's `format: date` says):
/// no other ISO 8601 spelling (`20260601`, `2026-06-01T00:00`, `+002026-06-01`) is taken.
pub mod dates {
    use jiff::civil::Date;
    use serde::{de::Error, Deserialize, Deserializer};

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Date, String> {
        let b = s.as_bytes();
        let shape = b.len() == 10
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                _ => c.is_ascii_digit(),
            });
        let err = || format!("must be a date as YYYY-MM-DD, not {s:?}");
        if !shape {
            return Err(err());
        }
        s.parse().map_err(|_| err())
    }

    /// For `#[serde(deserialize_with = "crate::dates::required")]`.
    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(D::Error::custom)
    }

    /// For `#[serde(default, deserialize_with = "crate::dates::optional")]`.
    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| parse(&s).map_err(D::Error::custom))
            .transpose()
    }
}

//! Validation: every rule violation names the field at fault, so the API can answer `422` with
//! the complete list in one round trip.

use serde::Serialize;
use std::fmt;

/// One field that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field, as the client sent it (e.g. `billing_address.country`).
    pub field: String,
    pub message: String,
}

/// All validation failures of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.add(field, message);
        e
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result` (if any) under `field` and returns the value.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(m) => {
                self.add(field, m);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing failed.
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Trims and checks a required free-text field.
pub fn non_empty(value: &str, max_len: usize) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("must not be empty".into());
    }
    if v.chars().count() > max_len {
        return Err(format!("must be at most {max_len} characters"));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    Ok(v.to_string())
}

/// Trims an optional free-text field; empty becomes `None`.
pub fn optional(value: Option<&str>, max_len: usize) -> Result<Option<String>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => non_empty(v, max_len).map(Some),
    }
}

/// A deliberately modest e-mail check: one `@`, something on both sides, a dot in the domain,
/// no spaces. Deliverability is proven by sending mail, not by a regex.
pub fn email(value: &str) -> Result<String, String> {
    let v = value.trim();
    let ok = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }
        None => false,
    };
    if !ok || v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be an e-mail address".into());
    }
    Ok(v.to_string())
}

/// The fewest characters a search needle may have: a trigram index (the subscriber search's)
/// serves no shorter one, so a shorter needle that matched little would scan the table.
pub const MIN_SEARCH_CHARS: usize = 3;

/// Trims and checks a search needle: at least [`MIN_SEARCH_CHARS`] characters (not bytes)
/// once trimmed, blank included, and no control characters anywhere.
pub fn search_term(value: &str) -> Result<String, String> {
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    let v = value.trim();
    if v.chars().count() < MIN_SEARCH_CHARS {
        return Err(format!("must be at least {MIN_SEARCH_CHARS} characters"));
    }
    Ok(v.to_string())
}

/// The earliest date any input may name (billing dates, discount dates, event dates).
pub const EARLIEST_DATE: jiff::civil::Date = jiff::civil::date(2000, 1, 1);
/// The latest date any input may name: far enough for a contract or a discount end, near
/// enough that nothing walks thousands of years of periods.
pub const LATEST_DATE: jiff::civil::Date = jiff::civil::date(2199, 12, 31);
/// A billing run may be dated at most this many days after today (the operator's today).
pub const MAX_BILLING_DAYS_AHEAD: i32 = 366;

/// Checks that an input date lies in [`EARLIEST_DATE`]..=[`LATEST_DATE`].
pub fn date_in_range(d: jiff::civil::Date) -> Result<jiff::civil::Date, String> {
    if d < EARLIEST_DATE || d > LATEST_DATE {
        Err(format!("must be between {EARLIEST_DATE} and {LATEST_DATE}"))
    } else {
        Ok(d)
    }
}

/// An active ISO 4217 alphabetic code with a minor unit (the table in [`crate::currency`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    /// Accepts only the codes of [`crate::currency::ISO_4217`] (upper case, surrounding
    /// spaces ignored): `ZZZ` has the shape of a code but is no currency.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if crate::currency::minor_unit(s).is_some() {
            Ok(Self(s.to_string()))
        } else {
            Err("must be an active ISO 4217 currency code such as EUR or USD".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(email("a@b.co").is_ok());
        assert!(email(" noc@isp.example ").is_ok());
        for bad in ["", "a", "a@b", "@b.co", "a@.co", "a b@c.de", "a@b.co@d.ef"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("EURO").is_err());
        assert_eq!(Currency::parse(" CHF ").unwrap().as_str(), "CHF");
        for fake in ["ZZZ", "QQQ", "XAU", "XXX", "HRK"] {
            assert!(Currency::parse(fake).is_err(), "{fake}");
        }
    }

    #[test]
    fn text() {
        assert_eq!(non_empty("  x ", 5).unwrap(), "x");
        assert!(non_empty("   ", 5).is_err());
        assert!(non_empty("abcdef", 5).is_err());
        assert!(non_empty("a\u{0}b", 5).is_err());
        assert_eq!(optional(Some(" "), 5).unwrap(), None);
    }

    #[test]
    fn search_terms() {
        assert_eq!(search_term(" abc ").unwrap(), "abc");
        assert_eq!(search_term("a b").unwrap(), "a b");
        // Characters, not bytes: "été" is 3 characters in 5 bytes, "ét" 2 in 3.
        assert_eq!(search_term("été").unwrap(), "été");
        let short = "must be at least 3 characters";
        for bad in ["", "   ", "ab", " ab ", "ét", "\u{3000}ab\u{3000}"] {
            assert_eq!(search_term(bad).unwrap_err(), short, "{bad:?}");
        }
        assert!(search_term("abc\u{0}").is_err());
        assert!(search_term("\tabc").is_err());
    }
}

//! Discounts: a percentage off, or a fixed amount off per billing period, of a subscriber's
//! recurring charges, for a window of days. Rating turns them into discount lines (see
//! [`super::rating::expected_for_subscriber`]); like every charge they are a function of the
//! data, so changing a discount after the fact is corrected on the next invoice.

use super::period::day_number;
use super::tax::Rate;
use crate::ids::{DiscountId, ServiceId, SubscriberId};
use crate::validate::{date_in_range, non_empty, ValidationErrors};
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How much a discount takes off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DiscountValue {
    /// This percentage of each discounted recurring charge (`{"kind":"percent","percent":"10"}`).
    Percent { percent: Rate },
    /// This amount per billing period, prorated by discounted days
    /// (`{"kind":"fixed","amount_minor":500}`), in the subscriber's currency.
    Fixed { amount_minor: i64 },
}

impl DiscountValue {
    /// A percentage above 0 (at most 100 by construction of [`Rate`]), or a positive amount
    /// of at most [`super::money::MAX_AMOUNT_MINOR`].
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match *self {
            Self::Percent { percent } if percent.millionths() <= 0 => {
                Err(("value.percent", "must be more than 0".into()))
            }
            Self::Fixed { amount_minor } if amount_minor <= 0 => {
                Err(("value.amount_minor", "must be more than 0".into()))
            }
            Self::Fixed { amount_minor } => super::money::check_amount(amount_minor)
                .map(drop)
                .map_err(|m| ("value.amount_minor", m)),
            _ => Ok(()),
        }
    }
}

/// A discount of a subscriber's recurring charges, on one service or on all of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    pub id: DiscountId,
    pub subscriber_id: SubscriberId,
    /// `None`: every service of the subscriber. A fixed amount is then taken once per period
    /// from the subscriber's services together, not once per service.
    pub service_id: Option<ServiceId>,
    pub value: DiscountValue,
    /// First discounted day (operator-local civil date).
    pub starts_on: Date,
    /// First day no longer discounted; `None`: open-ended.
    pub ends_on: Option<Date>,
    pub description: String,
    pub created_at: Timestamp,
}

/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 200;

/// Checks what an operator enters for a discount (before or after it has an id): a positive
/// value, a window that ends after it starts, within the accepted dates (rating walks every
/// day of it), a description of 1 to 200 characters.
pub fn validate_terms(
    value: &DiscountValue,
    starts_on: Date,
    ends_on: Option<Date>,
    description: &str,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if let Err((field, message)) = value.validate() {
        errors.add(field, message);
    }
    errors.check("starts_on", date_in_range(starts_on));
    if let Some(end) = ends_on {
        if end <= starts_on {
            errors.add("ends_on", "must be after starts_on");
        } else {
            errors.check("ends_on", date_in_range(end));
        }
    }
    errors.check("description", non_empty(description, MAX_DESCRIPTION));
    errors.into_result()
}

impl Discount {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        validate_terms(&self.value, self.starts_on, self.ends_on, &self.description)
    }

    /// Whether it concerns this service (directly or as a subscriber-wide discount).
    pub fn applies_to(&self, service: ServiceId) -> bool {
        self.service_id.is_none_or(|s| s == service)
    }

    /// Whether the day numbered `day` (see [`day_number`]) is in its window.
    pub(crate) fn covers_day(&self, day: i64) -> bool {
        day_number(self.starts_on) <= day && self.ends_on.is_none_or(|e| day < day_number(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn discount(value: DiscountValue, ends_on: Option<Date>, description: &str) -> Discount {
        Discount {
            id: DiscountId::generate(),
            subscriber_id: SubscriberId::generate(),
            service_id: None,
            value,
            starts_on: date(2026, 6, 1),
            ends_on,
            description: description.into(),
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn values_are_tagged_on_the_wire() {
        let p: DiscountValue =
            serde_json::from_str(r#"{"kind":"percent","percent":"10"}"#).unwrap();
        assert_eq!(
            p,
            DiscountValue::Percent {
                percent: Rate::parse_percent("10").unwrap()
            }
        );
        let f: DiscountValue =
            serde_json::from_str(r#"{"kind":"fixed","amount_minor":500}"#).unwrap();
        assert_eq!(f, DiscountValue::Fixed { amount_minor: 500 });
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"kind":"percent","percent":"10"}"#
        );
        assert!(
            serde_json::from_str::<DiscountValue>(r#"{"kind":"percent","percent":10}"#).is_err()
        );
        assert!(serde_json::from_str::<DiscountValue>(
            r#"{"kind":"fixed","amount_minor":500,"x":1}"#
        )
        .is_err());
    }

    #[test]
    fn validation_names_the_fields() {
        let ten = DiscountValue::Percent {
            percent: Rate::parse_percent("10").unwrap(),
        };
        assert!(discount(ten, None, "Loyalty").validate().is_ok());
        assert!(discount(ten, Some(date(2026, 6, 2)), "Loyalty")
            .validate()
            .is_ok());
        let e = discount(
            DiscountValue::Percent {
                percent: Rate::ZERO,
            },
            Some(date(2026, 6, 1)),
            " ",
        )
        .validate()
        .unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["value.percent", "ends_on", "description"]);
        let e = discount(
            DiscountValue::Fixed { amount_minor: 0 },
            Some(date(2026, 5, 1)),
            &"x".repeat(201),
        )
        .validate()
        .unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["value.amount_minor", "ends_on", "description"]);
        // Dates outside the accepted range, named by field.
        let e = validate_terms(
            &DiscountValue::Fixed { amount_minor: 100 },
            date(1999, 12, 31),
            Some(date(2200, 1, 1)),
            "Dates",
        )
        .unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["starts_on", "ends_on"]);
        let bound = super::super::money::MAX_AMOUNT_MINOR;
        assert!(DiscountValue::Fixed {
            amount_minor: bound
        }
        .validate()
        .is_ok());
        let (field, _) = DiscountValue::Fixed {
            amount_minor: bound + 1,
        }
        .validate()
        .unwrap_err();
        assert_eq!(field, "value.amount_minor");
    }

    #[test]
    fn window_is_half_open() {
        let d = discount(
            DiscountValue::Fixed { amount_minor: 1 },
            Some(date(2026, 6, 16)),
            "x",
        );
        assert!(!d.covers_day(day_number(date(2026, 5, 31))));
        assert!(d.covers_day(day_number(date(2026, 6, 1))));
        assert!(d.covers_day(day_number(date(2026, 6, 15))));
        assert!(!d.covers_day(day_number(date(2026, 6, 16))));
        assert!(d.applies_to(ServiceId::generate()));
    }
}

//! Taxes: exact decimal rates, tax zones, and the tax of one invoice line.
//!
//! A subscriber belongs to a tax zone; a plan has a tax class. The taxes of the zone whose class
//! equals the line's class apply to the line (several may: a federal and a provincial tax).
//! Every tax of every line is computed exactly and rounded once, half to even, like every other
//! amount (see [`super::money`]).

use super::money::div_round_half_even;
use crate::ids::TaxZoneId;
use crate::validate::{date_in_range, non_empty, ValidationErrors};
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

/// Millionths of one in a whole (100 %).
const ONE: i64 = 1_000_000;
/// Millionths of one in one percent.
const PER_PERCENT: i64 = ONE / 100;
/// Decimals of a percentage a rate can carry (1 millionth = 0.0001 %).
const PERCENT_DECIMALS: usize = 4;

/// An exact percentage between 0 and 100 %, stored as millionths of one (`1_000_000` =
/// 100 %, `200_000` = 20 %, `88_750` = 8.875 %). On the wire it is the percentage as a decimal
/// string (`"20"`, `"8.875"`), never a float.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, example = "20")
)]
pub struct Rate(i64);

impl Rate {
    pub const ZERO: Rate = Rate(0);
    pub const HUNDRED_PERCENT: Rate = Rate(ONE);

    /// A rate from millionths of one; `None` outside 0..=100 %.
    pub fn from_millionths(m: i64) -> Option<Rate> {
        (0..=ONE).contains(&m).then_some(Rate(m))
    }

    /// Millionths of one (`200_000` for 20 %).
    pub fn millionths(self) -> i64 {
        self.0
    }

    /// Parses a percentage: digits, optionally a point and at most four more digits, between 0
    /// and 100 (`"20"`, `"20.0"`, `"8.875"`). Surrounding spaces are ignored; signs, exponents
    /// and anything else are not accepted.
    pub fn parse_percent(s: &str) -> Result<Rate, String> {
        const EXPECTED: &str =
            "must be a percentage between 0 and 100 with at most 4 decimals, such as \"20\" or \"8.875\"";
        let s = s.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        // "20." and ".5" are not accepted: say what you mean.
        if int.is_empty() || (s.contains('.') && frac.is_empty()) || !digits(int) || !digits(frac) {
            return Err(EXPECTED.into());
        }
        if frac.len() > PERCENT_DECIMALS {
            return Err(format!(
                "must have at most {PERCENT_DECIMALS} decimals (0.0001 %)"
            ));
        }
        // Leading zeros are harmless, but a long integer part is out of range anyway.
        let int = int.trim_start_matches('0');
        if int.len() > 3 {
            return Err("must be at most 100".into());
        }
        let whole: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| EXPECTED.to_string())?
        };
        let mut fraction: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            // The n-th decimal of a percent is 10^(4 - n) millionths.
            let scale = 10i64.pow((PERCENT_DECIMALS - 1 - i) as u32);
            fraction += i64::from(b - b'0') * scale;
        }
        Rate::from_millionths(whole * PER_PERCENT + fraction)
            .ok_or_else(|| "must be at most 100".to_string())
    }

    /// The canonical percentage: no trailing zeros, no point for whole numbers (`"20"`,
    /// `"8.875"`, `"0.0001"`).
    pub fn to_percent_string(self) -> String {
        let whole = self.0 / PER_PERCENT;
        let frac = self.0 % PER_PERCENT;
        if frac == 0 {
            return whole.to_string();
        }
        let digits = format!("{frac:0width$}", width = PERCENT_DECIMALS);
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_percent_string())
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Rate::parse_percent(s)
    }
}

impl TryFrom<String> for Rate {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Rate::parse_percent(&s)
    }
}

impl From<Rate> for String {
    fn from(r: Rate) -> String {
        r.to_percent_string()
    }
}

/// One tax of a zone: it applies to the lines whose plan has this tax class.
///
/// Rates are dated: a zone may list the same tax (name and class) several times with different
/// `valid_from` dates, and a line is taxed at the entry in force on the first day of the period
/// it bills (the latest `valid_from` on or before it; no date = since always). So a correction
/// of a period before a rate change is taxed at the rate of that period, as the original
/// supply was. To change a rate, add an entry from the day it changes and keep the old one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tax {
    /// As printed on the invoice ("VAT", "GST", "QST").
    pub name: String,
    pub tax_class: String,
    pub rate: Rate,
    /// The first billing period start this rate applies to; absent: every period until the
    /// next dated entry of the same tax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub valid_from: Option<Date>,
}

/// Where a subscriber is taxed, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxZone {
    pub id: TaxZoneId,
    pub code: String,
    pub name: String,
    /// Plan prices already contain the taxes (consumer pricing in most of Europe): the tax is
    /// extracted from the price instead of added to it.
    pub prices_include_tax: bool,
    pub taxes: Vec<Tax>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revision: i64,
}

const MAX_NAME: usize = 100;
const MAX_CLASS: usize = 50;

impl TaxZone {
    /// The taxes of a zone: at least one; each with a name and a class; a name at most once per
    /// class and date (two "VAT" for one line would be a data-entry error, not a policy); dates
    /// in the accepted range.
    pub fn validate_taxes(taxes: &[Tax]) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if taxes.is_empty() {
            errors.add("taxes", "must contain at least one tax");
        }
        let mut seen: HashSet<(&str, &str, Option<Date>)> = HashSet::new();
        for (i, t) in taxes.iter().enumerate() {
            let name = errors.check(&format!("taxes[{i}].name"), non_empty(&t.name, MAX_NAME));
            let class = errors.check(
                &format!("taxes[{i}].tax_class"),
                non_empty(&t.tax_class, MAX_CLASS),
            );
            if let Some(d) = t.valid_from {
                errors.check(&format!("taxes[{i}].valid_from"), date_in_range(d));
            }
            if name.is_some()
                && class.is_some()
                && !seen.insert((t.name.trim(), t.tax_class.trim(), t.valid_from))
            {
                errors.add(
                    format!("taxes[{i}]"),
                    format!(
                        "duplicates the tax `{}` of class `{}`{}",
                        t.name.trim(),
                        t.tax_class.trim(),
                        t.valid_from
                            .map(|d| format!(" from {d}"))
                            .unwrap_or_default()
                    ),
                );
            }
        }
        errors.into_result()
    }

    /// The taxes that apply to a line of this class billing a period that starts `on`: per tax
    /// (name), the entry in force that day, in the order the zone lists the taxes.
    pub fn taxes_for<'a>(&'a self, tax_class: &'a str, on: Date) -> Vec<&'a Tax> {
        let mut out: Vec<&Tax> = Vec::new();
        for t in self
            .taxes
            .iter()
            .filter(|t| t.tax_class == tax_class && t.valid_from.is_none_or(|d| d <= on))
        {
            match out.iter_mut().find(|o| o.name == t.name) {
                // A later entry of the same tax replaces an earlier one in force before it.
                Some(o) if o.valid_from < t.valid_from => *o = t,
                Some(_) => {}
                None => out.push(t),
            }
        }
        out
    }
}

/// One tax as applied to one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedTax {
    pub name: String,
    pub rate: Rate,
    pub amount_minor: i64,
}

/// The tax of one line: `gross = net + tax`, whichever of them the price was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineTax {
    pub net_minor: i64,
    pub tax_minor: i64,
    pub gross_minor: i64,
    /// Every tax that applies, in zone order, including those that round to zero.
    pub taxes: Vec<AppliedTax>,
}

/// The tax of a line of `amount_minor` (a price as the plan states it: net, or gross when the
/// zone's prices include tax) whose plan has `tax_class`, billing a period that starts `on`
/// (which picks the rates in force, see [`Tax`]).
///
/// - Exclusive pricing: each tax is `amount × rate`, rounded once; the net is the amount.
/// - Inclusive pricing: with `R` the sum of the applicable rates, each tax is
///   `amount × rate / (1 + R)`, rounded once; the gross is the amount and the net what is left,
///   so `net + tax = gross` holds exactly.
///
/// No zone or no tax of the class: no tax. A credit (negative amount) is taxed exactly like the
/// charge it reverses, with the opposite sign, because half-even rounding is symmetric.
/// `None` when a result does not fit in `i64` (only amounts far beyond any real invoice).
pub fn tax_line(
    amount_minor: i64,
    tax_class: &str,
    zone: Option<&TaxZone>,
    on: Date,
) -> Option<LineTax> {
    let applicable: Vec<&Tax> = zone.map(|z| z.taxes_for(tax_class, on)).unwrap_or_default();
    let inclusive = zone.is_some_and(|z| z.prices_include_tax);
    let amount = i128::from(amount_minor);
    // Every rate is at most 100 % and there are few, so no overflow in i128.
    let total_rate: i128 = applicable.iter().map(|t| i128::from(t.rate.0)).sum();
    let den = if inclusive {
        i128::from(ONE) + total_rate
    } else {
        i128::from(ONE)
    };
    let taxes = applicable
        .iter()
        .map(|t| {
            Some(AppliedTax {
                name: t.name.clone(),
                rate: t.rate,
                amount_minor: i64::try_from(div_round_half_even(
                    amount * i128::from(t.rate.0),
                    den,
                ))
                .ok()?,
            })
        })
        .collect::<Option<Vec<AppliedTax>>>()?;
    let tax: i128 = taxes.iter().map(|t| i128::from(t.amount_minor)).sum();
    let (net, gross) = if inclusive {
        (amount - tax, amount)
    } else {
        (amount, amount + tax)
    };
    Some(LineTax {
        net_minor: i64::try_from(net).ok()?,
        tax_minor: i64::try_from(tax).ok()?,
        gross_minor: i64::try_from(gross).ok()?,
        taxes,
    })
}

/// One tax of an invoice's tax summary: the base it was levied on and the amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxSummary {
    pub name: String,
    pub rate: Rate,
    /// Sum of the net amounts of the lines that carry this tax.
    pub taxable_minor: i64,
    /// Sum of the (already rounded) tax of those lines: the summary adds up to the lines.
    pub amount_minor: i64,
}

/// The invoice's taxes, one entry per (name, rate), in the order they first appear.
pub fn summarize(lines: &[LineTax]) -> Vec<TaxSummary> {
    let mut out: Vec<TaxSummary> = Vec::new();
    for line in lines {
        // A line's net counts once per group, even if it carried the same tax twice.
        let mut counted: Vec<usize> = Vec::new();
        for t in &line.taxes {
            let i = match out
                .iter()
                .position(|s| s.name == t.name && s.rate == t.rate)
            {
                Some(i) => i,
                None => {
                    out.push(TaxSummary {
                        name: t.name.clone(),
                        rate: t.rate,
                        taxable_minor: 0,
                        amount_minor: 0,
                    });
                    out.len() - 1
                }
            };
            if !counted.contains(&i) {
                counted.push(i);
                out[i].taxable_minor = out[i].taxable_minor.saturating_add(line.net_minor);
            }
            out[i].amount_minor = out[i].amount_minor.saturating_add(t.amount_minor);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate(s: &str) -> Rate {
        Rate::parse_percent(s).unwrap()
    }

    const DAY: Date = jiff::civil::date(2026, 6, 1);

    fn tax(name: &str, class: &str, r: &str) -> Tax {
        Tax {
            valid_from: None,
            name: name.into(),
            tax_class: class.into(),
            rate: rate(r),
        }
    }

    fn zone(inclusive: bool, taxes: Vec<Tax>) -> TaxZone {
        TaxZone {
            id: TaxZoneId::generate(),
            code: "Z".into(),
            name: "Zone".into(),
            prices_include_tax: inclusive,
            taxes,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            revision: 1,
        }
    }

    #[test]
    fn rates_parse_and_print_canonically() {
        for (s, m, canon) in [
            ("20", 200_000, "20"),
            ("20.0", 200_000, "20"),
            ("8.875", 88_750, "8.875"),
            ("0.001", 10, "0.001"),
            ("0.0001", 1, "0.0001"),
            ("100", 1_000_000, "100"),
            ("100.0000", 1_000_000, "100"),
            ("0", 0, "0"),
            ("007.50", 75_000, "7.5"),
            (" 5 ", 50_000, "5"),
        ] {
            let r = rate(s);
            assert_eq!(r.millionths(), m, "{s}");
            assert_eq!(r.to_percent_string(), canon, "{s}");
            assert_eq!(r.to_string(), canon, "{s}");
        }
        for bad in [
            "", " ", "-1", "+5", "100.0001", "101", "1000", "20.", ".5", "1e2", "abc", "2 0",
            "8.87501", "20%", "1.2.3", "٣",
        ] {
            assert!(Rate::parse_percent(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rates_are_strings_on_the_wire() {
        let t = tax("VAT", "standard", "8.875");
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "VAT", "tax_class": "standard", "rate": "8.875"})
        );
        assert_eq!(serde_json::from_value::<Tax>(json).unwrap(), t);
        assert!(
            serde_json::from_str::<Rate>("20").is_err(),
            "numbers are not rates"
        );
        assert!(serde_json::from_str::<Rate>("\"120\"").is_err());
        assert_eq!(
            serde_json::from_str::<Rate>("\"20.0\"").unwrap(),
            rate("20")
        );
    }

    #[test]
    fn zone_taxes_are_validated_by_field() {
        assert!(TaxZone::validate_taxes(&[tax("VAT", "standard", "20")]).is_ok());
        let e = TaxZone::validate_taxes(&[]).unwrap_err();
        assert_eq!(e.0[0].field, "taxes");
        let e = TaxZone::validate_taxes(&[
            tax("GST", "standard", "5"),
            tax(" ", "standard", "5"),
            tax("QST", "", "9.975"),
            tax("GST", "standard", "5"),
            tax("GST", "reduced", "0"),
        ])
        .unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["taxes[1].name", "taxes[2].tax_class", "taxes[3]"]);
    }

    #[test]
    fn exclusive_and_inclusive_worked_examples() {
        let vat = zone(false, vec![tax("VAT", "standard", "20")]);
        let t = tax_line(6000, "standard", Some(&vat), DAY).unwrap();
        assert_eq!(
            (t.net_minor, t.tax_minor, t.gross_minor),
            (6000, 1200, 7200)
        );
        assert_eq!(
            t.taxes,
            [AppliedTax {
                name: "VAT".into(),
                rate: rate("20"),
                amount_minor: 1200
            }]
        );

        let vat_in = zone(true, vec![tax("VAT", "standard", "20")]);
        let t = tax_line(6000, "standard", Some(&vat_in), DAY).unwrap();
        assert_eq!(
            (t.net_minor, t.tax_minor, t.gross_minor),
            (5000, 1000, 6000)
        );

        // Quebec: GST 5 % and QST 9.975 % on the same base.
        let qc = vec![tax("GST", "standard", "5"), tax("QST", "standard", "9.975")];
        let t = tax_line(10_000, "standard", Some(&zone(false, qc.clone())), DAY).unwrap();
        let amounts: Vec<i64> = t.taxes.iter().map(|t| t.amount_minor).collect();
        assert_eq!(amounts, [500, 998]); // 9.975 → 9.98
        assert_eq!(
            (t.net_minor, t.tax_minor, t.gross_minor),
            (10_000, 1498, 11_498)
        );

        // Inclusive 114.98: 114.98 / 1.14975 = 100.0043…; GST 5.0002 → 5.00, QST 9.9754 → 9.98.
        let t = tax_line(11_498, "standard", Some(&zone(true, qc)), DAY).unwrap();
        let amounts: Vec<i64> = t.taxes.iter().map(|t| t.amount_minor).collect();
        assert_eq!(amounts, [500, 998]);
        assert_eq!(
            (t.net_minor, t.tax_minor, t.gross_minor),
            (10_000, 1498, 11_498)
        );
    }

    #[test]
    fn no_zone_or_another_class_is_not_taxed() {
        let vat = zone(false, vec![tax("VAT", "standard", "20")]);
        for t in [
            tax_line(6000, "reduced", Some(&vat), DAY).unwrap(),
            tax_line(6000, "standard", None, DAY).unwrap(),
        ] {
            assert_eq!(
                t,
                LineTax {
                    net_minor: 6000,
                    tax_minor: 0,
                    gross_minor: 6000,
                    taxes: vec![]
                }
            );
        }
        // A zero-rated class still shows on the line (and in the summary).
        let z = zone(false, vec![tax("VAT", "exempt", "0")]);
        let t = tax_line(6000, "exempt", Some(&z), DAY).unwrap();
        assert_eq!((t.tax_minor, t.taxes.len()), (0, 1));
    }

    #[test]
    fn summary_groups_by_name_and_rate_in_first_seen_order() {
        let std_zone = zone(
            false,
            vec![
                tax("VAT", "standard", "20"),
                tax("VAT", "reduced", "5.5"),
                tax("Levy", "standard", "1"),
            ],
        );
        let lines = [
            tax_line(6000, "standard", Some(&std_zone), DAY).unwrap(),
            tax_line(1000, "reduced", Some(&std_zone), DAY).unwrap(),
            tax_line(-2000, "standard", Some(&std_zone), DAY).unwrap(),
            tax_line(500, "other", Some(&std_zone), DAY).unwrap(),
        ];
        let s = summarize(&lines);
        let got: Vec<(&str, String, i64, i64)> = s
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.rate.to_string(),
                    s.taxable_minor,
                    s.amount_minor,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("VAT", "20".to_string(), 4000, 800),
                ("Levy", "1".to_string(), 4000, 40),
                ("VAT", "5.5".to_string(), 1000, 55),
            ]
        );
    }

    #[cfg(feature = "openapi")]
    #[test]
    fn rates_are_strings_in_the_schema() {
        let schema = serde_json::to_value(<Rate as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string", "{schema}");
        let schema = serde_json::to_value(<Tax as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(
            schema["properties"]["rate"]["$ref"], "#/components/schemas/Rate",
            "{schema}"
        );
    }

    #[test]
    fn dated_rates_apply_to_the_periods_they_are_in_force_for() {
        let dated = |r: &str, from: Option<Date>| Tax {
            valid_from: from,
            ..tax("VAT", "standard", r)
        };
        let june = jiff::civil::date(2026, 6, 1);
        let z = zone(
            false,
            vec![
                dated("19", None),
                dated("16", Some(june)),
                tax("Levy", "standard", "1"),
            ],
        );
        // An April period (a correction issued after the change included) keeps 19 %.
        let april = tax_line(1646, "standard", Some(&z), jiff::civil::date(2026, 4, 1)).unwrap();
        assert_eq!(april.taxes[0].rate, rate("19"));
        assert_eq!(april.taxes[0].amount_minor, 313);
        assert_eq!(april.taxes[1].name, "Levy");
        // From the first day of June on: 16 %, in the zone's order of taxes.
        for day in [june, jiff::civil::date(2027, 1, 1)] {
            let t = tax_line(1646, "standard", Some(&z), day).unwrap();
            assert_eq!(t.taxes.len(), 2);
            assert_eq!(t.taxes[0].rate, rate("16"));
            assert_eq!(t.taxes[0].amount_minor, 263);
        }
        // A tax that starts later does not apply before.
        let later = zone(false, vec![dated("5", Some(june))]);
        assert!(tax_line(
            1000,
            "standard",
            Some(&later),
            jiff::civil::date(2026, 5, 31)
        )
        .unwrap()
        .taxes
        .is_empty());
        // The same tax twice on one date is an error; on two dates it is a schedule.
        assert!(
            TaxZone::validate_taxes(&[dated("19", Some(june)), dated("16", Some(june))]).is_err()
        );
        assert!(TaxZone::validate_taxes(&[dated("19", None), dated("16", Some(june))]).is_ok());
        assert!(
            TaxZone::validate_taxes(&[dated("19", Some(jiff::civil::date(1999, 1, 1)))]).is_err()
        );
    }

    #[test]
    fn results_beyond_i64_are_none_not_wrapped() {
        let z = zone(false, vec![tax("VAT", "standard", "19")]);
        assert!(tax_line(i64::MAX, "standard", Some(&z), DAY).is_none());
        assert!(tax_line(i64::MIN, "standard", Some(&z), DAY).is_none());
    }

    fn arb_zone(inclusive: bool) -> impl Strategy<Value = TaxZone> {
        proptest::collection::vec(0i64..=ONE, 1..4).prop_map(move |rates| {
            zone(
                inclusive,
                rates
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| Tax {
                        name: format!("T{i}"),
                        tax_class: "standard".into(),
                        rate: Rate(m),
                        valid_from: None,
                    })
                    .collect(),
            )
        })
    }

    proptest! {
        #[test]
        fn exclusive_gross_is_net_plus_tax(amount in -100_000_000i64..100_000_000, z in arb_zone(false)) {
            let t = tax_line(amount, "standard", Some(&z), DAY).unwrap();
            prop_assert_eq!(t.net_minor, amount);
            prop_assert_eq!(t.gross_minor, t.net_minor + t.tax_minor);
            prop_assert_eq!(t.tax_minor, t.taxes.iter().map(|t| t.amount_minor).sum::<i64>());
            for a in &t.taxes {
                // Each tax within half a unit of amount × rate.
                let err = (i128::from(a.amount_minor) * i128::from(ONE) - i128::from(amount) * i128::from(a.rate.0)).abs();
                prop_assert!(2 * err <= i128::from(ONE));
            }
        }

        #[test]
        fn inclusive_gross_is_the_amount(amount in -100_000_000i64..100_000_000, z in arb_zone(true)) {
            let t = tax_line(amount, "standard", Some(&z), DAY).unwrap();
            prop_assert_eq!(t.gross_minor, amount);
            prop_assert_eq!(t.net_minor + t.tax_minor, amount);
            // Each tax is off by at most half a unit, so net × (1 + R) is off from the amount by
            // at most n/2 × (1 + R) in units of millionths.
            let r: i128 = z.taxes.iter().map(|t| i128::from(t.rate.0)).sum();
            let n = z.taxes.len() as i128;
            let err = (i128::from(t.net_minor) * (i128::from(ONE) + r) - i128::from(amount) * i128::from(ONE)).abs();
            prop_assert!(2 * err <= n * (i128::from(ONE) + r), "err {}", err);
        }

        #[test]
        fn credits_are_taxed_symmetrically(amount in 0i64..100_000_000, inclusive in any::<bool>(), rates in proptest::collection::vec(0i64..=ONE, 1..4)) {
            let z = zone(inclusive, rates.into_iter().enumerate().map(|(i, m)| Tax { name: format!("T{i}"), tax_class: "standard".into(), rate: Rate(m), valid_from: None }).collect());
            let pos = tax_line(amount, "standard", Some(&z), DAY).unwrap();
            let neg = tax_line(-amount, "standard", Some(&z), DAY).unwrap();
            prop_assert_eq!((neg.net_minor, neg.tax_minor, neg.gross_minor), (-pos.net_minor, -pos.tax_minor, -pos.gross_minor));
            for (p, n) in pos.taxes.iter().zip(&neg.taxes) {
                prop_assert_eq!(n.amount_minor, -p.amount_minor);
            }
        }

        #[test]
        fn rates_round_trip_through_their_string(m in 0i64..=ONE) {
            let r = Rate(m);
            prop_assert_eq!(Rate::parse_percent(&r.to_percent_string()), Ok(r));
        }
    }
}

//! Money is integer minor units; rates are exact fractions; every line is rounded once,
//! half to even, to the currency's minor unit.

use crate::validate::Currency;

/// Digits after the decimal point of a currency (ISO 4217 minor unit).
pub fn exponent(c: &Currency) -> u32 {
    match c.as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// `num / den` rounded half to even. `den` must be positive.
pub fn div_round_half_even(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => {
            if q % 2 == 0 {
                q
            } else {
                q + 1
            }
        }
    }
}

/// `amount × numerator / denominator`, computed exactly and rounded once (never a rounded
/// unit price times a quantity). Saturates at the i64 range.
pub fn prorate(amount_minor: i64, numerator: i64, denominator: i64) -> i64 {
    if denominator <= 0 {
        return 0;
    }
    let v = div_round_half_even(
        i128::from(amount_minor) * i128::from(numerator),
        i128::from(denominator),
    );
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Renders minor units as a decimal string for documents (`-1234` EUR → `-12.34`).
pub fn format(amount_minor: i64, currency: &Currency) -> String {
    let e = exponent(currency);
    if e == 0 {
        return amount_minor.to_string();
    }
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    let scale = 10u64.pow(e);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = e as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn half_even() {
        assert_eq!(div_round_half_even(5, 2), 2);
        assert_eq!(div_round_half_even(7, 2), 4);
        assert_eq!(div_round_half_even(-5, 2), -2);
        assert_eq!(div_round_half_even(-7, 2), -4);
        assert_eq!(div_round_half_even(10, 3), 3);
        assert_eq!(div_round_half_even(11, 3), 4);
        assert_eq!(prorate(6000, 20, 30), 4000);
        assert_eq!(prorate(9000, 10, 30), 3000);
        // 49.99 for 1 of 31 days = 1.6126 → 1.61
        assert_eq!(prorate(4999, 1, 31), 161);
    }

    #[test]
    fn exponents_and_format() {
        let c = |s| Currency::parse(s).unwrap();
        assert_eq!(exponent(&c("EUR")), 2);
        assert_eq!(exponent(&c("JPY")), 0);
        assert_eq!(exponent(&c("KWD")), 3);
        assert_eq!(format(-1234, &c("EUR")), "-12.34");
        assert_eq!(format(5, &c("EUR")), "0.05");
        assert_eq!(format(1234, &c("JPY")), "1234");
        assert_eq!(format(1234, &c("KWD")), "1.234");
    }

    proptest! {
        #[test]
        fn rounding_is_within_half_a_unit(num in -1_000_000_000i64..1_000_000_000, den in 1i64..10_000) {
            let r = div_round_half_even(num.into(), den.into());
            let err = (r * i128::from(den) - i128::from(num)).abs();
            prop_assert!(2 * err <= i128::from(den));
        }
    }
}

//! Money is integer minor units; rates are exact fractions; every line is rounded once,
//! half to even, to the currency's minor unit.

use crate::validate::Currency;

/// The largest amount (in minor units, either sign) any input may carry: a price, a fee, a
/// payment, a refund, a credit note, a fixed discount, a bank-statement row. 10^12 minor units
/// is ten billion euros, far above any real invoice, and a million such amounts still sum
/// far below `i64::MAX`; sums are checked all the same, so overflow is an error, never a wrap.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// Checks an input amount against [`MAX_AMOUNT_MINOR`].
pub fn check_amount(amount_minor: i64) -> Result<i64, String> {
    if amount_minor.unsigned_abs() > MAX_AMOUNT_MINOR.unsigned_abs() {
        Err(format!(
            "must be at most {MAX_AMOUNT_MINOR} minor units in absolute value"
        ))
    } else {
        Ok(amount_minor)
    }
}

/// Digits after the decimal point of a currency (ISO 4217 minor unit, from the one table in
/// [`crate::currency`]). A code outside it (only a row stored before codes were checked
/// against the table can hold one) counts as 2, the most common minor unit.
pub fn exponent(c: &Currency) -> u32 {
    crate::currency::minor_unit(c.as_str()).unwrap_or(2)
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

/// Parses a decimal amount in major units into exact minor units (`"-12.34"` EUR → `-1234`).
///
/// Accepts an optional sign, digits, and optionally a `.` followed by at most
/// [`exponent`] digits; leading and trailing whitespace is ignored. Thousands separators,
/// exponents, a bare `.5` or `5.` and anything beyond the currency's minor unit are errors:
/// nothing is ever rounded.
pub fn parse_major(s: &str, currency: &Currency) -> Result<i64, String> {
    let (negative, body) = split_sign(s)?;
    let (int, frac) = match body.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (body, None),
    };
    to_minor(negative, int, frac, exponent(currency), currency)
}

/// Like [`parse_major`], for amounts from bank statements: also accepts a decimal comma
/// when there is no dot (`"60,50"`), and thousands separators when both separators occur
/// (`"1,234.56"`, `"1.234,56"`: the last one is the decimal separator, the other must group
/// the integer digits by three). Anything ambiguous (`"1,234,567"`, `"1.234.567"`) is an
/// error, never a guess.
pub fn parse_major_lenient(s: &str, currency: &Currency) -> Result<i64, String> {
    let (negative, int, frac) = split_lenient(s)?;
    to_minor(
        negative,
        &int,
        frac.as_deref(),
        exponent(currency),
        currency,
    )
}

/// The canonical decimal text of an amount accepted by [`parse_major_lenient`], without
/// knowing its currency: no sign for zero or positive amounts, no thousands separators, a
/// `.` decimal point, no leading or trailing zeros (`"+1.234,50"` → `"1234.5"`,
/// `"-0,00"` → `"0"`). Equal amounts written differently give equal text.
pub fn normalize_amount(s: &str) -> Result<String, String> {
    let (negative, int, frac) = split_lenient(s)?;
    check_digits(&int, frac.as_deref())?;
    let int = int.trim_start_matches('0');
    let frac = frac.as_deref().unwrap_or("").trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let zero = int == "0" && frac.is_empty();
    let sign = if negative && !zero { "-" } else { "" };
    Ok(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

/// Trims `s` and splits off an optional leading `+` or `-`.
fn split_sign(s: &str) -> Result<(bool, &str), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("is empty".into());
    }
    Ok(match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    })
}

/// Sign, integer digits and fraction digits of a bank-statement amount (see
/// [`parse_major_lenient`]); the digits are not checked yet.
fn split_lenient(s: &str) -> Result<(bool, String, Option<String>), String> {
    let (negative, body) = split_sign(s)?;
    let commas = body.matches(',').count();
    let dots = body.matches('.').count();
    let (decimal, thousands) = match (commas, dots) {
        (0, _) => ('.', None),
        (1, 0) => (',', None),
        (_, 0) => {
            return Err("is ambiguous: use a decimal separator or no thousands separators".into())
        }
        _ => match (body.rfind(','), body.rfind('.')) {
            (Some(c), Some(d)) if c > d => (',', Some('.')),
            _ => ('.', Some(',')),
        },
    };
    let (int, frac) = match body.split_once(decimal) {
        Some((int, frac)) => (int, Some(frac)),
        None => (body, None),
    };
    let int = match thousands {
        None => int.to_string(),
        Some(sep) => {
            if frac.is_some_and(|f| f.contains(sep)) {
                return Err("is not a number (separator after the decimal separator)".into());
            }
            let groups: Vec<&str> = int.split(sep).collect();
            let grouped = groups.iter().enumerate().all(|(i, g)| {
                let len_ok = if i == 0 {
                    (1..=3).contains(&g.len())
                } else {
                    g.len() == 3
                };
                len_ok && g.bytes().all(|b| b.is_ascii_digit())
            });
            if !grouped {
                return Err(format!(
                    "is not a number (`{sep}` must separate groups of three digits)"
                ));
            }
            groups.concat()
        }
    };
    Ok((negative, int, frac.map(str::to_string)))
}

/// Checks that `int` is a non-empty run of ASCII digits and `frac`, if any, too.
fn check_digits(int: &str, frac: Option<&str>) -> Result<(), String> {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if digits(int) && frac.is_none_or(digits) {
        Ok(())
    } else {
        Err("is not a number".into())
    }
}

/// Exact minor units of `[-]int[.frac]`, or an error if `frac` has more digits than the
/// currency's minor unit or the result does not fit in an `i64`.
fn to_minor(
    negative: bool,
    int: &str,
    frac: Option<&str>,
    exponent: u32,
    currency: &Currency,
) -> Result<i64, String> {
    check_digits(int, frac)?;
    let frac = frac.unwrap_or("");
    if frac.len() > exponent as usize {
        return Err(if exponent == 0 {
            format!("must be a whole number of {currency} (no decimals)")
        } else {
            format!("has more than {exponent} decimals for {currency}")
        });
    }
    let too_large = || format!("is too large for {currency}");
    let mut magnitude: u128 = 0;
    // Pad the fraction to the exponent: "12" + "3" (of 2) is 12 30.
    let padding = std::iter::repeat_n(b'0', exponent as usize - frac.len());
    for b in int.bytes().chain(frac.bytes()).chain(padding) {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(b - b'0')))
            .filter(|&m| m <= u128::from(i64::MIN.unsigned_abs()))
            .ok_or_else(too_large)?;
    }
    let value = if negative {
        -i128::try_from(magnitude).map_err(|_| too_large())?
    } else {
        i128::try_from(magnitude).map_err(|_| too_large())?
    };
    i64::try_from(value).map_err(|_| too_large())
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

    fn cur(s: &str) -> Currency {
        Currency::parse(s).unwrap()
    }

    #[test]
    fn parse_major_accepts_plain_decimals() {
        let eur = cur("EUR");
        assert_eq!(parse_major("60", &eur), Ok(6000));
        assert_eq!(parse_major("60.5", &eur), Ok(6050));
        assert_eq!(parse_major("60.50", &eur), Ok(6050));
        assert_eq!(parse_major("-12.34", &eur), Ok(-1234));
        assert_eq!(parse_major("+3", &eur), Ok(300));
        assert_eq!(parse_major("  0.05\t", &eur), Ok(5));
        assert_eq!(parse_major("-0", &eur), Ok(0));
        assert_eq!(parse_major("007.10", &eur), Ok(710));
        assert_eq!(parse_major("1234", &cur("JPY")), Ok(1234));
        assert_eq!(parse_major("1.234", &cur("KWD")), Ok(1234));
        assert_eq!(parse_major("1.2", &cur("KWD")), Ok(1200));
        assert_eq!(
            parse_major("92233720368547758.07", &eur),
            Ok(i64::MAX),
            "the largest amount"
        );
        assert_eq!(parse_major("-92233720368547758.08", &eur), Ok(i64::MIN));
    }

    #[test]
    fn parse_major_rejects() {
        let eur = cur("EUR");
        for bad in [
            "", "   ", "-", "+", "1,234.56", "60,50", "1.234", "1.", ".5", "1.2.3", "1e3", "--1",
            "+-1", "- 1", "1 000", "abc", "12a", "0x10", "١٢", "∞", "NaN",
        ] {
            assert!(parse_major(bad, &eur).is_err(), "{bad:?}");
        }
        assert!(parse_major("1.5", &cur("JPY")).is_err());
        assert!(parse_major("1.0", &cur("JPY")).is_err());
        assert!(parse_major("1.2345", &cur("KWD")).is_err());
        assert!(parse_major("92233720368547758.08", &eur).is_err());
        assert!(parse_major("-92233720368547758.09", &eur).is_err());
        assert!(parse_major("99999999999999999999999999999999999999999", &eur).is_err());
        assert_eq!(
            parse_major("1.234", &eur),
            Err("has more than 2 decimals for EUR".to_string())
        );
    }

    #[test]
    fn parse_major_lenient_accepts_bank_formats() {
        let eur = cur("EUR");
        assert_eq!(parse_major_lenient("60,50", &eur), Ok(6050));
        assert_eq!(parse_major_lenient("-60,5", &eur), Ok(-6050));
        assert_eq!(parse_major_lenient("60.50", &eur), Ok(6050));
        assert_eq!(parse_major_lenient("1,234.56", &eur), Ok(123_456));
        assert_eq!(parse_major_lenient("1.234,56", &eur), Ok(123_456));
        assert_eq!(parse_major_lenient("-1.234.567,89", &eur), Ok(-123_456_789));
        assert_eq!(parse_major_lenient("12,345,678.9", &eur), Ok(1_234_567_890));
        assert_eq!(parse_major_lenient(" 1 ", &eur), Ok(100));
        assert_eq!(parse_major_lenient("1,234", &cur("KWD")), Ok(1234));
        assert_eq!(parse_major_lenient("1.234,5", &cur("KWD")), Ok(1_234_500));
    }

    #[test]
    fn parse_major_lenient_rejects_ambiguous_and_malformed() {
        let eur = cur("EUR");
        for bad in [
            "",
            "1,234,567",
            "1.234.567",
            "1.234",
            "1,234",
            "1,23.45",
            "1.23,45",
            "1234,567.89",
            ",50",
            "1,",
            "1,2,3.4",
            "1.234,56.7",
            "1,234.5,6",
            "1.234,567",
            "12a,50",
            "1,,234.50",
            ",123.45",
        ] {
            assert!(parse_major_lenient(bad, &eur).is_err(), "{bad:?}");
        }
        assert!(parse_major_lenient("1,5", &cur("JPY")).is_err());
    }

    #[test]
    fn normalized_amounts() {
        let n = |s| normalize_amount(s).unwrap();
        assert_eq!(n("60,50"), "60.5");
        assert_eq!(n("+60.5"), "60.5");
        assert_eq!(n("0060.500"), "60.5");
        assert_eq!(n("1.234,00"), "1234");
        assert_eq!(n("-1,234.56"), "-1234.56");
        assert_eq!(n("-0,00"), "0");
        assert_eq!(n("0.05"), "0.05");
        assert!(normalize_amount("1,234,567").is_err());
        assert!(normalize_amount("x").is_err());
    }

    proptest! {
        #[test]
        fn rounding_is_within_half_a_unit(num in -1_000_000_000i64..1_000_000_000, den in 1i64..10_000) {
            let r = div_round_half_even(num.into(), den.into());
            let err = (r * i128::from(den) - i128::from(num)).abs();
            prop_assert!(2 * err <= i128::from(den));
        }

        #[test]
        fn parse_major_inverts_format(x in any::<i64>(), code in prop::sample::select(vec!["EUR", "JPY", "KWD"])) {
            let c = cur(code);
            let text = format(x, &c);
            prop_assert_eq!(parse_major(&text, &c), Ok(x));
            prop_assert_eq!(parse_major_lenient(&text, &c), Ok(x));
        }

        #[test]
        fn parse_major_inverts_format_for_everyday_amounts(x in -10_000_000i64..10_000_000, code in prop::sample::select(vec!["EUR", "JPY", "KWD"])) {
            let c = cur(code);
            prop_assert_eq!(parse_major(&format(x, &c), &c), Ok(x));
        }
    }
}

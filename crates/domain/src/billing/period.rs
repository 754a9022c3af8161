//! Billing periods. A subscriber's periods are months anchored at their billing day (1 =
//! calendar months), as civil dates in the operator's time zone: `[start, end)`.

use crate::subscriber::BillingDay;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    pub start: Date,
    /// Exclusive.
    pub end: Date,
}

/// Days since 1970-01-01; differences of these count civil days exactly, whatever the time
/// zone's DST changes do to the hours in between.
pub fn day_number(d: Date) -> i64 {
    let epoch = Date::constant(1970, 1, 1);
    i64::from(d.since(epoch).map(|s| s.get_days()).unwrap_or(0))
}

pub fn days_between(start: Date, end: Date) -> i64 {
    day_number(end) - day_number(start)
}

/// The operator-local civil date of an instant.
pub fn local_date(t: Timestamp, tz: &TimeZone) -> Date {
    t.to_zoned(tz.clone()).date()
}

fn anchor(year: i16, month: i8, day: BillingDay) -> Date {
    // Billing days are 1..=28, so every month has them.
    Date::new(year, month, day.get() as i8).unwrap_or(Date::constant(1970, 1, 1))
}

impl Period {
    /// The period that contains `date`.
    pub fn containing(date: Date, day: BillingDay) -> Period {
        let this = anchor(date.year(), date.month(), day);
        let start = if date >= this {
            this
        } else {
            let prev = this.checked_sub(1.month()).unwrap_or(this);
            anchor(prev.year(), prev.month(), day)
        };
        let next = start.checked_add(1.month()).unwrap_or(start);
        Period {
            start,
            end: anchor(next.year(), next.month(), day),
        }
    }

    pub fn next(self, day: BillingDay) -> Period {
        Period::containing(self.end, day)
    }

    pub fn days(self) -> i64 {
        days_between(self.start, self.end)
    }

    pub fn contains(self, d: Date) -> bool {
        self.start <= d && d < self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn calendar_and_anniversary_periods() {
        let one = BillingDay::new(1).unwrap();
        let p = Period::containing(date(2026, 2, 14), one);
        assert_eq!(
            (p.start, p.end, p.days()),
            (date(2026, 2, 1), date(2026, 3, 1), 28)
        );
        assert_eq!(p.next(one).start, date(2026, 3, 1));
        let d15 = BillingDay::new(15).unwrap();
        let p = Period::containing(date(2026, 1, 3), d15);
        assert_eq!(
            (p.start, p.end, p.days()),
            (date(2025, 12, 15), date(2026, 1, 15), 31)
        );
        let p = Period::containing(date(2026, 1, 15), d15);
        assert_eq!(p.start, date(2026, 1, 15));
        assert!(p.contains(date(2026, 2, 14)) && !p.contains(date(2026, 2, 15)));
    }

    #[test]
    fn local_dates_follow_the_operator_time_zone_across_dst() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // 2026-03-28T23:30Z is already the 29th in Berlin (UTC+1 then).
        let t: Timestamp = "2026-03-28T23:30:00Z".parse().unwrap();
        assert_eq!(local_date(t, &berlin), date(2026, 3, 29));
        // The DST day (23 hours long) is still one day.
        assert_eq!(days_between(date(2026, 3, 29), date(2026, 3, 30)), 1);
        assert_eq!(
            Period::containing(date(2026, 3, 29), BillingDay::new(1).unwrap()).days(),
            31
        );
    }
}

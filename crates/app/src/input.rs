//! Validation of API request shapes into domain values, collecting every field at fault.

use lastmile_api_types::{FreeWindowBody, PlanTermsBody};
use lastmile_domain::plan::{BillingInterval, CapPolicy, FreeWindow, PlanTerms};
use lastmile_domain::subscriber::Address;
use lastmile_domain::validate::{self, Currency, ValidationErrors};

/// Trims and validates each address line; country as ISO 3166-1 alpha-2.
pub fn address(prefix: &str, a: &Address, e: &mut ValidationErrors) -> Address {
    let mut line = |name: &str, v: &Option<String>, max: usize| {
        e.check(
            &format!("{prefix}.{name}"),
            validate::optional(v.as_deref(), max),
        )
        .flatten()
    };
    let out = Address {
        line1: line("line1", &a.line1, 200),
        line2: line("line2", &a.line2, 200),
        city: line("city", &a.city, 100),
        postal_code: line("postal_code", &a.postal_code, 20),
        region: line("region", &a.region, 100),
        country: line("country", &a.country, 2),
    };
    if let Some(c) = &out.country {
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            e.add(
                format!("{prefix}.country"),
                "must be an ISO 3166-1 alpha-2 code such as DE or US",
            );
        }
    }
    out
}

fn minute_of_day(s: &str) -> Result<u16, String> {
    let err = || "must be a time of day as HH:MM".to_string();
    let (h, m) = s.trim().split_once(':').ok_or_else(err)?;
    let h: u16 = h.parse().map_err(|_| err())?;
    let m: u16 = m.parse().map_err(|_| err())?;
    if h > 23 || m > 59 {
        return Err(err());
    }
    Ok(h * 60 + m)
}

fn free_window(w: &FreeWindowBody, e: &mut ValidationErrors) -> Option<FreeWindow> {
    let start = e.check("terms.free_window.start", minute_of_day(&w.start));
    let end = e.check("terms.free_window.end", minute_of_day(&w.end));
    Some(FreeWindow {
        start_minute: start?,
        end_minute: end?,
    })
}

/// The terms of a plan version from the request body; field names prefixed `terms.`.
pub fn plan_terms(t: &PlanTermsBody) -> Result<PlanTerms, ValidationErrors> {
    let mut e = ValidationErrors::new();
    let currency = e.check("terms.currency", Currency::parse(&t.currency));
    let free = t.free_window.as_ref().and_then(|w| free_window(w, &mut e));
    let tax_class = e
        .check(
            "terms.tax_class",
            validate::non_empty(t.tax_class.as_deref().unwrap_or("standard"), 40),
        )
        .unwrap_or_default();
    let (Some(currency), true) = (currency, e.is_empty()) else {
        return Err(e);
    };
    let terms = PlanTerms {
        download_kbps: t.download_kbps,
        upload_kbps: t.upload_kbps,
        burst: t.burst.clone(),
        price_minor: t.price_minor,
        currency,
        billing_interval: t.billing_interval.unwrap_or(BillingInterval::Monthly),
        setup_fee_minor: t.setup_fee_minor.unwrap_or(0),
        data_cap_bytes: t.data_cap_bytes,
        cap_policy: t.cap_policy.clone().unwrap_or(CapPolicy::None),
        free_window: free,
        contract_months: t.contract_months.unwrap_or(0),
        early_termination_fee_minor: t.early_termination_fee_minor.unwrap_or(0),
        tax_class,
    };
    terms.validate().map_err(|errs| {
        ValidationErrors(
            errs.0
                .into_iter()
                .map(|mut f| {
                    f.field = format!("terms.{}", f.field);
                    f
                })
                .collect(),
        )
    })?;
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes() {
        assert_eq!(minute_of_day("00:00"), Ok(0));
        assert_eq!(minute_of_day("06:30"), Ok(390));
        assert!(minute_of_day("24:00").is_err());
        assert!(minute_of_day("6").is_err());
    }

    #[test]
    fn address_country() {
        let mut e = ValidationErrors::new();
        let a = Address {
            country: Some("de".into()),
            city: Some("  Berlin ".into()),
            ..Default::default()
        };
        let out = address("billing_address", &a, &mut e);
        assert_eq!(out.city.as_deref(), Some("Berlin"));
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].field, "billing_address.country");
    }
}

//! The patterns and bounds in the request schemas say exactly what the server's validators
//! accept: for generated strings, "valid by the schema" and "accepted by the validator" agree
//! (the only intended difference: the schema refuses control characters in e-mail addresses,
//! which the validator lets through).

use lastmile_api_types::*;
use lastmile_domain::billing::money::MAX_AMOUNT_MINOR;
use lastmile_domain::billing::settings::{BillingSettings, Issuer};
use lastmile_domain::billing::tax::Rate;
use lastmile_domain::subscriber::SubscriberNumber;
use lastmile_domain::validate::{self, Currency};
use lastmile_domain::{nas, plan, service};
use proptest::prelude::*;
use regex_automata::meta::Regex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use utoipa::PartialSchema;

fn schema<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap()
}

fn prop<T: PartialSchema>(name: &str) -> Value {
    let s = schema::<T>();
    let p = s["properties"][name].clone();
    assert!(p.is_object(), "no property {name} in {s}");
    p
}

/// Whether `s` is valid by the string schema `p` (pattern and lengths, in characters).
struct StringSchema {
    re: Regex,
    min: usize,
    max: usize,
}

impl StringSchema {
    fn of(p: &Value) -> Self {
        let pattern = p["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("no pattern in {p}"));
        let len = |k: &str| p[k].as_u64().map(|n| n as usize);
        StringSchema {
            re: compiled(pattern),
            min: len("minLength").unwrap_or(0),
            max: len("maxLength").unwrap_or(usize::MAX),
        }
    }

    fn valid(&self, s: &str) -> bool {
        let n = s.chars().count();
        self.re.is_match(s) && self.min <= n && n <= self.max
    }
}

/// Compiling the long patterns dominates the run time: once each.
fn compiled(pattern: &str) -> Regex {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).unwrap())
        .clone()
}

const TEXT_CHARS: &[char] = &[
    'a', 'Z', '0', ' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{1680}',
    '\u{2000}', '\u{200a}', '\u{200b}', '\u{2028}', '\u{202f}', '\u{3000}', '\u{feff}', '\u{0}',
    '\u{1f}', '\u{7f}', '\u{9f}', '\u{a1}', 'é', '€', '@', '.', '-', '😀',
];
const CODE_CHARS: &[char] = &[
    'A', 'Z', 'a', 'z', '0', '9', '-', '_', '/', '.', ' ', '\t', '\u{3000}', '@', 'é', '+', '\u{0}',
];

fn text(alphabet: &'static [char], len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(alphabet), len)
        .prop_map(|v| v.into_iter().collect())
}

fn agree(p: &StringSchema, s: &str, server: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(p.valid(s), server, "{:?}", s);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn required_text(s in text(TEXT_CHARS, 0..12)) {
        for (p, max) in [
            (prop::<CreateSubscriber>("name"), 200),
            (prop::<CreatePlan>("name"), 100),
            (prop::<VoidInvoiceBody>("reason"), 500),
            (prop::<TaxInput>("tax_class"), 50),
            (prop::<CreateDiscount>("description"), 200),
        ] {
            agree(&StringSchema::of(&p), &s, validate::non_empty(&s, max).is_ok())?;
        }
        // At the limit, without surrounding whitespace.
        let long: String = s.chars().filter(|c| c.is_alphanumeric()).cycle().take(201).collect();
        if !long.is_empty() {
            let p = StringSchema::of(&prop::<CreateSubscriber>("name"));
            agree(&p, &long, validate::non_empty(&long, 200).is_ok())?;
        }
    }

    #[test]
    fn optional_text(s in text(TEXT_CHARS, 0..12)) {
        for (p, max) in [
            (prop::<CreateSubscriber>("phone"), 40),
            (prop::<CreatePayment>("reference"), 200),
            (prop::<ServiceActionBody>("reason"), 500),
            (prop::<AddressInput>("city"), 100),
            (prop::<IssuerInput>("tax_id"), 200),
        ] {
            agree(&StringSchema::of(&p), &s, validate::optional(Some(&s), max).is_ok())?;
        }
    }

    #[test]
    fn emails(s in text(&['a', 'Z', '0', '@', '.', ' ', '\t', '-', 'é', '\u{3000}', '+'], 0..10)) {
        let p = StringSchema::of(&prop::<CreateSubscriber>("email"));
        let server = s.trim().is_empty() || validate::email(&s).is_ok();
        agree(&p, &s, server)?;
        // Control characters: the schema refuses them, the validator does not look.
        let with_nul = format!("{s}\u{0}x@y.z");
        prop_assert!(!p.valid(&with_nul));
    }

    #[test]
    fn codes(s in text(CODE_CHARS, 0..8)) {
        let number = StringSchema::of(&prop::<CreateSubscriber>("number"));
        agree(&number, &s, SubscriberNumber::parse(&s).is_ok())?;
        let plan_code = StringSchema::of(&prop::<CreatePlan>("code"));
        agree(&plan_code, &s, plan::plan_code(&s).is_ok())?;
        let username = StringSchema::of(&prop::<CreateService>("username"));
        agree(&username, &s, service::username(&s).is_ok())?;
        let prefix = StringSchema::of(&prop::<BillingSettingsBody>("invoice_prefix"));
        agree(&prefix, &s, prefix_ok(&s))?;
    }

    #[test]
    fn secrets_and_passwords(s in text(TEXT_CHARS, 0..12)) {
        let secret = StringSchema::of(&prop::<CreateNas>("secret"));
        agree(&secret, &s, nas::shared_secret(&s).is_ok())?;
        let password = StringSchema::of(&prop::<CreateService>("password"));
        agree(&password, &s, service::password(&s).is_ok())?;
    }

    #[test]
    fn currencies(s in prop_oneof![
        proptest::sample::select(lastmile_domain::currency::ISO_4217)
            .prop_map(|(c, _)| c.to_string()),
        text(&['E', 'U', 'R', 'X', 'A', 'u', ' ', '\t', '\u{3000}'], 0..6),
    ]) {
        for p in [
            prop::<CreateSubscriber>("currency"),
            prop::<PlanTermsBody>("currency"),
            prop::<CreatePayment>("currency"),
        ] {
            agree(&StringSchema::of(&p), &s, Currency::parse(&s).is_ok())?;
        }
    }

    #[test]
    fn rates(s in text(&['0', '1', '2', '5', '9', '.', ' ', '+', '-', 'e'], 0..9)) {
        let rate = StringSchema::of(&prop::<TaxInput>("rate"));
        agree(&rate, &s, Rate::parse_percent(&s).is_ok())?;
        let percent = schema::<DiscountValueInput>()["oneOf"][0]["properties"]["percent"].clone();
        let positive = Rate::parse_percent(&s).is_ok_and(|r| r.millionths() > 0);
        agree(&StringSchema::of(&percent), &s, positive)?;
    }

    #[test]
    fn mac_addresses(s in prop_oneof![
        text(&['a', 'F', '0', '9', ':', '-', '.', ' ', 'g'], 10..20),
        proptest::collection::vec(
            (proptest::sample::select(&['a', 'B', '0', '7'][..]),
             proptest::sample::select(&["", "", ":", "-", ".", "::"][..])),
            11..14,
        ).prop_map(|v| v.into_iter().map(|(c, sep)| format!("{c}{sep}")).collect()),
    ]) {
        let p = StringSchema::of(&prop::<CreateService>("mac_address"));
        agree(&p, &s, service::mac_address(&s).is_ok())?;
    }

    #[test]
    fn dates(y in 1990u32..2210, m in 0u32..14, d in 0u32..33, odd in 0usize..6) {
        let s = match odd {
            0 => format!("{y:04}{m:02}{d:02}"),
            1 => format!("{y:04}-{m:02}-{d:02}T00:00"),
            2 => format!("{y:04}-{m}-{d}"),
            _ => format!("{y:04}-{m:02}-{d:02}"),
        };
        let server = dates::parse(&s).is_ok_and(|d| validate::date_in_range(d).is_ok());
        for p in [prop::<CreateDiscount>("starts_on"), prop::<CreateBillingRun>("as_of")] {
            agree(&StringSchema::of(&p), &s, server)?;
        }
    }
}

/// The prefix rule of the billing settings, through their public validation.
fn prefix_ok(s: &str) -> bool {
    let settings = BillingSettings {
        payment_terms_days: 14,
        invoice_prefix: s.to_string(),
        credit_note_prefix: "CN-unused".into(),
        issue_invoices: true,
        downgrades: lastmile_domain::billing::rating::DowngradeBilling::NextPeriod,
        issuer: Issuer {
            name: "ISP".into(),
            ..Issuer::default()
        },
        revision: 0,
        updated_at: None,
    };
    settings.validated().is_ok()
}

#[test]
fn leap_days_and_range_ends() {
    let p = StringSchema::of(&prop::<EndDiscount>("ends_on"));
    for ok in [
        "2000-01-01",
        "2199-12-31",
        "2000-02-29",
        "2024-02-29",
        "2196-02-29",
    ] {
        assert!(p.valid(ok), "{ok}");
    }
    for bad in [
        "1999-12-31",
        "2200-01-01",
        "2100-02-29",
        "2026-02-29",
        "2026-04-31",
        "2026-13-01",
        "2026-00-10",
        "20260101",
    ] {
        assert!(!p.valid(bad), "{bad}");
    }
}

#[test]
fn amounts_and_numbers_are_bounded() {
    let bounds = |p: Value| (p["minimum"].as_i64(), p["maximum"].as_i64());
    let max = Some(MAX_AMOUNT_MINOR);
    assert_eq!(
        bounds(prop::<CreatePayment>("amount_minor")),
        (Some(1), max)
    );
    assert_eq!(bounds(prop::<CreateRefund>("amount_minor")), (Some(1), max));
    assert_eq!(
        bounds(prop::<CreateCreditNote>("amount_minor")),
        (Some(1), max)
    );
    assert_eq!(
        bounds(prop::<PaymentAllocationBody>("amount_minor")),
        (Some(1), max)
    );
    assert_eq!(bounds(prop::<PlanTermsBody>("price_minor")), (Some(0), max));
    assert_eq!(
        bounds(prop::<PlanTermsBody>("setup_fee_minor")),
        (Some(0), max)
    );
    let fixed = schema::<DiscountValueInput>()["oneOf"][1]["properties"]["amount_minor"].clone();
    assert_eq!(bounds(fixed), (Some(1), max));
    let rate = i64::from(plan::MAX_RATE_KBPS);
    assert_eq!(
        bounds(prop::<PlanTermsBody>("download_kbps")),
        (Some(1), Some(rate))
    );
    assert_eq!(
        bounds(prop::<BurstInput>("upload_kbps")),
        (Some(1), Some(rate))
    );
    assert_eq!(
        bounds(prop::<CreateSubscriber>("billing_day")),
        (Some(1), Some(28))
    );
    assert_eq!(
        bounds(prop::<DunningStepInput>("days_overdue")),
        (Some(1), Some(730))
    );
    assert_eq!(
        bounds(prop::<BillingSettingsBody>("payment_terms_days")),
        (Some(0), Some(365))
    );
}

/// The schema-only mirrors of domain types accept the same fields as the domain types.
#[test]
fn mirrors_have_the_fields_of_the_domain_types() {
    use lastmile_domain::billing::{dunning::DunningStep, settings::Issuer, tax::Tax};
    use lastmile_domain::plan::Burst;
    use lastmile_domain::subscriber::Address;
    fn keys<T: PartialSchema>() -> (Vec<String>, Value) {
        let s = schema::<T>();
        let mut k: Vec<String> = s["properties"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        (k, s["additionalProperties"].clone())
    }
    assert_eq!(keys::<AddressInput>(), keys::<Address>());
    assert_eq!(keys::<BurstInput>(), keys::<Burst>());
    assert_eq!(keys::<TaxInput>(), keys::<Tax>());
    assert_eq!(keys::<IssuerInput>(), keys::<Issuer>());
    // The domain's step ignores unknown fields; the request refuses them.
    assert_eq!(keys::<DunningStepInput>().0, keys::<DunningStep>().0);
    assert_eq!(keys::<DunningStepInput>().1, Value::Bool(false));
    // Same samples, same verdict (unknown fields included).
    let samples = [
        r#"{"kind":"none"}"#,
        r#"{"kind":"throttle","download_kbps":1,"upload_kbps":2}"#,
        r#"{"kind":"overage","price_per_gb_minor":5}"#,
        r#"{"kind":"block"}"#,
        r#"{"kind":"throttle","download_kbps":1}"#,
        r#"{"kind":"throttle","download_kbps":1,"upload_kbps":2,"x":1}"#,
        r#"{"kind":"nope"}"#,
    ];
    for s in samples {
        assert_eq!(
            serde_json::from_str::<CapPolicyInput>(s).is_ok(),
            serde_json::from_str::<lastmile_domain::plan::CapPolicy>(s).is_ok(),
            "{s}"
        );
    }
    // Unlike the domain type's unit variants, the request's refuse unknown fields.
    assert!(serde_json::from_str::<CapPolicyInput>(r#"{"kind":"none","x":1}"#).is_err());
    assert!(serde_json::from_str::<CapPolicyInput>(r#"{"kind":"block","x":1}"#).is_err());
    for s in [
        r#"{"kind":"percent","percent":"10"}"#,
        r#"{"kind":"fixed","amount_minor":500}"#,
        r#"{"kind":"fixed","amount_minor":500,"x":1}"#,
        r#"{"kind":"percent"}"#,
    ] {
        assert_eq!(
            serde_json::from_str::<DiscountValueInput>(s).is_ok(),
            serde_json::from_str::<lastmile_domain::billing::discount::DiscountValue>(s).is_ok(),
            "{s}"
        );
    }
}

/// Dates in bodies are `YYYY-MM-DD` only.
#[test]
fn strict_dates() {
    let b: CreateBillingRun = serde_json::from_str(r#"{"as_of":"2026-06-01"}"#).unwrap();
    assert_eq!(
        b.as_of.map(|d| d.to_string()).as_deref(),
        Some("2026-06-01")
    );
    assert!(serde_json::from_str::<CreateBillingRun>("{}").is_ok_and(|b| b.as_of.is_none()));
    assert!(serde_json::from_str::<CreateDunningRun>(r#"{"as_of":null}"#).is_ok());
    for bad in [
        r#"{"as_of":"20260601"}"#,
        r#"{"as_of":"2026-06-01T00:00"}"#,
        r#"{"x":1}"#,
    ] {
        assert!(
            serde_json::from_str::<CreateBillingRun>(bad).is_err(),
            "{bad}"
        );
        assert!(
            serde_json::from_str::<CreateDunningRun>(bad).is_err(),
            "{bad}"
        );
    }
    assert!(serde_json::from_str::<EndDiscount>(r#"{"ends_on":"+002026-06-01"}"#).is_err());
    assert!(serde_json::from_str::<EndDiscount>(r#"{"ends_on":"2026-06-01"}"#).is_ok());
}

/// Integers may be written as whole floats (`5.0`); fractions and out-of-range values are
/// refused, naming the field.
#[test]
fn whole_floats_are_integers() {
    let n: CreateNas = serde_json::from_str(
        r#"{"name":"n","ip":"192.0.2.1","secret":"testing123","vendor":"generic","coa_port":3799.0}"#,
    )
    .unwrap();
    assert_eq!(n.coa_port, Some(3799));
    let t: PlanTermsBody = serde_json::from_str(
        r#"{"download_kbps":1e5,"upload_kbps":20000.0,"price_minor":4900.0,"currency":"EUR",
            "burst":{"download_kbps":2e5,"upload_kbps":3e4,"threshold_download_kbps":0.0,
                     "threshold_upload_kbps":0,"time_secs":10.0},
            "cap_policy":{"kind":"overage","price_per_gb_minor":50.0},"contract_months":null}"#,
    )
    .unwrap();
    assert_eq!((t.download_kbps, t.price_minor), (100_000, 4900));
    assert_eq!(t.burst.map(|b| b.time_secs), Some(10));
    let d: DunningPolicyBody = serde_json::from_str(
        r#"{"code":"c","name":"n","steps":[{"days_overdue":3.0,"action":"remind"}]}"#,
    )
    .unwrap();
    assert_eq!(d.steps[0].days_overdue, 3);
    for bad in [
        r#"{"name":"n","ip":"1.1.1.1","secret":"testing123","vendor":"generic","coa_port":1.5}"#,
        r#"{"name":"n","ip":"1.1.1.1","secret":"testing123","vendor":"generic","coa_port":70000}"#,
        r#"{"name":"n","ip":"1.1.1.1","secret":"testing123","vendor":"generic","coa_port":-1.0}"#,
        r#"{"name":"n","ip":"1.1.1.1","secret":"testing123","vendor":"generic","coa_port":"1"}"#,
    ] {
        let e = serde_json::from_str::<CreateNas>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("u16"), "{bad}: {e}");
    }
    assert!(serde_json::from_str::<CreatePayment>(
        r#"{"subscriber_id":"01a236ea-eb78-7200-9932-7ef4f74f4a28","amount_minor":1e300,"method":"cash"}"#
    )
    .is_err());
}

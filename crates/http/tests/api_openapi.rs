//! The OpenAPI document states what the server enforces: list limits, the search needle,
//! currency codes, amount bounds, date ranges, both representations of an invoice, and a
//! constraint on every request field a client could otherwise get wrong.

use lastmile_domain::billing::money::MAX_AMOUNT_MINOR;
use lastmile_domain::validate;
use serde_json::Value;
use std::collections::BTreeSet;

fn doc() -> Value {
    let (_, doc) = lastmile_http::api();
    serde_json::to_value(doc).unwrap()
}

fn schema<'a>(d: &'a Value, name: &str) -> &'a Value {
    let s = &d["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

fn prop<'a>(d: &'a Value, schema_name: &str, field: &str) -> &'a Value {
    let p = &schema(d, schema_name)["properties"][field];
    assert!(p.is_object(), "no {schema_name}.{field}");
    p
}

/// Every operation as (method, path, operation).
fn operations(d: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in d["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

#[test]
fn list_limits_are_1_to_500_and_cursors_opaque() {
    let d = doc();
    let mut lists = 0;
    for (method, path, op) in operations(&d) {
        let Some(params) = op["parameters"].as_array() else {
            continue;
        };
        for p in params {
            match p["name"].as_str() {
                Some("limit") => {
                    lists += 1;
                    let s = &p["schema"];
                    assert_eq!(s["minimum"], 1, "{method} {path}");
                    assert_eq!(s["maximum"], 500, "{method} {path}");
                }
                Some("cursor") => {
                    assert_eq!(
                        p["schema"]["pattern"], "^(?:[A-Za-z0-9_-]{21}[AQgw])?$",
                        "{method} {path}"
                    );
                }
                _ => {}
            }
        }
    }
    assert!(lists >= 10, "{lists} list endpoints");
}

/// The subscriber search's `q` is valid by its schema exactly when the server takes it: every
/// string of up to 5 characters from an alphabet of letters, spaces that trim (some of them
/// control characters), a space that does not, and control characters.
#[test]
fn search_needles_are_stated_as_validated() {
    let d = doc();
    let (_, _, op) = operations(&d)
        .into_iter()
        .find(|(_, _, op)| op["operationId"] == "list_subscribers")
        .expect("GET /subscribers");
    let q = op["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "q"))
        .expect("a q parameter");
    let min = validate::MIN_SEARCH_CHARS;
    assert_eq!(q["schema"]["minLength"], min, "{q}");
    let re = regex_automata::meta::Regex::new(q["schema"]["pattern"].as_str().unwrap()).unwrap();
    let alphabet = [
        'a', 'é', '😀', ' ', '\u{a0}', '\u{3000}', '\u{200b}', '\t', '\u{85}', '\u{0}',
    ];
    let mut strings = vec![String::new()];
    let mut checked = 0;
    for _ in 0..=5 {
        let mut longer = Vec::new();
        for s in &strings {
            let by_schema = re.is_match(s) && s.chars().count() >= min;
            assert_eq!(by_schema, validate::search_term(s).is_ok(), "{s:?}");
            checked += 1;
            longer.extend(alphabet.iter().map(|c| format!("{s}{c}")));
        }
        strings = longer;
    }
    assert_eq!(checked, 111_111);
}

#[test]
fn currencies_are_the_iso_4217_table() {
    let d = doc();
    let codes: Vec<&str> = lastmile_domain::currency::ISO_4217
        .iter()
        .map(|(c, _)| *c)
        .collect();
    let alternatives = format!("(?:{})", codes.join("|"));
    for (schema_name, field) in [
        ("CreateSubscriber", "currency"),
        ("PlanTermsBody", "currency"),
        ("CreatePayment", "currency"),
    ] {
        let pattern = prop(&d, schema_name, field)["pattern"].as_str().unwrap();
        assert!(pattern.contains(&alternatives), "{schema_name}.{field}");
        assert!(!pattern.contains("XAU") && !pattern.contains("HRK"));
    }
}

#[test]
fn amounts_are_bounded_by_the_input_maximum() {
    let d = doc();
    for (schema_name, field, min) in [
        ("CreatePayment", "amount_minor", 1),
        ("PaymentAllocationBody", "amount_minor", 1),
        ("CreateRefund", "amount_minor", 1),
        ("CreateCreditNote", "amount_minor", 1),
        ("PlanTermsBody", "price_minor", 0),
        ("PlanTermsBody", "setup_fee_minor", 0),
        ("PlanTermsBody", "early_termination_fee_minor", 0),
    ] {
        let p = prop(&d, schema_name, field);
        assert_eq!(p["maximum"], MAX_AMOUNT_MINOR, "{schema_name}.{field}");
        assert_eq!(p["minimum"], min, "{schema_name}.{field}");
    }
    let fixed = &schema(&d, "DiscountValueInput")["oneOf"][1]["properties"]["amount_minor"];
    assert_eq!(fixed["maximum"], MAX_AMOUNT_MINOR);
}

#[test]
fn dates_are_iso_dates_in_the_accepted_range() {
    let d = doc();
    for (schema_name, field) in [
        ("CreateBillingRun", "as_of"),
        ("CreateDunningRun", "as_of"),
        ("CreateDiscount", "starts_on"),
        ("CreateDiscount", "ends_on"),
        ("EndDiscount", "ends_on"),
        ("TaxInput", "valid_from"),
    ] {
        let p = prop(&d, schema_name, field);
        assert_eq!(p["format"], "date", "{schema_name}.{field}");
        let pattern = p["pattern"].as_str().unwrap();
        // Years 2000 to 2199 only (see `lastmile_domain::validate::{EARLIEST,LATEST}_DATE`).
        assert!(
            pattern.starts_with("^(?:2[01][0-9]{2}-"),
            "{schema_name}.{field}"
        );
    }
    let as_of = prop(&d, "CreateBillingRun", "as_of")["description"]
        .as_str()
        .unwrap();
    assert!(as_of.contains("366 days"), "{as_of}");
}

#[test]
fn an_invoice_is_json_or_html() {
    let d = doc();
    let ok = &d["paths"]["/api/v1/invoices/{id}"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        ok["application/json"]["schema"]["$ref"],
        "#/components/schemas/InvoiceResponse"
    );
    assert!(ok["text/html"].is_object(), "{ok}");
}

#[test]
fn operation_ids_are_unique() {
    let d = doc();
    let mut seen = BTreeSet::new();
    for (method, path, op) in operations(&d) {
        let id = op["operationId"].as_str().unwrap_or_default().to_string();
        assert!(
            seen.insert(id.clone()),
            "{method} {path}: operationId {id} twice"
        );
    }
}

/// Optional bodies (service actions, close, retire, billing and dunning runs) may be left
/// out, but a body that is sent is the object: `null` is refused, so it is not offered.
#[test]
fn optional_bodies_are_objects_not_null() {
    let d = doc();
    let mut optional = 0;
    for (method, path, op) in operations(&d) {
        let body = &op["requestBody"];
        if body.is_null() || body["required"] == true {
            continue;
        }
        optional += 1;
        let s = &body["content"]["application/json"]["schema"];
        assert!(s["$ref"].is_string(), "{method} {path}: {s}");
    }
    assert!(optional >= 7, "{optional} optional bodies");
}

/// Every string and integer of every request body carries a constraint (a pattern, format,
/// enumeration, or minimum and maximum), except the few that really take anything.
#[test]
fn every_request_field_is_constrained() {
    let d = doc();
    // Fields the server takes as they come.
    let free: BTreeSet<&str> = [
        "BurstInput.threshold_download_kbps",
        "BurstInput.threshold_upload_kbps",
        "IssuerInput.address_lines",
    ]
    .into();
    let mut seen = BTreeSet::new();
    let mut unconstrained = Vec::new();
    for (_, _, op) in operations(&d) {
        if let Some(s) = op["requestBody"]["content"]["application/json"]["schema"].as_object() {
            walk(
                &d,
                &Value::Object(s.clone()),
                "body",
                &mut seen,
                &mut unconstrained,
            );
        }
    }
    unconstrained.retain(|f| !free.contains(f.as_str()));
    assert!(unconstrained.is_empty(), "unconstrained: {unconstrained:?}");
    assert!(seen.len() > 20, "walked {}", seen.len());
}

fn walk(d: &Value, s: &Value, at: &str, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        if seen.insert(name.to_string()) {
            walk(d, schema(d, name), name, seen, out);
        }
        return;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(items) = s[key].as_array() {
            if key == "anyOf"
                && items
                    .iter()
                    .all(|i| i["format"].is_string() || i["type"] == "null")
            {
                return; // e.g. an IPv4 or IPv6 address
            }
            for i in items {
                walk(d, i, at, seen, out);
            }
        }
    }
    if let Some(props) = s["properties"].as_object() {
        for (name, p) in props {
            let path = format!("{at}.{name}");
            walk(d, p, &path, seen, out);
        }
    }
    if s["items"].is_object() {
        walk(d, &s["items"], at, seen, out);
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let has = |k: &str| !s[k].is_null();
    if types.contains(&"string") && !(has("pattern") || has("format") || has("enum")) {
        out.push(at.to_string());
    }
    if types.contains(&"integer") && !(has("minimum") && has("maximum")) {
        out.push(at.to_string());
    }
}

#[test]
fn job_kinds_are_an_enum_and_jobs_show_their_last_result() {
    let d = doc();
    let list = &d["paths"]["/api/v1/provisioning-jobs"]["get"]["parameters"];
    let kind = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "kind")
        .expect("kind parameter");
    let s = &kind["schema"];
    // Either inline or a reference (possibly wrapped for the Option).
    let text = s.to_string();
    let name = text
        .split("#/components/schemas/")
        .nth(1)
        .and_then(|r| r.split('"').next());
    let resolved = match name {
        Some(n) => schema(&d, n).clone(),
        None => s.clone(),
    };
    let mut kinds: Vec<String> = resolved["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("kind is not an enum: {resolved}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["nas.coa", "nas.disconnect", "notification.dunning-reminder"]
    );
    assert!(prop(&d, "ProvisioningJobResponse", "last_result").is_object());
}

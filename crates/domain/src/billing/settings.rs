//! Billing settings every node reads from the database: payment terms, document numbering,
//! drafts or direct issue, downgrade billing, and the issuer printed on invoices. The
//! operator's time zone is not among them: it is fixed at start-up (`--time-zone`), since moving
//! it would move every billing period already invoiced.

use super::rating::DowngradeBilling;
use crate::validate::{self, ValidationErrors};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Who sends the invoices: printed on every document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Issuer {
    pub name: String,
    #[serde(default)]
    pub address_lines: Vec<String>,
    pub tax_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingSettings {
    /// Due date = issue date + this many days.
    pub payment_terms_days: i64,
    /// Invoice numbers: this prefix and a gap-free, zero-padded sequence.
    pub invoice_prefix: String,
    /// Credit note numbers: this prefix and their own gap-free sequence.
    pub credit_note_prefix: String,
    /// Runs issue invoices at once; when false they leave drafts to review and issue.
    pub issue_invoices: bool,
    pub downgrades: DowngradeBilling,
    pub issuer: Issuer,
    /// 0 while nothing is stored (the start-up defaults apply).
    pub revision: i64,
    pub updated_at: Option<Timestamp>,
}

fn prefix(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 20 {
        return Err("must be 1 to 20 characters".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.'))
    {
        return Err("may contain only letters, digits, '-', '_', '/' and '.'".into());
    }
    Ok(s.to_string())
}

impl BillingSettings {
    /// Checks every field, naming each one at fault; returns the settings normalised.
    pub fn validated(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::new();
        if !(0..=365).contains(&self.payment_terms_days) {
            e.add("payment_terms_days", "must be between 0 and 365");
        }
        e.check("invoice_prefix", prefix(&self.invoice_prefix));
        e.check("credit_note_prefix", prefix(&self.credit_note_prefix));
        if self.invoice_prefix == self.credit_note_prefix {
            e.add(
                "credit_note_prefix",
                "must differ from the invoice prefix (numbers would look alike)",
            );
        }
        if let Some(n) = e.check("issuer.name", validate::non_empty(&self.issuer.name, 200)) {
            self.issuer.name = n;
        }
        if self.issuer.address_lines.len() > 8 {
            e.add("issuer.address_lines", "at most 8 lines");
        }
        for (i, l) in self.issuer.address_lines.iter().enumerate() {
            if l.chars().count() > 200 {
                e.add(
                    format!("issuer.address_lines[{i}]"),
                    "at most 200 characters",
                );
            } else if l.chars().any(char::is_control) {
                e.add(
                    format!("issuer.address_lines[{i}]"),
                    "must not contain control characters",
                );
            }
        }
        for (field, v) in [
            ("issuer.tax_id", &mut self.issuer.tax_id),
            ("issuer.email", &mut self.issuer.email),
            ("issuer.phone", &mut self.issuer.phone),
        ] {
            if let Some(x) = e.check(field, validate::optional(v.as_deref(), 200)) {
                *v = x;
            }
        }
        e.into_result().map(|()| self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BillingSettings {
        BillingSettings {
            payment_terms_days: 14,
            invoice_prefix: "INV-".into(),
            credit_note_prefix: "CN-".into(),
            issue_invoices: true,
            downgrades: DowngradeBilling::NextPeriod,
            issuer: Issuer {
                name: " Fibre Town ".into(),
                ..Issuer::default()
            },
            revision: 0,
            updated_at: None,
        }
    }

    #[test]
    fn valid_settings_are_normalised() {
        let s = settings().validated().unwrap();
        assert_eq!(s.issuer.name, "Fibre Town");
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut s = settings();
        s.payment_terms_days = -1;
        s.invoice_prefix = "IN V".into();
        s.credit_note_prefix = String::new();
        s.issuer.name = "  ".into();
        let e = s.validated().unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "payment_terms_days",
                "invoice_prefix",
                "credit_note_prefix",
                "issuer.name"
            ]
        );
        let mut s = settings();
        s.credit_note_prefix = "INV-".into();
        let e = s.validated().unwrap_err();
        assert_eq!(e.0[0].field, "credit_note_prefix");
    }
}

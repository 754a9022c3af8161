//! A print- and mail-ready HTML rendering of an invoice: one self-contained HTML5 document
//! (inline CSS, A4 page setup, no scripts, no external assets), written by hand so every
//! interpolated string goes through [`escape`].
//!
//! [`InvoiceDocument`] is a view built by the caller, so the layout does not depend on
//! how invoices are stored.

use jiff::civil::Date;
use lastmile_domain::billing::money;
use lastmile_domain::validate::Currency;
use std::fmt::{self, Display, Formatter};

/// The company issuing invoices, as printed in the letterhead (configuration).
pub use lastmile_app::billing::Issuer;

/// One invoice line, amounts in minor units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentLine<'a> {
    pub description: &'a str,
    pub net_minor: i64,
    pub tax_minor: i64,
    pub gross_minor: i64,
}

/// One row of the tax summary (`VAT 20 %` on a taxable amount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentTax {
    pub label: String,
    pub taxable_minor: i64,
    pub amount_minor: i64,
}

/// Everything printed on an invoice.
#[derive(Clone, Debug)]
pub struct InvoiceDocument<'a> {
    pub issuer: &'a Issuer,
    /// `None` for a draft: the document then carries a large "DRAFT" label.
    pub number: Option<&'a str>,
    /// `draft`, `issued`, `paid` or `void` (`void` adds a large "VOID" label).
    pub status: &'a str,
    pub subscriber_name: &'a str,
    pub subscriber_number: &'a str,
    pub subscriber_address_lines: Vec<String>,
    pub subscriber_tax_id: Option<&'a str>,
    pub issued_on: Option<Date>,
    pub due_date: Option<Date>,
    /// Start and *exclusive* end; the document shows the last day included.
    pub period: (Date, Date),
    pub currency: &'a Currency,
    pub lines: Vec<DocumentLine<'a>>,
    pub prices_include_tax: bool,
    pub taxes: Vec<DocumentTax>,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub credited_minor: i64,
    pub paid_minor: i64,
    pub amount_due_minor: i64,
    /// Free-text remarks such as credit-note references.
    pub notes: Vec<String>,
}

/// `s` with `&`, `<`, `>`, `"` and `'` replaced by character references, safe in element
/// content and in quoted attribute values.
pub fn escape(s: &str) -> String {
    Escaped(s).to_string()
}

/// Renders `doc` as a complete HTML document.
pub fn render_invoice(doc: &InvoiceDocument<'_>) -> String {
    Page(doc).to_string()
}

/// Writes its string HTML-escaped.
struct Escaped<'a>(&'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// An amount with its currency code (`1234` EUR → `12.34&nbsp;EUR`); the text is digits,
/// `-`, `.` and a validated currency code, escaped all the same.
struct Amount<'a>(i64, &'a Currency);

impl Display for Amount<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}&nbsp;{}",
            Escaped(&money::format(self.0, self.1)),
            Escaped(self.1.as_str())
        )
    }
}

const STYLE: &str = r#"
@page { size: A4; margin: 16mm 16mm 18mm; }
* { box-sizing: border-box; }
html { background: #eef0f3; }
body { margin: 0; color: #1d2330; font: 10pt/1.45 "Helvetica Neue", Helvetica, Arial, sans-serif; }
.page { position: relative; width: 210mm; min-height: 297mm; margin: 8mm auto; padding: 16mm; background: #fff; box-shadow: 0 1px 6px rgba(0, 0, 0, .15); overflow: hidden; }
.watermark { position: absolute; top: 38%; left: 0; right: 0; text-align: center; font-size: 110pt; font-weight: 700; letter-spacing: .1em; color: rgba(200, 30, 30, .12); transform: rotate(-28deg); pointer-events: none; user-select: none; z-index: 0; }
.content { position: relative; z-index: 1; }
header.top { display: flex; justify-content: space-between; gap: 12mm; margin-bottom: 10mm; }
.issuer .name { font-size: 13pt; font-weight: 700; }
.issuer, .bill-to { white-space: normal; }
.muted { color: #5b6475; }
h1 { margin: 0 0 3mm; font-size: 20pt; font-weight: 700; text-align: right; }
h2 { margin: 0 0 1.5mm; font-size: 8pt; font-weight: 600; text-transform: uppercase; letter-spacing: .06em; color: #5b6475; }
.label { display: inline-block; margin-left: 2mm; padding: .5mm 2.5mm; border: 1.5pt solid currentColor; border-radius: 1mm; font-size: 11pt; letter-spacing: .08em; vertical-align: middle; }
.label.draft, .label.void { color: #c81e1e; }
.label.paid { color: #1b7a3a; }
table { width: 100%; border-collapse: collapse; }
th, td { padding: 1.6mm 2mm; vertical-align: top; }
th { text-align: left; font-size: 8pt; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: #5b6475; border-bottom: 1pt solid #1d2330; }
td { border-bottom: .5pt solid #d5d9e0; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.meta { width: auto; margin-left: auto; }
table.meta th, table.meta td { border: 0; padding: .4mm 0 .4mm 4mm; font-size: 9.5pt; text-transform: none; letter-spacing: 0; }
table.meta th { font-weight: 400; text-align: right; }
table.meta td { text-align: right; }
.bill-to { margin-bottom: 8mm; }
table.lines { margin-bottom: 6mm; }
.lower { display: flex; justify-content: space-between; align-items: flex-start; gap: 10mm; }
table.taxes { width: 55%; }
table.totals { width: 45%; margin-left: auto; }
table.totals th { border: 0; text-transform: none; letter-spacing: 0; font-size: 10pt; font-weight: 400; color: inherit; }
table.totals td { border: 0; }
table.totals tr.total th, table.totals tr.total td { font-weight: 700; border-top: 1pt solid #1d2330; }
table.totals tr.due th, table.totals tr.due td { font-size: 12pt; font-weight: 700; border-top: 1pt solid #1d2330; }
.notes { margin-top: 8mm; }
.notes ul { margin: 0; padding-left: 5mm; }
footer { margin-top: 10mm; font-size: 8.5pt; }
@media print {
  html, body { background: none; }
  .page { width: auto; min-height: 0; margin: 0; padding: 0; box-shadow: none; overflow: visible; }
  .watermark { position: fixed; }
  thead { display: table-header-group; }
  tr, .lower, .notes { break-inside: avoid; page-break-inside: avoid; }
}
"#;

/// The whole document.
struct Page<'a, 'b>(&'a InvoiceDocument<'b>);

impl Display for Page<'_, '_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let doc = self.0;
        let void = doc.status.eq_ignore_ascii_case("void");
        let draft = doc.number.is_none();
        let title = match doc.number {
            Some(number) => format!("Invoice {number}"),
            None => "Draft invoice".to_string(),
        };
        f.write_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")?;
        f.write_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")?;
        writeln!(f, "<title>{}</title>", Escaped(&title))?;
        writeln!(
            f,
            "<style>{STYLE}</style>\n</head>\n<body>\n<div class=\"page\">"
        )?;
        if void {
            f.write_str("<div class=\"watermark\" aria-hidden=\"true\">VOID</div>\n")?;
        } else if draft {
            f.write_str("<div class=\"watermark\" aria-hidden=\"true\">DRAFT</div>\n")?;
        }
        f.write_str("<div class=\"content\">\n")?;
        header(f, doc, draft, void)?;
        bill_to(f, doc)?;
        lines(f, doc)?;
        f.write_str("<div class=\"lower\">\n")?;
        taxes(f, doc)?;
        totals(f, doc)?;
        f.write_str("</div>\n")?;
        notes(f, doc)?;
        f.write_str("</div>\n</div>\n</body>\n</html>\n")
    }
}

fn show_tax(doc: &InvoiceDocument<'_>) -> bool {
    !doc.taxes.is_empty() || doc.tax_minor != 0 || doc.lines.iter().any(|l| l.tax_minor != 0)
}

fn header(
    f: &mut Formatter<'_>,
    doc: &InvoiceDocument<'_>,
    draft: bool,
    void: bool,
) -> fmt::Result {
    let issuer = doc.issuer;
    f.write_str("<header class=\"top\">\n<div class=\"issuer\">\n")?;
    writeln!(f, "<div class=\"name\">{}</div>", Escaped(&issuer.name))?;
    for line in &issuer.address_lines {
        writeln!(f, "<div>{}</div>", Escaped(line))?;
    }
    if let Some(tax_id) = &issuer.tax_id {
        writeln!(f, "<div class=\"muted\">Tax ID: {}</div>", Escaped(tax_id))?;
    }
    if let Some(email) = &issuer.email {
        writeln!(f, "<div class=\"muted\">{}</div>", Escaped(email))?;
    }
    if let Some(phone) = &issuer.phone {
        writeln!(f, "<div class=\"muted\">{}</div>", Escaped(phone))?;
    }
    f.write_str("</div>\n<div class=\"doc\">\n<h1>Invoice")?;
    if void {
        f.write_str(" <span class=\"label void\">VOID</span>")?;
    } else if draft {
        f.write_str(" <span class=\"label draft\">DRAFT</span>")?;
    } else if doc.status.eq_ignore_ascii_case("paid") {
        f.write_str(" <span class=\"label paid\">PAID</span>")?;
    }
    f.write_str("</h1>\n<table class=\"meta\">\n")?;
    let meta = |f: &mut Formatter<'_>, label: &str, value: &dyn Display| {
        writeln!(f, "<tr><th scope=\"row\">{label}</th><td>{value}</td></tr>")
    };
    match doc.number {
        Some(number) => meta(f, "Invoice number", &Escaped(number))?,
        None => meta(f, "Invoice number", &"— (draft)")?,
    }
    if let Some(issued_on) = doc.issued_on {
        meta(f, "Issue date", &issued_on)?;
    }
    if let Some(due_date) = doc.due_date {
        meta(f, "Due date", &due_date)?;
    }
    let (start, end) = doc.period;
    let last_day = end.yesterday().unwrap_or(end).max(start);
    meta(f, "Period", &format_args!("{start} – {last_day}"))?;
    meta(f, "Customer number", &Escaped(doc.subscriber_number))?;
    f.write_str("</table>\n</div>\n</header>\n")
}

fn bill_to(f: &mut Formatter<'_>, doc: &InvoiceDocument<'_>) -> fmt::Result {
    f.write_str("<section class=\"bill-to\">\n<h2>Bill to</h2>\n")?;
    writeln!(
        f,
        "<div><strong>{}</strong></div>",
        Escaped(doc.subscriber_name)
    )?;
    for line in &doc.subscriber_address_lines {
        writeln!(f, "<div>{}</div>", Escaped(line))?;
    }
    if let Some(tax_id) = doc.subscriber_tax_id {
        writeln!(f, "<div class=\"muted\">Tax ID: {}</div>", Escaped(tax_id))?;
    }
    f.write_str("</section>\n")
}

fn lines(f: &mut Formatter<'_>, doc: &InvoiceDocument<'_>) -> fmt::Result {
    let c = doc.currency;
    let show_tax = show_tax(doc);
    f.write_str("<table class=\"lines\">\n<thead><tr><th scope=\"col\">Description</th>")?;
    if show_tax {
        f.write_str(
            "<th scope=\"col\" class=\"num\">Net</th><th scope=\"col\" class=\"num\">Tax</th>\
             <th scope=\"col\" class=\"num\">Gross</th>",
        )?;
    } else {
        f.write_str("<th scope=\"col\" class=\"num\">Amount</th>")?;
    }
    f.write_str("</tr></thead>\n<tbody>\n")?;
    if doc.lines.is_empty() {
        let span = if show_tax { 4 } else { 2 };
        writeln!(
            f,
            "<tr><td colspan=\"{span}\" class=\"muted\">No charges.</td></tr>"
        )?;
    }
    for line in &doc.lines {
        write!(f, "<tr><td>{}</td>", Escaped(line.description))?;
        if show_tax {
            write!(
                f,
                "<td class=\"num\">{}</td><td class=\"num\">{}</td>",
                Amount(line.net_minor, c),
                Amount(line.tax_minor, c)
            )?;
        }
        writeln!(
            f,
            "<td class=\"num\">{}</td></tr>",
            Amount(line.gross_minor, c)
        )?;
    }
    f.write_str("</tbody>\n</table>\n")
}

fn taxes(f: &mut Formatter<'_>, doc: &InvoiceDocument<'_>) -> fmt::Result {
    if doc.taxes.is_empty() {
        // Keeps the totals on the right.
        return f.write_str("<div></div>\n");
    }
    let c = doc.currency;
    f.write_str(
        "<table class=\"taxes\">\n<thead><tr><th scope=\"col\">Tax</th>\
         <th scope=\"col\" class=\"num\">Taxable amount</th>\
         <th scope=\"col\" class=\"num\">Tax amount</th></tr></thead>\n<tbody>\n",
    )?;
    for tax in &doc.taxes {
        writeln!(
            f,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            Escaped(&tax.label),
            Amount(tax.taxable_minor, c),
            Amount(tax.amount_minor, c)
        )?;
    }
    f.write_str("</tbody>\n</table>\n")
}

fn totals(f: &mut Formatter<'_>, doc: &InvoiceDocument<'_>) -> fmt::Result {
    let c = doc.currency;
    let row = |f: &mut Formatter<'_>, class: &str, label: &str, minor: i64| {
        writeln!(
            f,
            "<tr{class}><th scope=\"row\">{label}</th><td class=\"num\">{}</td></tr>",
            Amount(minor, c)
        )
    };
    f.write_str("<table class=\"totals\">\n<tbody>\n")?;
    if show_tax(doc) {
        row(f, "", "Subtotal (net)", doc.subtotal_minor)?;
        row(f, "", "Tax", doc.tax_minor)?;
        let total = if doc.prices_include_tax {
            "Total (tax included)"
        } else {
            "Total"
        };
        row(f, " class=\"total\"", total, doc.total_minor)?;
    } else {
        row(f, " class=\"total\"", "Total", doc.total_minor)?;
    }
    if doc.credited_minor != 0 {
        row(f, "", "Credited", -doc.credited_minor.saturating_abs())?;
    }
    if doc.paid_minor != 0 {
        row(f, "", "Paid", -doc.paid_minor.saturating_abs())?;
    }
    row(f, " class=\"due\"", "Amount due", doc.amount_due_minor)?;
    f.write_str("</tbody>\n</table>\n")
}

fn notes(f: &mut Formatter<'_>, doc: &InvoiceDocument<'_>) -> fmt::Result {
    // A payment request only on an issued, unpaid invoice: not on a draft or a void one.
    let payable = !doc.status.eq_ignore_ascii_case("void") && doc.amount_due_minor > 0;
    let pay_by = match (doc.number, doc.due_date) {
        (Some(number), Some(due)) if payable => Some((number, due)),
        _ => None,
    };
    if doc.notes.is_empty() && !doc.prices_include_tax && pay_by.is_none() {
        return Ok(());
    }
    f.write_str("<section class=\"notes\">\n<h2>Notes</h2>\n<ul>\n")?;
    if let Some((number, due)) = pay_by {
        writeln!(
            f,
            "<li>Please pay {} by {due}, quoting {}.</li>",
            Amount(doc.amount_due_minor, doc.currency),
            Escaped(number)
        )?;
    }
    if doc.prices_include_tax {
        f.write_str("<li>Prices include tax.</li>\n")?;
    }
    for note in &doc.notes {
        writeln!(f, "<li>{}</li>", Escaped(note))?;
    }
    f.write_str("</ul>\n</section>\n")
}

/// Renders a stored invoice with what the subscriber paid and was credited against it.
pub async fn render_for(
    app: &lastmile_app::App,
    inv: &lastmile_domain::billing::invoice::Invoice,
) -> Result<String, lastmile_app::AppError> {
    use lastmile_domain::billing::account::DocumentKind;
    use std::collections::BTreeMap;
    let sub = app.get_subscriber(inv.subscriber_id).await?;
    let notes_cn = app
        .list_credit_notes(
            &lastmile_store::CreditNoteFilter {
                invoice_id: Some(inv.id),
                ..Default::default()
            },
            lastmile_store::Page {
                after: None,
                limit: 1000,
            },
        )
        .await?;
    let allocations = app.list_allocations(inv.subscriber_id).await?;
    let (mut paid, mut credited) = (0i64, 0i64);
    for a in allocations.iter().filter(|a| a.debit.id == inv.id.0) {
        match a.credit.kind {
            DocumentKind::Payment => paid += a.amount_minor,
            _ => credited += a.amount_minor,
        }
    }
    let mut taxes: BTreeMap<(String, i64), (String, i64, i64)> = BTreeMap::new();
    for l in &inv.lines {
        for t in &l.taxes {
            let e = taxes
                .entry((t.name.clone(), t.rate.millionths()))
                .or_insert_with(|| (format!("{} {} %", t.name, t.rate.to_percent_string()), 0, 0));
            e.1 += l.net_minor(inv.prices_include_tax);
            e.2 += t.amount_minor;
        }
    }
    let a = &sub.billing_address;
    let city = [a.postal_code.as_deref(), a.city.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let address: Vec<String> = [
        a.line1.clone(),
        a.line2.clone(),
        (!city.is_empty()).then_some(city),
        a.region.clone(),
        a.country.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let tz = &app.config.billing.time_zone;
    let mut notes: Vec<String> = notes_cn
        .iter()
        .map(|c| {
            format!(
                "Credit note {} ({}): {}",
                c.number,
                money::format(c.total_minor, &c.currency),
                c.reason
            )
        })
        .collect();
    if let Some(r) = &inv.void_reason {
        notes.push(format!("Void: {r}"));
    }
    let amount_due = if inv.status.as_str() == "void" || inv.number.is_none() {
        0
    } else {
        (inv.total_minor - paid - credited).max(0)
    };
    let settings = app.billing_settings().await?;
    let doc = InvoiceDocument {
        issuer: &settings.issuer,
        number: inv.number.as_deref(),
        status: inv.status.as_str(),
        subscriber_name: &sub.name,
        subscriber_number: sub.number.as_str(),
        subscriber_address_lines: address,
        subscriber_tax_id: None,
        issued_on: inv.issued_at.map(|t| t.to_zoned(tz.clone()).date()),
        due_date: inv.due_date,
        period: (inv.period_start, inv.period_end),
        currency: &inv.currency,
        lines: inv
            .lines
            .iter()
            .map(|l| DocumentLine {
                description: &l.description,
                net_minor: l.net_minor(inv.prices_include_tax),
                tax_minor: l.tax_minor,
                gross_minor: l.gross_minor(inv.prices_include_tax),
            })
            .collect(),
        prices_include_tax: inv.prices_include_tax,
        taxes: taxes
            .into_values()
            .map(|(label, taxable_minor, amount_minor)| DocumentTax {
                label,
                taxable_minor,
                amount_minor,
            })
            .collect(),
        subtotal_minor: inv.subtotal_minor,
        tax_minor: inv.tax_minor,
        total_minor: inv.total_minor,
        credited_minor: credited,
        paid_minor: paid,
        amount_due_minor: amount_due,
        notes,
    };
    Ok(render_invoice(&doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn issuer() -> Issuer {
        Issuer {
            name: "Fiber & Co <Ltd>".into(),
            address_lines: vec!["1 Main St".into(), "1010 Vienna".into()],
            tax_id: Some("ATU12345678".into()),
            email: Some("billing@isp.example".into()),
            phone: None,
        }
    }

    fn document<'a>(issuer: &'a Issuer, currency: &'a Currency) -> InvoiceDocument<'a> {
        InvoiceDocument {
            issuer,
            number: Some("INV-000123"),
            status: "issued",
            subscriber_name: "Jane \"JD\" O'Doe",
            subscriber_number: "S-000042",
            subscriber_address_lines: vec!["2 Side St".into()],
            subscriber_tax_id: None,
            issued_on: Some(date(2024, 3, 1)),
            due_date: Some(date(2024, 3, 15)),
            period: (date(2024, 3, 1), date(2024, 4, 1)),
            currency,
            lines: vec![DocumentLine {
                description: "Fiber 100 <script>alert(1)</script>",
                net_minor: 5000,
                tax_minor: 1000,
                gross_minor: 6000,
            }],
            prices_include_tax: false,
            taxes: vec![DocumentTax {
                label: "VAT 20 %".into(),
                taxable_minor: 5000,
                amount_minor: 1000,
            }],
            subtotal_minor: 5000,
            tax_minor: 1000,
            total_minor: 6000,
            credited_minor: 0,
            paid_minor: 1050,
            amount_due_minor: 4950,
            notes: vec!["Credit note CN-000001 & more".into()],
        }
    }

    #[test]
    fn escapes_markup_quotes_and_ampersands() {
        assert_eq!(
            escape("<script>alert(\"x\")</script>"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape("Tom & Jerry's"), "Tom &amp; Jerry&#39;s");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("Müller – ok"), "Müller – ok");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn renders_a_complete_document() {
        let (issuer, eur) = (issuer(), Currency::parse("EUR").unwrap());
        let html = render_invoice(&document(&issuer, &eur));
        assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<title>Invoice INV-000123</title>"));
        assert!(html.contains("@media print"));
        assert!(html.contains("size: A4"));
        assert!(html.trim_end().ends_with("</html>"));
        // No scripts or external assets.
        for forbidden in ["<script", "<link", "src=", "http://", "https://", "url("] {
            assert!(!html.contains(forbidden), "{forbidden}");
        }
        for expected in [
            "INV-000123",
            "S-000042",
            "60.00&nbsp;EUR",
            "50.00&nbsp;EUR",
            "10.00&nbsp;EUR",
            "-10.50&nbsp;EUR",
            "49.50&nbsp;EUR",
            "2024-03-01 – 2024-03-31",
            "2024-03-15",
            "ATU12345678",
            "Fiber &amp; Co &lt;Ltd&gt;",
            "Jane &quot;JD&quot; O&#39;Doe",
            "Fiber 100 &lt;script&gt;alert(1)&lt;/script&gt;",
            "Credit note CN-000001 &amp; more",
            "VAT 20 %",
            "Please pay 49.50&nbsp;EUR by 2024-03-15, quoting INV-000123.",
        ] {
            assert!(html.contains(expected), "missing {expected}\n{html}");
        }
        assert!(!html.contains("DRAFT"));
        assert!(!html.contains("VOID"));
        assert!(!html.contains("Credited"));
    }

    #[test]
    fn draft_without_number() {
        let (issuer, eur) = (issuer(), Currency::parse("EUR").unwrap());
        let doc = InvoiceDocument {
            number: None,
            status: "draft",
            issued_on: None,
            ..document(&issuer, &eur)
        };
        let html = render_invoice(&doc);
        assert!(html.contains("<title>Draft invoice</title>"));
        assert!(html.contains("class=\"watermark\" aria-hidden=\"true\">DRAFT</div>"));
        assert!(html.contains("<span class=\"label draft\">DRAFT</span>"));
        assert!(!html.contains("INV-"));
        assert!(!html.contains("Issue date"));
        assert!(!html.contains("Please pay"));
    }

    #[test]
    fn void_label() {
        let (issuer, eur) = (issuer(), Currency::parse("EUR").unwrap());
        let doc = InvoiceDocument {
            status: "void",
            ..document(&issuer, &eur)
        };
        let html = render_invoice(&doc);
        assert!(html.contains(">VOID</div>"));
        assert!(html.contains("<span class=\"label void\">VOID</span>"));
        assert!(!html.contains("DRAFT"));
        assert!(!html.contains("Please pay"));
    }

    #[test]
    fn tax_table_only_with_taxes() {
        let (issuer, eur) = (issuer(), Currency::parse("EUR").unwrap());
        let with = render_invoice(&document(&issuer, &eur));
        assert!(with.contains("<table class=\"taxes\">"));
        assert!(with.contains("Taxable amount"));

        let base = document(&issuer, &eur);
        let doc = InvoiceDocument {
            taxes: vec![],
            lines: vec![DocumentLine {
                description: "Fiber 100",
                net_minor: 6000,
                tax_minor: 0,
                gross_minor: 6000,
            }],
            subtotal_minor: 6000,
            tax_minor: 0,
            ..base
        };
        let without = render_invoice(&doc);
        assert!(!without.contains("<table class=\"taxes\">"));
        assert!(!without.contains("Taxable amount"));
        assert!(!without.contains("Subtotal"));
        assert!(without.contains("60.00&nbsp;EUR"));
    }

    #[test]
    fn currency_exponent_and_credits() {
        let (issuer, jpy) = (issuer(), Currency::parse("JPY").unwrap());
        let doc = InvoiceDocument {
            credited_minor: 500,
            prices_include_tax: true,
            ..document(&issuer, &jpy)
        };
        let html = render_invoice(&doc);
        assert!(html.contains("6000&nbsp;JPY"));
        assert!(html.contains("Credited"));
        assert!(html.contains("-500&nbsp;JPY"));
        assert!(html.contains("Total (tax included)"));
        assert!(html.contains("Prices include tax."));
    }
}

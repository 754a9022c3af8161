//! Bulk payment import from a bank statement (CSV). Every row gets its own result; a row that
//! fails never stops the others; importing the same file again records nothing new (each row
//! is keyed by the bank's transaction id, or by a fingerprint of the row and its occurrence in
//! the file).

use crate::{App, AppError, AppResult};
use lastmile_api_types::{CreatePayment, PaymentAllocationBody};
use lastmile_domain::audit::Actor;
use lastmile_domain::billing::account::PaymentMethod;
use lastmile_domain::billing::invoice::Invoice;
use lastmile_domain::billing::money::{check_amount, parse_major_lenient};
use lastmile_domain::billing::statement::{
    find_invoice_number, find_subscriber_number, fingerprints, parse_statement, StatementRow,
};
use lastmile_domain::subscriber::Subscriber;
use lastmile_store::{InvoiceFilter, Page, StoreError, SubscriberFilter};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    Matched,
    Unmatched,
    Duplicate,
    Invalid,
}

#[derive(Clone, Debug)]
pub struct RowResult {
    pub line: u64,
    pub outcome: RowOutcome,
    pub payment_id: Option<lastmile_domain::Uuid>,
    pub subscriber_id: Option<lastmile_domain::Uuid>,
    pub amount_minor: Option<i64>,
    pub field: Option<String>,
    pub message: Option<String>,
}

impl RowResult {
    fn new(line: u64, outcome: RowOutcome) -> Self {
        Self {
            line,
            outcome,
            payment_id: None,
            subscriber_id: None,
            amount_minor: None,
            field: None,
            message: None,
        }
    }

    fn because(mut self, field: Option<&str>, message: impl Into<String>) -> Self {
        self.field = field.map(str::to_string);
        self.message = Some(message.into());
        self
    }
}

const ONE: Page = Page {
    after: None,
    limit: 1,
};

impl App {
    pub async fn import_payments(&self, actor: &Actor, data: &[u8]) -> AppResult<Vec<RowResult>> {
        let rows = parse_statement(data).map_err(|m| AppError::invalid("file", m))?;
        let keys = fingerprints(&rows);
        let prefix = self.billing_settings().await?.invoice_prefix;
        let mut out = Vec::with_capacity(rows.len());
        for (row, key) in rows.into_iter().zip(keys) {
            let result = match row {
                Err(e) => RowResult::new(e.line, RowOutcome::Invalid)
                    .because(e.field.as_deref(), e.message),
                Ok(row) => {
                    let line = row.line;
                    // A failure of one row (even of the database) is that row's result.
                    match self.import_row(actor, row, key, &prefix).await {
                        Ok(r) => r,
                        Err(e) => {
                            RowResult::new(line, RowOutcome::Invalid).because(None, e.to_string())
                        }
                    }
                }
            };
            out.push(result);
        }
        Ok(out)
    }

    async fn import_row(
        &self,
        actor: &Actor,
        row: StatementRow,
        fingerprint: Option<String>,
        invoice_prefix: &str,
    ) -> AppResult<RowResult> {
        let line = row.line;
        let external_id = match (&row.transaction_id, fingerprint) {
            (Some(t), _) if !t.trim().is_empty() => format!("bank:{}", t.trim()),
            (_, Some(f)) => format!("csv:{f}"),
            _ => {
                return Ok(RowResult::new(line, RowOutcome::Invalid)
                    .because(None, "the row cannot be identified"))
            }
        };
        if let Some(p) = self.store.find_payment_by_external_id(&external_id).await? {
            let mut r = RowResult::new(line, RowOutcome::Duplicate);
            r.payment_id = Some(p.id.0);
            r.subscriber_id = Some(p.subscriber_id.0);
            r.amount_minor = Some(p.amount_minor);
            return Ok(r.because(None, "already recorded"));
        }
        let (subscriber, invoice) = match self.match_row(&row, invoice_prefix).await? {
            Some(m) => m,
            None => {
                return Ok(RowResult::new(line, RowOutcome::Unmatched).because(
                    Some("reference"),
                    "no invoice or subscriber number found in the row",
                ))
            }
        };
        let amount = match parse_major_lenient(&row.amount, &subscriber.currency) {
            Ok(a) if a > 0 => match check_amount(a) {
                Ok(a) => a,
                Err(m) => {
                    return Ok(RowResult::new(line, RowOutcome::Invalid)
                        .because(Some("amount"), format!("`{}` {m}", row.amount)))
                }
            },
            Ok(_) => {
                return Ok(RowResult::new(line, RowOutcome::Invalid)
                    .because(Some("amount"), "only incoming payments are imported"))
            }
            Err(m) => {
                return Ok(RowResult::new(line, RowOutcome::Invalid).because(Some("amount"), m))
            }
        };
        let method = match row.method.as_deref().map(str::parse::<PaymentMethod>) {
            None => PaymentMethod::BankTransfer,
            Some(Ok(m)) => m,
            Some(Err(m)) => {
                return Ok(RowResult::new(line, RowOutcome::Invalid).because(Some("method"), m))
            }
        };
        let received_at = row
            .received_on
            .to_zoned(self.config.billing.time_zone.clone())
            .map_err(|e| AppError::invalid("date", e.to_string()))?
            .timestamp();
        let open_invoice = invoice.filter(|i| i.status.as_str() == "issued");
        let key = external_id.clone();
        let req = CreatePayment {
            subscriber_id: subscriber.id.0,
            amount_minor: amount,
            currency: None,
            method,
            reference: Some(row.reference.chars().take(200).collect()),
            external_id: Some(external_id),
            received_at: Some(received_at.min(self.clock.now())),
            allocations: Vec::new(),
        };
        // The invoice named in the row is paid first, as far as the amount and its open
        // amount allow; the rest goes oldest-first.
        let req = match open_invoice {
            Some(inv) => {
                let account = self.get_account(subscriber.id).await?;
                let open = account
                    .debits
                    .iter()
                    .find(|d| d.doc.id == inv.id.0)
                    .map_or(0, |d| d.open_minor());
                let amount_minor = open.min(amount);
                CreatePayment {
                    allocations: (amount_minor > 0)
                        .then_some(PaymentAllocationBody {
                            invoice_id: inv.id.0,
                            amount_minor,
                        })
                        .into_iter()
                        .collect(),
                    ..req
                }
            }
            None => req,
        };
        match self.record_payment(actor, req).await {
            Ok(o) => {
                let mut r = RowResult::new(line, RowOutcome::Matched);
                r.payment_id = Some(o.payment.id.0);
                r.subscriber_id = Some(subscriber.id.0);
                r.amount_minor = Some(amount);
                Ok(r)
            }
            // Recorded concurrently by another import of the same file.
            Err(AppError::Store(StoreError::Duplicate { .. }))
            | Err(AppError::Conflict {
                kind: "duplicate", ..
            }) => {
                let mut r = RowResult::new(line, RowOutcome::Duplicate);
                if let Some(p) = self.store.find_payment_by_external_id(&key).await? {
                    r.payment_id = Some(p.id.0);
                    r.subscriber_id = Some(p.subscriber_id.0);
                    r.amount_minor = Some(p.amount_minor);
                }
                Ok(r.because(None, "already recorded"))
            }
            Err(AppError::Validation(v)) => {
                let f = v.0.first().map(|f| f.field.clone());
                Ok(RowResult::new(line, RowOutcome::Invalid).because(f.as_deref(), v.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// The invoice a payment reference names: the first invoice number in the text (see
    /// [`find_invoice_number`]), if an invoice has it. The one matcher for bank statement
    /// rows and `POST /payments` references alike.
    pub(crate) async fn invoice_named_in(&self, reference: &str) -> AppResult<Option<Invoice>> {
        let prefix = self.billing_settings().await?.invoice_prefix;
        self.invoice_numbered(find_invoice_number(reference, &prefix))
            .await
    }

    async fn invoice_numbered(&self, number: Option<String>) -> AppResult<Option<Invoice>> {
        let Some(n) = number.filter(|n| !n.trim().is_empty()) else {
            return Ok(None);
        };
        let found = self
            .store
            .list_invoices(
                &InvoiceFilter {
                    number: Some(n.trim().to_uppercase()),
                    ..InvoiceFilter::default()
                },
                ONE,
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// The subscriber (and invoice) a statement row is for: an invoice number in its column or
    /// its reference text first, then a subscriber number.
    async fn match_row(
        &self,
        row: &StatementRow,
        prefix: &str,
    ) -> AppResult<Option<(Subscriber, Option<Invoice>)>> {
        let invoice_number = row
            .invoice_number
            .clone()
            .filter(|n| !n.trim().is_empty())
            .or_else(|| find_invoice_number(&row.reference, prefix));
        if let Some(inv) = self.invoice_numbered(invoice_number).await? {
            if let Some(s) = self.store.get_subscriber(inv.subscriber_id).await? {
                return Ok(Some((s, Some(inv))));
            }
        }
        let number = row
            .subscriber_number
            .clone()
            .filter(|n| !n.trim().is_empty())
            .or_else(|| find_subscriber_number(&row.reference));
        if let Some(n) = number {
            let found = self
                .store
                .list_subscribers(
                    &SubscriberFilter {
                        number: Some(n.trim().to_uppercase()),
                        ..SubscriberFilter::default()
                    },
                    ONE,
                )
                .await?;
            if let Some(s) = found.into_iter().next() {
                return Ok(Some((s, None)));
            }
        }
        Ok(None)
    }
}

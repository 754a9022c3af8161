//! Billing rules: pure functions from a service timeline to money.
//!
//! - [`money`]: currency exponents and the one rounding rule (half-even, once per line).
//! - [`period`]: billing periods in the operator's time zone (calendar or anniversary month).
//! - [`rating`]: the expected charges of a service for a period, rebuilt from the whole
//!   timeline, and the difference against what was already invoiced.
//!
//! How a run works (see ARCHITECTURE.md, "monthly billing run"): for every subscriber whose
//! current period has no invoice yet, rebuild the expected charges of every period from the
//! first event to the current one, subtract what earlier invoices already charged per
//! (service, period, kind, plan version), and invoice exactly the difference. Recurring charges
//! are in advance: the current period is projected from the state the service is in now; any
//! later change shows up as a correction on the next invoice.

pub mod account;
pub mod discount;
pub mod dunning;
pub mod invoice;
pub mod money;
pub mod period;
pub mod rating;
pub mod settings;
pub mod statement;
pub mod tax;

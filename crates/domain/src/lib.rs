//! MarketOps domain rules: pure functions over plain data.
//!
//! Nothing here does IO, awaits, or knows about SQL or HTTP. Callers load data, ask a
//! function for a decision (with its explanation), and persist the outcome.

pub mod automation;
pub mod calendar;
pub mod campaign;
pub mod clv;
pub mod company;
pub mod deal;
pub mod diff;
pub mod errors;
pub mod event_batch;
pub mod experiment;
pub mod funnel;
pub mod import;
pub mod lead;
pub mod ltv;
pub mod money;
pub mod notify;
pub mod order;
pub mod order_batch;
pub mod org;
pub mod par;
pub mod playbook;
pub mod referral;
pub mod report;
pub mod rfm;
pub mod role;
pub mod search;
pub mod stats;
pub mod subscription;

pub use errors::{FieldErrors, Fields};

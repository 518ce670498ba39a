//! MarketOps integration tests: one binary (links once). Tests that touch the database run
//! on SQLite and on PostgreSQL (`both!`); browser tests drive a real Chromium.

mod api;
mod audit;
mod auth;
mod automation;
mod backup;
mod browser;
mod calendar;
mod cli;
mod company;
mod csrf;
mod customers;
mod deals;
mod form;
mod i18n;
mod import;
mod jobs;
mod leads;
mod org;
mod playbook;
mod schema;
mod sla;

pub use reqwest::Method;
pub use serde_json::{Value, json};
pub use testkit::{Kind, TestApp, both};

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
mod measurement;
mod org;
mod playbook;
mod schema;
mod sla;

pub use reqwest::Method;
pub use serde_json::{Value, json};
pub use testkit::{Kind, TestApp, both};

/// Schema objects (indexes, triggers) of a table on SQLite, to compare before and after a
/// bulk write; empty on PostgreSQL, which keeps its indexes.
pub async fn schema_of(db: &store::Db, table: &str) -> Vec<(String, String)> {
    match db {
        store::Db::Sqlite(p) => {
            sqlx::query_as("SELECT name, coalesce(sql, '') FROM sqlite_master WHERE tbl_name = $1 ORDER BY name")
                .bind(table)
                .fetch_all(p)
                .await
                .unwrap()
        }
        store::Db::Postgres(_) => Vec::new(),
    }
}

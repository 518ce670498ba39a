//! The live schema as the database reports it: used by the parity test (the SQLite and
//! PostgreSQL migrations must describe the same tables) and by backup/restore.

use crate::{Db, Result};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Column {
    pub table: String,
    pub name: String,
    /// A backend-neutral type class: int, text, bool, timestamp, json.
    pub class: String,
    pub nullable: bool,
}

/// Each backend's own search machinery over columns both share: for `leads.search_text`
/// (L-1) SQLite's FTS5 table (and its shadow tables) and PostgreSQL's GIN index; for
/// `leads.weak_key` (L-2) PostgreSQL's index (SQLite's is in the search file,
/// `store::search`). Derived from those columns, so the parity check and backups leave them
/// out.
fn full_text(name: &str) -> bool {
    name == "leads_fts"
        || name.starts_with("leads_fts_")
        || name == "leads.leads_search"
        || name == "leads.leads_weak_key"
}

fn class_of(declared: &str) -> String {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "int",
        "text" => "text",
        "boolean" => "bool",
        "timestamptext" | "timestamp with time zone" => "timestamp",
        "jsontext" | "jsonb" => "json",
        "blob" | "bytea" => "bytes",
        other => return format!("unmapped:{other}"),
    }
    .to_string()
}

/// Application tables (not sqlx's bookkeeping), sorted by name.
pub async fn tables(db: &Db) -> Result<Vec<String>> {
    let mut t: Vec<String> = match db {
        Db::Sqlite(p) => {
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name <> '_sqlx_migrations' ORDER BY name",
            )
            .fetch_all(p)
            .await?
        }
        Db::Postgres(p) => {
            sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
                 AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations' ORDER BY table_name",
            )
            .fetch_all(p)
            .await?
        }
    };
    t.retain(|n| !full_text(n));
    t.sort();
    Ok(t)
}

pub async fn columns(db: &Db) -> Result<Vec<Column>> {
    let rows: Vec<(String, String, String, bool)> = match db {
        Db::Sqlite(p) => {
            sqlx::query_as(
                "SELECT m.name, c.name, c.type, (c.\"notnull\" = 0 AND c.pk = 0) FROM sqlite_master m \
                 JOIN pragma_table_info(m.name) c WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                 AND m.name <> '_sqlx_migrations' ORDER BY m.name, c.cid",
            )
            .fetch_all(p)
            .await?
        }
        Db::Postgres(p) => {
            sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'YES' \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name <> '_sqlx_migrations' ORDER BY table_name, ordinal_position",
            )
            .fetch_all(p)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .filter(|(table, ..)| !full_text(table))
        .map(|(table, name, ty, nullable)| Column { table, name, class: class_of(&ty), nullable })
        .collect())
}

/// Explicitly created indexes as `table.index` (constraint-backed ones are covered by columns).
pub async fn indexes(db: &Db) -> Result<Vec<String>> {
    let mut v: Vec<String> =
        match db {
            Db::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT tbl_name || '.' || name FROM sqlite_master WHERE type = 'index' \
                 AND name NOT LIKE 'sqlite_autoindex%'",
                )
                .fetch_all(p)
                .await?
            }
            Db::Postgres(p) => sqlx::query_scalar(
                "SELECT tablename::text || '.' || indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
                 AND indexname NOT IN (SELECT conname FROM pg_constraint) AND tablename <> '_sqlx_migrations'",
            )
            .fetch_all(p)
            .await?,
        };
    v.retain(|n| !full_text(n));
    v.sort();
    Ok(v)
}

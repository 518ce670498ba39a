//! Backup and restore.
//!
//! SQLite: `VACUUM INTO` writes a consistent, compact copy of the live database; restore
//! copies every table back from such a file in one transaction. PostgreSQL: a portable JSON
//! document with every table's rows (`json_agg`), restored with `json_populate_recordset`
//! in one transaction. Either way the backup records the schema version, and a restore into
//! a database of another schema version is refused.

use crate::{Db, Error, Result, schema};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

pub const FORMAT: &str = "marketops-backup";

/// Writes a backup of `db` to `path`, which must not exist yet.
pub async fn backup(db: &Db, path: &Path) -> Result<()> {
    if path.exists() {
        return Err(Error::Other(format!("{} already exists; choose a new file name", path.display())));
    }
    match db {
        Db::Sqlite(p) => {
            let target = path.to_str().ok_or_else(|| Error::Other("the backup path is not valid UTF-8".into()))?;
            sqlx::query("VACUUM INTO $1").bind(target).execute(p).await?;
        }
        Db::Postgres(_) => {
            let doc = serde_json::json!({
                "format": FORMAT,
                "backend": "postgres",
                "schema_version": db.latest_migration(),
                "tables": dump(db).await?,
            });
            let text = serde_json::to_vec(&doc).map_err(|e| Error::Other(e.to_string()))?;
            std::fs::write(path, text).map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))?;
        }
    }
    Ok(())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every application table's rows as JSON objects, ordered by their first column.
pub async fn dump(db: &Db) -> Result<BTreeMap<String, Vec<Value>>> {
    let cols = schema::columns(db).await?;
    let mut out = BTreeMap::new();
    for table in schema::tables(db).await? {
        let names: Vec<&str> = cols.iter().filter(|c| c.table == table).map(|c| c.name.as_str()).collect();
        let Some(first) = names.first() else { continue };
        let json: Option<String> = match db {
            Db::Sqlite(p) => {
                let pairs: Vec<String> = names
                    .iter()
                    .map(|n| {
                        let is_json = cols.iter().any(|c| c.table == table && c.name == *n && c.class == "json");
                        // JSON columns are stored as text: embed them as JSON, not as strings.
                        if is_json {
                            format!("'{n}', json({})", quote_ident(n))
                        } else {
                            format!("'{n}', {}", quote_ident(n))
                        }
                    })
                    .collect();
                let sql = format!(
                    "SELECT json_group_array(json(o)) FROM (SELECT json_object({}) AS o FROM {} ORDER BY {})",
                    pairs.join(", "),
                    quote_ident(&table),
                    quote_ident(first)
                );
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(p).await?
            }
            Db::Postgres(p) => {
                let sql = format!(
                    "SELECT COALESCE(json_agg(t ORDER BY {}), '[]'::json)::text FROM {} t",
                    quote_ident(first),
                    quote_ident(&table)
                );
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(p).await?
            }
        };
        let rows: Vec<Value> =
            serde_json::from_str(json.as_deref().unwrap_or("[]")).map_err(|e| Error::Other(e.to_string()))?;
        out.insert(table, rows);
    }
    Ok(out)
}

/// Replaces the contents of `db` with the backup in `path`.
pub async fn restore(db: &Db, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::Other(format!("cannot read {}: {e}", path.display())))?;
    match db {
        Db::Sqlite(p) => {
            if !bytes.starts_with(b"SQLite format 3\0") {
                return Err(Error::Other(format!(
                    "{} is not a SQLite backup made by `marketops backup`",
                    path.display()
                )));
            }
            let file = path.to_str().ok_or_else(|| Error::Other("the backup path is not valid UTF-8".into()))?;
            let mut conn = p.acquire().await?;
            sqlx::query("ATTACH DATABASE $1 AS bk").bind(file).execute(&mut *conn).await?;
            let result = restore_sqlite(db, &mut conn).await;
            sqlx::query("DETACH DATABASE bk").execute(&mut *conn).await?;
            result
        }
        Db::Postgres(p) => {
            let doc: Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Other(format!("{} is not a MarketOps JSON backup: {e}", path.display())))?;
            if doc["format"] != FORMAT || doc["backend"] != "postgres" {
                return Err(Error::Other(format!(
                    "{} is not a PostgreSQL backup made by `marketops backup`",
                    path.display()
                )));
            }
            let version = doc["schema_version"].as_i64().unwrap_or(-1);
            if version != db.latest_migration() {
                return Err(Error::Other(format!(
                    "the backup has schema version {version}, this database {}; use the MarketOps release that made it",
                    db.latest_migration()
                )));
            }
            let tables = schema::tables(db).await?;
            let cols = schema::columns(db).await?;
            let empty = Vec::new();
            let mut tx = p.begin().await?;
            sqlx::query("SET CONSTRAINTS ALL DEFERRED").execute(&mut *tx).await?;
            let all: Vec<String> = tables.iter().map(|t| quote_ident(t)).collect();
            sqlx::query(sqlx::AssertSqlSafe(format!("TRUNCATE {} RESTART IDENTITY CASCADE", all.join(", "))))
                .execute(&mut *tx)
                .await?;
            for t in &tables {
                let rows = doc["tables"][t].as_array().unwrap_or(&empty);
                if rows.is_empty() {
                    continue;
                }
                let sql = format!(
                    "INSERT INTO {0} SELECT * FROM json_populate_recordset(NULL::{0}, $1::json)",
                    quote_ident(t)
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(Value::Array(rows.clone()).to_string())
                    .execute(&mut *tx)
                    .await?;
                if cols.iter().any(|c| &c.table == t && c.name == "id") {
                    let sql = format!(
                        "SELECT setval(pg_get_serial_sequence('{0}', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), MAX(id) IS NOT NULL) FROM {1}",
                        t.replace('\'', "''"),
                        quote_ident(t)
                    );
                    // Tables whose id is not an identity column have no sequence.
                    let has_seq: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "SELECT pg_get_serial_sequence('{}', 'id')",
                        t.replace('\'', "''")
                    )))
                    .fetch_one(&mut *tx)
                    .await?;
                    if has_seq.is_some() {
                        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
                    }
                }
            }
            tx.commit().await?;
            crate::rules::changed();
            crate::auth::accounts_changed();
            Ok(())
        }
    }
}

async fn restore_sqlite(db: &Db, conn: &mut sqlx::SqliteConnection) -> Result<()> {
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM bk._sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await
        .map_err(|_| Error::Other("the file is a SQLite database but not a MarketOps backup".into()))?;
    if version != Some(db.latest_migration()) {
        return Err(Error::Other(format!(
            "the backup has schema version {}, this database {}; use the MarketOps release that made it",
            version.unwrap_or(0),
            db.latest_migration()
        )));
    }
    let tables = schema::tables(db).await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result: Result<()> = async {
        // Checked at COMMIT instead of per statement, so tables can be refilled in any order.
        sqlx::query("PRAGMA defer_foreign_keys = ON").execute(&mut *conn).await?;
        for t in &tables {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM main.{}", quote_ident(t))))
                .execute(&mut *conn)
                .await?;
        }
        for t in &tables {
            let sql = format!("INSERT INTO main.{0} SELECT * FROM bk.{0}", quote_ident(t));
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
        }
        // L-1 search: the leads are others now; the search file's index is made again
        // (`search`), and what the deletes above listed for it is moot.
        sqlx::query("UPDATE main.leads_fts_epoch SET n = abs(random())").execute(&mut *conn).await?;
        sqlx::query("DELETE FROM main.leads_fts_dirty").execute(&mut *conn).await?;
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        crate::rules::changed();
        crate::auth::accounts_changed();
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    result
}

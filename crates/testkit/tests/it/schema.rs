//! The SQLite and PostgreSQL migrations describe the same schema.

use testkit::TestDb;

#[tokio::test]
async fn migrations_agree_between_sqlite_and_postgres() {
    let (a, b) = (TestDb::new(testkit::Kind::Sqlite).await, TestDb::new(testkit::Kind::Postgres).await);
    let (a, b) = (a.connect().await, b.connect().await);
    let (ca, cb) = (store::schema::columns(&a).await.unwrap(), store::schema::columns(&b).await.unwrap());
    let mut ca_sorted = ca.clone();
    let mut cb_sorted = cb.clone();
    ca_sorted.sort();
    cb_sorted.sort();
    for c in &ca_sorted {
        assert!(
            !c.class.starts_with("unmapped"),
            "SQLite column {}.{} has an unmapped type {}",
            c.table,
            c.name,
            c.class
        );
    }
    for c in &cb_sorted {
        assert!(
            !c.class.starts_with("unmapped"),
            "PostgreSQL column {}.{} has an unmapped type {}",
            c.table,
            c.name,
            c.class
        );
    }
    let only_a: Vec<_> = ca_sorted.iter().filter(|c| !cb_sorted.contains(c)).collect();
    let only_b: Vec<_> = cb_sorted.iter().filter(|c| !ca_sorted.contains(c)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "schemas drifted:\nonly SQLite: {only_a:#?}\nonly PostgreSQL: {only_b:#?}"
    );
    assert_eq!(store::schema::indexes(&a).await.unwrap(), store::schema::indexes(&b).await.unwrap());
    assert_eq!(store::schema::tables(&a).await.unwrap(), store::schema::tables(&b).await.unwrap());
    assert_eq!(a.latest_migration(), b.latest_migration());
    assert!(a.ready().await.unwrap() && b.ready().await.unwrap());
}

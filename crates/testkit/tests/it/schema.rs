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

#[test]
fn instants_are_stored_as_fixed_width_rfc3339_text() {
    // SQLite's representation of an instant (`Ts::to_text`, digits written by hand): the
    // same text jiff formats, for instants spread over its whole range from the year 0, so
    // text order stays time order.
    // 0000-01-01T00:00:00Z to the last microsecond jiff takes.
    let (lo, hi) = (-62_167_219_200_000_000_i64, 253_402_207_200_000_000_i64);
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut picks = vec![lo, hi, 0, 1_793_750_397_123_456];
    for _ in 0..20_000 {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        picks.push(lo + ((z ^ (z >> 31)) % (hi - lo) as u64) as i64);
    }
    let mut previous: Option<(i64, String)> = None;
    picks.sort_unstable();
    for micros in picks {
        let t = jiff::Timestamp::from_microsecond(micros).unwrap();
        let text = store::Ts::new(t).to_text();
        assert_eq!(text, t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string(), "{micros}");
        assert_eq!(store::Ts::parse(&text).unwrap(), store::Ts::new(t));
        if let Some((p, prev)) = &previous {
            assert!(*p == micros || *prev < text, "{prev} {text}");
        }
        previous = Some((micros, text));
    }
}

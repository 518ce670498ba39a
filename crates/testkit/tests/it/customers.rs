//! C-1 customers and orders (CLI import, API) and C-2 RFM, on both databases.

use super::*;
use marketops::cli::{AnalyticsCmd, Command, Format, ImportCmd, ImportFile, run};
use std::process::ExitCode;

fn import(file: &std::path::Path, valid_only: bool) -> Command {
    Command::Import(ImportCmd::Orders(ImportFile {
        file: file.to_path_buf(),
        map: String::new(),
        valid_only,
        quiet: true,
    }))
}

async fn counts(app: &TestApp) -> (i64, i64, i64) {
    let (c, o) = store::customers::count(&app.db).await.unwrap();
    (c, o, app.audit_count().await)
}

both!(c1_orders_import_checks_every_row_and_is_idempotent, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "order_id,customer_id,order_date,amount\n1,7,2026-01-05,100.00\n2,7,2026-13-01,5\n3,8,2026-02-01,1.999\n",
    )
    .unwrap();
    let before = counts(&app).await;
    assert_eq!(run(import(&bad, false), cfg.clone()).await.unwrap(), ExitCode::FAILURE);
    assert_eq!(counts(&app).await, before, "a rejected file writes nothing");
    // Chinese headers are recognised; two orders of customer 7, one of customer 8.
    let good = dir.path().join("orders.csv");
    std::fs::write(
        &good,
        "订单号,客户编号,下单日期,金额,客户名称\nA1,7,2026-01-05,100.00,云帆软件\nA2,7,2026-03-01,50.5,\nA3,8,2026-02-01,20,\n",
    )
    .unwrap();
    assert_eq!(run(import(&good, false), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    let c7 = store::customers::get(&app.db, "7").await.unwrap().unwrap();
    assert_eq!(
        (c7.name.as_deref(), c7.order_count, c7.monetary_fen),
        (Some("云帆软件"), 2, 15_050),
        "aggregates kept as the orders arrive (C-2)"
    );
    assert_eq!(
        (
            domain::order::date_of(c7.first_order_day.unwrap()).to_string(),
            domain::order::date_of(c7.last_order_day.unwrap()).to_string()
        ),
        ("2026-01-05".to_string(), "2026-03-01".to_string())
    );
    let after = counts(&app).await;
    assert_eq!((after.0, after.1, after.2), (before.0 + 2, before.1 + 3, before.2 + 1), "one audit entry per file");
    // The same file again: nothing new, nothing counted twice.
    assert_eq!(run(import(&good, false), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(counts(&app).await, after);
    assert_eq!(store::customers::get(&app.db, "7").await.unwrap().unwrap().order_count, 2);
    // An order id stored with another amount: rejected, nothing written.
    let clash = dir.path().join("clash.csv");
    std::fs::write(&clash, "order_id,customer_id,order_date,amount\nA9,9,2026-03-02,1\nA1,7,2026-01-05,999\n").unwrap();
    assert!(run(import(&clash, false), cfg.clone()).await.unwrap_err().to_string().contains("A1"));
    assert_eq!(counts(&app).await, after);
    // --valid-only keeps the good rows of a file with errors.
    assert_eq!(run(import(&bad, true), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(counts(&app).await.1, after.1 + 1);
    app.stop().await;
});

both!(c1_orders_file_without_a_needed_column_is_refused_at_its_header, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no_amount.csv");
    std::fs::write(&file, "order_id,customer_id,order_date,colour\nZ1,c1,2026-01-02,red\n").unwrap();
    let before = counts(&app).await;
    let e = run(import(&file, false), cfg.clone()).await.unwrap_err().to_string();
    assert!(e.contains("no column for amount"), "{e}");
    assert_eq!(counts(&app).await, before, "nothing written");
    app.stop().await;
});

both!(c1_large_orders_import_builds_indexes_after_the_rows, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    // 6,000 orders of 700 customers: past the size at which SQLite writes the rows first.
    let mut text = String::from("order_id,customer_id,order_date,amount\n");
    for i in 0..6_000 {
        text.push_str(&format!("B{i},{},2026-0{}-0{},{}.50\n", i % 700, i % 9 + 1, i % 9 + 1, i % 50));
    }
    std::fs::write(&file, text).unwrap();
    let schema = schema_of(&app.db, "orders").await;
    assert_eq!(run(import(&file, false), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(schema_of(&app.db, "orders").await, schema, "every index is back as it was");
    assert_eq!(counts(&app).await.0, 700);
    // Customer 7: orders 7, 707, …, 5607 (9 of them), amounts i % 50 + 0.50 each.
    let c = store::customers::get(&app.db, "7").await.unwrap().unwrap();
    let expected: i64 = (0..6_000).filter(|i| i % 700 == 7).map(|i| (i % 50) * 100 + 50).sum();
    assert_eq!((c.order_count, c.monetary_fen), (9, expected));
    assert_eq!(store::customers::orders_of(&app.db, c.id, 100).await.unwrap().len(), 9, "found through the index");
    // A second large file into the filled store: 300 orders already stored (unchanged), a
    // line repeated, new orders of known customers and 300 new customers.
    let line = |i: usize| format!("B{i},{},2026-0{}-1{},{}.25\n", i % 1_000, i % 7 + 1, i % 9, i % 40);
    let mut text = String::from("order_id,customer_id,order_date,amount\n");
    for i in 5_700..12_000 {
        text.push_str(&line(i));
    }
    text.push_str(&line(11_999));
    // Rows 5,700–5,999 are stored with other dates and amounts: a conflict, nothing written.
    std::fs::write(&file, &text).unwrap();
    let before = counts(&app).await;
    assert!(run(import(&file, false), cfg.clone()).await.is_err());
    assert_eq!(counts(&app).await, before, "nothing written");
    let mut text: String = text.lines().filter(|l| !l.starts_with("B5")).map(|l| format!("{l}\n")).collect();
    for i in 0..300 {
        text.push_str(&format!("B{i},{},2026-0{}-0{},{}.50\n", i % 700, i % 9 + 1, i % 9 + 1, i % 50));
    }
    std::fs::write(&file, &text).unwrap();
    assert_eq!(run(import(&file, false), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!((counts(&app).await.0, counts(&app).await.1), (1_000, 12_000));
    // Every customer's kept aggregates equal the sums over its stored orders (C-2, C-3).
    assert_eq!(kept_aggregates_match_orders(&app.db).await, 1_000);
    if let store::Db::Sqlite(p) = &app.db {
        // A bulk write through the store's own pool: no order without its customer, and
        // every pooled connection still checks foreign keys afterwards.
        let orders: Vec<domain::order::OrderInput> = (0..6_000)
            .map(|i| domain::order::OrderInput {
                order_id: format!("P{i}"),
                customer_id: format!("{}", i % 1_200),
                order_date: jiff::civil::date(2026, 3, 1),
                amount: domain::money::Money(100),
                customer_name: None,
                channel: None,
            })
            .collect();
        let actor = store::audit::Actor::cli(jiff::Timestamp::now().into());
        let out = store::customers::add_orders(&app.db, &actor, &orders, "pool", &|_| {}).await.unwrap();
        assert_eq!((out.created, out.new_customers), (6_000, 200));
        // Written in multi-row statements (64 rows each, the last one shorter): every order
        // with its own values, first, last and around the statements' edges.
        let stored: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT o.external_id, c.external_id, o.amount_fen FROM orders o JOIN customers c ON c.id = o.customer_id \
             WHERE o.external_id LIKE 'P%'",
        )
        .fetch_all(p)
        .await
        .unwrap();
        assert_eq!(stored.len(), 6_000);
        for (order, customer, fen) in &stored {
            let i: usize = order[1..].parse().unwrap();
            assert_eq!((customer.as_str(), *fen), (format!("{}", i % 1_200).as_str(), 100), "{order}");
        }
        let orphans: Vec<(String, i64, String, i64)> =
            sqlx::query_as("PRAGMA foreign_key_check").fetch_all(p).await.unwrap();
        assert!(orphans.is_empty(), "{orphans:?}");
        let mut held = Vec::new();
        for _ in 0..8 {
            let mut c = p.acquire().await.unwrap();
            let on: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *c).await.unwrap();
            assert_eq!(on, 1);
            held.push(c);
        }
    }
    app.stop().await;
});

/// Every customer's kept aggregates equal the sums over its stored orders (C-2, C-3);
/// returns how many customers were compared.
async fn kept_aggregates_match_orders(db: &store::Db) -> usize {
    let sql = "SELECT c.external_id, c.order_count, c.monetary_fen, c.first_order_day, c.last_order_day, \
               c.purchase_days, c.first_day_fen, \
               (SELECT count(*) FROM orders o WHERE o.customer_id = c.id), \
               (SELECT sum(amount_fen) FROM orders o WHERE o.customer_id = c.id), \
               (SELECT min(order_day) FROM orders o WHERE o.customer_id = c.id), \
               (SELECT max(order_day) FROM orders o WHERE o.customer_id = c.id), \
               (SELECT count(DISTINCT order_day) FROM orders o WHERE o.customer_id = c.id), \
               (SELECT sum(amount_fen) FROM orders o WHERE o.customer_id = c.id AND o.order_day = \
                   (SELECT min(order_day) FROM orders p WHERE p.customer_id = c.id)) \
               FROM customers c WHERE c.order_count > 0";
    type Kept = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let rows: Vec<Kept> = match db {
        store::Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
        store::Db::Postgres(p) => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.replace("sum(amount_fen)", "sum(amount_fen)::BIGINT")))
                .fetch_all(p)
                .await
                .unwrap()
        }
    };
    for r in &rows {
        assert_eq!((r.1, r.2, r.3, r.4, r.5, r.6), (r.7, r.8, r.9, r.10, r.11, r.12), "customer {}", r.0);
    }
    rows.len()
}

// C-1: a large file into a store without orders is written part by part while it is
// still being checked (SQLite). A row error stops the writing and the rejected file leaves
// nothing; "valid rows only" keeps the first order of a repeated id, as the checked batch
// does; a customer already stored (here from a subscription) keeps its id and gets its
// aggregates; a file that turns out not to be UTF-8 after its first parts were written is
// read again and written whole, without those parts twice.
both!(c1_large_orders_file_is_written_while_it_is_checked, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let actor = store::audit::Actor::cli(jiff::Timestamp::now().into());
    let sub = domain::subscription::SubscriptionInput {
        subscription_id: "S1".into(),
        customer_id: "7".into(),
        plan: "pro".into(),
        start_date: jiff::civil::date(2025, 1, 1),
        end_date: None,
        mrr: domain::money::Money(10_000),
    };
    store::subscriptions::add(&app.db, &actor, &[sub]).await.unwrap();
    let stored_7 = store::customers::get(&app.db, "7").await.unwrap().unwrap().id;
    let streams = store::customers::OrderStream::begin(&app.db, 40_000).await.unwrap().is_some();
    assert_eq!(streams, matches!(app.db, store::Db::Sqlite(_)), "SQLite, no orders stored: written while checked");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    // 40,000 orders of 1,500 customers (three parts of the check and a bit); row 30,002
    // (order 30,000) has an impossible date; orders 39,990–39,999 repeat ids 0–9 with
    // other values, and the last line repeats the one before it.
    let line = |i: usize| {
        let (id, day) = if i >= 39_990 { (i - 39_990, 28) } else { (i, i % 28 + 1) };
        format!("G{id},{},2026-0{}-{:02},{}.{:02}\n", i % 1_500, i % 9 + 1, day, i % 300, i % 100)
    };
    let mut text = String::from("order_id,customer_id,order_date,amount\n");
    for i in 0..40_000 {
        text.push_str(&if i == 30_000 { "G30000,1,2026-02-30,1.00\n".to_string() } else { line(i) });
    }
    text.push_str(&line(39_999));
    std::fs::write(&file, &text).unwrap();
    let schema = schema_of(&app.db, "orders").await;
    let before = counts(&app).await;
    assert_eq!(run(import(&file, false), cfg.clone()).await.unwrap(), ExitCode::FAILURE);
    assert_eq!(counts(&app).await, before, "a rejected file leaves nothing");
    assert_eq!(schema_of(&app.db, "orders").await, schema);
    assert_eq!(run(import(&file, true), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(schema_of(&app.db, "orders").await, schema, "every index is back as it was");
    let after = counts(&app).await;
    assert_eq!((after.0, after.1, after.2), (1_500, 39_989, before.2 + 1), "one audit entry");
    let c7 = store::customers::get(&app.db, "7").await.unwrap().unwrap();
    assert_eq!(c7.id, stored_7, "the stored customer keeps its id");
    let expected: i64 = (0..39_990).filter(|i| i % 1_500 == 7 && *i != 30_000).map(|i| (i % 300) * 100 + i % 100).sum();
    assert_eq!((c7.order_count, c7.monetary_fen), (27, expected));
    // The first order of a repeated id stays: G3 of customer 3 on 2026-04-04 for 3.03.
    let c3 = store::customers::get(&app.db, "3").await.unwrap().unwrap();
    let orders = store::customers::orders_of(&app.db, c3.id, 100).await.unwrap();
    let g3 = orders.iter().find(|o| o.external_id == "G3").unwrap();
    assert_eq!((domain::order::date_of(g3.order_day).to_string(), g3.amount_fen), ("2026-04-04".to_string(), 303));
    assert_eq!(kept_aggregates_match_orders(&app.db).await, 1_500);
    // A second store without orders and a GB18030 file whose first non-UTF-8 byte comes after
    // the first parts were checked (and written).
    let app2 = TestApp::spawn(kind).await;
    let cfg2 = testkit::test_config(&app2.testdb.url);
    let mut text = String::from("order_id,customer_id,order_date,amount,customer_name\n");
    for i in 0..40_000 {
        let name = if i == 35_000 { "云帆软件" } else { "" };
        text.push_str(&format!("H{i},{},2026-01-0{},1.00,{name}\n", i % 900, i % 9 + 1));
    }
    let (gb, _, _) = encoding_rs::GB18030.encode(&text);
    std::fs::write(&file, &gb).unwrap();
    assert_eq!(run(import(&file, false), cfg2.clone()).await.unwrap(), ExitCode::SUCCESS);
    let after = counts(&app2).await;
    assert_eq!((after.0, after.1), (900, 40_000), "each order once");
    let named = store::customers::get(&app2.db, &(35_000 % 900).to_string()).await.unwrap().unwrap();
    assert_eq!(named.name.as_deref(), Some("云帆软件"));
    assert_eq!(kept_aggregates_match_orders(&app2.db).await, 900);
    app2.stop().await;
    app.stop().await;
});

both!(c1_orders_api_is_idempotent_by_order_id_and_names_bad_fields, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.api("finance@yunqi.example").await;
    let batch = json!({"orders": [
        {"order_id": "W-1", "customer_id": "c-1", "order_date": "2026-05-01", "amount": "88.80"},
        {"order_id": "W-2", "customer_id": "c-1", "order_date": "2026-06-01", "amount": 11.2},
        {"order_id": "W-3", "customer_id": 42, "order_date": "2026-06-02", "amount": "0"},
    ]});
    let r = fin.json(Method::POST, "/api/v1/orders", &batch).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), json!({"created": 3, "unchanged": 0, "new_customers": 2}));
    // The same batch again (a retry): 200, nothing written.
    let before = counts(&app).await;
    let r = fin.json(Method::POST, "/api/v1/orders", &batch).await;
    assert_eq!((r.status, r.json()["unchanged"].as_i64()), (200, Some(3)));
    assert_eq!(counts(&app).await, before);
    // Bad fields are named with their position; nothing is written.
    let r = fin
        .json(
            Method::POST,
            "/api/v1/orders",
            &json!({"orders": [
                {"order_id": "W-4", "customer_id": "c-2", "order_date": "2026-06-03", "amount": "1"},
                {"order_id": "", "customer_id": "c-2", "order_date": "3000-01-01", "amount": "-1", "colour": "red"},
            ]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let f = r.fields();
    for k in ["orders[1].order_id", "orders[1].order_date", "orders[1].amount", "orders[1].colour"] {
        assert!(f[k].is_string(), "{k}: {f}");
    }
    assert!(f.get("orders[0].order_id").is_none());
    for body in [json!({}), json!({"orders": []}), json!({"orders": "x"}), json!({"orders": [1]})] {
        assert_eq!(fin.json(Method::POST, "/api/v1/orders", &body).await.status, 422, "{body}");
    }
    // The same order id with another amount: 409, nothing written.
    let r = fin
        .json(
            Method::POST,
            "/api/v1/orders",
            &json!({"orders": [
                {"order_id": "W-5", "customer_id": "c-3", "order_date": "2026-06-03", "amount": "1"},
                {"order_id": "W-1", "customer_id": "c-1", "order_date": "2026-05-01", "amount": "88.81"},
            ]}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(counts(&app).await, before);
    // A viewer reads customers but cannot add orders.
    let mut viewer = app.api("viewer@yunqi.example").await;
    assert_eq!(viewer.json(Method::POST, "/api/v1/orders", &batch).await.status, 403);
    let d = viewer.get("/api/v1/customers/c-1").await.json();
    assert_eq!(d["customer"]["order_count"], 2);
    assert_eq!(d["orders"][0], json!({"order_id": "W-2", "order_date": "2026-06-01", "amount": "11.20"}));
    assert_eq!(viewer.get("/api/v1/customers/nope").await.status, 404);
    let page = viewer.get("/api/v1/customers?limit=1").await.json();
    assert_eq!(page["customers"].as_array().unwrap().len(), 1);
    assert!(page["next_before_id"].is_i64());
    assert_eq!(viewer.get("/api/v1/customers?limit=0").await.status, 422);
    app.stop().await;
});

/// RFM computed by the database itself with `NTILE(5)` — an independent reference for C-2's
/// definition (ties broken by customer id as a number).
async fn rfm_by_sql(db: &store::Db, as_of: i64) -> Vec<(String, i64, i64, i64, i64, i64, i64)> {
    let sql = "WITH agg AS (SELECT c.external_id AS cid, $1 - max(o.order_day) AS rec, count(*) AS freq, \
               CAST(sum(o.amount_fen) AS BIGINT) AS mon FROM orders o JOIN customers c ON c.id = o.customer_id \
               WHERE o.order_day <= $1 GROUP BY c.external_id) \
               SELECT cid, rec, freq, mon, \
               NTILE(5) OVER (ORDER BY rec DESC, CAST(cid AS BIGINT)) AS r, \
               NTILE(5) OVER (ORDER BY freq, CAST(cid AS BIGINT)) AS f, \
               NTILE(5) OVER (ORDER BY mon, CAST(cid AS BIGINT)) AS m \
               FROM agg ORDER BY CAST(cid AS BIGINT)";
    let rows: Vec<(String, i64, i64, i64, i32, i32, i32)> = match db {
        store::Db::Sqlite(p) => sqlx::query_as(sql).bind(as_of).fetch_all(p).await.unwrap(),
        store::Db::Postgres(p) => sqlx::query_as(sql).bind(as_of).fetch_all(p).await.unwrap(),
    };
    rows.into_iter().map(|(c, a, b, m, r, f, mm)| (c, a, b, m, r.into(), f.into(), mm.into())).collect()
}

both!(c2_rfm_matches_ntile_in_sql_as_of_any_date, |kind| async move {
    let app = TestApp::spawn(kind).await;
    // 57 customers (not a multiple of 5) with many ties in frequency and amount; ids sort
    // differently as numbers and as text (9 < 10).
    let mut orders = Vec::new();
    for c in 1..=57i64 {
        for k in 0..(c % 4 + 1) {
            let date =
                jiff::civil::date(2026, 1, 1).checked_add(jiff::Span::new().days((c * 7 + k * 31) % 300)).unwrap();
            orders.push(json!({"order_id": format!("{c}-{k}"), "customer_id": c.to_string(),
                "order_date": date.to_string(), "amount": format!("{}.{:02}", (c % 6) * 10, k * 5)}));
        }
    }
    let mut mk = app.api("marketer@yunqi.example").await;
    let r = mk.json(Method::POST, "/api/v1/orders", &json!({"orders": orders})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let latest = store::customers::latest_order_day(&app.db).await.unwrap().unwrap();
    let segments = domain::rfm::segments(&domain::playbook::Playbook::default_playbook()).unwrap();
    // As of a day after every order (from the kept aggregates), a day in the middle (from
    // the orders up to it) and a day shortly before the latest order (the aggregates less
    // the few orders after it).
    for as_of in [latest + 10, latest - 120, latest - 5] {
        let expected = rfm_by_sql(&app.db, as_of).await;
        let date = domain::order::date_of(as_of).to_string();
        let got = mk.get(&format!("/api/v1/analytics/rfm?as_of={date}")).await.json();
        let mut rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = got["customers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let mon = domain::money::Money::parse_major(c["monetary"].as_str().unwrap()).unwrap().fen();
                let n = |k: &str| c[k].as_i64().unwrap();
                (
                    c["customer_id"].as_str().unwrap().to_string(),
                    n("recency_days"),
                    n("frequency"),
                    mon,
                    n("r"),
                    n("f"),
                    n("m"),
                )
            })
            .collect();
        rows.sort_by_key(|r| r.0.parse::<i64>().unwrap());
        assert_eq!(rows, expected, "as of {date}");
        // Segment counts add up, each with its playbook action; the CLI prints the same rows.
        let total: i64 = got["segments"].as_array().unwrap().iter().map(|s| s["customers"].as_i64().unwrap()).sum();
        assert_eq!(total as usize, expected.len());
        assert_eq!(got["segments"][0]["segment"], "champions");
        assert!(got["segments"][0]["action"].as_str().unwrap().contains("限量"));
        // Moves since 30 days earlier (the playbook's period) add up to the customers whose
        // segment changed or who are new since then.
        let earlier = rfm_by_sql(&app.db, as_of - 30).await;
        let seg_of = |r: &(String, i64, i64, i64, i64, i64, i64)| {
            segments.iter().find(|s| s.matches(r.4 as u8, r.5 as u8, r.6 as u8)).unwrap().name.clone()
        };
        let changed = expected
            .iter()
            .filter(|n| earlier.iter().find(|b| b.0 == n.0).is_none_or(|b| seg_of(b) != seg_of(n)))
            .count();
        let moved: i64 = got["moves"].as_array().unwrap().iter().map(|m| m["customers"].as_i64().unwrap()).sum();
        assert_eq!(moved as usize, changed, "moves as of {date}");
        assert_eq!(got["moves_since"], domain::order::date_of(as_of - 30).to_string());
        // Each customer's segment is the first playbook rule its scores meet.
        for c in got["customers"].as_array().unwrap() {
            let n = |k: &str| c[k].as_u64().unwrap() as u8;
            let seg = segments.iter().find(|s| s.matches(n("r"), n("f"), n("m"))).unwrap();
            assert_eq!(c["segment"], seg.name.as_str());
        }
    }
    let bad = mk.get("/api/v1/analytics/rfm?as_of=tomorrow").await;
    assert_eq!((bad.status, bad.fields()["as_of"].is_string()), (422, true));
    // One segment's customers, page by page, are the full list's in the same order.
    let all = mk.get("/api/v1/analytics/rfm").await.json();
    let segment = all["customers"][0]["segment"].as_str().unwrap().to_string();
    let want: Vec<Value> =
        all["customers"].as_array().unwrap().iter().filter(|c| c["segment"] == segment.as_str()).cloned().collect();
    let (mut got, mut after) = (Vec::new(), String::new());
    loop {
        let page = mk.get(&format!("/api/v1/analytics/rfm?segment={segment}&limit=3&after={after}")).await.json();
        assert_eq!(page["total"].as_u64(), Some(want.len() as u64));
        got.extend(page["customers"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    assert_eq!(got, want);
    // SQLite reads the aggregates on two connections when two are free, on one otherwise:
    // the same rows either way.
    if let store::Db::Sqlite(p) = &app.db {
        let day = latest + 10;
        let both = store::customers::rfm_values(&app.db, day).await.unwrap();
        let mut held = Vec::new();
        while let Some(c) = p.try_acquire() {
            held.push(c);
        }
        let last = held.pop();
        drop(last);
        let one = store::customers::rfm_values(&app.db, day).await.unwrap();
        assert_eq!(one, both);
        assert!(both.len() > 50);
    }
    for (query, field) in [("segment=vip", "segment"), ("limit=0", "limit"), ("after=nobody", "after")] {
        let r = mk.get(&format!("/api/v1/analytics/rfm?{query}")).await;
        assert_eq!((r.status, r.fields()[field].is_string()), (422, true), "{query}: {}", r.text);
    }
    app.stop().await;
});

both!(c2_rfm_cli_writes_csv_and_json, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("o.csv");
    std::fs::write(
        &file,
        "order_id,customer_id,order_date,amount\n1,10,2026-03-01,5.00\n2,9,2026-03-02,7.50\n3,10,2026-03-03,1\n",
    )
    .unwrap();
    assert_eq!(run(import(&file, false), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    let rfm = |format, name: &str| {
        let output = Some(dir.path().join(name));
        Command::Analytics(AnalyticsCmd::Rfm { as_of: Some("2026-03-10".into()), format, output })
    };
    assert_eq!(run(rfm(Format::Csv, "rfm.csv"), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    // Two customers: 9 (last order 8 days before, 1 order, 7.50) and 10 (7 days, 2 orders,
    // 6.00), listed by id as numbers, so 9 first.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("rfm.csv")).unwrap(),
        "customer_id,recency_days,frequency,monetary,r,f,m,segment\n9,8,1,7.50,1,1,2,lost\n10,7,2,6.00,2,2,1,lost\n"
    );
    assert_eq!(run(rfm(Format::Json, "rfm.json"), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    let j: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("rfm.json")).unwrap()).unwrap();
    assert_eq!((j["as_of"].as_str(), j["customers"][1]["customer_id"].as_str()), (Some("2026-03-10"), Some("10")));
    assert_eq!(j["customers"][1]["monetary"], "6.00");
    let c = Command::Analytics(AnalyticsCmd::Rfm { as_of: Some("March".into()), format: Format::Csv, output: None });
    assert!(run(c, cfg.clone()).await.unwrap_err().to_string().contains("--as-of"));
    app.stop().await;
});

both!(c2_customer_pages_show_segments_and_orders, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut viewer = app.login("viewer@yunqi.example").await;
    let empty = viewer.get("/customers").await;
    assert_eq!(empty.status, 200);
    assert!(empty.text.contains("id=\"customers-empty\""));
    let mut fin = app.api("finance@yunqi.example").await;
    let orders: Vec<Value> = (1..=12)
        .map(|i| json!({"order_id": format!("P{i}"), "customer_id": format!("{}", i % 4 + 1),
            "order_date": format!("2026-0{}-1{}", i % 9 + 1, i % 10), "amount": format!("{}", i * 100), "customer_name": "星河贸易"}))
        .collect();
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &json!({"orders": orders})).await.status, 201);
    let page = viewer.get("/customers?as_of=2026-11-30").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("id=\"segment-champions\"") && page.text.contains("高价值忠诚客户"), "{}", page.text);
    assert!(page.text.contains("推送限量定制款"), "the playbook's action per segment");
    // As of 2026-02-20 customer 3 (first order 2026-02-10) is new since 2026-01-21.
    let feb = viewer.get("/customers?as_of=2026-02-20").await.text;
    assert!(feb.contains("id=\"move-list\"") && feb.contains("（新客户）"), "moves since 30 days before: {feb}");
    assert!(page.text.contains("href=\"/customers/4\""));
    // A bad date: the message beside the field, the page still answers.
    let bad = viewer.get("/customers?as_of=2026-99-01").await;
    assert_eq!(bad.status, 200);
    assert!(bad.text.contains("id=\"as_of-error\""), "{}", bad.text);
    let one = viewer.get("/customers/4").await;
    assert_eq!(one.status, 200);
    assert!(one.text.contains("星河贸易") && one.text.contains("P3") && one.text.contains("id=\"customer-segment\""));
    assert_eq!(viewer.get("/customers/none").await.status, 404);
    app.stop().await;
});

/// A multipart body with a file and, when asked, the "valid rows only" box ticked.
fn upload(name: &str, bytes: &[u8], valid_only: bool) -> testkit::client::Body<'static> {
    let boundary = "----marketops-sheet-boundary";
    let mut body = Vec::new();
    if valid_only {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"valid_only\"\r\n\r\n1\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct: &'static str = Box::leak(format!("multipart/form-data; boundary={boundary}").into_boxed_str());
    testkit::client::Body::Raw(ct, body)
}

both!(c1_c5_orders_and_events_import_in_the_browser, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.login("finance@yunqi.example").await;
    let page = fin.get("/customers").await.text;
    assert!(page.contains("id=\"orders-import-link\""));
    assert!(fin.get("/customers/import").await.text.contains("id=\"sheet-import-form\""));
    let before = counts(&app).await;
    // Chinese headers; row 3 has a bad amount, row 4 a date that is not a date.
    let csv = "订单号,客户编号,下单日期,金额\nW1,c1,2026-05-01,100.00\nW2,c1,2026-05-02,十元\nW3,c2,2026-13-01,5.00\nW4,c2,2026-05-03,8.50\n";
    let r = fin.send(Method::POST, "/customers/import", Some(upload("orders.csv", csv.as_bytes(), false))).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("id=\"row-errors\"") && r.text.contains("<td>3</td>") && r.text.contains("<td>4</td>"));
    assert_eq!(counts(&app).await, before, "nothing written for a refused file");
    // A file without an amount column is refused naming the field.
    let r = fin
        .send(
            Method::POST,
            "/customers/import",
            Some(upload("o.csv", b"order_id,customer_id,order_date\nX,c,2026-05-01\n", false)),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"import-error\"") && r.text.contains("amount"), "{}", r.text);
    // Valid rows only: two orders, one new customer each.
    let r = fin.send(Method::POST, "/customers/import", Some(upload("orders.csv", csv.as_bytes(), true))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("id=\"import-done\""), "{}", r.text);
    let after = counts(&app).await;
    assert_eq!((after.0 - before.0, after.1 - before.1), (2, 2));
    // Events: the funnel shows them.
    let events = "user_id,channel,campaign,type,ts\nu1,douyin,v1,exposure,2026-05-02T10:00:00+08:00\nu1,douyin,v1,click,2026-05-02T10:05:00+08:00\n";
    let r =
        fin.send(Method::POST, "/reports/funnel/import", Some(upload("events.csv", events.as_bytes(), false))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = fin.get("/api/v1/analytics/funnel?from=2026-05-01&to=2026-05-31").await.json();
    let douyin = got["funnels"].as_array().unwrap().iter().find(|f| f["channel"] == "douyin").unwrap().clone();
    assert_eq!(douyin["users"], json!([1, 1, 0, 0]), "{got}");
    // Who may not add orders may not import them.
    let mut viewer = app.login("viewer@yunqi.example").await;
    assert_eq!(viewer.get("/customers/import").await.status, 403);
    let r =
        viewer.send(Method::POST, "/reports/funnel/import", Some(upload("events.csv", events.as_bytes(), false))).await;
    assert_eq!(r.status, 403);
    app.stop().await;
});

both!(c5_funnel_counts_each_step_only_after_the_previous_one, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.api("finance@yunqi.example").await;
    let ev = |user: &str, channel: &str, kind: &str, ts: &str| json!({"user_id": user, "channel": channel, "campaign": "v1", "type": kind, "ts": ts});
    let events = json!({"events": [
        // a: every step, in order.
        ev("a", "douyin", "exposure", "2026-05-02T10:00:00+08:00"), ev("a", "douyin", "click", "2026-05-02T10:05:00+08:00"),
        ev("a", "douyin", "conversion", "2026-05-02T11:00:00+08:00"), ev("a", "douyin", "repurchase", "2026-05-20T09:00:00+08:00"),
        // b: the click at the same instant as the exposure does not advance.
        ev("b", "douyin", "exposure", "2026-05-03T10:00:00+08:00"), ev("b", "douyin", "click", "2026-05-03T10:00:00+08:00"),
        // c: a click before the exposure does not count.
        ev("c", "douyin", "click", "2026-05-03T09:00:00+08:00"), ev("c", "douyin", "exposure", "2026-05-03T10:00:00+08:00"),
        // d: exposure, click, conversion.
        ev("d", "douyin", "exposure", "2026-05-04T10:00:00+08:00"), ev("d", "douyin", "click", "2026-05-04T10:01:00+08:00"),
        ev("d", "douyin", "conversion", "2026-05-04T10:02:00+08:00"),
        // e: another channel; f: before the period.
        ev("e", "wechat", "exposure", "2026-05-05T10:00:00+08:00"),
        ev("f", "douyin", "exposure", "2026-04-01T10:00:00+08:00"),
    ]});
    let r = fin.json(Method::POST, "/api/v1/events", &events).await;
    assert_eq!((r.status, r.json()["created"].as_i64()), (201, Some(13)), "{}", r.text);
    let mut viewer = app.api("viewer@yunqi.example").await;
    let got = viewer.get("/api/v1/analytics/funnel?from=2026-05-01&to=2026-05-31").await.json();
    let douyin = got["funnels"].as_array().unwrap().iter().find(|f| f["channel"] == "douyin").unwrap();
    assert_eq!(douyin["users"], json!([4, 2, 2, 1]), "{got}");
    assert_eq!(douyin["step_rate_pct"], json!([null, 50.0, 100.0, 50.0]));
    assert_eq!(douyin["biggest_drop"], "click");
    let wechat = got["funnels"].as_array().unwrap().iter().find(|f| f["channel"] == "wechat").unwrap();
    assert_eq!(wechat["users"], json!([1, 0, 0, 0]));
    // Bad events are named by position and nothing is written; a viewer cannot add events.
    let before = viewer.get("/api/v1/analytics/funnel?from=2026-05-01&to=2026-05-31").await.json();
    let bad =
        json!({"events": [ev("g", "douyin", "exposure", "2026-05-06T10:00:00Z"), ev("h", "douyin", "view", "soon")]});
    let r = fin.json(Method::POST, "/api/v1/events", &bad).await;
    assert_eq!(r.status, 422);
    assert!(r.fields()["events[1].type"].is_string() && r.fields()["events[1].ts"].is_string(), "{}", r.text);
    assert_eq!(viewer.get("/api/v1/analytics/funnel?from=2026-05-01&to=2026-05-31").await.json(), before);
    assert_eq!(viewer.json(Method::POST, "/api/v1/events", &events).await.status, 403);
    let r = viewer.get("/api/v1/analytics/funnel?from=2026-06-01&to=2026-05-01").await;
    assert_eq!((r.status, r.fields()["from"].is_string()), (422, true));
    // The page: the table with the biggest drop marked, a chart per channel; a bad date is
    // shown beside its field.
    let mut page = app.login("viewer@yunqi.example").await;
    let html = page.get("/reports/funnel?from=2026-05-01&to=2026-05-31").await.text;
    assert!(html.contains("id=\"funnel-table\"") && html.contains("class=\"drop\""), "{html}");
    assert!(html.contains("data-chart=\"funnel:0\""));
    let bad = page.get("/reports/funnel?from=2026-13-01").await;
    assert_eq!(bad.status, 200);
    assert!(bad.text.contains("id=\"from-error\""));
    app.stop().await;
});

both!(c5_events_import_from_a_file_checks_every_row, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.csv");
    let events = |kind: &str| {
        Command::Import(ImportCmd::Events(ImportFile {
            file: file.to_path_buf(),
            map: String::new(),
            valid_only: kind == "valid",
            quiet: true,
        }))
    };
    std::fs::write(
        &file,
        "user_id,channel,campaign,type,ts\n\
         u1,douyin,v1,exposure,2026-05-02T10:00:00+08:00\n\
         u1,douyin,v1,click,2026-05-02T10:00:00+08:00\n\
         u1,douyin,v1,view,2026-05-02T11:00:00+08:00\n\
         u2,douyin,v1,exposure,2026-05-02T12:00:00+08:00\n\
         u2,douyin,v1,click,2026-05-02T12:30:00+08:00\n",
    )
    .unwrap();
    let before = app.audit_count().await;
    assert_eq!(run(events("all"), cfg.clone()).await.unwrap(), ExitCode::FAILURE, "row 4 has an unknown type");
    assert_eq!(app.audit_count().await, before, "nothing written");
    assert!(!store::funnel::any(&app.db).await.unwrap());
    assert_eq!(run(events("valid"), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    let mut viewer = app.api("viewer@yunqi.example").await;
    let got = viewer.get("/api/v1/analytics/funnel?from=2026-05-01&to=2026-05-31").await.json();
    assert_eq!(got["funnels"][0]["users"], json!([2, 1, 0, 0]), "u1's click at the exposure's instant does not count");
    app.stop().await;
});

both!(c5_funnel_in_the_database_matches_the_rule_on_random_events, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.api("finance@yunqi.example").await;
    // Seeded events of 60 users in two channels, times drawn from a few minutes so that
    // ties between steps are common.
    let mut state = 42u64;
    let mut next = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut events = Vec::new();
    let mut by_user: std::collections::BTreeMap<(String, String), Vec<(domain::funnel::Step, i64)>> =
        Default::default();
    for _ in 0..400 {
        let user = format!("u{}", next() % 60);
        let channel = ["douyin", "wechat"][(next() % 2) as usize].to_string();
        let step = domain::funnel::Step::ALL[(next() % 4) as usize];
        let minute = next() % 6;
        let ts = jiff::Timestamp::from_second(1_777_600_800 + minute as i64 * 60).unwrap();
        by_user.entry((channel.clone(), user.clone())).or_default().push((step, ts.as_microsecond()));
        events.push(json!({"user_id": user, "channel": channel, "type": step.code(), "ts": ts.to_string()}));
    }
    assert_eq!(fin.json(Method::POST, "/api/v1/events", &json!({"events": events})).await.status, 201);
    let got = fin.get("/api/v1/analytics/funnel?from=2026-04-01&to=2026-06-30").await.json();
    for channel in ["douyin", "wechat"] {
        let expected = domain::funnel::summarise(
            by_user.iter().filter(|((c, _), _)| c == channel).map(|(_, evs)| domain::funnel::reached(evs)),
        );
        let f = got["funnels"].as_array().unwrap().iter().find(|f| f["channel"] == channel).unwrap();
        assert_eq!(f["users"], json!(expected.users), "{channel}: {got}");
    }
    app.stop().await;
});

// C-5: files of thousands of events take the bulk path on SQLite (numbers through the
// statement interface, the time index built after the rows); a second file with users of
// the first reuses their numbers; the funnel over both equals the rule user by user.
both!(c5_large_events_files_number_each_user_once_and_count_as_the_rule, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let mut state = 11u64;
    let mut next = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    type Key = (String, String, String);
    let mut by_user: std::collections::BTreeMap<Key, Vec<(domain::funnel::Step, i64)>> = Default::default();
    for (name, first_user) in [("a.csv", 0u64), ("b.csv", 200)] {
        let mut text = String::from("user_id,channel,campaign,type,ts\n");
        for _ in 0..6_000 {
            let user = format!("用户{}", first_user + next() % 300);
            let channel = ["douyin", "wechat"][(next() % 2) as usize].to_string();
            let campaign = ["", "v1"][(next() % 2) as usize].to_string();
            let step = domain::funnel::Step::ALL[(next() % 4) as usize];
            let ts = jiff::Timestamp::from_second(1_777_600_800 + (next() % 30) as i64 * 60).unwrap();
            text.push_str(&format!("{user},{channel},{campaign},{},{ts}\n", step.code()));
            by_user.entry((channel, campaign, user)).or_default().push((step, ts.as_microsecond()));
        }
        std::fs::write(dir.path().join(name), text).unwrap();
        let import = Command::Import(ImportCmd::Events(ImportFile {
            file: dir.path().join(name),
            map: String::new(),
            valid_only: false,
            quiet: true,
        }));
        assert_eq!(run(import, cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    }
    let users: i64 = match &app.db {
        store::Db::Sqlite(p) => sqlx::query_scalar("SELECT count(*) FROM funnel_users").fetch_one(p).await.unwrap(),
        store::Db::Postgres(p) => sqlx::query_scalar("SELECT count(*) FROM funnel_users").fetch_one(p).await.unwrap(),
    };
    assert_eq!(users, 500, "users 200–299 appear in both files and are stored once");
    assert!(store::schema::indexes(&app.db).await.unwrap().contains(&"funnel_events.funnel_events_at".to_string()));
    let mut viewer = app.api("viewer@yunqi.example").await;
    let got = viewer.get("/api/v1/analytics/funnel?from=2026-05-01&to=2026-05-31").await.json();
    let funnels = got["funnels"].as_array().unwrap();
    assert_eq!(funnels.len(), 4, "{got}");
    for f in funnels {
        let (channel, campaign) = (f["channel"].as_str().unwrap(), f["campaign"].as_str().unwrap());
        let expected = domain::funnel::summarise(
            by_user
                .iter()
                .filter(|((c, k, _), _)| c == channel && k == campaign)
                .map(|(_, evs)| domain::funnel::reached(evs)),
        );
        assert_eq!(f["users"], json!(expected.users), "{channel}/{campaign}: {got}");
    }
    app.stop().await;
});

/// Seeded orders of customers who buy at random and may drop out after each purchase (the
/// process BG/NBD describes), with some days holding two orders; and each customer's
/// (first day, days, last day, total, first-day total) worked out here from the list.
/// (day, fen) of each order, per customer.
type OrdersByCustomer = std::collections::BTreeMap<i64, Vec<(i64, i64)>>;

fn clv_orders() -> (Vec<Value>, OrdersByCustomer) {
    let mut state = 7u64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let start = domain::order::day_number(jiff::civil::date(2025, 1, 1));
    let mut orders = Vec::new();
    let mut days: OrdersByCustomer = Default::default();
    for c in 1..=240i64 {
        let mut day = start + (next() * 300.0) as i64;
        let every = 10.0 + next() * 60.0;
        // Customers differ in how readily they drop out and in what they usually spend.
        let drop_out = [0.03, 0.1, 0.3, 0.5][(next() * 4.0) as usize];
        let scale = 1_000.0 + next() * 30_000.0;
        let mut k = 0;
        while day < start + 600 {
            let fen = (scale * (0.5 + next())) as i64;
            let same_day = next() < 0.15;
            for extra in 0..if same_day { 2 } else { 1 } {
                let date = domain::order::date_of(day).to_string();
                orders.push(json!({"order_id": format!("K{c}-{k}-{extra}"), "customer_id": c.to_string(),
                    "order_date": date, "amount": domain::money::Money(fen).decimal()}));
                days.entry(c).or_default().push((day, fen));
            }
            k += 1;
            if next() < drop_out {
                break;
            }
            day += (-every * (1.0 - next()).ln()).ceil() as i64;
        }
    }
    (orders, days)
}

both!(c3_clv_fits_on_purchase_days_up_to_the_date, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let (orders, by_customer) = clv_orders();
    let mut fin = app.api("finance@yunqi.example").await;
    for chunk in orders.chunks(5_000) {
        assert_eq!(fin.json(Method::POST, "/api/v1/orders", &json!({"orders": chunk})).await.status, 201);
    }
    // Orders of known customers: one before customer 1's first day, one on its first day,
    // one on a day it already bought on (purchase days and the first day's amount move).
    let mut by_customer = by_customer;
    let c1 = by_customer[&1].clone();
    let first = c1.iter().map(|o| o.0).min().unwrap();
    let extra = [(first - 3, 1_250), (first, 400), (c1[c1.len() - 1].0, 990)];
    for (k, (day, fen)) in extra.iter().enumerate() {
        let o = json!({"order_id": format!("X{k}"), "customer_id": "1", "order_date": domain::order::date_of(*day).to_string(),
            "amount": domain::money::Money(*fen).decimal()});
        assert_eq!(fin.json(Method::POST, "/api/v1/orders", &json!({"orders": [o]})).await.status, 201);
        by_customer.get_mut(&1).unwrap().push((*day, *fen));
    }
    let purchases = |as_of: i64| {
        let mut out = std::collections::BTreeMap::new();
        for (c, list) in &by_customer {
            let mut per_day: std::collections::BTreeMap<i64, i64> = Default::default();
            for (d, fen) in list.iter().filter(|(d, _)| *d <= as_of) {
                *per_day.entry(*d).or_default() += fen;
            }
            let (Some((&first, &first_fen)), Some((&last, _))) = (per_day.first_key_value(), per_day.last_key_value())
            else {
                continue;
            };
            out.insert(
                c.to_string(),
                domain::clv::Purchases {
                    customer: c.to_string(),
                    first_day: first,
                    last_day: last,
                    days: per_day.len() as i64,
                    total_fen: per_day.values().sum(),
                    first_day_fen: first_fen,
                },
            );
        }
        out
    };
    // As of the latest day the kept per-customer figures are read (C-3 beside C-2's); as of
    // an earlier day they come from the orders. Both equal what the order list says.
    let latest = store::customers::latest_order_day(&app.db).await.unwrap().unwrap();
    for day in [latest, latest + 5, latest - 200] {
        let mut got = store::customers::clv_purchases(&app.db, day).await.unwrap();
        got.sort_by_key(|p| p.customer.parse::<i64>().unwrap());
        let want: Vec<domain::clv::Purchases> = purchases(day).into_values().collect();
        let mut want = want;
        want.sort_by_key(|p| p.customer.parse::<i64>().unwrap());
        assert_eq!(got, want, "as of {day}");
    }
    let as_of = domain::order::day_number(jiff::civil::date(2026, 6, 30));
    // The models' inputs worked out from the order list: purchase days up to the date, one
    // transaction per day with its amounts summed, the first day left out of the spend.
    let expected: std::collections::BTreeMap<String, domain::clv::History> =
        purchases(as_of).into_iter().map(|(c, p)| (c, p.history(as_of, domain::clv::Unit::Week))).collect();
    let got = fin.get("/api/v1/analytics/clv?as_of=2026-06-30&unit=week&periods=26").await;
    assert_eq!(got.status, 200, "{}", got.text);
    let got = got.json();
    let rows = got["customers"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for r in rows {
        let h = &expected[r["customer_id"].as_str().unwrap()];
        assert_eq!(r["frequency"].as_u64().unwrap() as u32, h.x, "{r}");
        assert!(
            (r["recency"].as_f64().unwrap() - h.t_x).abs() < 1e-12 && (r["T"].as_f64().unwrap() - h.t).abs() < 1e-12
        );
        assert!((r["monetary"].as_f64().unwrap() - h.monetary).abs() < 1e-9, "{r}");
        let p_alive = r["p_alive"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p_alive) && r["expected_purchases"].as_f64().unwrap() >= 0.0);
        assert!(r["clv"].as_f64().unwrap() >= 0.0);
    }
    // The fit on those inputs, and the standard errors and log-likelihoods with it.
    let hs: Vec<domain::clv::History> = expected.values().copied().collect();
    let bg = domain::clv::fit_bg_nbd(&hs).unwrap();
    let model = &got["model"];
    assert_eq!(model["bg_nbd"]["converged"], true, "{model}");
    for (k, v) in [("r", bg.params.r), ("alpha", bg.params.alpha), ("a", bg.params.a), ("b", bg.params.b)] {
        assert!((model["bg_nbd"]["params"][k].as_f64().unwrap() - v).abs() < 1e-6 * v, "{k}: {model}");
        assert!(model["bg_nbd"]["standard_errors"][k].as_f64().unwrap() > 0.0);
    }
    assert!((model["bg_nbd"]["log_likelihood"].as_f64().unwrap() - bg.log_likelihood).abs() < 1e-6);
    assert!(model["gamma_gamma"]["params"]["q"].as_f64().unwrap() > 1.0, "{model}");
    assert_eq!((got["unit"].as_str(), got["periods"].as_f64()), (Some("week"), Some(26.0)));
    // The CLI prints the same fit.
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clv.json");
    let cmd = Command::Analytics(AnalyticsCmd::Clv {
        as_of: Some("2026-06-30".into()),
        unit: Some("week".into()),
        periods: Some(26.0),
        format: Format::Json,
        output: Some(out.clone()),
    });
    assert_eq!(run(cmd, cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    let cli: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(cli["model"]["bg_nbd"]["params"], model["bg_nbd"]["params"]);
    assert_eq!(cli["customers"], got["customers"]);
    // In days the time scale changes, the purchase pattern does not: α scales by 7.
    let days = fin.get("/api/v1/analytics/clv?as_of=2026-06-30&unit=day").await.json();
    let ratio = days["model"]["bg_nbd"]["params"]["alpha"].as_f64().unwrap() / bg.params.alpha;
    assert!((ratio - 7.0).abs() < 1e-4, "{ratio}");
    // Bad choices: 422 naming each field, from the API and the CLI.
    let bad = fin.get("/api/v1/analytics/clv?as_of=June&unit=year&periods=0").await;
    assert_eq!(bad.status, 422);
    let fields = bad.fields();
    assert!(fields["as_of"].is_string() && fields["unit"].is_string() && fields["periods"].is_string(), "{fields}");
    let cmd = Command::Analytics(AnalyticsCmd::Clv {
        as_of: None,
        unit: Some("year".into()),
        periods: None,
        format: Format::Json,
        output: None,
    });
    assert!(run(cmd, cfg).await.unwrap_err().to_string().contains("--unit"));
    app.stop().await;
});

both!(c3_clv_pages_show_the_models_and_each_customers_value, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let (orders, _) = clv_orders();
    let mut fin = app.api("finance@yunqi.example").await;
    for chunk in orders.chunks(5_000) {
        assert_eq!(fin.json(Method::POST, "/api/v1/orders", &json!({"orders": chunk})).await.status, 201);
    }
    let mut viewer = app.login("viewer@yunqi.example").await;
    let page = viewer.get("/reports/clv?as_of=2026-06-30&unit=week&periods=12").await;
    assert_eq!(page.status, 200);
    for id in ["clv-summary", "clv-histogram", "clv-top", "clv-export"] {
        assert!(page.text.contains(&format!("id=\"{id}\"")), "{id}: {}", page.text);
    }
    assert!(page.text.contains("BG/NBD") && page.text.contains("<td>alpha</td>") && page.text.contains("标准误"));
    let bad = viewer.get("/reports/clv?unit=year&periods=abc").await;
    assert_eq!(bad.status, 200);
    assert!(bad.text.contains("id=\"unit-error\"") && bad.text.contains("id=\"periods-error\""), "{}", bad.text);
    let csv = viewer.get("/reports/clv/export?as_of=2026-06-30&unit=week").await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], domain::clv::CSV_HEADER);
    let customers = store::customers::clv_purchases(&app.db, domain::order::day_number(jiff::civil::date(2026, 6, 30)))
        .await
        .unwrap()
        .len();
    assert_eq!(lines.len(), customers + 1);
    let one = viewer.get("/customers/7").await;
    assert!(one.text.contains("id=\"customer-clv\"") && one.text.contains("id=\"customer-p-alive\""), "{}", one.text);
    app.stop().await;
});

both!(c3_historical_value_by_cohort_and_acquisition_channel, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.api("finance@yunqi.example").await;
    let o = |id: &str, c: &str, date: &str, amount: &str, channel: Option<&str>| json!({"order_id": id, "customer_id": c, "order_date": date, "amount": amount, "channel": channel});
    // Customer 1 (douyin, 2025-01) spends 100 then 60 two months later and 40 eleven months
    // later; customer 2 (douyin, 2025-01) 100; customer 3 (wechat, 2026-10) 90. A later
    // order naming another channel does not change a customer's acquisition channel.
    let batch = json!({"orders": [
        o("a", "1", "2025-01-05", "100.00", Some("douyin")), o("b", "1", "2025-03-10", "60.00", Some("wechat")),
        o("c", "1", "2025-12-01", "40.00", None), o("d", "2", "2025-01-20", "100.00", Some("douyin")),
        o("e", "3", "2026-10-20", "90.00", Some("wechat"))]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &batch).await.status, 201);
    let more = json!({"orders": [o("f", "2", "2025-02-01", "0.00", Some("baidu_sem"))]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &more).await.status, 201);
    let bad = fin
        .json(
            Method::POST,
            "/api/v1/orders",
            &json!({"orders": [o("g", "4", "2026-01-01", "1", Some(&"x".repeat(41)))]}),
        )
        .await;
    assert_eq!((bad.status, bad.fields()["orders[0].channel"].is_string()), (422, true), "{}", bad.text);
    let got = fin.get("/api/v1/analytics/ltv").await;
    assert_eq!(got.status, 200, "{}", got.text);
    let r = &got.json()["report"];
    assert_eq!(r["horizons_months"], json!([1, 3, 6, 12]));
    let jan = r["cohorts"].as_array().unwrap().iter().find(|c| c["key"] == "2025-01").unwrap();
    // Two customers; to date 300 / 2; within 1 month 200 / 2, 3 months 260 / 2, 12 months 300 / 2.
    assert_eq!((jan["customers"].as_i64(), jan["ltv_fen"].as_i64()), (Some(2), Some(15_000)), "{r}");
    assert_eq!(jan["ltv_at_fen"], json!([10_000, 13_000, 13_000, 15_000]));
    let douyin = r["channels"].as_array().unwrap().iter().find(|c| c["key"] == "douyin").unwrap();
    assert_eq!(douyin["customers"].as_i64(), Some(2));
    let wechat = r["channels"].as_array().unwrap().iter().find(|c| c["key"] == "wechat").unwrap();
    // Acquired 2026-10-20, a month old on 2026-11-23: the 3-month and later figures are unknown.
    assert_eq!(
        (wechat["customers"].as_i64(), wechat["ltv_at_fen"].clone()),
        (Some(1), json!([9_000, null, null, null]))
    );
    // Subscription view of the 2025-01 cohort: month 0 both pay 200; month 2 one pays 60
    // (retention 50 %, NDR 30 %); month 11 one pays 40; the cohort is not two years old on
    // 2026-11-23, so its renewal rate is not known yet.
    let got = fin.get("/api/v1/analytics/ltv").await.json();
    let jan = got["retention"].as_array().unwrap().iter().find(|c| c["cohort"] == "2025-01").unwrap().clone();
    assert_eq!(
        (jan["retention_pct"][0].as_f64(), jan["retention_pct"][2].as_f64()),
        (Some(100.0), Some(50.0)),
        "{jan}"
    );
    assert_eq!((jan["ndr_pct"][2].as_f64(), jan["ndr_pct"][11].as_f64()), (Some(30.0), Some(20.0)));
    assert!(jan["renewal_pct"].is_null(), "{jan}");
    let mut viewer = app.login("viewer@yunqi.example").await;
    let page = viewer.get("/reports/clv").await.text;
    assert!(
        page.contains("id=\"ltv-channels\"") && page.contains("id=\"ltv-cohorts\"") && page.contains("2025-01"),
        "{page}"
    );
    assert!(page.contains("id=\"ltv-retention\""));
    app.stop().await;
});

both!(c5_funnel_cli_prints_what_the_api_shows, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.api("finance@yunqi.example").await;
    let ev = |u: &str, ch: &str, kind: &str, ts: &str| json!({"user_id": u, "channel": ch, "campaign": "q2", "type": kind, "ts": ts});
    let events = json!({"events": [
        ev("a", "douyin", "exposure", "2026-05-02T10:00:00+08:00"), ev("a", "douyin", "click", "2026-05-02T10:01:00+08:00"),
        ev("b", "douyin", "exposure", "2026-05-03T10:00:00+08:00"), ev("b", "douyin", "click", "2026-05-03T10:00:00+08:00"),
        ev("c", "wechat", "exposure", "2026-05-04T10:00:00+08:00")]});
    assert_eq!(fin.json(Method::POST, "/api/v1/events", &events).await.status, 201);
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("funnel.csv");
    let cmd = |from: &str, output: Option<std::path::PathBuf>| {
        Command::Analytics(AnalyticsCmd::Funnel {
            from: Some(from.into()),
            to: Some("2026-05-31".into()),
            format: Format::Csv,
            output,
        })
    };
    assert_eq!(run(cmd("2026-05-01", Some(out.clone())), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "channel,campaign,exposure,click,conversion,repurchase\ndouyin,q2,2,1,0,0\nwechat,q2,1,0,0,0\n"
    );
    let api = fin.get("/api/v1/analytics/funnel?from=2026-05-01&to=2026-05-31").await.json();
    assert_eq!(api["funnels"][0]["users"], json!([2, 1, 0, 0]));
    assert!(run(cmd("May", None), cfg).await.unwrap_err().to_string().contains("--from"));
    app.stop().await;
});

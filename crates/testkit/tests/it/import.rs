//! L-1 (c) import from CSV and XLSX — CLI and UI — and L-1 export; bad rows are reported by
//! row and column and a rejected file changes nothing.

use super::*;
use marketops::cli::{Command, ImportCmd, run};
use std::process::ExitCode;

const CSV: &str = "姓名,公司,手机,邮箱,省份,渠道,预算,决策权,需求,采购周期\n\
张三,甲公司,138 0013 8000,,上海,trade_show,approved,decision_maker,clear,within_3_months\n\
李四,乙公司,,li4@b.example,北京,,planned,influencer,exploring,later\n\
王五,,,bad-mail,,radio,,,,\n\
张三,甲公司,+86 13800138000,zs@a.example,,webinar,,,,\n";

fn cmd(file: &std::path::Path, valid_only: bool) -> Command {
    Command::Import(ImportCmd::Leads {
        file: file.to_path_buf(),
        map: String::new(),
        channel: Some("website_form".into()),
        campaign: None,
        valid_only,
        quiet: true,
    })
}

both!(l1_import_csv_and_xlsx_from_the_cli, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("leads.csv");
    std::fs::write(&csv, CSV).unwrap();
    let before = (store::leads::count(&app.db).await.unwrap(), app.audit_count().await);
    // A file with a bad row is rejected whole by default…
    assert_eq!(run(cmd(&csv, false), cfg.clone()).await.unwrap(), ExitCode::FAILURE);
    assert_eq!((store::leads::count(&app.db).await.unwrap(), app.audit_count().await), before, "nothing written");
    // …or imported without the bad rows when asked.
    assert_eq!(run(cmd(&csv, true), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    let all = store::leads::list(
        &app.db,
        store::leads::Scope::All,
        &store::leads::Filter { limit: 50, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(all.len(), 2, "row 5 (same mobile as row 2) merged into it");
    let zhang = all.iter().find(|l| l.name.as_deref() == Some("张三")).unwrap();
    assert_eq!(
        (zhang.email.as_deref(), zhang.grade.as_str(), zhang.route.as_str()),
        (Some("zs@a.example"), "A", "sales")
    );
    assert_eq!(zhang.sources.as_array().unwrap().len(), 2);
    // A source holds what it has: no campaign or UTM tags in this file, so no such keys.
    for s in zhang.sources.as_array().unwrap() {
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["at", "channel"], "{s}");
    }
    assert_eq!(zhang.owner_id, Some(app.user_id("sales.rep@yunqi.example").await), "上海 → 销售一组");
    assert!(zhang.first_response_due.is_some());
    // Its history on the lead page names the file and what the import decided.
    let page = app.login("marketer@yunqi.example").await.get(&format!("/leads/{}", zhang.id)).await.text;
    assert!(page.contains("leads.csv · 等级 A · 销售跟进"), "{page}");
    // L-2: the e-mail only the later row had is the lead's key as well: a capture by it
    // merges into the lead.
    let r = app
        .api("marketer@yunqi.example")
        .await
        .json(Method::POST, "/api/v1/leads", &json!({"name": "张三", "email": "ZS@a.example", "channel": "webinar"}))
        .await;
    assert_eq!(
        (r.status, r.json()["merged"].clone(), r.json()["lead"]["id"].clone()),
        (200, json!(true), json!(zhang.id))
    );
    let li = all.iter().find(|l| l.name.as_deref() == Some("李四")).unwrap();
    assert_eq!(
        (li.channel.as_str(), li.grade.as_str()),
        ("website_form", "B"),
        "the file's default channel; 2 + 2 + 2 + 1 = 7 is B"
    );
    // Importing the same file again merges instead of duplicating.
    run(cmd(&csv, true), cfg.clone()).await.unwrap();
    assert_eq!(store::leads::count(&app.db).await.unwrap(), 2);
    // XLSX with an explicit mapping.
    let t = domain::import::Table {
        headers: vec!["联系人".into(), "Mobile".into(), "Org".into(), "Src".into()],
        rows: vec![vec!["赵六".into(), "13911112222".into(), "丙公司".into(), "douyin".into()]],
    };
    let xlsx = dir.path().join("leads.xlsx");
    std::fs::write(&xlsx, web::sheets::write_xlsx(&t, "Sheet1").unwrap()).unwrap();
    let c = Command::Import(ImportCmd::Leads {
        file: xlsx.clone(),
        map: "Org=company,Src=channel".into(),
        channel: None,
        campaign: None,
        valid_only: false,
        quiet: true,
    });
    assert_eq!(run(c, cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    let z = store::leads::list(
        &app.db,
        store::leads::Scope::All,
        &store::leads::Filter { q: Some("丙公司".into()), limit: 5, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!((z[0].name.as_deref(), z[0].channel.as_str()), (Some("赵六"), "douyin"));
    let bad = Command::Import(ImportCmd::Leads {
        file: xlsx,
        map: "Nope=company".into(),
        channel: None,
        campaign: None,
        valid_only: false,
        quiet: true,
    });
    assert!(run(bad, cfg.clone()).await.unwrap_err().to_string().contains("Nope"));
    app.stop().await;
});

fn multipart(name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----marketops-test-boundary";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

// L-1 (c): a row naming a campaign that does not exist is a bad row like any other: the file
// is refused whole by default and nothing is written, with valid rows only the others are
// imported; an unknown `--campaign` for the whole file is refused before any row is read.
// The store still refuses such a lead itself, small (through the driver) or large (in bulk,
// where the transaction leaves SQLite's foreign-key checks off because the import checks
// campaigns itself).
both!(l1_import_naming_an_unknown_campaign_changes_nothing, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let body = json!({"name": "峰会", "channel": "trade_show", "planned_cost": "1000"});
    let r = app.api("marketer@yunqi.example").await.json(Method::POST, "/api/v1/campaigns", &body).await;
    let known = store::campaigns::ids(&app.db).await.unwrap();
    assert_eq!(known, [r.json()["id"].as_i64().unwrap()]);
    let mut text = String::from("姓名,手机,渠道,活动编号\n");
    for i in 0..3 {
        // Row 3 names the missing campaign, row 4 a stored one.
        let campaign = [String::new(), "987654".into(), known[0].to_string()][i].clone();
        text.push_str(&format!("客户{i},1360000{i:04},wechat,{campaign}\n"));
    }
    let csv = dir.path().join("campaign.csv");
    std::fs::write(&csv, text).unwrap();
    let before = (store::leads::count(&app.db).await.unwrap(), app.audit_count().await);
    assert_eq!(run(cmd(&csv, false), cfg.clone()).await.unwrap(), ExitCode::FAILURE);
    assert_eq!((store::leads::count(&app.db).await.unwrap(), app.audit_count().await), before, "nothing written");
    let mut whole = cmd(&csv, true);
    if let Command::Import(ImportCmd::Leads { campaign, .. }) = &mut whole {
        *campaign = Some(987654);
    }
    let err = run(whole, cfg.clone()).await.unwrap_err().to_string();
    assert!(err.contains("--campaign") && err.contains("987654"), "{err}");
    assert_eq!((store::leads::count(&app.db).await.unwrap(), app.audit_count().await), before, "nothing written");
    assert_eq!(run(cmd(&csv, true), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(store::leads::count(&app.db).await.unwrap(), before.0 + 2, "rows 2 and 4");
    let named = |q: &'static str| {
        let db = app.db.clone();
        async move {
            let f = store::leads::Filter { q: Some(q.into()), limit: 5, ..Default::default() };
            store::leads::list(&db, store::leads::Scope::All, &f).await.unwrap().len()
        }
    };
    let phones = (named("13600000000").await, named("13600000001").await, named("13600000002").await);
    assert_eq!(phones, (1, 0, 1), "row 3 left out");
    // The UI reports it beside its row and column, in the reader's language.
    let mut mk = app.login("marketer@yunqi.example").await;
    let (ct, body) = multipart("campaign.csv", &std::fs::read(&csv).unwrap());
    let ct: &'static str = Box::leak(ct.into_boxed_str());
    let r = mk.send(Method::POST, "/leads/import", Some(testkit::client::Body::Raw(ct, body))).await;
    let path = r.location();
    let form =
        [("map_0", "name"), ("map_1", "phone"), ("map_2", "channel"), ("map_3", "campaign_id"), ("channel", "wechat")];
    let mut pairs = form.to_vec();
    pairs.push(("action", "import"));
    let r = mk.post_form(&path, &pairs).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("<td>3</td><td>活动编号</td><td>没有编号为 987654 的活动</td>"), "{}", r.text);
    assert_eq!(store::leads::count(&app.db).await.unwrap(), before.0 + 2, "nothing more written");

    // The store's own check, below the file check.
    let active = store::playbook::active(&app.db).await.unwrap().unwrap();
    let pb = domain::playbook::Playbook::parse(&active.document).unwrap();
    let company = store::company::get(&app.db).await.unwrap().unwrap();
    let calendar = store::calendar::working_calendar(&app.db, &company).await.unwrap();
    let tz = jiff::tz::TimeZone::UTC;
    let rules = store::leads::Rules { playbook: &pb, version: active.version, calendar: &calendar, tz: &tz };
    for rows in [3, 6_000] {
        let leads: Vec<domain::lead::LeadInput> = (0..rows)
            .map(|i| {
                let mut f = domain::errors::Fields::from_pairs([
                    ("name", format!("店家{i}")),
                    ("phone", format!("1350000{i:04}")),
                    ("channel", "wechat".into()),
                ]);
                if i + 1 == rows {
                    f.set("campaign_id", 987654);
                }
                domain::lead::LeadInput::parse(&f, &pb).unwrap()
            })
            .collect();
        let before = (store::leads::count(&app.db).await.unwrap(), app.audit_count().await);
        let actor = store::audit::Actor::cli(app.now());
        let err =
            store::import::import_leads(&app.db, &actor, leads, &rules, "t", &|_| {}).await.unwrap_err().to_string();
        assert!(err.contains("campaign_id") && err.contains("987654"), "{rows} rows: {err}");
        assert_eq!((store::leads::count(&app.db).await.unwrap(), app.audit_count().await), before, "{rows} rows");
    }
    app.stop().await;
});

both!(l1_import_and_export_in_the_ui, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.login("marketer@yunqi.example").await;
    // GBK-encoded CSV, as Excel on Chinese Windows saves it.
    let (gbk, _, _) = encoding_rs::GB18030.encode(CSV);
    let (ct, body) = multipart("leads.csv", &gbk);
    let ct: &'static str = Box::leak(ct.into_boxed_str());
    let r = mk.send(Method::POST, "/leads/import", Some(testkit::client::Body::Raw(ct, body))).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let path = r.location();
    let page = mk.get(&path).await.text;
    assert!(page.contains("姓名") && page.contains("<option value=\"name\" selected>"), "{page}");
    let mut form: Vec<(String, String)> = (0..10)
        .map(|i| {
            (
                format!("map_{i}"),
                ["name", "company", "phone", "email", "province", "channel", "budget", "authority", "need", "timeline"]
                    [i]
                    .to_string(),
            )
        })
        .collect();
    form.push(("channel".into(), "website_form".into()));
    form.push(("action".into(), "check".into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let r = mk.post_form(&path, &pairs).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("<td>4</td><td>邮箱</td>") && r.text.contains("id=\"import-valid\""), "{}", r.text);
    let before = store::leads::count(&app.db).await.unwrap();
    let mut all = pairs.clone();
    *all.last_mut().unwrap() = ("action", "import");
    assert_eq!(mk.post_form(&path, &all).await.status, 422, "import all is refused while rows have errors");
    assert_eq!(store::leads::count(&app.db).await.unwrap(), before);
    *all.last_mut().unwrap() = ("action", "import_valid");
    let r = mk.post_form(&path, &all).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("新建 2 条线索"), "{}", r.text);
    // Export: marketing gets every lead; the east rep only theirs.
    let csv = mk.get("/leads/export/csv").await;
    assert!(csv.text.contains("张三") && csv.text.contains("李四"));
    let mut rep = app.login("sales.rep@yunqi.example").await;
    let csv = rep.get("/leads/export/csv").await.text;
    assert!(csv.contains("张三") && !csv.contains("李四"), "{csv}");
    let xlsx = rep.get("/leads/export/xlsx").await;
    assert!(xlsx.header("content-type").unwrap().contains("spreadsheetml"));
    let bytes = reqwest::Client::new()
        .get(format!("{}/leads/export/xlsx", app.url))
        .header("cookie", format!("mko_session={}", rep.session.clone().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let t = web::sheets::read(&bytes).unwrap();
    assert_eq!(t.rows.len(), 1);
    assert_eq!(t.rows[0][1], "张三");
    app.stop().await;
});

both!(l1_large_import_writes_rows_first_and_indexes_after, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let csv = big_csv(dir.path());
    let before = store::leads::count(&app.db).await.unwrap();
    let schema = schema_of(&app.db, "leads").await;
    assert_eq!(run(cmd(&csv, false), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(store::leads::count(&app.db).await.unwrap(), before + 6_000, "the repeated mobile merged");
    assert_eq!(schema_of(&app.db, "leads").await, schema, "every index and trigger is back as it was");
    testkit::assert_search_index_agrees(&app.db).await;
    // Found through the full-text index, graded and routed like any capture.
    let hit = store::leads::list(
        &app.db,
        store::leads::Scope::All,
        &store::leads::Filter { q: Some("星河4321科技有限公司".into()), limit: 5, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(hit.len(), 1);
    assert_eq!(
        (hit[0].name.as_deref(), hit[0].grade.as_str(), hit[0].route.as_str()),
        (Some("客户4321"), "A", "sales")
    );
    // The repeated mobile: one lead, found by its number, with both rows' sources.
    let first = store::leads::list(
        &app.db,
        store::leads::Scope::All,
        &store::leads::Filter { q: Some("13700000000".into()), limit: 5, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].sources.as_array().unwrap().len(), 2, "both rows' sources kept");
    // The first rows again as a small file into a second store (written through the driver,
    // not in bulk): the same leads and history, value for value, but for ids and instants.
    let small = TestApp::spawn(kind).await;
    let small_csv = dir.path().join("small.csv");
    let whole = std::fs::read_to_string(&csv).unwrap();
    let head: Vec<&str> = whole.lines().take(41).collect();
    std::fs::write(&small_csv, head.join("\n") + "\n").unwrap();
    let small_cfg = testkit::test_config(&small.testdb.url);
    assert_eq!(run(cmd(&small_csv, false), small_cfg).await.unwrap(), ExitCode::SUCCESS);
    let comparable = |lead: &store::leads::Lead| {
        let mut v = serde_json::to_value(lead).unwrap();
        let o = v.as_object_mut().unwrap();
        for k in [
            "id",
            "graded_at",
            "assigned_at",
            "first_response_due",
            "follow_up_due",
            "last_activity_at",
            "created_at",
            "updated_at",
        ] {
            assert_eq!(o.remove(k).is_some_and(|t| !t.is_null()), lead_has(k, lead), "{k}");
        }
        for s in o["sources"].as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("at");
        }
        v
    };
    for n in [1, 17, 39] {
        let find = |db: &store::Db| {
            let db = db.clone();
            async move {
                let f = store::leads::Filter { q: Some(format!("1370000{n:04}")), limit: 5, ..Default::default() };
                let mut l = store::leads::list(&db, store::leads::Scope::All, &f).await.unwrap();
                assert_eq!(l.len(), 1);
                l.remove(0)
            }
        };
        let (bulk, driver) = (find(&app.db).await, find(&small.db).await);
        assert_eq!(comparable(&bulk), comparable(&driver), "lead c{n}");
        let history = |e: Vec<store::leads::Event>| -> Vec<(String, Value)> {
            e.into_iter()
                .map(|e| {
                    let mut d = e.data;
                    if let Some(o) = d.as_object_mut() {
                        o.remove("file");
                        o.get_mut("source").and_then(|s| s.as_object_mut()).map(|s| s.remove("at"));
                    }
                    (e.kind, d)
                })
                .collect()
        };
        assert_eq!(
            history(store::leads::events(&app.db, bulk.id).await.unwrap()),
            history(store::leads::events(&small.db, driver.id).await.unwrap())
        );
        // The entry names the file and what the import decided; the parts stay on the lead.
        let events = store::leads::events(&app.db, bulk.id).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].kind.as_str(), &events[0].data),
            (
                "imported",
                &json!({"file": "big.csv", "grade": "A", "total": bulk.total, "playbook_version": 1, "route": "sales"})
            )
        );
    }
    small.stop().await;
    app.stop().await;
});

/// 6,000 leads: past the size at which SQLite writes the leads first and builds the
/// secondary and full-text indexes after them; the last row repeats the first row's mobile,
/// so it merges.
/// L-1 (c): a large CSV file is read in parts split at line breaks; the table is the one a
/// single pass reads (CRLF and LF lines, a last line without a break, short rows, empty
/// cells), and a file with quotes (a line break inside a cell) is read in one pass.
#[test]
fn l1_large_csv_read_in_parts_is_read_whole() {
    let mut text = String::from("\u{feff}姓名,公司,手机\r\n");
    for i in 0..40_000 {
        let end = if i % 3 == 0 { "\r\n" } else { "\n" };
        match i % 7 {
            0 => text.push_str(&format!("客户{i},,1370000{i:04}{end}")),
            1 => text.push_str(&format!("客户{i}{end}")),
            _ => text.push_str(&format!("客户{i},星河{i}科技有限公司,1370000{i:04}{end}")),
        }
    }
    text.push_str("最后,一行,13800138000");
    assert!(text.len() > 1 << 20, "large enough to be split");
    // Without quotes, a record is a line and a cell what lies between commas.
    let want: Vec<Vec<String>> = text
        .strip_prefix('\u{feff}')
        .unwrap()
        .split('\n')
        .map(|l| l.trim_end_matches('\r').split(',').map(str::to_string).collect())
        .collect();
    let t = web::sheets::read(text.as_bytes()).unwrap();
    assert_eq!(t.headers, want[0]);
    assert_eq!(t.rows.len(), 40_001);
    assert!(t.rows == want[1..], "the parts joined are the file");
    // A quoted cell holding a line break: one pass.
    let quoted = text.replacen("客户5,星河5科技有限公司", "客户5,\"星河\n5\"", 1);
    let t = web::sheets::read(quoted.as_bytes()).unwrap();
    assert_eq!(t.rows.len(), 40_001);
    assert_eq!(t.rows[5][1], "星河\n5");
}

fn big_csv(dir: &std::path::Path) -> std::path::PathBuf {
    let csv = dir.join("big.csv");
    let mut text = String::from("姓名,公司,手机,邮箱,省份,渠道,预算,决策权,需求,采购周期\n");
    for i in 0..6_000 {
        text.push_str(&format!(
            "客户{i},星河{i}科技有限公司,1370000{i:04},c{i}@big.example,上海,wechat,approved,decision_maker,clear,within_3_months\n"
        ));
    }
    text.push_str("客户零,,13700000000,,,wechat,,,,\n");
    std::fs::write(&csv, text).unwrap();
    csv
}

/// Whether a SQLite database file is in write-ahead-log mode (its header's read and write
/// format versions are 2; a rollback journal's are 1).
fn in_wal_mode(url: &str) -> bool {
    let bytes = std::fs::read(url.trim_start_matches("sqlite://")).unwrap();
    bytes[18..20] == [2, 2]
}

both!(l1_cli_import_into_a_store_nobody_has_open_writes_its_pages_once, |kind| async move {
    // The demo company in a store that no server has open.
    let testdb = testkit::TestDb::new(kind).await;
    let cfg = testkit::test_config(&testdb.url);
    let db = marketops::startup::open_db(&testdb.url).await.unwrap();
    let now = store::Ts::new(jiff::Timestamp::now());
    marketops::demo::load(&db, &store::Actor::cli(now), cfg.web_settings().password).await.unwrap();
    let demo_leads = store::leads::count(&db).await.unwrap();
    db.close().await;
    let sqlite = kind == Kind::Sqlite;
    let journal = |tx: &store::Tx| matches!(tx, store::Tx::Sqlite(t) if t.left_wal());
    // A bulk transaction leaves the write-ahead log only on a store of one connection that
    // has the database to itself.
    let alone = store::Db::connect_alone(&testdb.url).await.unwrap();
    let other = store::Db::connect(&testdb.url).await.unwrap();
    store::leads::count(&other).await.unwrap();
    let tx = alone.begin_bulk(true).await.unwrap();
    assert!(!journal(&tx), "another connection is open: the log stays");
    drop(tx);
    other.close().await;
    let mut tx = alone.begin_bulk(true).await.unwrap();
    assert_eq!(journal(&tx), sqlite, "alone: a rollback journal");
    // Dropped without a commit: rolled back, and the store opens as before.
    store::on_tx!(&mut tx, c => sqlx::query("DELETE FROM leads").execute(c).await.map(|r| r.rows_affected())).unwrap();
    drop(tx);
    alone.close().await;
    let db = store::Db::connect(&testdb.url).await.unwrap();
    assert_eq!(store::leads::count(&db).await.unwrap(), demo_leads, "nothing deleted");
    db.close().await;
    // The import from the command line: written with a rollback journal, the log back after.
    let dir = tempfile::tempdir().unwrap();
    let csv = big_csv(dir.path());
    assert_eq!(run(cmd(&csv, false), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    if sqlite {
        assert!(in_wal_mode(&testdb.url), "the write-ahead log is back");
        let journal_file = format!("{}-journal", testdb.url.trim_start_matches("sqlite://"));
        assert!(!std::path::Path::new(&journal_file).exists(), "no journal left behind");
    }
    let db = store::Db::connect(&testdb.url).await.unwrap();
    assert_eq!(store::leads::count(&db).await.unwrap(), demo_leads + 6_000, "the repeated mobile merged");
    testkit::assert_search_index_agrees(&db).await;
    let f = store::leads::Filter { q: Some("星河4321科技有限公司".into()), limit: 5, ..Default::default() };
    assert_eq!(store::leads::list(&db, store::leads::Scope::All, &f).await.unwrap().len(), 1);
    db.close().await;
});

/// Whether a lead has a value for an instant column (every lead has its grading, activity
/// and creation instants; only assigned leads have an assignment and deadlines).
fn lead_has(column: &str, lead: &store::leads::Lead) -> bool {
    match column {
        "assigned_at" | "first_response_due" | "follow_up_due" => lead.owner_id.is_some(),
        _ => true,
    }
}

// L-1 (c): a file of more than one chunk, each chunk's halves checked on two threads, is
// checked and written in the file's order; its bad rows, in either half of either chunk,
// stop the whole file unless asked, and are the only rows left out when asked.
both!(l1_cli_file_checked_on_two_threads_keeps_its_order, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let cfg = testkit::test_config(&app.testdb.url);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("many.csv");
    // Sheet rows 2 ..= 20,001; the reader hands over 16,384 records at a time.
    let bad = [100, 12_000, 17_000, 19_990];
    let mut text = String::from("姓名,手机,邮箱,渠道\n");
    for row in 2..=20_001usize {
        let mail = if bad.contains(&row) { "bad-mail" } else { "" };
        text.push_str(&format!("行{row},139{row:08},{mail},webinar\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let last: i64 = sqlx_scalar(&app.db, "SELECT coalesce(max(id), 0) FROM leads").await;
    assert_eq!(run(cmd(&csv, false), cfg.clone()).await.unwrap(), ExitCode::FAILURE);
    assert_eq!(sqlx_scalar(&app.db, "SELECT coalesce(max(id), 0) FROM leads").await, last, "nothing written");
    assert_eq!(run(cmd(&csv, true), cfg.clone()).await.unwrap(), ExitCode::SUCCESS);
    let q = "SELECT name FROM leads WHERE id > $1 ORDER BY id";
    let names: Vec<String> = match &app.db {
        store::Db::Sqlite(p) => sqlx::query_scalar(q).bind(last).fetch_all(p).await.unwrap(),
        store::Db::Postgres(p) => sqlx::query_scalar(q).bind(last).fetch_all(p).await.unwrap(),
    };
    let expected: Vec<String> = (2..=20_001usize).filter(|r| !bad.contains(r)).map(|r| format!("行{r}")).collect();
    assert_eq!(names.len(), expected.len());
    assert!(names == expected, "leads written in the file's order, the bad rows left out");
    app.stop().await;
});

async fn sqlx_scalar(db: &store::Db, q: &'static str) -> i64 {
    match db {
        store::Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        store::Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    }
}

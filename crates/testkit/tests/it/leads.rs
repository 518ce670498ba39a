//! L-1…L-4 through the API: capture, dedup, grading, routing, idempotency, permissions.

use super::*;

fn a_lead() -> Value {
    json!({
        "name": "周杰", "company": "苏州精工制造", "title": "IT 总监", "email": "zhou.jie@jinggong.example",
        "phone": "+86 139-1234-5678", "province": "江苏", "city": "苏州", "company_size": "enterprise",
        "channel": "trade_show", "utm_source": "summit", "utm_campaign": "cloud-2026",
        "budget": "approved", "authority": "decision_maker", "need": "clear", "timeline": "within_3_months"
    })
}

both!(l1_l3_l4_capture_grades_and_routes, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let r = mk.json(Method::POST, "/api/v1/leads", &a_lead()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let lead = r.json()["lead"].clone();
    // L-3: 3 + 3 + 4 + 3 = 13 → A, graded by playbook version 1.
    assert_eq!(
        (lead["total"].as_i64(), lead["grade"].as_str(), lead["graded_version"].as_i64()),
        (Some(13), Some("A"), Some(1))
    );
    assert_eq!(lead["need_points"], 4);
    // L-4: 江苏 is 销售一组's territory; its only rep is 刘洋.
    assert_eq!(lead["route"], "sales");
    assert_eq!(lead["owner_id"], app.user_id("sales.rep@yunqi.example").await);
    assert!(lead["route_reason"].as_str().unwrap().contains("江苏"));
    // L-5 clocks: assigned Monday 10:00 → first response due 17:00 (6 working hours around
    // the 12:00–13:00 break), follow-up within 72 h.
    assert_eq!(lead["first_response_due"], "2026-11-23T09:00:00.000000Z");
    assert_eq!(lead["follow_up_due"], "2026-11-26T02:00:00.000000Z");
    // The detail explains the grade part by part.
    let id = lead["id"].as_i64().unwrap();
    let d = mk.get(&format!("/api/v1/leads/{id}")).await.json();
    assert_eq!(d["parts"][2], json!({"part": "need", "answer": "clear", "points": 4, "max": 5}));
    let kinds: Vec<&str> = d["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "graded", "routed"]);
    // The history keeps the grading part by part and the decision with its clocks (P-2).
    let (graded, routed) = (&d["events"][1]["data"], &d["events"][2]["data"]);
    assert_eq!(
        (graded["grade"].as_str(), graded["total"].as_i64(), graded["playbook_version"].as_i64()),
        (Some("A"), Some(13), Some(1))
    );
    assert_eq!(graded["parts"][2], json!({"part": "need", "answer": "clear", "points": 4, "max": 5}));
    assert_eq!(graded["parts"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        (routed["decision"]["route"].as_str(), &routed["decision"]["owner_id"]),
        (Some("sales"), &lead["owner_id"])
    );
    assert_eq!(routed["decision"]["reason"], lead["route_reason"]);
    assert_eq!(
        (routed["first_response_due"].as_str(), routed["follow_up_due"].as_str()),
        (Some("2026-11-23T09:00:00.000000Z"), Some("2026-11-26T02:00:00.000000Z"))
    );
    // B goes to nurture, C to content.
    let b = json!({"name": "王五", "email": "ww@b.example", "channel": "wechat", "budget": "planned", "authority": "influencer", "need": "exploring", "timeline": "within_3_months"});
    let r = mk.json(Method::POST, "/api/v1/leads", &b).await.json();
    assert_eq!(
        (r["lead"]["grade"].as_str(), r["lead"]["route"].as_str(), r["lead"]["nurture_stage"].as_str()),
        (Some("B"), Some("nurture"), Some("awareness"))
    );
    let c = json!({"company": "某小店", "phone": "13700000000", "channel": "douyin"});
    let r = mk.json(Method::POST, "/api/v1/leads", &c).await.json();
    assert_eq!(
        (r["lead"]["total"].as_i64(), r["lead"]["grade"].as_str(), r["lead"]["route"].as_str()),
        (Some(4), Some("C"), Some("content"))
    );
    // Changing answers regrades and, now A, routes to sales.
    let bid = store::leads::list(
        &app.db,
        store::leads::Scope::All,
        &store::leads::Filter { grade: Some("B".into()), limit: 5, ..Default::default() },
    )
    .await
    .unwrap()[0]
        .id;
    let r = mk.json(Method::PUT, &format!("/api/v1/leads/{bid}/answers"), &json!({"budget": "approved", "authority": "decision_maker", "need": "exploring", "timeline": "within_3_months"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["grade"].as_str(), r.json()["route"].as_str()), (Some("A"), Some("sales")));
    app.stop().await;
});

both!(l2_duplicates_merge_by_email_and_phone, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let first = mk
        .json(
            Method::POST,
            "/api/v1/leads",
            &json!({"name": "李雷", "email": "Li.Lei@Example.com", "channel": "website_form"}),
        )
        .await;
    assert_eq!(first.status, 201);
    let id = first.json()["lead"]["id"].clone();
    // Same address in another case and with spaces: merged, history and sources kept.
    let r = mk.json(Method::POST, "/api/v1/leads", &json!({"email": " li.lei@example.COM ", "phone": "138 0013 8000", "company": "韩梅梅科技", "channel": "webinar", "need": "critical"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["merged"], true);
    let lead = r.json()["lead"].clone();
    assert_eq!(lead["id"], id);
    assert_eq!(lead["company"], "韩梅梅科技", "missing details are filled in");
    assert_eq!(lead["need"], "critical", "newer answers regrade");
    assert_eq!(lead["sources"].as_array().unwrap().len(), 2);
    // Same mobile written another way merges too.
    let r = mk
        .json(
            Method::POST,
            "/api/v1/leads",
            &json!({"name": "李雷", "phone": "+86 13800138000", "channel": "referral"}),
        )
        .await;
    assert_eq!((r.status, r.json()["lead"]["id"].clone()), (200, id.clone()));
    let d = mk.get(&format!("/api/v1/leads/{}", id)).await.json();
    assert_eq!(d["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "merged").count(), 2);
    assert_eq!(store::leads::count(&app.db).await.unwrap(), 1);
    app.stop().await;
});

both!(l1_idempotency_key_replays_the_first_answer, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let token = mk.bearer_token().unwrap();
    let post = |key: &'static str, body: Value| {
        let url = format!("{}/api/v1/leads", app.url);
        let token = token.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let body = json!({"name": "赵六", "email": "zl@race.example", "channel": "email"});
    // Twenty concurrent requests with one key: one lead, and every answer is the first one.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(tokio::spawn(post("race-1", body.clone())));
    }
    let mut answers = Vec::new();
    let mut replays = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status(), 201, "every answer repeats the first (201)");
        if r.headers().get("idempotent-replayed").is_some() {
            replays += 1;
        }
        // The first answer is the body the writer stored for the key (SQLite), sent as is.
        assert_eq!(r.headers()["content-type"], "application/json");
        answers.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(replays, 19);
    // The whole answer, not only the lead's id, is the same twenty times.
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    let stored = mk.get(&format!("/api/v1/leads/{}", answers[0]["lead"]["id"])).await.json()["lead"].clone();
    assert_eq!((&answers[0]["lead"], &answers[0]["merged"]), (&stored, &json!(false)));
    assert_eq!(store::leads::count(&app.db).await.unwrap(), 1);
    // The same key with another body is a conflict, not a silent replay.
    let r = post("race-1", json!({"name": "别人", "email": "x@y.example", "channel": "email"})).await;
    assert_eq!(r.status(), 409);
    // Another key with the same person merges (200), and its own retry replays 200.
    let merged = post("race-2", body.clone()).await;
    assert_eq!(merged.status(), 200);
    let merged: Value = merged.json().await.unwrap();
    assert_eq!((&merged["lead"]["id"], &merged["merged"]), (&answers[0]["lead"]["id"], &json!(true)));
    let again = post("race-2", body.clone()).await;
    assert_eq!((again.status().as_u16(), again.headers().contains_key("idempotent-replayed")), (200, true));
    assert_eq!(again.json::<Value>().await.unwrap(), merged);
    let r = mk.send(Method::POST, "/api/v1/leads", Some(testkit::client::Body::Json(&body))).await;
    assert_eq!(r.status, 200, "without a key a repeat still merges instead of duplicating");
    assert_eq!(store::leads::count(&app.db).await.unwrap(), 1);
    app.stop().await;
});

// L-1: a capture never waits on the database without end (`capture_timeout_ms`, the
// capture writer's watchdog). Another writer holds the database past the timeout: the
// capture answers 503 with `Retry-After` at the timeout; once the database is free the
// writer goes on (on PostgreSQL its stalled transaction was abandoned for a new
// connection), and the retry with the same key returns the lead, written once.
both!(l1_a_stalled_capture_answers_503_and_its_retry_returns_the_lead, |kind| async move {
    let app = TestApp::spawn_with(kind, |c| c.capture_timeout_ms = 700).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let token = mk.bearer_token().unwrap();
    // The token's first use is recorded (a write) before the database is held.
    assert_eq!(mk.get("/api/v1/leads").await.status, 200);
    let post = |key: &'static str, body: Value| {
        let (url, token) = (format!("{}/api/v1/leads", app.url), token.clone());
        async move {
            let r =
                reqwest::Client::new().post(url).bearer_auth(token).header("Idempotency-Key", key).json(&body).send();
            r.await.unwrap()
        }
    };
    let before = store::leads::count(&app.db).await.unwrap();
    let body = json!({"name": "钱七", "email": "qq@stall.example", "channel": "email"});
    // The leads held by another transaction (SQLite: the write lock; PostgreSQL: the table).
    let holder = match &app.db {
        store::Db::Sqlite(p) => {
            let mut c = p.acquire().await.unwrap();
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *c).await.unwrap();
            Err(c)
        }
        store::Db::Postgres(p) => {
            let mut tx = p.begin().await.unwrap();
            sqlx::query("LOCK TABLE leads IN EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
            Ok(tx)
        }
    };
    let started = std::time::Instant::now();
    let r = post("stall-1", body.clone()).await;
    let waited = started.elapsed();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "unavailable", "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("Idempotency-Key"), "{answer}");
    assert!(waited < std::time::Duration::from_millis(1500), "answered at the timeout, not when freed: {waited:?}");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    match holder {
        Err(mut c) => drop(sqlx::query("ROLLBACK").execute(&mut *c).await.unwrap()),
        Ok(tx) => tx.rollback().await.unwrap(),
    }
    let retry = post("stall-1", body.clone()).await;
    assert_eq!(retry.status(), 201);
    // SQLite's writer waited inside the database's lock wait and wrote the capture once
    // freed: the retry replays it. PostgreSQL's abandoned its stalled transaction (rolled
    // back with the old connection): the retry writes it.
    assert_eq!(retry.headers().contains_key("idempotent-replayed"), kind == Kind::Sqlite);
    let lead: Value = retry.json().await.unwrap();
    assert_eq!(lead["lead"]["email"], "qq@stall.example");
    let again = post("stall-1", body.clone()).await;
    assert_eq!((again.status().as_u16(), again.headers().contains_key("idempotent-replayed")), (201, true));
    // The writer goes on with other captures.
    let other = post("stall-2", json!({"name": "孙八", "email": "sb@stall.example", "channel": "email"})).await;
    assert_eq!(other.status(), 201);
    assert_eq!(store::leads::count(&app.db).await.unwrap(), before + 2);
    app.stop().await;
});

/// L-1 on SQLite: a capture that finds the database held by another writer (an import in
/// another process, say) past SQLite's busy timeout (10 s) answers 503 then, at once for
/// its whole batch, instead of each capture of the batch waiting out a busy timeout of its
/// own (500 after 20 s for a lone capture before); a manual entry meanwhile gets a 503
/// page; nothing is written, and the next capture is.
#[tokio::test]
async fn l1_a_capture_finding_sqlite_busy_answers_503_after_one_busy_timeout() {
    let app = TestApp::spawn_with(Kind::Sqlite, |c| c.capture_timeout_ms = 60_000).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    // The token's first use is recorded (a write) before the database is held.
    assert_eq!(mk.get("/api/v1/leads").await.status, 200);
    let before = store::leads::count(&app.db).await.unwrap();
    // A manual entry through the form at the same time (writes through the driver's own
    // statements): a 503 page, not the internal-error page.
    let mut ui = app.login("marketer@yunqi.example").await;
    let lead = json!({"name": "周九", "email": "zj@busy.example", "channel": "email"});
    let store::Db::Sqlite(pool) = &app.db else { unreachable!() };
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *holder).await.unwrap();
    let started = std::time::Instant::now();
    let (r, page) = tokio::join!(
        mk.json(Method::POST, "/api/v1/leads", &lead),
        ui.post_form("/leads", &[("name", "吴十"), ("email", "ws@busy.example"), ("channel", "email")])
    );
    let waited = started.elapsed();
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    drop(holder);
    assert_eq!(page.status, 503, "{}", page.text);
    assert!(page.text.contains("数据库正忙"), "{}", page.text);
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("busy with another writer"), "{}", r.text);
    assert!(waited < std::time::Duration::from_secs(15), "one busy timeout, not one per capture: {waited:?}");
    assert_eq!(store::leads::count(&app.db).await.unwrap(), before);
    let r = mk.json(Method::POST, "/api/v1/leads", &lead).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.stop().await;
}

both!(lead_permissions_by_role, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let east = mk.json(Method::POST, "/api/v1/leads", &a_lead()).await.json()["lead"]["id"].as_i64().unwrap();
    let mut north_lead = a_lead();
    north_lead["email"] = json!("n@north.example");
    north_lead["phone"] = json!("13611112222");
    north_lead["province"] = json!("北京");
    north_lead["city"] = json!("北京");
    let north = mk.json(Method::POST, "/api/v1/leads", &north_lead).await.json()["lead"]["id"].as_i64().unwrap();
    // The east rep sees only their own lead, by list and by id.
    let mut rep = app.api("sales.rep@yunqi.example").await;
    let ids: Vec<i64> = rep.get("/api/v1/leads").await.json()["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![east]);
    assert_eq!(rep.get(&format!("/api/v1/leads/{north}")).await.status, 404);
    assert_eq!(rep.json(Method::PUT, &format!("/api/v1/leads/{north}/answers"), &json!({})).await.status, 404);
    // The north manager sees the north team's lead only; marketing sees both; the viewer reads but cannot capture.
    let mut mgr = app.api("sales.north@yunqi.example").await;
    let ids: Vec<i64> = mgr.get("/api/v1/leads").await.json()["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![north]);
    assert_eq!(mk.get("/api/v1/leads").await.json()["leads"].as_array().unwrap().len(), 2);
    let mut viewer = app.api("viewer@yunqi.example").await;
    assert_eq!(viewer.get("/api/v1/leads").await.json()["leads"].as_array().unwrap().len(), 2);
    assert_eq!(viewer.json(Method::POST, "/api/v1/leads", &a_lead()).await.status, 403);
    app.stop().await;
});

both!(bad_lead_input_changes_nothing, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let before = (app.audit_count().await, store::leads::count(&app.db).await.unwrap());
    let r = mk
        .json(
            Method::POST,
            "/api/v1/leads",
            &json!({"channel": "tv", "email": "nope", "need": "huge", "campaign_id": "x", "shoe_size": 42}),
        )
        .await;
    assert_eq!(r.status, 422);
    let f = r.fields();
    assert!(f["channel"].as_str().unwrap().contains("xiaohongshu"));
    assert_eq!(f["email"], "is not an e-mail address");
    assert!(f["need"].as_str().unwrap().contains("critical"));
    assert_eq!(f["campaign_id"], "must be a whole number");
    assert_eq!(f["shoe_size"], "unknown field");
    assert_eq!(f["name"], "give a name or a company");
    let r = mk
        .json(
            Method::POST,
            "/api/v1/leads",
            &json!({"name": "x", "email": "x@x.example", "channel": "email", "campaign_id": 999}),
        )
        .await;
    assert_eq!(r.fields()["campaign_id"], "no campaign with id 999");
    let long_key = "k".repeat(201);
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/leads", app.url))
        .bearer_auth(mk.bearer_token().unwrap())
        .header("Idempotency-Key", long_key)
        .json(&json!({"name": "x", "email": "x@x.example", "channel": "email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!((app.audit_count().await, store::leads::count(&app.db).await.unwrap()), before);
    let r = mk.get("/api/v1/leads?grade=D&limit=0").await;
    assert!(r.fields()["grade"].is_string() && r.fields()["limit"].is_string());
    app.stop().await;
});

both!(campaigns_and_their_cost, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let r = mk.json(Method::POST, "/api/v1/campaigns", &json!({"name": "2026 云计算峰会", "channel": "trade_show", "starts_on": "2026-09-01", "ends_on": "2026-09-03", "planned_cost": "200000"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["planned_cost_fen"], 20_000_000);
    for (amount, cat) in [("80000", "event"), ("12345.67", "ads")] {
        let r = mk
            .json(
                Method::POST,
                &format!("/api/v1/campaigns/{id}/spend"),
                &json!({"spent_on": "2026-09-02", "amount": amount, "category": cat}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let d = mk.get(&format!("/api/v1/campaigns/{id}")).await.json();
    assert_eq!(d["campaign"]["actual_cost_fen"], 9_234_567);
    assert_eq!(d["spend"].as_array().unwrap().len(), 2);
    let r = mk
        .json(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/spend"),
            &json!({"spent_on": "yesterday", "amount": "1.234", "category": "party"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.fields().as_object().unwrap().len(), 3);
    // A lead from the campaign.
    let mut lead = a_lead();
    lead["campaign_id"] = json!(id);
    assert_eq!(mk.json(Method::POST, "/api/v1/leads", &lead).await.json()["lead"]["campaign_id"], id);
    let mut rep = app.api("sales.rep@yunqi.example").await;
    assert_eq!(
        rep.json(Method::POST, "/api/v1/campaigns", &json!({"name": "x", "channel": "email"})).await.status,
        403
    );
    app.stop().await;
});

both!(lead_pages_in_the_ui, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.login("marketer@yunqi.example").await;
    assert!(mk.get("/leads/new").await.text.contains("id=\"lead-form\""));
    // A bad manual entry shows each error beside its field.
    let r = mk.post_form("/leads", &[("channel", "website_form"), ("email", "bad"), ("need", "clear")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"email-error\"") && r.text.contains("id=\"name-error\""), "{}", r.text);
    let form = [
        ("name", "钱七"),
        ("company", "杭州云帆"),
        ("email", "qian7@yunfan.example"),
        ("province", "浙江"),
        ("city", "杭州"),
        ("channel", "website_form"),
        ("budget", "approved"),
        ("authority", "decision_maker"),
        ("need", "moderate"),
        ("timeline", "within_3_months"),
    ];
    let r = mk.post_form("/leads", &form).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let path = r.location().split('?').next().unwrap().to_string();
    let page = mk.get(&path).await.text;
    assert!(
        page.contains("钱七") && page.contains("<strong>3</strong> / 3") && page.contains("<strong>12</strong> → A"),
        "{page}"
    );
    assert!(page.contains("制度手册") || page.contains("v1"));
    // Regrade through the page: need 'none' → 3 + 3 + 1 + 3 = 10, still A; budget unknown → 8, B.
    let id = path.rsplit('/').next().unwrap().to_string();
    let r = mk
        .post_form(
            &format!("/leads/{id}/answers"),
            &[
                ("budget", "unknown"),
                ("authority", "decision_maker"),
                ("need", "none"),
                ("timeline", "within_3_months"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(mk.get(&path).await.text.contains("<strong>8</strong> → B"));
    let r = mk.post_form(&format!("/leads/{id}/answers"), &[("budget", "millions")]).await;
    assert_eq!(r.status, 422);
    // The same e-mail again merges.
    let r =
        mk.post_form("/leads", &[("name", "钱七"), ("email", "QIAN7@yunfan.example"), ("channel", "webinar")]).await;
    assert_eq!(r.location(), format!("{path}?done=merged"));
    // Lists: marketing sees it, the north manager does not (it went east), the viewer sees it.
    assert!(mk.get("/leads?q=云帆").await.text.contains("钱七"));
    let mut north = app.login("sales.north@yunqi.example").await;
    assert!(!north.get("/leads").await.text.contains("钱七"));
    assert_eq!(north.get(&path).await.status, 404);
    assert!(app.login("viewer@yunqi.example").await.get("/leads").await.text.contains("钱七"));
    // Campaigns: create with a field error first, then record a cost.
    let r = mk
        .post_form("/campaigns", &[("name", "小红书种草"), ("channel", "xiaohongshu"), ("planned_cost", "1.234")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"planned_cost-error\""));
    let r = mk
        .post_form("/campaigns", &[("name", "小红书种草"), ("channel", "xiaohongshu"), ("planned_cost", "30000")])
        .await;
    assert_eq!(r.status, 303);
    let c = store::campaigns::list(&app.db).await.unwrap().into_iter().find(|c| c.name == "小红书种草").unwrap();
    let r = mk
        .post_form(
            &format!("/campaigns/{}/spend", c.id),
            &[("spent_on", "2026-11-20"), ("amount", "5000"), ("category", "kol")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(mk.get(&format!("/campaigns/{}", c.id)).await.text.contains("¥5,000.00"));
    assert_eq!(
        app.login("sales.rep@yunqi.example")
            .await
            .post_form("/campaigns", &[("name", "x"), ("channel", "email")])
            .await
            .status,
        403
    );
    app.stop().await;
});

both!(l3_new_version_regrades_only_when_confirmed, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    // Two A leads at exactly 10 and 11 points, one B.
    let lead = |email: &str, b: &str, a: &str, n: &str, t: &str| json!({"name": "x", "email": email, "channel": "email", "budget": b, "authority": a, "need": n, "timeline": t});
    mk.json(
        Method::POST,
        "/api/v1/leads",
        &lead("a10@x.example", "planned", "influencer", "moderate", "within_3_months"),
    )
    .await;
    mk.json(
        Method::POST,
        "/api/v1/leads",
        &lead("a11@x.example", "planned", "decision_maker", "moderate", "within_3_months"),
    )
    .await;
    mk.json(
        Method::POST,
        "/api/v1/leads",
        &lead("b8@x.example", "planned", "influencer", "exploring", "within_12_months"),
    )
    .await;
    let mut dir = app.api("director@yunqi.example").await;
    let doc = domain::playbook::DEFAULT_DOCUMENT.replace("grade_a_min = 10", "grade_a_min = 11");
    assert_eq!(dir.json(Method::POST, "/api/v1/playbook", &json!({"document": doc, "based_on": 1})).await.status, 201);
    // Nothing moved by itself; the preview says what would.
    assert_eq!(
        store::leads::list(
            &app.db,
            store::leads::Scope::All,
            &store::leads::Filter { grade: Some("A".into()), limit: 10, ..Default::default() }
        )
        .await
        .unwrap()
        .len(),
        2
    );
    let p = dir.get("/api/v1/leads/regrade").await.json();
    assert_eq!(p["moves"], json!([{"from": "A", "to": "B", "leads": 1}]));
    assert_eq!(p["graded_by_other_versions"], 3);
    assert!(
        app.login("director@yunqi.example").await.get("/playbook").await.text.contains("<strong>A → B</strong>: 1")
    );
    assert_eq!(mk.get("/api/v1/leads/regrade").await.status, 403);
    let r = dir.json(Method::POST, "/api/v1/leads/regrade", &json!({})).await;
    assert_eq!(r.json()["changed_grade"], 1);
    let a = store::leads::list(
        &app.db,
        store::leads::Scope::All,
        &store::leads::Filter { grade: Some("A".into()), limit: 10, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!((a.len(), a[0].graded_version), (1, 2));
    assert!(dir.get("/api/v1/leads/regrade").await.json()["moves"].as_array().unwrap().is_empty());
    app.stop().await;
});

both!(l2_weak_duplicates_are_merged_or_dismissed_by_a_person, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let a = mk
        .json(
            Method::POST,
            "/api/v1/leads",
            &json!({"name": "陈伟", "company": "云帆 科技", "email": "cw@yunfan.example", "channel": "email"}),
        )
        .await
        .json()["lead"]["id"]
        .as_i64()
        .unwrap();
    let b = mk
        .json(
            Method::POST,
            "/api/v1/leads",
            &json!({"name": "陈伟", "company": "云帆科技", "phone": "13812345678", "channel": "wechat"}),
        )
        .await;
    assert_eq!(b.status, 201, "company + name alone does not merge automatically");
    let b = b.json()["lead"]["id"].as_i64().unwrap();
    let c = mk
        .json(
            Method::POST,
            "/api/v1/leads",
            &json!({"name": "陈伟", "company": "云帆科技", "phone": "13900001111", "channel": "douyin"}),
        )
        .await
        .json()["lead"]["id"]
        .as_i64()
        .unwrap();
    let d = mk.get(&format!("/api/v1/leads/{a}/duplicates")).await.json();
    assert_eq!(d.as_array().unwrap().len(), 2);
    assert!(
        app.login("marketer@yunqi.example")
            .await
            .get(&format!("/leads/{a}"))
            .await
            .text
            .contains("id=\"lead-duplicates\"")
    );
    // Dismiss one, merge the other.
    assert_eq!(
        mk.json(Method::POST, &format!("/api/v1/leads/{a}/not-duplicate"), &json!({"other": c})).await.status,
        204
    );
    let r = mk.json(Method::POST, &format!("/api/v1/leads/{a}/merge"), &json!({"other": b})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["phone"], "13812345678");
    assert_eq!(r.json()["sources"].as_array().unwrap().len(), 2);
    assert_eq!(mk.get(&format!("/api/v1/leads/{b}")).await.status, 404);
    let events = mk.get(&format!("/api/v1/leads/{a}")).await.json()["events"].clone();
    assert!(events.as_array().unwrap().iter().any(|e| e["kind"] == "merged_lead"));
    assert_eq!(events.as_array().unwrap().iter().filter(|e| e["kind"] == "created").count(), 2, "both histories kept");
    assert!(mk.get(&format!("/api/v1/leads/{a}/duplicates")).await.json().as_array().unwrap().is_empty());
    // The merged-away phone now finds lead a.
    let r = mk
        .json(Method::POST, "/api/v1/leads", &json!({"name": "陈伟", "phone": "138-1234-5678", "channel": "referral"}))
        .await;
    assert_eq!((r.status, r.json()["lead"]["id"].as_i64()), (200, Some(a)));
    assert_eq!(mk.json(Method::POST, &format!("/api/v1/leads/{a}/merge"), &json!({"other": a})).await.status, 422);
    app.stop().await;
});

/// The leads a search finds, as names, in list order.
async fn found(c: &mut testkit::Client, q: &str) -> Vec<String> {
    let path = format!("/api/v1/leads?q={}", testkit::urlencode(q));
    let r = c.get(&path).await;
    assert_eq!(r.status, 200, "{q}: {}", r.text);
    let mut names: Vec<String> =
        r.json()["leads"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap_or("").to_string()).collect();
    names.sort();
    names
}

async fn post_lead(c: &mut testkit::Client, body: Value) -> testkit::Resp {
    c.json(Method::POST, "/api/v1/leads", &body).await
}

/// The id of the lead a capture answered with.
fn lead_id(r: testkit::Resp) -> i64 {
    r.json()["lead"]["id"].as_i64().unwrap()
}

/// A capture from WeChat with a name, a company and an e-mail (L-2's weak key).
fn wechat_lead(name: &str, company: &str, email: &str) -> Value {
    json!({"name": name, "company": company, "email": email, "channel": "wechat"})
}

both!(l1_search_finds_chinese_names_companies_phones_and_emails_within_scope, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    for (name, company, email, phone, province) in [
        ("欧阳娜娜", "无锡云帆科技有限公司", "nana.ouyang@yunfan.example", "+86 139-1234-5678", "江苏"),
        ("张伟", "杭州数澜信息技术有限公司", "zhangwei@shulan.example", "13600001111", "浙江"),
        ("张伟明", "北京云帆传媒有限公司", "wm@yunfan-media.example", "010-6688 9900", "北京"),
        ("Mike Chen", "双十一种草工作室", "mike@grass.example", "", "上海"),
    ] {
        let body = json!({"name": name, "company": company, "email": email, "phone": phone, "province": province,
            "channel": "website_form", "budget": "approved", "authority": "decision_maker", "need": "clear", "timeline": "within_3_months"});
        let r = mk.json(Method::POST, "/api/v1/leads", &body).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let cases: &[(&str, &[&str])] = &[
        ("云帆", &["张伟明", "欧阳娜娜"]),
        ("无锡云帆", &["欧阳娜娜"]),
        ("云帆科技", &["欧阳娜娜"]),
        ("有限公司", &["张伟", "张伟明", "欧阳娜娜"]),
        ("张伟", &["张伟", "张伟明"]),
        ("张伟明", &["张伟明"]),
        ("欧阳", &["欧阳娜娜"]),
        ("数澜", &["张伟"]),
        ("种草", &["Mike Chen"]),
        ("双十一", &["Mike Chen"]),
        ("MIKE", &["Mike Chen"]),
        ("nana.ouyang", &["欧阳娜娜"]),
        ("yunfan", &["张伟明", "欧阳娜娜"]),
        ("13912345678", &["欧阳娜娜"]),
        ("139", &["欧阳娜娜"]),
        ("5678", &["欧阳娜娜"]),
        ("张伟 浙江", &["张伟"]),
        ("云帆 北京", &["张伟明"]),
        ("不存在的公司", &[]),
        ("\"*:()", &[]),
        ("OR", &[]),
    ];
    // The same answers as captured and once SQLite's search index has them (`store::search`).
    for pass in ["captured", "indexed"] {
        for (q, want) in cases {
            let got = found(&mut mk, q).await;
            assert_eq!(got, want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "query {q:?}, {pass}");
        }
        store::search::catch_up(&app.db).await.unwrap();
    }
    // A rep searches only their own leads: the Jiangsu lead is theirs, the Zhejiang one too
    // (east team), the Beijing one belongs to the north team.
    let mut rep = app.api("sales.rep@yunqi.example").await;
    let mine = found(&mut rep, "云帆").await;
    assert!(!mine.contains(&"张伟明".to_string()), "{mine:?}");
    let mut north = app.api("sales.north@yunqi.example").await;
    assert_eq!(found(&mut north, "云帆").await, vec!["张伟明".to_string()]);
    // A merge that adds a company makes the lead findable by it.
    let r = mk
        .json(Method::POST, "/api/v1/leads", &json!({"name": "李雷", "phone": "13700007777", "channel": "referral"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(found(&mut mk, "星河").await, Vec::<String>::new());
    let r = mk
        .json(
            Method::POST,
            "/api/v1/leads",
            &json!({"name": "李雷", "phone": "137 0000 7777", "company": "星河互动", "channel": "email"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(found(&mut mk, "星河").await, vec!["李雷".to_string()]);
    // Changed text and a merged-away lead leave the search right, indexed or not: 韩梅梅 is
    // indexed, then changed; 韩梅 is not indexed yet when 韩梅梅 takes her in.
    let hmm = post_lead(&mut mk, json!({"name": "韩梅梅", "phone": "13700008888", "channel": "referral"})).await;
    let hmm = hmm.json()["lead"]["id"].as_i64().unwrap();
    store::search::catch_up(&app.db).await.unwrap();
    let r = post_lead(
        &mut mk,
        json!({"name": "韩梅梅", "phone": "13700008888", "company": "银河证券", "channel": "email"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let hm = post_lead(&mut mk, json!({"name": "韩梅", "email": "hanmei@galaxy.example", "channel": "email"})).await;
    let hm = hm.json()["lead"]["id"].as_i64().unwrap();
    assert_eq!(found(&mut mk, "银河").await, vec!["韩梅梅".to_string()]);
    assert_eq!(found(&mut mk, "hanmei").await, vec!["韩梅".to_string()]);
    let r = mk.json(Method::POST, &format!("/api/v1/leads/{hmm}/merge"), &json!({"other": hm})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(found(&mut mk, "hanmei").await, vec!["韩梅梅".to_string()]);
    store::search::catch_up(&app.db).await.unwrap();
    assert_eq!(found(&mut mk, "hanmei").await, vec!["韩梅梅".to_string()]);
    assert_eq!(found(&mut mk, "银河").await, vec!["韩梅梅".to_string()]);
    testkit::assert_search_index_agrees(&app.db).await;
    // The UI list searches the same way.
    let mut ui = app.login("marketer@yunqi.example").await;
    let page = ui.get(&format!("/leads?q={}", testkit::urlencode("无锡云帆"))).await.text;
    assert!(page.contains("欧阳娜娜") && !page.contains("张伟明"), "{page}");
    app.stop().await;
});

both!(demo_lead_history_is_played_through_the_engine_once, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let until = app.now().get();
    let made =
        marketops::history::load(&app.db, until, 40, false).await.unwrap().expect("an empty database gets history");
    assert!(made.leads > 300 && made.campaigns == 10, "{made:?}");
    assert!(made.deals > 0 && made.breaches > 0 && made.automation_runs > 0, "{made:?}");
    // What the engine recorded agrees with what the history says it made.
    assert_eq!(store::leads::count(&app.db).await.unwrap(), made.leads as i64);
    let from = store::Ts::new(until.checked_sub(jiff::SignedDuration::from_hours(41 * 24)).unwrap());
    assert_eq!(store::sla::breaches(&app.db, from, app.now().add_secs(1)).await.unwrap().len() as i64, made.breaches);
    let mut director = app.api("director@yunqi.example").await;
    let report = director.get("/api/v1/reports/channels?from=2026-10-01&until=2026-11-30").await.json();
    let channels = report["report"]["channels"].as_array().unwrap();
    assert!(channels.len() >= 8, "{report}");
    assert!(channels.iter().all(|c| c["cost_fen"].as_i64().unwrap() > 0), "every channel has its spend: {report}");
    // The two shipped rules are there, enabled, and ran.
    let rules = director.get("/api/v1/automation/rules").await.json();
    assert_eq!(rules.as_array().unwrap().iter().filter(|r| r["enabled"] == true).count(), 2, "{rules}");
    // A rep sees only their own share.
    let mut rep = app.api("sales.rep@yunqi.example").await;
    let mine = rep.get("/api/v1/leads?limit=500").await.json();
    let me = app.user_id("sales.rep@yunqi.example").await;
    assert!(mine["leads"].as_array().unwrap().iter().all(|l| l["owner_id"] == me));
    // Loaded once.
    assert!(marketops::history::load(&app.db, until, 40, false).await.unwrap().is_none());
    app.stop().await;
});

both!(l4_reps_marked_away_are_skipped_by_routing, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let rep_id = app.user_id("sales.rep@yunqi.example").await;
    let path = format!("/api/v1/users/{rep_id}/availability");
    // Bad input names the field and changes nothing.
    let mut rep = app.api("sales.rep@yunqi.example").await;
    let r = rep.json(Method::PUT, &path, &json!({"available": "no"})).await;
    assert_eq!((r.status, r.fields()["available"].as_str()), (422, Some("must be true or false")));
    assert!(store::org::get_user(&app.db, rep_id).await.unwrap().unwrap().available);
    // Only the rep, their own team's manager or an admin may switch it.
    for who in ["marketer@yunqi.example", "sales.north@yunqi.example", "director@yunqi.example"] {
        let mut c = app.api(who).await;
        assert_eq!(c.json(Method::PUT, &path, &json!({"available": false})).await.status, 403, "{who}");
    }
    let mut mk = app.api("marketer@yunqi.example").await;
    let mk_id = app.user_id("marketer@yunqi.example").await;
    let mut admin = app.api("admin@yunqi.example").await;
    let r = admin.json(Method::PUT, &format!("/api/v1/users/{mk_id}/availability"), &json!({"available": false})).await;
    assert_eq!((r.status, r.fields()["id"].as_str()), (422, Some("only sales reps take routed leads")));
    let r = rep.json(Method::PUT, &path, &json!({"available": false})).await;
    assert_eq!((r.status, r.json()["available"].as_bool()), (200, Some(false)), "{}", r.text);
    // L-4: 江苏 belongs to 销售一组, whose only rep is away: the A lead goes to no one there.
    let lead = mk.json(Method::POST, "/api/v1/leads", &a_lead()).await.json()["lead"].clone();
    assert_eq!(lead["grade"], "A");
    assert_ne!(lead["owner_id"], json!(rep_id));
    assert!(lead["route_reason"].as_str().unwrap().contains("unavailable") || lead["route"] == "unassigned", "{lead}");
    // The manager switches the rep back on from the organisation page; the next lead is theirs.
    let mut mgr = app.login("sales.manager@yunqi.example").await;
    let page = mgr.get("/org").await;
    assert!(page.text.contains(&format!("action=\"/org/users/{rep_id}/availability\"")), "no switch on /org");
    let r = mgr.post_form(&format!("/org/users/{rep_id}/availability"), &[("available", "maybe")]).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(!store::org::get_user(&app.db, rep_id).await.unwrap().unwrap().available);
    let r = mgr.post_form(&format!("/org/users/{rep_id}/availability"), &[("available", "1")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let mut second = a_lead();
    second["email"] = json!("second@jinggong.example");
    second["phone"] = json!("13912340000");
    let lead = mk.json(Method::POST, "/api/v1/leads", &second).await.json()["lead"].clone();
    assert_eq!(lead["owner_id"], json!(rep_id));
    // Another team's manager sees the state but no switch; the change is in the audit log.
    let mut other = app.login("sales.north@yunqi.example").await;
    assert!(!other.get("/org").await.text.contains(&format!("action=\"/org/users/{rep_id}/availability\"")));
    let audit = admin.get("/api/v1/audit?entity=user").await.text;
    assert!(audit.contains("\"available\":false"), "{audit}");
    app.stop().await;
});

/// Everything a sales rep can reach about one lead, as (method, path, body): API and pages.
fn lead_routes(lead: i64, deal: i64, other: i64) -> Vec<(Method, String, Option<Value>)> {
    let j = |v: Value| Some(v);
    let mut r = vec![
        (Method::GET, format!("/api/v1/leads/{lead}"), None),
        (Method::PUT, format!("/api/v1/leads/{lead}/answers"), j(json!({"budget": "planned"}))),
        (Method::GET, format!("/api/v1/leads/{lead}/activities"), None),
        (Method::POST, format!("/api/v1/leads/{lead}/activities"), j(json!({"kind": "call", "note": "x"}))),
        (Method::POST, format!("/api/v1/leads/{lead}/reassign"), j(json!({"owner_id": 1, "reason": "x"}))),
        (Method::POST, format!("/api/v1/leads/{lead}/accept"), j(json!({}))),
        (Method::POST, format!("/api/v1/leads/{lead}/reject"), j(json!({"reason": "预算不足"}))),
        (Method::GET, format!("/api/v1/leads/{lead}/touches"), None),
        (Method::POST, format!("/api/v1/leads/{lead}/touches"), j(json!({"kind": "webinar", "title": "x"}))),
        (Method::POST, format!("/api/v1/leads/{lead}/convert"), j(json!({"name": "x", "amount": "1000"}))),
        (Method::GET, format!("/api/v1/deals/{deal}"), None),
        (Method::PUT, format!("/api/v1/deals/{deal}/stage"), j(json!({"stage": "closed_won"}))),
        (Method::GET, format!("/api/v1/leads/{lead}/duplicates"), None),
        (Method::POST, format!("/api/v1/leads/{lead}/merge"), j(json!({"other": other}))),
        (Method::POST, format!("/api/v1/leads/{lead}/not-duplicate"), j(json!({"other": other}))),
        (Method::GET, format!("/api/v1/leads/{lead}/automation"), None),
        (Method::POST, format!("/api/v1/leads/{lead}/signals"), j(json!({"signal": "trial_started"}))),
        (Method::GET, format!("/leads/{lead}"), None),
    ];
    // Pages' forms (posted as forms, with the browser's same-origin headers).
    for p in ["answers", "activities", "accept", "reject", "touches", "convert", "signals", "reassign"] {
        r.push((Method::PATCH, format!("/leads/{lead}/{p}"), None));
    }
    r.push((Method::PATCH, format!("/leads/{lead}/merge/{other}"), None));
    r.push((Method::PATCH, format!("/leads/{lead}/not-duplicate/{other}"), None));
    r.push((Method::PATCH, format!("/deals/{deal}/stage"), None));
    r
}

// L permissions: a sales rep reaches only their own leads, on every lead route of the API
// and the pages — lists, detail, search, export, and every action — and a refused action
// changes nothing.
both!(rep_reaches_only_own_leads_on_every_route, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let east = mk.json(Method::POST, "/api/v1/leads", &a_lead()).await.json()["lead"]["id"].as_i64().unwrap();
    let north_lead = json!({"name": "钱多多", "company": "北京远航科技", "email": "qian@yuanhang.example",
        "phone": "13611112222", "province": "北京", "city": "北京", "channel": "baidu_sem",
        "budget": "approved", "authority": "decision_maker", "need": "clear", "timeline": "within_3_months"});
    let north = mk.json(Method::POST, "/api/v1/leads", &north_lead).await.json()["lead"]["id"].as_i64().unwrap();
    let mut admin = app.api("admin@yunqi.example").await;
    let r = admin
        .json(Method::POST, &format!("/api/v1/leads/{north}/convert"), &json!({"name": "远航", "amount": "50000"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let north_deal = r.json()["id"].as_i64().unwrap();
    let r = admin
        .json(Method::POST, &format!("/api/v1/leads/{east}/convert"), &json!({"name": "精工", "amount": "80000"}))
        .await;
    let east_deal = r.json()["id"].as_i64().unwrap();
    let mut rep = app.api("sales.rep@yunqi.example").await;
    let mut page = app.login("sales.rep@yunqi.example").await;
    let before = store::backup::dump(&app.db).await.unwrap();
    for (method, path, body) in lead_routes(north, north_deal, east) {
        let r = if method == Method::PATCH {
            page.post_form(&path, &[("x", "1")]).await
        } else if path.starts_with("/api/") {
            match &body {
                Some(b) => rep.json(method.clone(), &path, b).await,
                None => rep.send(method.clone(), &path, None).await,
            }
        } else {
            page.get(&path).await
        };
        assert!(
            matches!(r.status, 403 | 404),
            "{method} {path} answered {} to another rep's lead: {}",
            r.status,
            r.text
        );
    }
    let after = store::backup::dump(&app.db).await.unwrap();
    for t in [
        "leads",
        "lead_events",
        "deals",
        "lead_activities",
        "lead_touches",
        "duplicate_dismissals",
        "automation_runs",
        "tasks",
        "audit_log",
    ] {
        assert!(before.contains_key(t), "no table {t}");
        assert!(before[t] == after[t], "{t} changed after refused requests");
    }
    // Lists, search, deals and export hold the rep's own lead and deal only.
    let ids = |v: &Value, k: &str| -> Vec<i64> {
        v[k].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(ids(&rep.get("/api/v1/leads").await.json(), "leads"), vec![east]);
    assert!(ids(&rep.get("/api/v1/leads?q=钱多多").await.json(), "leads").is_empty());
    assert!(ids(&rep.get("/api/v1/leads?q=13611112222").await.json(), "leads").is_empty());
    let deals: Vec<i64> =
        rep.get("/api/v1/deals").await.json().as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert_eq!(deals, vec![east_deal]);
    let list = page.get("/leads?q=钱多多").await.text;
    assert!(!list.contains(&format!("/leads/{north}\"")), "search page shows the north lead");
    assert!(!page.get("/deals").await.text.contains("远航"), "deals page shows the north deal");
    let csv = page.get("/leads/export/csv").await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.text.contains("zhou.jie@jinggong.example") && !csv.text.contains("qian@yuanhang.example"),
        "{}",
        csv.text
    );
    // The same routes on the rep's own lead are open (sampled: detail, activity, touch).
    assert_eq!(rep.get(&format!("/api/v1/leads/{east}")).await.status, 200);
    assert_eq!(page.get(&format!("/leads/{east}")).await.status, 200);
    let r = rep.json(Method::POST, &format!("/api/v1/leads/{east}/activities"), &json!({"kind": "call"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.stop().await;
});

both!(l1_capture_writer_keeps_its_connection_and_rolls_back_what_it_did_not_commit, |kind| async move {
    // The capture writer keeps one connection from one transaction to the next
    // (`store::writer`): a transaction dropped without commit leaves nothing behind, the
    // next one works, and what it commits is what every other connection reads.
    let app = TestApp::spawn(kind).await;
    let w = store::writer::Writer::new(&app.db);
    let probes = || async {
        store::on_db!(&app.db, p => sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_log WHERE entity = 'probe'")
            .fetch_one(p).await)
        .unwrap()
    };
    let actor = store::Actor::system(store::Ts::new(jiff::Timestamp::now()));
    let record = |n: i64| [(&actor, store::audit::Change::created("probe", n, json!({"n": n})))];
    for round in 0..2 {
        let mut tx = w.begin().await.unwrap();
        store::audit::record_many(&mut tx, &record(round)).await.unwrap();
        drop(tx);
        assert_eq!(probes().await, round, "a dropped transaction wrote nothing (round {round})");
        let mut tx = w.begin().await.unwrap();
        store::audit::record_many(&mut tx, &record(round + 1)).await.unwrap();
        // A temporary table lives only as long as its connection.
        store::on_tx!(&mut tx, c => sqlx::query("CREATE TEMP TABLE IF NOT EXISTS writer_probe (x INTEGER)").execute(c).await.map(|_| ()))
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(probes().await, round + 1, "the committed one is there (round {round})");
        // The next transaction runs on the same connection: the temporary table is there.
        let mut tx = w.begin().await.unwrap();
        let kept = store::on_tx!(&mut tx, c => sqlx::query_scalar::<_, i64>("SELECT count(*) FROM writer_probe")
            .fetch_one(c).await);
        assert_eq!(kept.ok(), Some(0), "the writer kept its connection (round {round})");
        tx.commit().await.unwrap();
    }
});

// L-1: the capture writer keeps its statements prepared from one batch to the next
// (`raw::StmtCache`); a schema change by another connection between batches (an index made,
// then dropped) is seen by the next batch — its leads go into the new index — and a batch
// after the drop still writes.
both!(l1_capture_writer_statements_follow_schema_changes, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let lead = |n: usize| json!({"name": format!("探针{n}"), "title": "探针", "email": format!("probe{n}@stmt.example"), "channel": "email"});
    let exec = |sql: &'static str| {
        let db = app.db.clone();
        async move { store::on_db!(&db, p => sqlx::query(sql).execute(p).await.map(|_| ())).unwrap() }
    };
    for n in 0..3 {
        assert_eq!(post_lead(&mut mk, lead(n)).await.status, 201);
    }
    exec("CREATE INDEX leads_probe ON leads (title)").await;
    for n in 3..5 {
        assert_eq!(post_lead(&mut mk, lead(n)).await.status, 201);
    }
    let in_index = if matches!(kind, testkit::Kind::Sqlite) {
        "SELECT count(*) FROM leads INDEXED BY leads_probe WHERE title = '探针'"
    } else {
        "SELECT count(*) FROM leads WHERE title = '探针'"
    };
    let n: i64 = store::on_db!(&app.db, p => sqlx::query_scalar(in_index).fetch_one(p).await).unwrap();
    assert_eq!(n, 5, "the index made between batches holds the leads of the batches after it");
    exec("DROP INDEX leads_probe").await;
    let r = post_lead(&mut mk, lead(5)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let all = "SELECT count(*) FROM leads WHERE title = '探针'";
    let n: i64 = store::on_db!(&app.db, p => sqlx::query_scalar(all).fetch_one(p).await).unwrap();
    assert_eq!(n, 6);
    app.stop().await;
});

// L-1…L-4: the lead a capture answers with is the lead as stored — the writer builds it from
// what it inserted rather than reading it back — for each route (sales with its owner and
// SLA deadlines, nurture with its stage, content), with a campaign, UTM tags and a note.
both!(l1_capture_answers_with_the_lead_as_stored, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let body = json!({"name": "峰会", "channel": "trade_show", "planned_cost": "1000"});
    let camp = mk.json(Method::POST, "/api/v1/campaigns", &body).await.json()["id"].as_i64().unwrap();
    let leads = [
        json!({"name": "甲", "company": "甲公司", "email": "a@stored.example", "province": "上海", "city": "上海",
               "company_size": "enterprise", "channel": "trade_show", "campaign_id": camp, "budget": "approved",
               "authority": "decision_maker", "need": "critical", "timeline": "within_3_months",
               "utm_source": "baidu", "utm_medium": "cpc", "utm_campaign": "q4", "utm_term": "crm", "utm_content": "a",
               "note": "展会名片"}),
        json!({"name": "乙", "phone": "13911110000", "channel": "wechat", "budget": "planned", "authority": "influencer",
               "need": "clear", "timeline": "later"}),
        json!({"company": "丙公司", "email": "c@stored.example", "channel": "email"}),
    ];
    let mut routes = Vec::new();
    for body in &leads {
        let r = post_lead(&mut mk, body.clone()).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let answered = r.json()["lead"].clone();
        let stored = mk.get(&format!("/api/v1/leads/{}", answered["id"])).await.json()["lead"].clone();
        assert_eq!(answered, stored);
        routes.push(stored["route"].as_str().unwrap().to_string());
    }
    assert_eq!(routes, ["sales", "nurture", "content"]);
    app.stop().await;
});

both!(l1_captures_in_one_batch_are_each_in_the_audit_log, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mk = app.api("marketer@yunqi.example").await;
    let token = mk.bearer_token().unwrap();
    // Twelve concurrent captures (the writer takes them in few transactions), two of which
    // name an e-mail another one has: ten new leads, two merges.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let email = format!("audit{}@batch.example", i % 10);
        let body = json!({"name": format!("审计{i}"), "company": "批次科技", "email": email, "channel": "email"});
        let (url, token) = (format!("{}/api/v1/leads", app.url), token.clone());
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    // Each new lead is found at once (by its stored text until SQLite's search index has
    // it, `store::search`), also the two merged into leads of their batch.
    let mut reader = app.api("marketer@yunqi.example").await;
    assert_eq!(found(&mut reader, "批次科技").await.len(), 10);
    for i in 0..10 {
        assert_eq!(found(&mut reader, &format!("audit{i}")).await.len(), 1, "audit{i}");
    }
    // One "create" entry per new lead, by the marketer through the API, with its grade and
    // route; the entries parse as JSON through the audit API.
    let rows: Vec<(String, String, String, Option<String>)> = store::on_db!(&app.db, p => sqlx::query_as(
        "SELECT action, via, actor_label, CAST(after AS TEXT) FROM audit_log WHERE entity = 'lead' AND action = 'create' ORDER BY id")
        .fetch_all(p).await)
    .unwrap();
    assert_eq!(rows.len(), 10, "{rows:?}");
    for (_, via, label, after) in &rows {
        assert_eq!((via.as_str(), label.as_str()), ("api", "李娜 <marketer@yunqi.example>"));
        let after: Value = serde_json::from_str(after.as_deref().unwrap()).unwrap();
        assert_eq!(after["company"], "批次科技");
        assert!(after["grade"].is_string() && after["route"].is_string(), "{after}");
    }
    let mut admin = app.api("admin@yunqi.example").await;
    let listed = admin.get("/api/v1/audit?entity=lead").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(listed.text.contains("批次科技"));
    app.stop().await;
});

both!(l1_search_index_catches_up_beside_the_capture_writer, |kind| async move {
    // Under steady capture the server's search indexer (SQLite, `store::search`) takes new
    // leads into the search file on a connection of its own; every lead stays findable, and
    // once capture stops the index has every lead within a few seconds.
    let app = TestApp::spawn(kind).await;
    let mk = app.api("marketer@yunqi.example").await;
    let token = mk.bearer_token().unwrap();
    let n = 1100;
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (url, token, next) = (format!("{}/api/v1/leads", app.url), token.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let body = json!({"name": format!("搬家{i}"), "company": "搬家科技", "email": format!("move{i}@fts.example"), "channel": "email"});
                let r = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 201);
            }
        }));
    }
    let mut mk = mk;
    for _ in 0..5 {
        let r = mk.get(&format!("/api/v1/leads?q={}&limit=500", testkit::urlencode("搬家科技"))).await;
        let got = r.json()["leads"].as_array().unwrap().len();
        assert!(got <= n, "{got}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    if let Some((behind, _)) = store::search::lag(&app.db).await.unwrap() {
        let waited = std::time::Instant::now();
        let mut lag = (behind, 0);
        while lag != (0, 0) {
            assert!(waited.elapsed() < std::time::Duration::from_secs(10), "the index stayed behind: {lag:?}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            lag = store::search::lag(&app.db).await.unwrap().unwrap();
        }
        let all = domain::search::Query::parse("搬家科技").unwrap();
        assert_eq!(store::search::indexed(&app.db, &all).await.unwrap().unwrap().len(), n);
    }
    let r = mk.get(&format!("/api/v1/leads?q={}&limit=1", testkit::urlencode("搬家1099"))).await;
    assert_eq!(r.json()["leads"][0]["name"], "搬家1099", "{}", r.text);
    let r = mk.get("/api/v1/leads?q=fts&limit=500").await;
    assert_eq!(r.json()["leads"].as_array().unwrap().len(), 500);
    testkit::assert_search_index_agrees(&app.db).await;
    app.stop().await;
});

both!(l1_search_is_exact_while_the_index_catches_up, |kind| async move {
    // No indexer in the server: the test steps it. A search gives the same leads whether
    // SQLite's index holds them, lags behind new ones, holds an old text of a changed lead
    // or a deleted one, or was made for the database before a restore.
    let app = TestApp::spawn_with(kind, |c| c.search_index_ms = 0).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let sqlite = matches!(app.db, store::Db::Sqlite(_));
    let lag = || async { store::search::lag(&app.db).await.unwrap() };
    let a = post_lead(&mut mk, json!({"name": "夏侯雪", "phone": "13500001111", "channel": "referral"})).await;
    let a = a.json()["lead"]["id"].as_i64().unwrap();
    let b = post_lead(
        &mut mk,
        json!({"name": "夏侯霜", "email": "dabai@xiahou.example", "company": "霜降物流", "channel": "email"}),
    )
    .await;
    let b = b.json()["lead"]["id"].as_i64().unwrap();
    if sqlite {
        let (behind, changed) = lag().await.unwrap();
        assert!(behind >= 2 && changed == 0, "nothing indexed yet: {behind} {changed}");
    }
    let before = || {
        vec![("夏侯", vec!["夏侯雪", "夏侯霜"]), ("霜降", vec!["夏侯霜"]), ("xiahou", vec!["夏侯霜"]), ("雪域", vec![])]
    };
    check(&mut mk, "not indexed", before()).await;
    let step = store::search::catch_up(&app.db).await.unwrap();
    if sqlite {
        assert!(step.indexed >= 2 && step.rebuilt, "{step:?}");
        assert_eq!(lag().await, Some((0, 0)));
    }
    check(&mut mk, "indexed", before()).await;
    // 夏侯雪 gets a company by a merged capture: the index holds her old text until its next
    // step, the search takes her new one.
    let r = post_lead(
        &mut mk,
        json!({"name": "夏侯雪", "phone": "135 0000 1111", "company": "雪域酒业", "channel": "email"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // 夏侯霜 is merged into 夏侯雪 and deleted.
    let r = mk.json(Method::POST, &format!("/api/v1/leads/{a}/merge"), &json!({"other": b})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    if sqlite {
        assert_eq!(lag().await, Some((0, 2)), "one lead changed, one deleted");
    }
    let after = || {
        vec![
            ("夏侯", vec!["夏侯雪"]),
            ("雪域", vec!["夏侯雪"]),
            ("xiahou", vec!["夏侯雪"]),
            ("酒业 夏侯", vec!["夏侯雪"]),
        ]
    };
    check(&mut mk, "changed, not applied", after()).await;
    let step = store::search::catch_up(&app.db).await.unwrap();
    if sqlite {
        assert_eq!((step.indexed, step.changed, step.rebuilt), (0, 1, false), "{step:?}");
    }
    check(&mut mk, "changed, applied", after()).await;
    testkit::assert_search_index_agrees(&app.db).await;
    // A backup from now, a lead after it, then the backup restored: the index (made for the
    // leads before the restore) is not trusted, and is made again.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("before.backup");
    store::backup::backup(&app.db, &file).await.unwrap();
    let c = post_lead(&mut mk, json!({"name": "夏侯露", "email": "zhongbai@xiahou.example", "channel": "email"})).await;
    assert_eq!(c.status, 201, "{}", c.text);
    // 夏侯霜 was the newest lead: 夏侯露 may take her id again, and is indexed as herself.
    store::search::catch_up(&app.db).await.unwrap();
    testkit::assert_search_index_agrees(&app.db).await;
    check(&mut mk, "before the restore", vec![("夏侯", vec!["夏侯雪", "夏侯露"])]).await;
    store::backup::restore(&app.db, &file).await.unwrap();
    check(&mut mk, "restored", after()).await;
    let step = store::search::catch_up(&app.db).await.unwrap();
    assert_eq!(step.rebuilt, sqlite, "{step:?}");
    check(&mut mk, "restored, indexed again", after()).await;
    testkit::assert_search_index_agrees(&app.db).await;
    app.stop().await;
});

both!(l2_possible_duplicates_are_exact_while_the_index_catches_up, |kind| async move {
    // SQLite keeps the weak keys' index (company + name) in the search file, written by the
    // indexer: a lead's possible duplicates are the same whether the index holds them, lags
    // behind new ones, or holds the old key of a changed or deleted lead. No indexer in the
    // server: the test steps it.
    let app = TestApp::spawn_with(kind, |c| c.search_index_ms = 0).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let id = lead_id;
    let new = wechat_lead;
    let a = id(post_lead(&mut mk, new("王芳", "云帆科技", "wf1@yunfan.example")).await);
    // The same company with a space: the same weak key.
    let b = id(post_lead(&mut mk, new("王芳", "云帆 科技", "wf2@yunfan.example")).await);
    // No company yet: no weak key.
    let c = id(post_lead(&mut mk, json!({"name": "王芳", "phone": "13700001111", "channel": "email"})).await);
    let other = id(post_lead(&mut mk, new("王芳", "星河科技", "wf3@xinghe.example")).await);
    assert_eq!(duplicate_ids(&mut mk, a).await, vec![b], "not indexed");
    store::search::catch_up(&app.db).await.unwrap();
    assert_eq!(duplicate_ids(&mut mk, a).await, vec![b], "indexed");
    // c gets the company by a merged capture, and with it the weak key (which a merge did
    // not make before): the index holds her without a key until its next step.
    let r = post_lead(
        &mut mk,
        json!({"name": "王芳", "phone": "137-0000-1111", "company": "云帆科技", "channel": "email"}),
    )
    .await;
    assert_eq!((r.status, id(r)), (200, c));
    assert_eq!(duplicate_ids(&mut mk, a).await, vec![b, c], "changed, not applied");
    // b is merged into a and deleted; a new lead with the key comes after the index.
    let r = mk.json(Method::POST, &format!("/api/v1/leads/{a}/merge"), &json!({"other": b})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = id(post_lead(&mut mk, new("王 芳", "云帆科技", "wf4@yunfan.example")).await);
    assert_eq!(duplicate_ids(&mut mk, a).await, vec![c, d], "deleted and new, not applied");
    let step = store::search::catch_up(&app.db).await.unwrap();
    if matches!(app.db, store::Db::Sqlite(_)) {
        // d indexed; c put back with her key (b, deleted, has nothing to put back).
        assert_eq!((step.indexed, step.changed), (1, 1), "{step:?}");
    }
    assert_eq!(duplicate_ids(&mut mk, a).await, vec![c, d], "applied");
    testkit::assert_search_index_agrees(&app.db).await;
    // The other company's 王芳 is nobody's possible duplicate.
    assert!(mk.get(&format!("/api/v1/leads/{other}/duplicates")).await.json().as_array().unwrap().is_empty());
    app.stop().await;
});

both!(l2_weak_keys_match_whole_keys_and_an_old_search_file_is_made_again, |kind| async move {
    // SQLite's search file indexes the weak keys by their tokens (migration 0031): a lead
    // whose company and name are another's name and company has the same tokens, and is not
    // a possible duplicate all the same (the stored key decides). A search file made before
    // held the keys in a B-tree (`leads_weak`): the migration's new epoch has the file made
    // again, and the B-tree goes. No indexer in the server: the test steps it.
    let app = TestApp::spawn_with(kind, |c| c.search_index_ms = 0).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let id = lead_id;
    let new = wechat_lead;
    let a = id(post_lead(&mut mk, new("王芳", "Acme 云帆", "wf1@acme.example")).await);
    let b = id(post_lead(&mut mk, new("王芳", "ACME云帆", "wf2@acme.example")).await);
    let swapped = id(post_lead(&mut mk, new("Acme云帆", "王芳", "wf3@acme.example")).await);
    store::search::catch_up(&app.db).await.unwrap();
    if let store::Db::Sqlite(p) = &app.db {
        use sqlx::{ConnectOptions, Connection};
        let key = "acme云帆|王芳";
        assert_eq!(store::search::indexed_weak(&app.db, key).await.unwrap().unwrap(), vec![a, b, swapped]);
        // The file as an earlier MarketOps left it: the B-tree beside the index.
        let file = format!("{}-search", p.connect_options().get_filename().display());
        let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(&file).connect().await.unwrap();
        for sql in [
            "CREATE TABLE leads_weak (id INTEGER PRIMARY KEY, weak_key TEXT NOT NULL)",
            "CREATE INDEX leads_weak_key ON leads_weak (weak_key)",
            "INSERT INTO leads_weak (id, weak_key) VALUES (1, 'x|y')",
        ] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        c.close().await.unwrap();
        sqlx::query("UPDATE leads_fts_epoch SET n = n + 1").execute(p).await.unwrap();
        assert_eq!(duplicate_ids(&mut mk, a).await, vec![b], "the index not for this epoch");
        let step = store::search::catch_up(&app.db).await.unwrap();
        assert!(step.rebuilt && step.indexed >= 3, "{step:?}");
        let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(&file).connect().await.unwrap();
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name IN ('leads_weak', 'leads_weak_key')")
                .fetch_one(&mut c)
                .await
                .unwrap();
        assert_eq!(left, 0, "the B-tree and its index are gone");
        c.close().await.unwrap();
    }
    assert_eq!(duplicate_ids(&mut mk, a).await, vec![b], "indexed");
    assert!(duplicate_ids(&mut mk, swapped).await.is_empty(), "the same tokens, another key");
    testkit::assert_search_index_agrees(&app.db).await;
    app.stop().await;
});

both!(lead_list_filters_page_newest_first_off_an_index, |kind| async move {
    // Each filter of the lead list gives its leads newest first, a keyset page at a time;
    // on SQLite each reads its page straight off an index (with a million leads a sort of
    // every lead of a channel took 600 ms, a walk of the table for a rare status 250 ms).
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let mut wechat = Vec::new();
    for i in 0..7 {
        let channel = if i % 2 == 0 { "wechat" } else { "douyin" };
        let r = post_lead(
            &mut mk,
            json!({"name": format!("列表{i}"), "email": format!("list{i}@filter.example"), "channel": channel}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        if channel == "wechat" {
            wechat.push(r.json()["lead"]["id"].as_i64().unwrap());
        }
    }
    wechat.reverse();
    let (mut seen, mut next) = (Vec::new(), Some("/api/v1/leads?channel=wechat&limit=3".to_string()));
    while let Some(path) = next {
        let page = mk.get(&path).await.json();
        seen.extend(page["leads"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()));
        next = page["next_before_id"].as_i64().map(|id| format!("/api/v1/leads?channel=wechat&limit=3&before_id={id}"));
    }
    assert_eq!(seen, wechat);
    let text = |v: &str| Some(v.to_string());
    let filters = [
        store::leads::Filter { grade: text("A"), ..Default::default() },
        store::leads::Filter { channel: text("wechat"), ..Default::default() },
        store::leads::Filter { route: text("unassigned"), ..Default::default() },
        store::leads::Filter { status: text("lost"), ..Default::default() },
        store::leads::Filter { owner_id: Some(1), ..Default::default() },
        store::leads::Filter { campaign_id: Some(1), ..Default::default() },
    ];
    for mut f in filters {
        for before in [None, Some(1_000)] {
            f.before_id = before;
            f.limit = 50;
            let Some(plan) = store::leads::list_plan(&app.db, &f).await.unwrap() else { continue };
            assert!(
                plan.iter().all(|step| step.contains("USING INDEX") && !step.contains("TEMP B-TREE")),
                "{f:?}: {plan:?}"
            );
        }
    }
    app.stop().await;
});

both!(l2_weak_keys_left_empty_by_old_merges_are_repaired_once, |kind| async move {
    // Before migration 0028 a merge that filled in a lead's company or name left its weak
    // key empty; the first start after the upgrade makes the keys again, once.
    let app = TestApp::spawn(kind).await;
    store::leads::run_data_repairs(&app.db).await.unwrap();
    let mut mk = app.api("marketer@yunqi.example").await;
    let id = lead_id;
    let a = id(post_lead(
        &mut mk,
        json!({"name": "赵敏", "company": "Ming Jiao 科技", "email": "zm1@mj.example", "channel": "wechat"}),
    )
    .await);
    let b = id(post_lead(
        &mut mk,
        json!({"name": "赵敏", "company": "ming jiao科技", "email": "zm2@mj.example", "channel": "email"}),
    )
    .await);
    // b as an old merge left her, and the repair listed as a migration lists it.
    store::on_db!(&app.db, p => sqlx::query("UPDATE leads SET weak_key = NULL WHERE id = $1").bind(b).execute(p).await.map(|r| r.rows_affected()))
        .unwrap();
    store::on_db!(&app.db, p => sqlx::query("INSERT INTO data_repairs (name) VALUES ('weak_keys')").execute(p).await.map(|r| r.rows_affected()))
        .unwrap();
    assert!(duplicate_ids(&mut mk, a).await.is_empty(), "b has no key");
    assert_eq!(store::leads::run_data_repairs(&app.db).await.unwrap(), 1);
    assert_eq!(duplicate_ids(&mut mk, a).await, vec![b], "b's key made again: the same as a's");
    assert_eq!(store::leads::run_data_repairs(&app.db).await.unwrap(), 0, "once");
    app.stop().await;
});

/// The ids of lead `a`'s possible duplicates (L-2).
async fn duplicate_ids(mk: &mut testkit::Client, a: i64) -> Vec<i64> {
    let r = mk.get(&format!("/api/v1/leads/{a}/duplicates")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json().as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect()
}

/// Each query finds exactly the named leads (sorted).
async fn check(mk: &mut testkit::Client, stage: &str, cases: Vec<(&str, Vec<&str>)>) {
    for (q, want) in cases {
        assert_eq!(found(mk, q).await, want, "query {q:?}, {stage}");
    }
}

both!(l1_capture_writer_waits_out_another_writer, |kind| async move {
    // While another connection holds the write lock, the writer's `BEGIN` waits (on SQLite
    // through its own busy handler, retrying every 200 µs) and goes on once the lock is
    // free, instead of failing as busy.
    let app = TestApp::spawn(kind).await;
    let w = store::writer::Writer::new(&app.db);
    let actor = store::Actor::system(store::Ts::new(jiff::Timestamp::now()));
    let mut tx = w.begin().await.unwrap();
    store::audit::record_many(&mut tx, &[(&actor, store::audit::Change::created("probe", 1, json!({})))])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut other = app.db.begin().await.unwrap();
    store::audit::record_many(&mut other, &[(&actor, store::audit::Change::created("probe", 2, json!({})))])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let waiting = tokio::spawn(async move {
        let mut tx = w.begin().await.unwrap();
        let actor = store::Actor::system(store::Ts::new(jiff::Timestamp::now()));
        store::audit::record_many(&mut tx, &[(&actor, store::audit::Change::created("probe", 3, json!({})))])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        started.elapsed()
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // PostgreSQL's writers lock rows, not the database: there the second does not wait.
    let sqlite = matches!(app.db, store::Db::Sqlite(_));
    assert_eq!(waiting.is_finished(), !sqlite, "the writer waits on SQLite while the lock is held");
    other.commit().await.unwrap();
    let waited = waiting.await.unwrap();
    assert!(!sqlite || waited >= std::time::Duration::from_millis(300), "{waited:?}");
    let n = store::on_db!(&app.db, p => sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_log WHERE entity = 'probe'")
        .fetch_one(p).await)
    .unwrap();
    assert_eq!(n, 3);
    app.stop().await;
});

/// L-1 capture: the writer gathers a batch only when captures come faster than one
/// transaction at a time (`capture::gather`). The clock is paused, so every wait is exact;
/// the gathering's times are scaled up from the writer's so that arrivals fall between the
/// timer's millisecond ticks.
#[tokio::test(start_paused = true)]
async fn l1_capture_writer_gathers_a_batch_only_under_load() {
    use store::capture::{GATHERING, Gathering, gather};
    use tokio::time::{Duration, Instant, sleep};
    let ms = Duration::from_millis;
    let w = GATHERING;
    assert!(w.enough >= 4 && w.gap >= ms(1) && w.gap < w.window, "{w:?}");
    let g = Gathering { enough: 8, window: ms(30), gap: ms(10) };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(1024);
    let mut buf = Vec::new();
    let mut take = async |rx: &mut tokio::sync::mpsc::Receiver<usize>, max: usize| {
        buf.clear();
        let t = Instant::now();
        let n = gather(rx, &mut buf, max, &g).await;
        assert_eq!(n, buf.len());
        (n, t.elapsed())
    };
    let send_two = async |tx: &tokio::sync::mpsc::Sender<usize>| {
        for i in 0..2 {
            tx.send(i).await.unwrap();
        }
    };
    let feed = |tx: tokio::sync::mpsc::Sender<usize>, every: Duration| {
        tokio::spawn(async move {
            for i in 0.. {
                sleep(every).await;
                if tx.send(i).await.is_err() {
                    break;
                }
            }
        })
    };

    // One capture alone goes at once.
    tx.send(0).await.unwrap();
    assert_eq!(take(&mut rx, 256).await, (1, Duration::ZERO));

    // Two queued and no more coming: they wait one gap, no longer.
    send_two(&tx).await;
    assert_eq!(take(&mut rx, 256).await, (2, g.gap));

    // Two queued and more coming closer than the gap (every 7 ms): all that come within the
    // window (at 7, 14, 21 and 28 ms).
    send_two(&tx).await;
    let feeder = feed(tx.clone(), ms(7));
    assert_eq!(take(&mut rx, 256).await, (2 + 4, g.window));
    feeder.abort();
    while rx.try_recv().is_ok() {}

    // More coming than that (every 2 ms): enough, and no further wait.
    send_two(&tx).await;
    let feeder = feed(tx.clone(), ms(2));
    assert_eq!(take(&mut rx, 256).await, (g.enough, ms(2) * (g.enough as u32 - 2)));
    // Never more than the caller's limit.
    while rx.try_recv().is_ok() {}
    send_two(&tx).await;
    assert_eq!(take(&mut rx, 3).await.0, 3);
    feeder.abort();

    // The channel closed: what was taken is written, then the writer stops.
    while rx.try_recv().is_ok() {}
    send_two(&tx).await;
    drop(tx);
    assert_eq!(take(&mut rx, 256).await.0, 2);
    assert_eq!(take(&mut rx, 256).await.0, 0);
}

/// L-1 capture first, the search index after it: how the server's indexer paces itself
/// (`store::search::pace`). A step of 50,000 leads after a burst of captures held one of the
/// two cores for most of a second while the captures behind it waited for the other.
#[test]
fn l1_search_indexer_yields_to_captures() {
    use std::time::{Duration, Instant};
    use store::search::{BUSY_HOLD, BUSY_LAG_MOST, BUSY_REST, Pace, STEP_BUSY, STEP_MOST, Step, Traffic, pace};
    let ms = Duration::from_millis;
    let caught_up = ms(500);
    let behind = |left: i64| Step { indexed: 1, behind: true, left, ..Step::default() };
    // Caught up: the configured pause, busy or not.
    let done = Step { indexed: 7, ..Step::default() };
    assert_eq!(pace(&done, ms(3), false, caught_up), Pace { most: STEP_MOST, rest: caught_up });
    assert_eq!(pace(&done, ms(3), true, caught_up), Pace { most: STEP_BUSY, rest: caught_up });
    // Behind with no capture coming in (after an import): whole steps, back to back.
    assert_eq!(pace(&behind(900_000), ms(600), false, caught_up), Pace { most: STEP_MOST, rest: Duration::ZERO });
    // Behind while captures come in: short steps, resting BUSY_REST times the step's time.
    const { assert!(STEP_BUSY <= 2_000 && BUSY_REST >= 2) };
    assert_eq!(pace(&behind(40_000), ms(20), true, caught_up), Pace { most: STEP_BUSY, rest: ms(20) * BUSY_REST });
    assert_eq!(pace(&behind(BUSY_LAG_MOST), ms(20), true, caught_up).rest, ms(20) * BUSY_REST);
    // Past BUSY_LAG_MOST the rests shrink in proportion to the lag, still in short steps…
    let half = pace(&behind(2 * BUSY_LAG_MOST), ms(20), true, caught_up);
    assert_eq!(half, Pace { most: STEP_BUSY, rest: ms(10) * BUSY_REST });
    assert_eq!(pace(&behind(4 * BUSY_LAG_MOST), ms(20), true, caught_up).rest, ms(5) * BUSY_REST);
    // … and past four times that there is none.
    let none = pace(&behind(4 * BUSY_LAG_MOST + 1), ms(20), true, caught_up);
    assert_eq!(none, Pace { most: STEP_BUSY, rest: Duration::ZERO });

    // Busy: the capture writer's count moved within BUSY_HOLD.
    let t0 = Instant::now();
    let mut traffic = Traffic::new(40);
    assert!(!traffic.busy(40, t0), "quiet until the count moves");
    assert!(traffic.busy(41, t0));
    assert!(traffic.busy(41, t0 + BUSY_HOLD - ms(1)), "a pause between two bursts is still busy");
    assert!(!traffic.busy(41, t0 + BUSY_HOLD));
    assert!(traffic.busy(45, t0 + BUSY_HOLD * 2));
    assert!(!traffic.busy(45, t0 + BUSY_HOLD * 3));
}

both!(l1_capture_queue_counts_the_captures_it_takes, |kind| async move {
    // The search indexer reads this count to yield while captures come in.
    let app = TestApp::spawn(kind).await;
    let rules = std::sync::Arc::new(store::rules::load(&app.db).await.unwrap());
    let queue = store::capture::Queue::start(app.db.clone(), std::time::Duration::from_secs(30));
    let other = queue.clone();
    assert_eq!(queue.taken(), 0);
    for i in 0..3 {
        let f = domain::errors::Fields::from_pairs([
            ("name", format!("计数{i}")),
            ("email", format!("count{i}@queue.example")),
            ("channel", "email".to_string()),
        ]);
        let input = domain::lead::LeadInput::parse(&f, &rules.playbook).unwrap();
        let item = store::capture::Item::new(store::Actor::system(app.now()), input, None);
        let answer = other.capture(item, rules.clone()).await.unwrap();
        assert!(matches!(answer.captured, store::leads::Captured::Created(_)), "{:?}", answer.captured);
    }
    assert_eq!((queue.taken(), other.taken()), (3, 3), "clones share one count");
    app.stop().await;
});

//! C-4 referrals, C-6 experiments and C-7 the dashboard, through the API and the pages, on both databases.

use super::*;

both!(c6_experiment_assigns_by_hash_counts_conversions_and_recommends, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    // Bad definitions name their fields and store nothing.
    let bad = mk
        .json(
            Method::POST,
            "/api/v1/experiments",
            &json!({"key": "Bad Key", "name": "", "variants": ["only"], "weights": [70, 20]}),
        )
        .await;
    assert_eq!(bad.status, 422);
    for k in ["key", "name", "variants", "weights"] {
        assert!(bad.fields()[k].is_string(), "{k}: {}", bad.text);
    }
    assert!(store::experiments::list(&app.db).await.unwrap().is_empty());
    let def = json!({"key": "videos-q3", "name": "三条短视频", "hypothesis": "产品演示类视频转化更高",
        "variants": ["品牌故事", "产品演示", "客户证言"], "baseline_pct": 10, "min_lift_pct": 30});
    let created = mk.json(Method::POST, "/api/v1/experiments", &def).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    assert_eq!(created["status"], "draft");
    let planned = created["analysis"]["planned_users_per_variant"].as_u64().unwrap();
    let expected_plan = domain::experiment::sample_size(0.10, 0.13, 0.05, 0.80);
    assert_eq!(planned, expected_plan, "the plan uses the playbook's 5 % and 80 %");
    assert_eq!(mk.json(Method::POST, "/api/v1/experiments", &def).await.status, 409, "the key is taken");
    // A draft assigns nobody.
    let users: Vec<String> = (0..600).map(|i| format!("u{i}")).collect();
    let early = mk.json(Method::POST, "/api/v1/experiments/videos-q3/assignments", &json!({"users": users})).await;
    assert_eq!(early.status, 409);
    assert_eq!(mk.json(Method::POST, "/api/v1/experiments/videos-q3/start", &json!({})).await.status, 200);
    let first = mk.json(Method::POST, "/api/v1/experiments/videos-q3/assignments", &json!({"users": users})).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first = first.json();
    // Deterministic: the domain's hash, and the same answer when asked again.
    let names = ["品牌故事", "产品演示", "客户证言"];
    for a in first["assignments"].as_array().unwrap() {
        let u = a["user_id"].as_str().unwrap();
        assert_eq!(a["variant"], names[domain::experiment::assign("videos-q3", u, &[34, 33, 33])]);
    }
    let again =
        mk.json(Method::POST, "/api/v1/experiments/videos-q3/assignments", &json!({"users": users})).await.json();
    assert_eq!(again["assignments"], first["assignments"]);
    // Conversions by the API (once per user; unassigned users ignored) and by events whose
    // campaign is the key.
    let converting: Vec<&String> = users.iter().step_by(7).collect();
    let conv =
        mk.json(Method::POST, "/api/v1/experiments/videos-q3/conversions", &json!({"users": converting})).await.json();
    assert_eq!(conv["recorded"].as_u64().unwrap() as usize, converting.len());
    let twice = mk
        .json(Method::POST, "/api/v1/experiments/videos-q3/conversions", &json!({"users": ["u0", "stranger"]}))
        .await
        .json();
    assert_eq!((twice["recorded"].as_u64(), twice["unassigned"].as_u64()), (Some(0), Some(1)));
    let mut fin = app.api("finance@yunqi.example").await;
    // Five minutes after the users were assigned, reported ten minutes after.
    let later = (app.clock.now() + jiff::SignedDuration::from_mins(5)).to_string();
    app.clock.advance_secs(600);
    let ev = json!({"events": [{"user_id": "u1", "channel": "douyin", "campaign": "videos-q3", "type": "conversion", "ts": later},
        {"user_id": "u2", "channel": "douyin", "campaign": "other", "type": "conversion", "ts": later}]});
    assert_eq!(fin.json(Method::POST, "/api/v1/events", &ev).await.status, 201);
    // Observed counts per variant equal what the assignments say.
    let mut want = [(0u64, 0u64); 3];
    let mut converted: std::collections::HashSet<&str> = converting.iter().map(|s| s.as_str()).collect();
    converted.insert("u1");
    for u in &users {
        let v = domain::experiment::assign("videos-q3", u, &[34, 33, 33]);
        want[v].0 += 1;
        want[v].1 += u64::from(converted.contains(u.as_str()));
    }
    let got = mk.get("/api/v1/experiments/videos-q3").await.json();
    let variants = got["analysis"]["variants"].as_array().unwrap();
    for (i, v) in variants.iter().enumerate() {
        assert_eq!((v["users"].as_u64().unwrap(), v["conversions"].as_u64().unwrap()), want[i], "{got}");
        assert!(v["ci_low_pct"].as_f64().unwrap() <= v["rate_pct"].as_f64().unwrap());
    }
    assert_eq!(got["analysis"]["test"]["method"], "chi_square");
    assert_eq!(got["analysis"]["recommendation"]["decision"], "keep_running", "{got}");
    // Only marketing and product manage tests; everyone reads them.
    let mut viewer = app.api("viewer@yunqi.example").await;
    assert_eq!(viewer.get("/api/v1/experiments").await.status, 200);
    assert_eq!(viewer.json(Method::POST, "/api/v1/experiments/videos-q3/stop", &json!({})).await.status, 403);
    assert_eq!(mk.json(Method::POST, "/api/v1/experiments/videos-q3/stop", &json!({})).await.status, 200);
    assert_eq!(
        mk.json(Method::POST, "/api/v1/experiments/videos-q3/conversions", &json!({"users": ["u3"]})).await.status,
        409
    );
    assert_eq!(mk.get("/api/v1/experiments/nope").await.status, 404);
    app.stop().await;
});

both!(c6_experiment_pages_define_and_explain, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.login("marketer@yunqi.example").await;
    let page = mk.get("/experiments").await;
    assert!(page.text.contains("id=\"experiments-empty\"") && page.text.contains("id=\"experiment-form\""));
    let bad = mk.post_form("/experiments", &[("key", "华东"), ("name", "华东试点"), ("variants", "全国")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.text.contains("id=\"key-error\"") && bad.text.contains("id=\"variants-error\""), "{}", bad.text);
    let ok = mk
        .post_form(
            "/experiments",
            &[("key", "pilot-east"), ("name", "华东试点"), ("variants", "全国方案,华东试点"), ("baseline_pct", "8")],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.text);
    let detail = mk.get("/experiments/pilot-east").await;
    assert!(
        detail.text.contains("id=\"experiment-start\"") && detail.text.contains("id=\"experiment-plan\""),
        "{}",
        detail.text
    );
    assert_eq!(mk.post_form("/experiments/pilot-east/start", &[]).await.status, 303);
    let running = mk.get("/experiments/pilot-east").await.text;
    assert!(running.contains("id=\"experiment-stop\"") && running.contains("继续运行"), "{running}");
    // The planner: 10 % → 12 % at the playbook's 5 % and 80 % needs 3,841 users a variant.
    let planned = mk.get("/experiments?baseline_pct=10&min_lift_pct=20").await.text;
    assert!(planned.contains("id=\"plan-result\"") && planned.contains("3841"), "{planned}");
    let bad_plan = mk.get("/experiments?baseline_pct=0&min_lift_pct=20").await.text;
    assert!(bad_plan.contains("id=\"baseline_pct-error\""), "{bad_plan}");
    let mut api = app.api("viewer@yunqi.example").await;
    let p = api.get("/api/v1/experiments/plan?baseline_pct=10&min_lift_pct=20").await.json();
    assert_eq!(p["users_per_variant"], 3841);
    let bad = api.get("/api/v1/experiments/plan?baseline_pct=99&min_lift_pct=20").await;
    assert_eq!((bad.status, bad.fields()["min_lift_pct"].is_string()), (422, true));
    let mut viewer = app.login("viewer@yunqi.example").await;
    let read = viewer.get("/experiments/pilot-east").await;
    assert_eq!(read.status, 200);
    assert!(!read.text.contains("id=\"experiment-stop\""));
    assert_eq!(viewer.post_form("/experiments/pilot-east/stop", &[]).await.status, 403);
    app.stop().await;
});

both!(c7_dashboard_shows_every_section_to_every_member_with_exports, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.api("finance@yunqi.example").await;
    let orders: Vec<Value> = (0..60)
        .map(|i| {
            json!({"order_id": format!("D{i}"), "customer_id": format!("{}", 1 + i % 15),
                "order_date": format!("2026-{:02}-{:02}", i % 10 + 1, i % 27 + 1), "amount": format!("{}.00", 80 + i * 11)})
        })
        .collect();
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &json!({"orders": orders})).await.status, 201);
    let events: Vec<Value> = (0..40)
        .map(|i| {
            let (channel, kind) =
                (["douyin", "wechat"][i % 2], ["exposure", "click", "conversion", "repurchase"][i % 4]);
            json!({"user_id": format!("u{}", i / 4), "channel": channel, "campaign": "c", "type": kind,
                "ts": format!("2026-11-{:02}T0{}:00:00Z", 10 + i / 4, i % 4)})
        })
        .collect();
    assert_eq!(fin.json(Method::POST, "/api/v1/events", &json!({"events": events})).await.status, 201);
    let mut mk = app.api("marketer@yunqi.example").await;
    let def = json!({"key": "landing", "name": "落地页", "variants": ["a", "b"]});
    assert_eq!(mk.json(Method::POST, "/api/v1/experiments", &def).await.status, 201);
    // A sales rep reads the same aggregates as everyone.
    let mut rep = app.api("sales.rep@yunqi.example").await;
    let d = rep.get("/api/v1/dashboard").await;
    assert_eq!(d.status, 200, "{}", d.text);
    let d = d.json();
    // Each section equals its detailed source.
    let funnel = rep.get("/api/v1/analytics/funnel").await.json();
    let mut users = [0u64; 4];
    for f in funnel["funnels"].as_array().unwrap() {
        for (k, u) in users.iter_mut().enumerate() {
            *u += f["users"][k].as_u64().unwrap();
        }
    }
    assert_eq!(d["funnel"]["users"], json!(users));
    let rfm = rep.get("/api/v1/analytics/rfm").await.json();
    let counts: Vec<(Value, Value)> =
        rfm["segments"].as_array().unwrap().iter().map(|s| (s["segment"].clone(), s["customers"].clone())).collect();
    let dash: Vec<(Value, Value)> = d["rfm"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["segment"].clone(), s["customers"].clone()))
        .collect();
    assert_eq!(dash, counts);
    let clv = rep.get("/api/v1/analytics/clv").await.json();
    let total: f64 = clv["customers"].as_array().unwrap().iter().filter_map(|c| c["clv"].as_f64()).sum();
    assert!((d["clv"]["total_clv"].as_f64().unwrap() - total).abs() < 1e-6 * total.max(1.0));
    let in_buckets: u64 =
        d["clv"]["histogram"].as_array().unwrap().iter().map(|b| b["customers"].as_u64().unwrap()).sum();
    assert_eq!(in_buckets, d["clv"]["customers"].as_u64().unwrap());
    assert_eq!(d["experiments"][0]["key"], "landing");
    assert!(d["channels"]["rows"].is_array());
    // The page: every section with a chart, a table and exports.
    let mut page = app.login("sales.rep@yunqi.example").await;
    let html = page.get("/dashboard").await;
    assert_eq!(html.status, 200);
    for id in ["dash-funnel", "dash-segments", "dash-clv", "dash-channels", "dash-experiments", "export-funnel"] {
        assert!(html.text.contains(&format!("id=\"{id}\"")), "{id}");
    }
    let seg = page.get("/dashboard/export/segments?format=csv").await;
    assert_eq!(seg.status, 200);
    let lines: Vec<&str> = seg.text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "segment,customers,action");
    assert_eq!(lines.len(), counts.len() + 1);
    let xlsx = page.get("/dashboard/export/experiments?format=xlsx").await;
    assert_eq!(xlsx.status, 200);
    assert!(xlsx.header("content-type").unwrap_or_default().contains("spreadsheetml"));
    assert_eq!(page.get("/dashboard/export/nope").await.status, 404);
    app.stop().await;
});

both!(c7_dashboard_shows_the_previous_figures_while_it_recomputes_after_an_order, |kind| async move {
    // Every computation counts as slow here, so any change is shown refreshing first.
    let app = TestApp::spawn_with(kind, |c| c.dashboard_refresh_ms = 0).await;
    let mut fin = app.api("finance@yunqi.example").await;
    let order = |id: &str, c: &str| json!({"orders": [{"order_id": id, "customer_id": c, "order_date": "2026-11-02", "amount": "120.00"}]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &order("R1", "5001")).await.status, 201);
    let customers = |d: &Value| -> u64 {
        d["rfm"]["segments"].as_array().unwrap().iter().map(|s| s["customers"].as_u64().unwrap()).sum()
    };
    let first = fin.get("/api/v1/dashboard").await.json();
    assert_eq!(first["refreshing"], false, "nothing earlier to show: computed at once");
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &order("R2", "5002")).await.status, 201);
    let stale = fin.get("/api/v1/dashboard").await.json();
    assert_eq!(stale["refreshing"], true);
    assert_eq!(stale["rfm"], first["rfm"], "the previous figures, at once");
    // The page says so beside the figures.
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &order("R3", "5003")).await.status, 201);
    let mut page = app.login("sales.rep@yunqi.example").await;
    let html = page.get("/dashboard").await.text;
    assert!(html.contains("id=\"dash-refreshing\""), "{html}");
    // A later view has the new figures: two more customers.
    let mut fresh = None;
    for _ in 0..200 {
        let d = fin.get("/api/v1/dashboard").await.json();
        if d["refreshing"] == false {
            fresh = Some(d);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let fresh = fresh.expect("the figures were recomputed");
    assert_eq!(customers(&fresh), customers(&first) + 2);
    app.stop().await;
});

both!(c4_referral_codes_referrals_and_rewards_by_the_playbook, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.api("finance@yunqi.example").await;
    let order = |id: &str, c: &str, date: &str, amount: &str| json!({"order_id": id, "customer_id": c, "order_date": date, "amount": amount});
    let orders =
        json!({"orders": [order("A1", "100", "2026-06-01", "300.00"), order("A2", "200", "2026-06-02", "80.00")]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &orders).await.status, 201);
    // A code per customer, the same on every ask; unknown customers are 404.
    let code = fin.json(Method::POST, "/api/v1/customers/100/referral-code", &json!({})).await;
    assert_eq!(code.status, 200, "{}", code.text);
    let code = code.json()["code"].as_str().unwrap().to_string();
    let again = fin.json(Method::POST, "/api/v1/customers/100/referral-code", &json!({})).await.json();
    assert_eq!(again["code"], code.as_str());
    assert_eq!(fin.json(Method::POST, "/api/v1/customers/nope/referral-code", &json!({})).await.status, 404);
    // Bad referrals name their fields and change nothing.
    let audit = app.audit_count().await;
    let bad = fin.json(Method::POST, "/api/v1/referrals", &json!({"code": "ZZZZZZZZ", "customer_id": "300"})).await;
    assert_eq!((bad.status, bad.fields()["code"].is_string()), (422, true));
    let own = fin.json(Method::POST, "/api/v1/referrals", &json!({"code": code, "customer_id": "100"})).await;
    assert_eq!((own.status, own.fields()["customer_id"].is_string()), (422, true));
    let future = fin
        .json(
            Method::POST,
            "/api/v1/referrals",
            &json!({"code": code, "customer_id": "300", "referred_on": "2027-01-01"}),
        )
        .await;
    assert_eq!((future.status, future.fields()["referred_on"].is_string()), (422, true));
    assert_eq!(app.audit_count().await, audit);
    // 100 refers a new customer 300 (typed in lower case) and 400; 300 buys 250 within the
    // window and 900 after it; 400 buys 50.
    let typed = code.to_lowercase();
    let r = fin
        .json(
            Method::POST,
            "/api/v1/referrals",
            &json!({"code": typed, "customer_id": "300", "customer_name": "新客", "referred_on": "2026-07-01"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        fin.json(Method::POST, "/api/v1/referrals", &json!({"code": code, "customer_id": "300"})).await.status,
        409
    );
    assert_eq!(
        fin.json(
            Method::POST,
            "/api/v1/referrals",
            &json!({"code": code, "customer_id": "400", "referred_on": "2026-11-01"})
        )
        .await
        .status,
        201
    );
    let later = json!({"orders": [order("B1", "300", "2026-07-20", "250.00"), order("B2", "300", "2026-11-10", "900.00"),
        order("C1", "400", "2026-11-05", "50.00")]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &later).await.status, 201);
    let rep = fin.get("/api/v1/analytics/referrals").await.json();
    let r = &rep["report"];
    // The playbook's defaults: 10 % of the window's 250 = 25 yuan; 50 yuan welcome; 400's
    // window (90 days from 2026-11-01) is still open at 50 yuan.
    assert_eq!(
        (r["referrals"].as_u64(), r["qualified"].as_u64(), r["pending"].as_u64()),
        (Some(2), Some(1), Some(1)),
        "{rep}"
    );
    assert_eq!((r["referrer_rewards_fen"].as_i64(), r["referred_rewards_fen"].as_i64()), (Some(2_500), Some(5_000)));
    assert_eq!(r["revenue_fen"].as_i64(), Some(120_000));
    assert_eq!(r["referrers"][0]["referrer"], "100");
    // Pages: the report with the rule and a form; the customer pages link both ways.
    let mut page = app.login("finance@yunqi.example").await;
    let html = page.get("/reports/referrals").await;
    assert!(html.text.contains("id=\"referrer-list\"") && html.text.contains("id=\"referral-form\""), "{}", html.text);
    let bad = page.post_form("/reports/referrals", &[("code", "nope"), ("customer_id", "500")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.text.contains("id=\"code-error\""));
    let c300 = page.get("/customers/300").await.text;
    assert!(c300.contains("href=\"/customers/100\""), "referred by 100");
    let c200 = page.get("/customers/200").await.text;
    assert!(c200.contains("id=\"create-referral-code\""));
    assert_eq!(page.post_form("/customers/200/referral-code", &[]).await.status, 303);
    assert!(page.get("/customers/200").await.text.contains("id=\"customer-referral-code\""));
    let mut viewer = app.api("viewer@yunqi.example").await;
    assert_eq!(
        viewer.json(Method::POST, "/api/v1/referrals", &json!({"code": code, "customer_id": "600"})).await.status,
        403
    );
    app.stop().await;
});

both!(c4_finance_pays_what_is_owed_on_a_referral_once, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.api("finance@yunqi.example").await;
    let order = |id: &str, c: &str, date: &str, amount: &str| json!({"order_id": id, "customer_id": c, "order_date": date, "amount": amount});
    let first = json!({"orders": [order("A1", "100", "2026-06-01", "300.00")]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &first).await.status, 201);
    let code = fin.json(Method::POST, "/api/v1/customers/100/referral-code", &json!({})).await.json()["code"]
        .as_str()
        .unwrap()
        .to_string();
    for (who, day) in [("300", "2026-10-01"), ("400", "2026-11-01")] {
        let r = fin
            .json(Method::POST, "/api/v1/referrals", &json!({"code": code, "customer_id": who, "referred_on": day}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // 300 qualifies with 250 yuan in its window (10 % = 25 yuan to 100, 50 yuan welcome);
    // 400 has bought 50 yuan, its window still open.
    let more =
        json!({"orders": [order("B1", "300", "2026-10-20", "250.00"), order("C1", "400", "2026-11-05", "50.00")]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &more).await.status, 201);
    let report = |v: serde_json::Value| v["report"].clone();
    let rep = report(fin.get("/api/v1/analytics/referrals").await.json());
    assert_eq!((rep["paid_fen"].as_i64(), rep["owed_fen"].as_i64()), (Some(0), Some(7_500)), "{rep}");
    let list = rep["list"].as_array().unwrap();
    assert_eq!(list[0]["referred"], "300", "owed first");
    let (id300, id400) = (list[0]["id"].as_i64().unwrap(), list[1]["id"].as_i64().unwrap());
    // Who may pay: finance and the admin; a marketer is refused and nothing changes.
    let mut mk = app.api("marketer@yunqi.example").await;
    let audit = app.audit_count().await;
    assert_eq!(mk.json(Method::POST, &format!("/api/v1/referrals/{id300}/payouts"), &json!({})).await.status, 403);
    // Bad bodies name the field; unknown referrals are 404; a referral that has not
    // qualified is 409 with the reason.
    let bad = fin.json(Method::POST, &format!("/api/v1/referrals/{id300}/payouts"), &json!({"reference": 7})).await;
    assert_eq!((bad.status, bad.fields()["reference"].is_string()), (422, true), "{}", bad.text);
    let unknown = fin.json(Method::POST, &format!("/api/v1/referrals/{id300}/payouts"), &json!({"amount": 1})).await;
    assert_eq!((unknown.status, unknown.fields()["amount"].is_string()), (422, true));
    assert_eq!(fin.json(Method::POST, "/api/v1/referrals/999999/payouts", &json!({})).await.status, 404);
    let young = fin.json(Method::POST, &format!("/api/v1/referrals/{id400}/payouts"), &json!({})).await;
    assert_eq!(young.status, 409);
    assert!(young.text.contains("not qualified yet"), "{}", young.text);
    assert_eq!(app.audit_count().await, audit);
    // Paid: both sides, with the playbook version that decided the amounts; the second
    // payout is refused; the report shows it paid and nothing owed.
    let paid = fin
        .json(Method::POST, &format!("/api/v1/referrals/{id300}/payouts"), &json!({"reference": "TX-2026-001"}))
        .await;
    assert_eq!(paid.status, 201, "{}", paid.text);
    let p = paid.json();
    assert_eq!((p["referrer_fen"].as_i64(), p["referred_fen"].as_i64()), (Some(2_500), Some(5_000)));
    let active = store::playbook::active(&app.db).await.unwrap().unwrap().version;
    assert_eq!(p["playbook_version"].as_i64(), Some(active));
    assert_eq!(fin.json(Method::POST, &format!("/api/v1/referrals/{id300}/payouts"), &json!({})).await.status, 409);
    let rep = report(fin.get("/api/v1/analytics/referrals").await.json());
    assert_eq!((rep["paid_fen"].as_i64(), rep["owed_fen"].as_i64()), (Some(7_500), Some(0)));
    assert_eq!(rep["referrers"][0]["reward_paid_fen"].as_i64(), Some(2_500));
    // More orders inside the window raise the reward: the difference is owed, and paid
    // through the page (finance sees the button; the marketer does not).
    let again = json!({"orders": [order("B2", "300", "2026-11-01", "150.00")]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &again).await.status, 201);
    let rep = report(fin.get("/api/v1/analytics/referrals").await.json());
    assert_eq!(rep["owed_fen"].as_i64(), Some(1_500), "10 % of 150 more");
    let mut page = app.login("finance@yunqi.example").await;
    let html = page.get("/reports/referrals").await.text;
    assert!(html.contains(&format!("action=\"/reports/referrals/{id300}/pay\"")), "{html}");
    assert!(!html.contains(&format!("action=\"/reports/referrals/{id400}/pay\"")), "nothing to pay on 400");
    let mut mpage = app.login("marketer@yunqi.example").await;
    assert!(!mpage.get("/reports/referrals").await.text.contains("/pay\""));
    assert_eq!(mpage.post_form(&format!("/reports/referrals/{id300}/pay"), &[]).await.status, 403);
    let long = "x".repeat(201);
    let too_long = page.post_form(&format!("/reports/referrals/{id300}/pay"), &[("reference", long.as_str())]).await;
    assert_eq!(too_long.status, 422);
    assert!(too_long.text.contains("id=\"pay-error\"") && too_long.text.contains("200"), "{}", too_long.text);
    assert_eq!(page.post_form(&format!("/reports/referrals/{id300}/pay"), &[("reference", "TX-2")]).await.status, 303);
    let refused = page.post_form(&format!("/reports/referrals/{id300}/pay"), &[]).await;
    assert_eq!(refused.status, 409);
    assert!(refused.text.contains("id=\"pay-error\""), "{}", refused.text);
    let rep = report(fin.get("/api/v1/analytics/referrals").await.json());
    assert_eq!((rep["paid_fen"].as_i64(), rep["owed_fen"].as_i64()), (Some(9_000), Some(0)));
    // Two payouts recorded, each in the audit log.
    let sql = "SELECT (SELECT count(*) FROM referral_payouts), \
               (SELECT count(*) FROM audit_log WHERE entity = 'referral_payout' AND entity_id = '300')";
    let n: (i64, i64) = store::on_db!(&app.db, p => sqlx::query_as(sql).fetch_one(p).await).unwrap();
    assert_eq!(n, (2, 2));
    app.stop().await;
});

both!(c4_demo_referrals_show_rewards_paid_and_owed, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let until = app.now().get();
    marketops::history::load_orders(&app.db, until).await.unwrap().expect("demo orders");
    let made = marketops::history::load_referrals(&app.db, until).await.unwrap().expect("demo referrals");
    assert!(made >= 30, "{made}");
    let mut fin = app.api("finance@yunqi.example").await;
    let rep = fin.get("/api/v1/analytics/referrals").await.json()["report"].clone();
    assert!(rep["paid_fen"].as_i64().unwrap() > 0, "{rep}");
    assert!(rep["owed_fen"].as_i64().unwrap() > 0, "the newest qualified referrals are still owed: {rep}");
    // Paid rewards are exactly what the payouts recorded.
    let paid: i64 = store::on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT CAST(coalesce(sum(referrer_fen + referred_fen), 0) AS BIGINT) FROM referral_payouts").fetch_one(p).await)
    .unwrap();
    assert_eq!(rep["paid_fen"].as_i64(), Some(paid));
    assert!(marketops::history::load_referrals(&app.db, until).await.unwrap().is_none(), "once");
    app.stop().await;
});

both!(c3_subscriptions_drive_retention_renewal_and_ndr, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut fin = app.api("finance@yunqi.example").await;
    let sub = |id: &str, c: &str, plan: &str, start: &str, end: Option<&str>, mrr: &str| {
        let mut v = json!({"subscription_id": id, "customer_id": c, "plan": plan, "start_date": start, "mrr": mrr});
        if let Some(e) = end {
            v["end_date"] = json!(e);
        }
        v
    };
    let count = || async {
        store::on_db!(&app.db, p => sqlx::query_scalar::<_, i64>("SELECT count(*) FROM subscriptions").fetch_one(p).await)
            .unwrap()
    };
    // A bad item names its field by position, and nothing of the batch is written.
    let audit = app.audit_count().await;
    let bad = json!({"subscriptions": [sub("S1", "A", "基础版", "2025-01-01", None, "100"),
        sub("S9", "Z", "", "2025-01-01", Some("2024-12-01"), "-1")]});
    let r = fin.json(Method::POST, "/api/v1/subscriptions", &bad).await;
    assert_eq!(r.status, 422, "{}", r.text);
    for f in ["subscriptions[1].plan", "subscriptions[1].end_date", "subscriptions[1].mrr"] {
        assert!(r.fields()[f].is_string(), "{f}: {}", r.text);
    }
    assert_eq!((count().await, app.audit_count().await), (0, audit));
    let viewer = app.api("viewer@yunqi.example").await.json(Method::POST, "/api/v1/subscriptions", &bad).await;
    assert_eq!(viewer.status, 403);
    // Four customers from January 2025 (days from 2025-01-01): A pays 100 a month and
    // upgrades to 300 on day 45; B pays 100 (its end comes later); C and D 200 from day 5,
    // C until day 355.
    let batch = json!({"subscriptions": [
        sub("S1", "A", "基础版", "2025-01-01", Some("2025-02-15"), "100"),
        sub("S2", "A", "专业版", "2025-02-15", None, "300.00"),
        sub("S3", "B", "基础版", "2025-01-01", None, "100"),
        sub("S4", "C", "专业版", "2025-01-06", Some("2025-12-22"), "200"),
        sub("S5", "D", "专业版", "2025-01-06", None, "200")]});
    let r = fin.json(Method::POST, "/api/v1/subscriptions", &batch).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!((r.json()["created"].as_u64(), r.json()["new_customers"].as_u64()), (Some(5), Some(4)));
    // The same again changes nothing; B's end recorded by resending it with an end date;
    // another price for a stored subscription is 409 and changes nothing.
    let again = fin.json(Method::POST, "/api/v1/subscriptions", &batch).await;
    assert_eq!((again.status, again.json()["unchanged"].as_u64()), (200, Some(5)));
    let end_b = json!({"subscriptions": [sub("S3", "B", "基础版", "2025-01-01", Some("2025-03-07"), "100")]});
    let ended = fin.json(Method::POST, "/api/v1/subscriptions", &end_b).await;
    assert_eq!((ended.status, ended.json()["ended"].as_u64()), (201, Some(1)), "{}", ended.text);
    let audit = app.audit_count().await;
    let changed = json!({"subscriptions": [sub("S5", "D", "专业版", "2025-01-06", None, "250")]});
    let c = fin.json(Method::POST, "/api/v1/subscriptions", &changed).await;
    assert_eq!(c.status, 409);
    assert!(c.text.contains("S5"), "{}", c.text);
    assert_eq!((count().await, app.audit_count().await), (5, audit));
    // The cohort's figures from recurring revenue: month 3 three of four still pay; month
    // 12's MRR 300 + 200 over month 0's 100 + 100 + 200 + 200; month 11's payers A, C, D,
    // month 12's A and D.
    let ltv = fin.get("/api/v1/analytics/ltv").await.json();
    let c = &ltv["subscriptions"][0];
    assert_eq!((c["cohort"].as_str(), c["customers"].as_i64()), (Some("2025-01"), Some(4)), "{ltv}");
    assert_eq!(c["retention_pct"][3].as_f64(), Some(75.0));
    let close = |v: &serde_json::Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
    assert!(close(&c["ndr_pct"][12], 50_000.0 * 100.0 / 60_000.0), "{c}");
    assert!(close(&c["ndr_pct"][2], 80_000.0 * 100.0 / 60_000.0), "{c}");
    assert!(close(&c["renewal_pct"], 200.0 / 3.0), "{c}");
    // The page shows the table.
    let mut page = app.login("finance@yunqi.example").await;
    let html = page.get("/reports/clv").await.text;
    assert!(html.contains("id=\"subscription-retention\"") && html.contains("2025-01"), "{html}");
    // A customer's page and API list its subscriptions.
    let a = page.get("/customers/A").await.text;
    assert!(a.contains("id=\"subscription-list\"") && a.contains("专业版") && a.contains("2025-02-15"), "{a}");
    let a = fin.get("/api/v1/customers/A").await.json();
    assert_eq!(a["subscriptions"].as_array().map(Vec::len), Some(2), "{a}");
    assert_eq!(a["subscriptions"][0]["mrr_fen"].as_i64(), Some(30_000));
    app.stop().await;
});

both!(c3_demo_subscriptions_fill_the_subscription_view, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let until = app.now().get();
    marketops::history::load_orders(&app.db, until).await.unwrap().expect("demo orders");
    let made = marketops::history::load_subscriptions(&app.db, until).await.unwrap().expect("demo subscriptions");
    assert!(made.created >= 400, "{made:?}");
    let (ended, upgraded): (i64, i64) = store::on_db!(&app.db, p => sqlx::query_as(
        "SELECT count(end_day), count(DISTINCT customer_id) FILTER (WHERE external_id NOT LIKE '%-0') FROM subscriptions")
        .fetch_one(p).await)
    .unwrap();
    assert!(ended > 0 && upgraded > 0, "some cancel, some upgrade: {ended} {upgraded}");
    assert!(marketops::history::load_subscriptions(&app.db, until).await.unwrap().is_none(), "once");
    let ltv = app.api("viewer@yunqi.example").await.get("/api/v1/analytics/ltv").await.json();
    let cohorts = ltv["subscriptions"].as_array().unwrap();
    assert!(cohorts.len() > 12, "{} cohorts", cohorts.len());
    let customers: i64 = cohorts.iter().map(|c| c["customers"].as_i64().unwrap()).sum();
    assert_eq!(customers, 400);
    // Upgrades can lift a cohort's NDR above its retention, never the other way round for
    // every cohort at once: some month 1 figures exist and are percentages.
    assert!(cohorts.iter().any(|c| c["ndr_pct"][1].as_f64().is_some_and(|v| v > 0.0)));
    app.stop().await;
});

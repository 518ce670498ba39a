//! L-4 reassignment, L-6 nurture, L-7 hand-off, L-8 deals through the API.

use super::*;

fn a_lead(email: &str, size: &str) -> Value {
    json!({"name": "客户", "company": "甲公司", "email": email, "province": "上海", "city": "上海", "company_size": size,
           "channel": "trade_show", "budget": "approved", "authority": "decision_maker", "need": "clear", "timeline": "within_3_months"})
}

both!(l4_l7_reassign_accept_reject, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let id = mk.json(Method::POST, "/api/v1/leads", &a_lead("x1@x.example", "smb")).await.json()["lead"]["id"]
        .as_i64()
        .unwrap();
    let rep = app.user_id("sales.rep@yunqi.example").await;
    let rep2 = app.user_id("sales.rep2@yunqi.example").await;
    // Only managers reassign, with a reason; the new owner must be in sales.
    let mut mgr = app.api("sales.manager@yunqi.example").await;
    let legal = app.user_id("legal@yunqi.example").await;
    let r = mgr.json(Method::POST, &format!("/api/v1/leads/{id}/reassign"), &json!({"owner_id": legal})).await;
    assert_eq!((r.status, r.fields()["reason"].clone()), (422, json!("is required")));
    let r = mgr
        .json(Method::POST, &format!("/api/v1/leads/{id}/reassign"), &json!({"owner_id": legal, "reason": "x"}))
        .await;
    assert!(r.fields()["owner_id"].as_str().unwrap().contains("sales"));
    app.clock.advance_secs(3600);
    let r = mgr
        .json(
            Method::POST,
            &format!("/api/v1/leads/{id}/reassign"),
            &json!({"owner_id": rep2, "reason": "客户在北京有分公司"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["owner_id"], rep2);
    assert_eq!(
        r.json()["first_response_due"],
        "2026-11-23T10:00:00.000000Z",
        "the clock restarts for the new owner (11:00 + 6 working h = 18:00)"
    );
    let mut rep_api = app.api("sales.rep@yunqi.example").await;
    assert_eq!(
        rep_api
            .json(Method::POST, &format!("/api/v1/leads/{id}/reassign"), &json!({"owner_id": rep, "reason": "x"}))
            .await
            .status,
        403
    );
    assert_eq!(rep_api.get(&format!("/api/v1/leads/{id}")).await.status, 404, "no longer theirs");
    // The new owner accepts; rejecting needs a reason and sends the lead back to marketing.
    let mut rep2_api = app.api("sales.rep2@yunqi.example").await;
    assert_eq!(
        rep2_api.json(Method::POST, &format!("/api/v1/leads/{id}/accept"), &json!({})).await.json()["status"],
        "accepted"
    );
    assert_eq!(
        rep2_api.json(Method::POST, &format!("/api/v1/leads/{id}/reject"), &json!({})).await.fields()["reason"],
        "is required"
    );
    let r = rep2_api.json(Method::POST, &format!("/api/v1/leads/{id}/reject"), &json!({"reason": "无预算"})).await;
    assert_eq!((r.json()["status"].as_str(), r.json()["route"].as_str()), (Some("rejected"), Some("nurture")));
    assert_eq!(
        mk.json(Method::POST, &format!("/api/v1/leads/{id}/accept"), &json!({})).await.status,
        403,
        "marketing cannot accept for sales"
    );
    let d = mk.get(&format!("/api/v1/leads/{id}")).await.json();
    let kinds: Vec<&str> = d["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.ends_with(&["reassigned", "accepted", "rejected"]), "{kinds:?}");
    app.stop().await;
});

both!(l6_nurture_stages_move_forward_with_touches, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let b = json!({"name": "培育", "email": "n@n.example", "channel": "webinar", "budget": "planned", "authority": "influencer", "need": "exploring", "timeline": "within_3_months"});
    let id = mk.json(Method::POST, "/api/v1/leads", &b).await.json()["lead"]["id"].as_i64().unwrap();
    for (kind, stage) in [
        ("white_paper", "awareness"),
        ("case_study", "consideration"),
        ("webinar", "consideration"),
        ("demo", "decision"),
    ] {
        let r = mk
            .json(
                Method::POST,
                &format!("/api/v1/leads/{id}/touches"),
                &json!({"kind": kind, "title": "云上制造白皮书"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            store::leads::get(&app.db, id).await.unwrap().unwrap().nurture_stage.as_deref(),
            Some(stage),
            "after {kind}"
        );
    }
    assert_eq!(mk.get(&format!("/api/v1/leads/{id}/touches")).await.json().as_array().unwrap().len(), 4);
    let r = mk.json(Method::POST, &format!("/api/v1/leads/{id}/touches"), &json!({"kind": "flyer"})).await;
    assert!(r.fields()["kind"].as_str().unwrap().contains("reference_meeting"));
    let d = mk.get(&format!("/api/v1/leads/{id}")).await.json();
    assert_eq!(
        d["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "stage").count(),
        2,
        "awareness was already set at routing"
    );
    app.stop().await;
});

both!(l8_convert_and_close_with_cycle_and_attribution, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let camp = mk
        .json(
            Method::POST,
            "/api/v1/campaigns",
            &json!({"name": "峰会", "channel": "trade_show", "planned_cost": "100000"}),
        )
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let mut l = a_lead("w@w.example", "enterprise");
    l["campaign_id"] = json!(camp);
    let id = mk.json(Method::POST, "/api/v1/leads", &l).await.json()["lead"]["id"].as_i64().unwrap();
    // A later capture from another channel: last touch differs from first touch.
    let r = mk
        .json(Method::POST, "/api/v1/leads", &json!({"name": "客户", "email": "w@w.example", "channel": "webinar"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut rep = app.api("sales.rep@yunqi.example").await;
    let r = rep
        .json(Method::POST, &format!("/api/v1/leads/{id}/convert"), &json!({"name": "甲公司私有云", "amount": "x"}))
        .await;
    assert_eq!(r.fields()["amount"], "must be an amount like 1234.56 (at most two decimals)");
    let r = rep
        .json(
            Method::POST,
            &format!("/api/v1/leads/{id}/convert"),
            &json!({"name": "甲公司私有云", "amount": "480000"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let deal = r.json();
    assert_eq!(
        (deal["first_channel"].as_str(), deal["first_campaign_id"].as_i64(), deal["last_channel"].as_str()),
        (Some("trade_show"), Some(camp), Some("webinar"))
    );
    assert_eq!(
        rep.json(Method::POST, &format!("/api/v1/leads/{id}/convert"), &json!({"name": "again", "amount": "1"}))
            .await
            .status,
        409
    );
    let did = deal["id"].as_i64().unwrap();
    app.clock.advance_secs(100 * 86_400);
    let r = rep.json(Method::PUT, &format!("/api/v1/deals/{did}/stage"), &json!({"stage": "closed_lost"})).await;
    assert_eq!(r.fields()["lost_reason"], "is required");
    let r = rep
        .json(Method::PUT, &format!("/api/v1/deals/{did}/stage"), &json!({"stage": "closed_won", "amount": "500000"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["cycle_days"].as_i64(), r.json()["amount_fen"].as_i64()), (Some(100), Some(50_000_000)));
    assert_eq!(
        rep.json(Method::PUT, &format!("/api/v1/deals/{did}/stage"), &json!({"stage": "proposal"})).await.status,
        409,
        "closed deals stay closed"
    );
    assert_eq!(app.api("sales.north@yunqi.example").await.get(&format!("/api/v1/deals/{did}")).await.status, 404);
    assert_eq!(mk.get("/api/v1/deals").await.json().as_array().unwrap().len(), 1);
    app.stop().await;
});

both!(lifecycle_from_the_lead_page, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let id = mk.json(Method::POST, "/api/v1/leads", &a_lead("ui@x.example", "smb")).await.json()["lead"]["id"]
        .as_i64()
        .unwrap();
    let mut rep = app.login("sales.rep@yunqi.example").await;
    let page = rep.get(&format!("/leads/{id}")).await.text;
    assert!(page.contains("id=\"accept-lead\"") && page.contains("无预算") && !page.contains("id=\"reassign-lead\""));
    assert_eq!(rep.post_form(&format!("/leads/{id}/accept"), &[]).await.status, 303);
    assert_eq!(
        rep.post_form(&format!("/leads/{id}/touches"), &[("kind", "demo"), ("title", "线上演示")]).await.status,
        303
    );
    let r = rep.post_form(&format!("/leads/{id}/convert"), &[("name", "私有云项目"), ("amount", "abc")]).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        rep.post_form(&format!("/leads/{id}/convert"), &[("name", "私有云项目"), ("amount", "120000")]).await.status,
        303
    );
    let deal = store::deals::deal_of_lead(&app.db, id).await.unwrap().unwrap();
    app.clock.advance_secs(30 * 86_400);
    let mut rep = app.login("sales.rep@yunqi.example").await;
    let r = rep
        .post_form(
            &format!("/deals/{}/stage", deal.id),
            &[("stage", "closed_lost"), ("lost_choice", ""), ("lost_text", "")],
        )
        .await;
    assert_eq!(r.status, 422, "lost needs a reason");
    let r = rep.post_form(&format!("/deals/{}/stage", deal.id), &[("stage", "closed_won"), ("amount", "")]).await;
    assert_eq!(r.status, 303);
    let page = rep.get(&format!("/leads/{id}")).await.text;
    assert!(page.contains("赢单") && page.contains("id=\"deal-cycle\">30 天"), "{page}");
    assert!(rep.get("/deals").await.text.contains("私有云项目"));
    // A manager reassigns from the page; the reason is required.
    let id2 = mk.json(Method::POST, "/api/v1/leads", &a_lead("ui2@x.example", "smb")).await.json()["lead"]["id"]
        .as_i64()
        .unwrap();
    let mut mgr = app.login("sales.manager@yunqi.example").await;
    assert!(mgr.get(&format!("/leads/{id2}")).await.text.contains("id=\"reassign-lead\""));
    let r = mgr
        .post_form(
            &format!("/leads/{id2}/reassign"),
            &[("owner_id", &app.user_id("sales.rep2@yunqi.example").await.to_string()), ("reason", "")],
        )
        .await;
    assert_eq!(r.status, 422);
    let r = mgr
        .post_form(
            &format!("/leads/{id2}/reassign"),
            &[("owner_id", &app.user_id("sales.rep2@yunqi.example").await.to_string()), ("reason", "北京客户")],
        )
        .await;
    assert_eq!(r.status, 303);
    app.stop().await;
});

both!(l9_channel_report_roi_conversion_and_top_channels, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let show = mk
        .json(
            Method::POST,
            "/api/v1/campaigns",
            &json!({"name": "峰会", "channel": "trade_show", "planned_cost": "100000"}),
        )
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    mk.json(
        Method::POST,
        &format!("/api/v1/campaigns/{show}/spend"),
        &json!({"spent_on": "2026-11-23", "amount": "100000", "category": "event"}),
    )
    .await;
    let web = mk.json(Method::POST, "/api/v1/campaigns", &json!({"name": "研讨会", "channel": "webinar"})).await.json()
        ["id"]
        .as_i64()
        .unwrap();
    mk.json(
        Method::POST,
        &format!("/api/v1/campaigns/{web}/spend"),
        &json!({"spent_on": "2026-11-23", "amount": "20000", "category": "content"}),
    )
    .await;
    let mut rep = app.api("sales.rep@yunqi.example").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let (ch, camp) = if i < 3 { ("trade_show", show) } else { ("webinar", web) };
        let mut l = a_lead(&format!("r{i}@r.example"), "smb");
        l["channel"] = json!(ch);
        l["campaign_id"] = json!(camp);
        ids.push(mk.json(Method::POST, "/api/v1/leads", &l).await.json()["lead"]["id"].as_i64().unwrap());
    }
    // One won deal per channel: 300,000 from the trade show, 160,000 from the webinar.
    for (id, amount) in [(ids[0], "300000"), (ids[3], "160000")] {
        let did = rep
            .json(Method::POST, &format!("/api/v1/leads/{id}/convert"), &json!({"name": "x", "amount": amount}))
            .await
            .json()["id"]
            .as_i64()
            .unwrap();
        assert_eq!(
            rep.json(Method::PUT, &format!("/api/v1/deals/{did}/stage"), &json!({"stage": "closed_won"})).await.status,
            200
        );
    }
    let r = mk.get("/api/v1/reports/channels?from=2026-11-01&until=2026-11-30").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = r.json()["report"]["channels"].clone();
    let by = |ch: &str| rows.as_array().unwrap().iter().find(|x| x["channel"] == ch).cloned().unwrap();
    assert_eq!(
        (by("trade_show")["leads"].as_i64(), by("trade_show")["cost_per_lead_fen"].as_i64()),
        (Some(3), Some(3_333_333))
    );
    assert_eq!(by("trade_show")["roi"].as_f64(), Some(3.0));
    assert_eq!(by("webinar")["roi"].as_f64(), Some(8.0));
    assert_eq!(rows[0]["channel"], "webinar", "sorted by ROI");
    assert!(by("webinar")["top"].as_bool().unwrap() && by("trade_show")["top"].as_bool().unwrap());
    assert!((by("trade_show")["conversion_pct"].as_f64().unwrap() - 33.333).abs() < 0.01);
    assert_eq!(by("trade_show")["versus_industry"], "above");
    assert_eq!(r.json()["report"]["campaigns"].as_array().unwrap().len(), 2);
    let r = mk.get("/api/v1/reports/channels?from=2026-13-01&attribution=middle").await;
    assert!(r.fields()["from"].is_string() || r.fields()["attribution"].is_string());
    // The page and the export.
    let mut ui = app.login("director@yunqi.example").await;
    let page = ui.get("/reports/channels?from=2026-11-01&until=2026-11-30").await.text;
    assert!(
        page.contains("id=\"channel-table\"") && page.contains("1 : 8.00") && page.contains("data-chart=\"roi\""),
        "{page}"
    );
    let csv = ui.get("/reports/channels.csv?from=2026-11-01&until=2026-11-30").await;
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.text.contains("webinar,1,1,0,0,1,100.00,20000.00,20000.00,0.0,160000.00,8.0000,true"), "{}", csv.text);
    app.stop().await;
});

both!(l7_monthly_lead_quality_review, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let mut rep = app.api("sales.rep@yunqi.example").await;
    // Won: 13 and 12 points. Rejected: 10, 10, 11 points.
    let answers = [
        ("approved", "decision_maker", "clear", "within_3_months"),
        ("approved", "decision_maker", "moderate", "within_3_months"),
        ("planned", "influencer", "moderate", "within_3_months"),
        ("planned", "influencer", "moderate", "within_3_months"),
        ("planned", "decision_maker", "moderate", "within_3_months"),
    ];
    let mut ids = Vec::new();
    for (i, (b, a, n, t)) in answers.iter().enumerate() {
        let l = json!({"name": "q", "email": format!("q{i}@q.example"), "province": "上海", "channel": "email", "budget": b, "authority": a, "need": n, "timeline": t});
        ids.push(mk.json(Method::POST, "/api/v1/leads", &l).await.json()["lead"]["id"].as_i64().unwrap());
    }
    for id in &ids[..2] {
        let d = rep
            .json(Method::POST, &format!("/api/v1/leads/{id}/convert"), &json!({"name": "x", "amount": "1000"}))
            .await
            .json()["id"]
            .as_i64()
            .unwrap();
        rep.json(Method::PUT, &format!("/api/v1/deals/{d}/stage"), &json!({"stage": "closed_won"})).await;
    }
    for (id, why) in [(ids[2], "无预算"), (ids[3], "无预算"), (ids[4], "非决策人")] {
        assert_eq!(
            rep.json(Method::POST, &format!("/api/v1/leads/{id}/reject"), &json!({"reason": why})).await.status,
            200
        );
    }
    let r = mk.get("/api/v1/reports/lead-quality?month=2026-11").await.json();
    let rv = &r["review"];
    assert_eq!(
        (rv["handed_off"]["leads"].as_i64(), rv["won"]["leads"].as_i64(), rv["rejected"]["leads"].as_i64()),
        (Some(5), Some(2), Some(3))
    );
    assert_eq!(rv["reasons"][0], json!(["无预算", 2]));
    assert_eq!(rv["proposal"], 12, "{}", rv["explanation"]);
    assert_eq!(mk.get("/api/v1/reports/lead-quality?month=2026-10").await.json()["review"]["handed_off"]["leads"], 0);
    assert_eq!(
        mk.get("/api/v1/reports/lead-quality?month=November").await.fields()["month"],
        "must be a month like 2026-11"
    );
    let page = app.login("director@yunqi.example").await.get("/reports/lead-quality?month=2026-11").await.text;
    assert!(page.contains("grade_a_min = 12") && page.contains("无预算"), "{page}");
    app.stop().await;
});

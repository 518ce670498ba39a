//! P-1 and E-3: the versioned playbook.

use super::*;
use domain::playbook::DEFAULT_DOCUMENT;

fn edited(from: &str, to: &str) -> String {
    assert!(DEFAULT_DOCUMENT.contains(from));
    DEFAULT_DOCUMENT.replacen(from, to, 1)
}

async fn versions(app: &TestApp) -> usize {
    store::playbook::list(&app.db).await.unwrap().len()
}

both!(p1_active_playbook_with_sources, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.api("sales.rep@yunqi.example").await;
    let pb = c.get("/api/v1/playbook").await.json();
    assert_eq!(pb["version"], 1);
    let rule = |k: &str| pb["rules"].as_array().unwrap().iter().find(|r| r["key"] == k).cloned().unwrap();
    assert_eq!(rule("leads.bant.grade_a_min")["value"], "10");
    assert_eq!(rule("leads.bant.grade_a_min")["rule"], "L-3");
    assert_eq!(rule("budget.approval_threshold")["value"], "50000");
    assert_eq!(rule("budget.approval_threshold")["seed"], "004 §2.4");
    assert_eq!(rule("leads.sla.follow_up_max_hours")["value"], "72");
    assert_eq!(rule("compliance.legal_review_working_days")["value"], "3");
    assert_eq!(rule("leads.bant.answers.need.critical")["value"], "5");
    for p in domain::playbook::PARAMS {
        let prefix = p.key.trim_end_matches('*');
        assert!(
            pb["rules"].as_array().unwrap().iter().any(|r| r["key"].as_str().unwrap().starts_with(prefix)),
            "{}",
            p.key
        );
    }
    let page = app.login("sales.rep@yunqi.example").await.get("/playbook").await.text;
    assert!(page.contains("A 级线索最低总分") && page.contains("来源文档 004 §3.1"));
    assert!(!page.contains("id=\"edit-playbook\""), "a sales rep cannot edit");
    app.stop().await;
});

both!(p1_invalid_versions_are_refused_naming_the_key, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.api("director@yunqi.example").await;
    let before = (versions(&app).await, app.audit_count().await);
    let cases = [
        (edited("grade_a_min = 10", "grade_a_min = 10\ngrade_s_min = 13"), "leads.bant.grade_s_min", "unknown key"),
        (
            edited("grade_a_min = 10", "grade_a_min = \"ten\""),
            "leads.bant.grade_a_min",
            "must be an integer, got a string",
        ),
        (edited("need_max = 5", "need_max = 99"), "leads.bant.need_max", "must be between 1 and 10, got 99"),
        ("[leads.bant\ngrade_a_min = 1".to_string(), "document", "line 1"),
        (edited("core_pct = 50", "core_pct = 55"), "budget.brand_pct", "must add up to 100"),
        (edited("tolerance_pct = 10\n", ""), "goals.tolerance_pct", "is missing"),
        (edited("critical = 5", "critical = 6"), "leads.bant.answers.need.critical", "at most need_max (5)"),
        (edited("approved = 3", "Approved! = 3"), "document", "line"),
    ];
    for (doc, key, msg) in &cases {
        let r = c.json(Method::POST, "/api/v1/playbook", &json!({"document": doc})).await;
        assert_eq!(r.status, 422, "{key}");
        let got = r.fields()[key].as_str().unwrap_or_default().to_string();
        assert!(got.contains(msg), "{key}: {got} (all: {})", r.fields());
    }
    let r = c.json(Method::POST, "/api/v1/playbook", &json!({"document": 42, "nope": true})).await;
    assert_eq!(r.fields()["document"], "must be a string");
    assert_eq!(r.fields()["nope"], "unknown field");
    assert_eq!((versions(&app).await, app.audit_count().await), before, "nothing saved");
    // The UI shows the same errors beside the document and keeps the text.
    let mut ui = app.login("director@yunqi.example").await;
    let r = ui.post_form("/playbook", &[("document", &cases[1].0), ("based_on", "1"), ("note", "")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("<code>leads.bant.grade_a_min</code>: 应为整数，当前为 a string"), "{}", r.text);
    assert!(r.text.contains("grade_a_min = &quot;ten&quot;") || r.text.contains("grade_a_min = &#34;ten&#34;"));
    assert_eq!(versions(&app).await, before.0);
    app.stop().await;
});

both!(e3_new_versions_history_and_diff, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.api("admin@yunqi.example").await;
    let doc = edited("grade_a_min = 10", "grade_a_min = 11");
    let r = c.json(Method::POST, "/api/v1/playbook/check", &json!({"document": doc})).await;
    assert_eq!(r.json()["changes"], json!([{"key": "leads.bant.grade_a_min", "old": "10", "new": "11"}]));
    assert_eq!(versions(&app).await, 1, "check saves nothing");
    let r = c
        .json(Method::POST, "/api/v1/playbook", &json!({"document": doc, "note": "A 级门槛提高到 11", "based_on": 1}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["version"], 2);
    // Domain rules read the active version.
    let active = store::playbook::active(&app.db).await.unwrap().unwrap();
    assert_eq!(domain::playbook::Playbook::parse(&active.document).unwrap().leads.bant.grade_a_min, 11);
    // An edit based on the old version is refused instead of overwriting version 2.
    let r = c.json(Method::POST, "/api/v1/playbook", &json!({"document": DEFAULT_DOCUMENT, "based_on": 1})).await;
    assert_eq!(r.status, 409);
    let list = c.get("/api/v1/playbook/versions").await.json();
    assert_eq!(list[0]["version"], 2);
    assert_eq!(list[0]["note"], "A 级门槛提高到 11");
    assert_eq!(list[0]["created_by"], app.user_id("admin@yunqi.example").await);
    assert_eq!(c.get("/api/v1/playbook/versions/1").await.json()["document"], DEFAULT_DOCUMENT);
    let d = c.get("/api/v1/playbook/diff?from=1&to=2").await.json();
    assert_eq!(d["changes"], json!([{"key": "leads.bant.grade_a_min", "old": "10", "new": "11"}]));
    assert_eq!(c.get("/api/v1/playbook/diff?from=x").await.fields()["from"], "must be a version number");
    assert_eq!(c.get("/api/v1/playbook/diff?from=9").await.status, 404);
    // The UI: edit, history, diff.
    let mut ui = app.login("director@yunqi.example").await;
    let doc3 = doc.replace("meeting_max_hours = 2", "meeting_max_hours = 1");
    let r = ui.post_form("/playbook", &[("document", &doc3), ("based_on", "2"), ("note", "会议缩短")]).await;
    assert_eq!((r.status, r.location()), (303, "/playbook?done=playbook-saved".to_string()));
    let hist = ui.get("/playbook/history").await.text;
    assert!(hist.contains("v3") && hist.contains("会议缩短") && hist.contains("陈静"));
    let diff = ui.get("/playbook/diff?from=2&to=3").await.text;
    assert!(diff.contains("collaboration.meeting_max_hours") && diff.contains("会议时长上限"));
    let check = ui.post_form("/playbook/check", &[("document", "x = ")]).await;
    assert_eq!(check.status, 422);
    assert!(check.text.contains("id=\"check-errors\""));
    app.stop().await;
});

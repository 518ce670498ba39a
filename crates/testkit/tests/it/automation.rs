//! L-10: automation rules fire on lead events after their (playbook) delay, check their
//! conditions when they run, take their action once and log it.

use super::*;
use marketops::jobs::Runner;
use store::auth::{SessionPolicy, ThrottlePolicy};

fn runner(app: &TestApp) -> Runner {
    Runner::new(app.db.clone(), app.clock.as_clock(), SessionPolicy::default(), ThrottlePolicy::default())
}

fn lead(email: &str) -> Value {
    json!({"name": "孙悦", "company": "无锡云帆", "email": email, "province": "江苏", "city": "无锡", "channel": "website_form",
           "budget": "approved", "authority": "decision_maker", "need": "clear", "timeline": "within_3_months"})
}

async fn capture(c: &mut testkit::Client, email: &str) -> i64 {
    let r = c.json(Method::POST, "/api/v1/leads", &lead(email)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["lead"]["id"].as_i64().unwrap()
}

async fn signal(c: &mut testkit::Client, id: i64, s: &str) {
    let r = c.json(Method::POST, &format!("/api/v1/leads/{id}/signals"), &json!({"signal": s})).await;
    assert_eq!(r.status, 204, "{}", r.text);
}

both!(l10_trial_without_sign_up_gets_a_task_with_script_after_the_playbook_delay, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let rule = json!({"name": "试用未转化跟进", "event": "trial_finished", "without": "signed_up",
        "delay_key": "leads.automation.trial_no_signup_days", "delay_unit": "days", "action": "create_task",
        "title": "电话回访试用客户", "script": "您好，看到您的试用已结束，想了解一下使用感受……"});
    let r = mk.json(Method::POST, "/api/v1/automation/rules", &rule).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rule_id = r.json()["id"].as_i64().unwrap();
    let (quiet, signed) = (capture(&mut mk, "q@wx.example").await, capture(&mut mk, "s@wx.example").await);
    signal(&mut mk, quiet, "trial_finished").await;
    signal(&mut mk, signed, "trial_finished").await;
    let run = runner(&app);
    // The second lead signs up a day later.
    app.clock.advance_secs(86_400);
    run.tick().await.unwrap();
    signal(&mut mk, signed, "signed_up").await;
    // Three days (the playbook's figure) after the trial: not a minute before…
    app.clock.advance_secs(2 * 86_400 - 60);
    run.tick().await.unwrap();
    let mut rep = app.api("sales.rep@yunqi.example").await;
    assert_eq!(rep.get("/api/v1/tasks").await.json(), json!([]));
    // …but on the minute, the owner gets a task with the script, for the quiet lead only.
    app.clock.advance_secs(60);
    run.tick().await.unwrap();
    run.tick().await.unwrap();
    let tasks = rep.get("/api/v1/tasks").await.json();
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    assert_eq!((tasks[0]["lead_id"].as_i64(), tasks[0]["rule_id"].as_i64()), (Some(quiet), Some(rule_id)));
    assert_eq!(tasks[0]["title"], "电话回访试用客户");
    assert!(tasks[0]["script"].as_str().unwrap().starts_with("您好"));
    // Both runs are logged on their leads, with why one was skipped.
    let runs = mk.get(&format!("/api/v1/leads/{quiet}/automation")).await.json();
    assert_eq!((runs.as_array().unwrap().len(), runs[0]["status"].as_str()), (1, Some("done")), "{runs}");
    let runs = mk.get(&format!("/api/v1/leads/{signed}/automation")).await.json();
    assert_eq!(runs[0]["status"], "skipped", "{runs}");
    assert!(runs[0]["detail"].as_str().unwrap().contains("conditions"));
    let d = mk.get(&format!("/api/v1/leads/{quiet}")).await.json();
    assert!(d["events"].as_array().unwrap().iter().any(|e| e["kind"] == "automation"), "{d}");
    // Done tasks leave the list; someone else's task is not theirs to close.
    let task = tasks[0]["id"].as_i64().unwrap();
    let mut north = app.api("sales.north@yunqi.example").await;
    assert_eq!(north.json(Method::POST, &format!("/api/v1/tasks/{task}/done"), &json!({})).await.status, 404);
    let r = rep.json(Method::POST, &format!("/api/v1/tasks/{task}/done"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["done_at"].is_string());
    assert_eq!(rep.get("/api/v1/tasks").await.json(), json!([]));
    app.stop().await;
});

both!(l10_dormant_leads_get_win_back_content_once_per_quiet_spell, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let rule = json!({"name": "沉睡唤醒", "event": "no_activity", "delay_key": "leads.automation.dormant_days",
        "action": "send_content", "title": "2026 行业白皮书"});
    let r = mk.json(Method::POST, "/api/v1/automation/rules", &rule).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = capture(&mut mk, "d@wx.example").await;
    let run = runner(&app);
    app.clock.advance_secs(29 * 86_400);
    run.tick().await.unwrap();
    assert_eq!(mk.get(&format!("/api/v1/leads/{id}/automation")).await.json(), json!([]));
    // Thirty quiet days (the playbook's figure): the win-back content goes out, once.
    app.clock.advance_secs(86_400 + 3600);
    run.tick().await.unwrap();
    app.clock.advance_secs(3600);
    run.tick().await.unwrap();
    let runs = mk.get(&format!("/api/v1/leads/{id}/automation")).await.json();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    let touches = mk.get(&format!("/api/v1/leads/{id}/touches")).await.json();
    assert!(
        touches.as_array().unwrap().iter().any(|t| t["kind"] == "content" && t["title"] == "2026 行业白皮书"),
        "{touches}"
    );
    // Sending content counts as activity: the next quiet spell starts now.
    app.clock.advance_secs(31 * 86_400);
    run.tick().await.unwrap();
    assert_eq!(mk.get(&format!("/api/v1/leads/{id}/automation")).await.json().as_array().unwrap().len(), 2);
    app.stop().await;
});

both!(l10_rules_are_validated_permissioned_and_can_be_switched_off, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let r = mk
        .json(
            Method::POST,
            "/api/v1/automation/rules",
            &json!({"name": "", "event": "someday", "delay_unit": "weeks", "delay_amount": -1, "action": "move_stage", "grades": ["Z"]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let f = &r.json()["error"]["fields"];
    for k in ["name", "event", "delay_unit", "delay_amount", "stage", "grades"] {
        assert!(f[k].is_string(), "{k}: {f}");
    }
    assert_eq!(mk.get("/api/v1/automation/rules").await.json(), json!([]), "a refused rule is not stored");
    let mut rep = app.api("sales.rep@yunqi.example").await;
    let ok = json!({"name": "A 级线索通知", "event": "lead_created", "grades": ["A"], "delay_amount": 0, "delay_unit": "minutes", "action": "notify", "message": "新 A 级线索"});
    assert_eq!(rep.json(Method::POST, "/api/v1/automation/rules", &ok).await.status, 403);
    let r = mk.json(Method::POST, "/api/v1/automation/rules", &ok).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rule = r.json()["id"].as_i64().unwrap();
    let run = runner(&app);
    capture(&mut mk, "n1@wx.example").await;
    run.tick().await.unwrap();
    let n = rep.get("/api/v1/notifications").await.json();
    assert!(n.as_array().unwrap().iter().any(|x| x["kind"] == "automation"), "{n}");
    // Switched off: queued and new events do nothing.
    let r = mk.json(Method::PUT, &format!("/api/v1/automation/rules/{rule}/enabled"), &json!({"enabled": "no"})).await;
    assert_eq!(r.status, 422);
    let r = mk.json(Method::PUT, &format!("/api/v1/automation/rules/{rule}/enabled"), &json!({"enabled": false})).await;
    assert_eq!((r.status, r.json()["enabled"].as_bool()), (200, Some(false)));
    let second = capture(&mut mk, "n2@wx.example").await;
    run.tick().await.unwrap();
    assert_eq!(mk.get(&format!("/api/v1/leads/{second}/automation")).await.json(), json!([]));
    assert_eq!(mk.send(Method::DELETE, &format!("/api/v1/automation/rules/{rule}"), None).await.status, 204);
    assert_eq!(mk.get("/api/v1/automation/rules").await.json(), json!([]));
    let a = app.api("admin@yunqi.example").await.get("/api/v1/audit?entity=automation_rule").await.json();
    assert!(a.to_string().contains("A 级线索通知"), "{a}");
    app.stop().await;
});

both!(l10_rules_tasks_and_signals_through_the_pages, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.login("marketer@yunqi.example").await;
    // A form error shows beside its field and stores nothing.
    let r = mk
        .post_form(
            "/automation/rules",
            &[("name", "试用未转化"), ("event", "trial_finished"), ("action", "create_task"), ("delay_amount", "x")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"title-error\"") && r.text.contains("id=\"delay_amount-error\""), "{}", r.text);
    assert!(store::automation::list_rules(&app.db).await.unwrap().is_empty());
    let r = mk
        .post_form(
            "/automation/rules",
            &[
                ("name", "试用未转化"),
                ("event", "trial_finished"),
                ("grades", "A"),
                ("grades", "B"),
                ("without", "signed_up"),
                ("delay_amount", ""),
                ("delay_unit", "days"),
                ("delay_key", "leads.automation.trial_no_signup_days"),
                ("action", "create_task"),
                ("title", "回访试用客户"),
                ("script", "您好，试用体验如何？"),
                ("stage", "awareness"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let rules = store::automation::list_rules(&app.db).await.unwrap();
    assert_eq!(rules[0].conditions["grades"], json!(["A", "B"]));
    let page = mk.get("/automation").await.text;
    assert!(
        page.contains("试用结束") && page.contains("且未发生 已注册") && page.contains("试用后未注册天数"),
        "{page}"
    );
    // A signal from the lead page; three days later the rep sees the task with its script.
    let mut api = app.api("marketer@yunqi.example").await;
    let id = capture(&mut api, "ui@wx.example").await;
    let r = mk.post_form(&format!("/leads/{id}/signals"), &[("signal", "trial_finished")]).await;
    assert_eq!(r.status, 303);
    assert_eq!(mk.post_form(&format!("/leads/{id}/signals"), &[("signal", "bought")]).await.status, 422);
    app.clock.advance_secs(3 * 86_400);
    runner(&app).tick().await.unwrap();
    // (Sessions lapse over three idle days: sign in again.)
    let mut mk = app.login("marketer@yunqi.example").await;
    let mut rep = app.login("sales.rep@yunqi.example").await;
    let tasks = rep.get("/tasks").await.text;
    assert!(tasks.contains("回访试用客户") && tasks.contains("您好，试用体验如何？"), "{tasks}");
    let lead = mk.get(&format!("/leads/{id}")).await.text;
    assert!(lead.contains("id=\"lead-runs\"") && lead.contains("已执行") && lead.contains("创建跟进任务"), "{lead}");
    let task =
        store::automation::open_tasks(&app.db, app.user_id("sales.rep@yunqi.example").await).await.unwrap()[0].id;
    assert_eq!(rep.post_form(&format!("/tasks/{task}/done"), &[]).await.status, 303);
    assert!(rep.get("/tasks").await.text.contains("id=\"tasks-empty\""));
    // Switch off and delete from the page; a rep may do neither.
    let rule = rules[0].id;
    assert_eq!(rep.post_form(&format!("/automation/rules/{rule}/enabled"), &[("enabled", "false")]).await.status, 403);
    assert_eq!(mk.post_form(&format!("/automation/rules/{rule}/enabled"), &[("enabled", "false")]).await.status, 303);
    assert!(!store::automation::list_rules(&app.db).await.unwrap()[0].enabled);
    assert_eq!(mk.post_form(&format!("/automation/rules/{rule}/delete"), &[]).await.status, 303);
    assert!(mk.get("/automation").await.text.contains("id=\"rules-empty\""));
    app.stop().await;
});

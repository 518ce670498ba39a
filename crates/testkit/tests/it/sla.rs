//! L-5: first-response and follow-up SLAs, breaches detected on time and handled once,
//! notifications to the sales manager and the interface person, webhooks with retries.

use super::*;
use marketops::jobs::Runner;
use store::auth::{SessionPolicy, ThrottlePolicy};

fn runner(app: &TestApp, db: store::Db) -> Runner {
    Runner::new(db, app.clock.as_clock(), SessionPolicy::default(), ThrottlePolicy::default())
        .with_link_base(app.url.clone())
}

fn a_lead(email: &str) -> Value {
    json!({"name": "周杰", "company": "苏州精工", "email": email, "province": "江苏", "city": "苏州", "channel": "trade_show",
           "budget": "approved", "authority": "decision_maker", "need": "clear", "timeline": "within_3_months"})
}

both!(l5_breach_detected_once_notified_and_sent, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let hook = testkit::Receiver::start(0).await;
    let mut director = app.api("director@yunqi.example").await;
    let r = director
        .json(Method::POST, "/api/v1/webhooks", &json!({"name": "销售群", "url": hook.url, "format": "wecom"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut mk = app.api("marketer@yunqi.example").await;
    let lead = mk.json(Method::POST, "/api/v1/leads", &a_lead("a@a.example")).await.json()["lead"].clone();
    let id = lead["id"].as_i64().unwrap();
    // Assigned Monday 10:00; first response due 17:00. At 16:59 nothing happens…
    let (a, b) = (runner(&app, app.db.clone()), runner(&app, store::Db::connect(&app.testdb.url).await.unwrap()));
    app.clock.advance_secs(6 * 3600 + 59 * 60);
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    ra.unwrap();
    rb.unwrap();
    assert!(
        store::sla::breaches(&app.db, store::Ts::new("2026-01-01T00:00:00Z".parse().unwrap()), app.now().add_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    // …a minute later (one scan interval), the breach is found once, though two runners scan.
    app.clock.advance_secs(61);
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    ra.unwrap();
    rb.unwrap();
    let all =
        store::sla::breaches(&app.db, store::Ts::new("2026-01-01T00:00:00Z".parse().unwrap()), app.now().add_secs(1))
            .await
            .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!((all[0].lead_id, all[0].kind.as_str()), (id, "first_response"));
    // Notified in the app: the east team's manager (张伟) and its marketing interface person (李娜).
    let mut manager = app.api("sales.manager@yunqi.example").await;
    let n = manager.get("/api/v1/notifications").await.json();
    assert_eq!(n.as_array().unwrap().len(), 1);
    assert_eq!(n[0]["lead_id"], id);
    assert_eq!(mk.get("/api/v1/notifications").await.json().as_array().unwrap().len(), 1);
    assert_eq!(
        app.api("sales.north@yunqi.example").await.get("/api/v1/notifications").await.json().as_array().unwrap().len(),
        0
    );
    // The WeCom bot received one markdown message naming the lead and the owner.
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let text = got[0]["markdown"]["content"].as_str().unwrap();
    assert!(text.contains("首次响应超时") && text.contains("周杰") && text.contains("刘洋"), "{text}");
    let d = director.get("/api/v1/webhooks/deliveries").await.json();
    assert_eq!((d[0]["status"].as_str(), d[0]["attempts"].as_i64()), (Some("delivered"), Some(1)));
    // Counted per rep, team and month.
    let counts = mk.get("/api/v1/reports/sla").await.json();
    assert_eq!(counts[0]["count"], 1);
    assert_eq!(counts[0]["owner_id"], app.user_id("sales.rep@yunqi.example").await);
    assert_eq!(counts[0]["month"], "2026-11");
    // The lead's history shows the breach.
    let d = mk.get(&format!("/api/v1/leads/{id}")).await.json();
    assert!(d["events"].as_array().unwrap().iter().any(|e| e["kind"] == "breach"));
    app.stop().await;
});

both!(l5_activity_in_time_prevents_breach_and_follow_up_is_rolling, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let id =
        mk.json(Method::POST, "/api/v1/leads", &a_lead("b@b.example")).await.json()["lead"]["id"].as_i64().unwrap();
    let mut rep = app.api("sales.rep@yunqi.example").await;
    app.clock.advance_secs(3600);
    let r = rep
        .json(Method::POST, &format!("/api/v1/leads/{id}/activities"), &json!({"kind": "call", "note": "约了下周演示"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = rep.json(Method::POST, &format!("/api/v1/leads/{id}/activities"), &json!({"kind": "pigeon"})).await;
    assert!(r.fields()["kind"].as_str().unwrap().contains("wechat"));
    let lead = store::leads::get(&app.db, id).await.unwrap().unwrap();
    assert_eq!(lead.first_response_at, Some(app.now()));
    assert_eq!(lead.follow_up_due, Some(app.now().add_secs(72 * 3600)), "follow-up clock restarts");
    let r = runner(&app, app.db.clone());
    app.clock.advance_secs(24 * 3600);
    r.tick().await.unwrap();
    let since = store::Ts::new("2026-01-01T00:00:00Z".parse().unwrap());
    assert!(store::sla::breaches(&app.db, since, app.now().add_secs(1)).await.unwrap().is_empty());
    // 72 hours without a touch: a follow-up breach.
    app.clock.advance_secs(48 * 3600 + 60);
    r.tick().await.unwrap();
    let b = store::sla::breaches(&app.db, since, app.now().add_secs(1)).await.unwrap();
    assert_eq!(b.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>(), ["follow_up"]);
    app.stop().await;
});

both!(l5_failed_webhooks_retry_with_backoff_and_stay_visible, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let hook = testkit::Receiver::start(2).await;
    let mut director = app.api("director@yunqi.example").await;
    director
        .json(Method::POST, "/api/v1/webhooks", &json!({"name": "飞书", "url": hook.url, "format": "feishu"}))
        .await;
    let r = director
        .json(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"name": "x", "url": "ftp://nope", "format": "slack", "events": ["everything"]}),
        )
        .await;
    assert_eq!(r.status, 422);
    for k in ["url", "format", "events"] {
        assert!(r.fields()[k].is_string(), "{k}");
    }
    let mut mk = app.api("marketer@yunqi.example").await;
    mk.json(Method::POST, "/api/v1/leads", &a_lead("c@c.example")).await;
    let r = runner(&app, app.db.clone());
    app.clock.advance_secs(8 * 3600);
    r.tick().await.unwrap();
    let d = director.get("/api/v1/webhooks/deliveries").await.json();
    assert_eq!(
        (d[0]["status"].as_str(), d[0]["attempts"].as_i64(), d[0]["response_status"].as_i64()),
        (Some("pending"), Some(1), Some(500))
    );
    assert!(d[0]["last_error"].as_str().unwrap().contains("HTTP 500"));
    // Retried after 30 s, then 60 s: the third attempt gets through.
    app.clock.advance_secs(30);
    r.tick().await.unwrap();
    app.clock.advance_secs(60);
    r.tick().await.unwrap();
    let d = director.get("/api/v1/webhooks/deliveries").await.json();
    assert_eq!((d[0]["status"].as_str(), d[0]["attempts"].as_i64()), (Some("delivered"), Some(3)));
    assert_eq!(hook.received().len(), 3);
    assert_eq!(hook.received()[2]["msg_type"], "text");
    assert_eq!(app.api("sales.rep@yunqi.example").await.get("/api/v1/webhooks").await.status, 403);
    app.stop().await;
});

both!(l5_pages_show_activities_notifications_webhooks_and_counts, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let id =
        mk.json(Method::POST, "/api/v1/leads", &a_lead("d@d.example")).await.json()["lead"]["id"].as_i64().unwrap();
    // The rep records a follow-up on the lead page.
    let mut rep = app.login("sales.rep@yunqi.example").await;
    let r = rep.post_form(&format!("/leads/{id}/activities"), &[("kind", "wechat"), ("note", "已加微信")]).await;
    assert_eq!(r.status, 303);
    assert!(rep.get(&format!("/leads/{id}")).await.text.contains("已加微信"));
    assert_eq!(rep.post_form(&format!("/leads/{id}/activities"), &[("kind", "smoke")]).await.status, 422);
    // A second lead nobody answers breaches; the manager sees the badge and the notice.
    let id2 =
        mk.json(Method::POST, "/api/v1/leads", &a_lead("e@e.example")).await.json()["lead"]["id"].as_i64().unwrap();
    app.clock.advance_secs(8 * 3600);
    runner(&app, app.db.clone()).tick().await.unwrap();
    let mut mgr = app.login("sales.manager@yunqi.example").await;
    let home = mgr.get("/").await.text;
    assert!(home.contains("id=\"unread\">1<"), "{home}");
    let page = mgr.get("/notifications").await.text;
    assert!(page.contains(&format!("/leads/{id2}")) && page.contains("首次响应超时"));
    mgr.post_form("/notifications/read", &[]).await;
    assert!(!mgr.get("/").await.text.contains("id=\"unread\""));
    // The report counts it; the director manages webhooks in the UI, the rep may not.
    assert!(mgr.get("/reports/sla").await.text.contains("首次响应超时"));
    assert_eq!(mgr.get("/reports/sla?from=2026-12-01&until=2026-11-01").await.status, 422);
    let mut dir = app.login("director@yunqi.example").await;
    let r = dir
        .post_form(
            "/settings/webhooks",
            &[("name", "钉钉群"), ("url", "not a url"), ("format", "dingtalk"), ("events", "sla_breach")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"url-error\""));
    let r = dir
        .post_form(
            "/settings/webhooks",
            &[
                ("name", "钉钉群"),
                ("url", "https://oapi.dingtalk.com/robot/send?access_token=x"),
                ("format", "dingtalk"),
                ("events", "sla_breach"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(dir.get("/settings/webhooks").await.text.contains("钉钉群"));
    let mut rep = app.login("sales.rep@yunqi.example").await; // the earlier session idled out over 8 hours
    assert_eq!(rep.get("/settings/webhooks").await.status, 403);
    app.stop().await;
});

//! Login, sessions (rotation, idle and absolute expiry), logout, throttling across
//! instances, and permissions (SPEC §11).

use super::*;
use std::sync::Arc;

both!(login_session_and_logout, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.client();
    // Not logged in: pages redirect to the login form, remembering where to return.
    let r = c.get("/company").await;
    assert_eq!((r.status, r.location()), (303, "/login?next=/company".to_string()));
    assert_eq!(c.get("/api/v1/me").await.status, 401);
    // A session id planted before login is replaced at login (no fixation).
    c.session = Some("planted-by-attacker".into());
    let r = c
        .post_form(
            "/login",
            &[("email", " Director@Yunqi.example "), ("password", testkit::PASSWORD), ("next", "/company")],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/company".to_string()));
    let cookie = r.cookies().into_iter().find(|c| c.starts_with("mko_session=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    let sid = c.session.clone().unwrap();
    assert_ne!(sid, "planted-by-attacker");
    assert_eq!(sid.len(), 64);
    // The session is stored hashed, never as the cookie value.
    let stored = store::backup::dump(&app.db).await.unwrap();
    assert!(!serde_json::to_string(&stored["sessions"]).unwrap().contains(&sid));
    let me = c.get("/api/v1/me").await.json();
    assert_eq!(me["user"]["role"], "marketing_director");
    assert!(me["permissions"].as_array().unwrap().iter().any(|p| p == "edit_company"));
    // Logging in again rotates the id and ends the old session.
    let old = sid.clone();
    c.post_form("/login", &[("email", "director@yunqi.example"), ("password", testkit::PASSWORD)]).await;
    assert_ne!(c.session.as_deref(), Some(old.as_str()));
    let mut stale = app.client();
    stale.session = Some(old);
    assert_eq!(stale.get("/api/v1/me").await.status, 401);
    // Logout ends the session on the server, not only in the browser.
    let sid = c.session.clone().unwrap();
    let r = c.post_form("/logout", &[]).await;
    assert_eq!(r.location(), "/login");
    let mut replay = app.client();
    replay.session = Some(sid);
    assert_eq!(replay.get("/api/v1/me").await.status, 401);
    app.stop().await;
});

both!(sessions_expire_when_idle_and_absolutely, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.login("marketer@yunqi.example").await;
    // Active use keeps it alive past the idle limit (2 h)…
    for _ in 0..3 {
        app.clock.advance_secs(3600);
        assert_eq!(c.get("/api/v1/me").await.status, 200);
    }
    // …but 2 h of silence ends it.
    app.clock.advance_secs(2 * 3600 + 1);
    assert_eq!(c.get("/api/v1/me").await.status, 401);
    // Absolute expiry (7 days) ends even a busy session.
    let mut c = app.login("marketer@yunqi.example").await;
    for _ in 0..(7 * 24) {
        app.clock.advance_secs(3600);
        if c.get("/api/v1/me").await.status != 200 {
            break;
        }
    }
    assert_eq!(c.get("/api/v1/me").await.status, 401);
    app.stop().await;
});

both!(five_failures_throttle_across_instances, |kind| async move {
    let a = TestApp::spawn(kind).await;
    let b = TestApp::spawn_on(Arc::clone(&a.testdb), a.clock.clone(), false).await;
    let mut ca = a.client();
    let mut cb = b.client();
    for i in 0..5 {
        let c = if i % 2 == 0 { &mut ca } else { &mut cb };
        let r = c.post_form("/login", &[("email", "legal@yunqi.example"), ("password", "wrong password")]).await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    // The sixth try is refused on either instance, even with the right password.
    let r = cb.post_form("/login", &[("email", "legal@yunqi.example"), ("password", testkit::PASSWORD)]).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert!(r.text.contains("15"), "{}", r.text);
    // The lock lifts when the window has passed.
    a.clock.advance_secs(15 * 60 + 1);
    let r = ca.post_form("/login", &[("email", "legal@yunqi.example"), ("password", testkit::PASSWORD)]).await;
    assert_eq!(r.status, 303);
    // One address trying many accounts is throttled too (all clients here share 127.0.0.1).
    a.clock.advance_secs(15 * 60 + 1);
    for (i, who) in ["x1@yunqi.example", "x2@yunqi.example", "x3@yunqi.example", "x4@yunqi.example", "x5@yunqi.example"]
        .iter()
        .enumerate()
    {
        let r = ca.post_form("/login", &[("email", who), ("password", "nope")]).await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = cb.post_form("/login", &[("email", "finance@yunqi.example"), ("password", testkit::PASSWORD)]).await;
    assert_eq!(r.status, 429);
    b.stop().await;
    a.stop().await;
});

both!(two_instances_share_sessions, |kind| async move {
    let a = TestApp::spawn(kind).await;
    let b = TestApp::spawn_on(Arc::clone(&a.testdb), a.clock.clone(), false).await;
    let c = a.login("ceo@yunqi.example").await;
    let mut on_b = b.client();
    on_b.session = c.session.clone();
    assert_eq!(on_b.get("/api/v1/me").await.json()["user"]["email"], "ceo@yunqi.example");
    // A change made through one instance is visible through the other at once.
    let mut admin = a.api("admin@yunqi.example").await;
    let r = admin.json(Method::PATCH, "/api/v1/company", &json!({"size": "large"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(on_b.get("/api/v1/company").await.json()["size"], "large");
    b.stop().await;
    a.stop().await;
});

both!(deactivated_accounts_lose_access, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut rep = app.login("sales.rep@yunqi.example").await;
    let mut rep_api = app.api("sales.rep@yunqi.example").await;
    let mut admin = app.api("admin@yunqi.example").await;
    let id = app.user_id("sales.rep@yunqi.example").await;
    let u = admin.get(&format!("/api/v1/users/{id}")).await.json();
    let mut body = json!({"email": u["email"], "display_name": u["display_name"], "role": u["role"], "active": false});
    body["department_id"] = u["department_id"].clone();
    body["team_id"] = u["team_id"].clone();
    assert_eq!(admin.json(Method::PUT, &format!("/api/v1/users/{id}"), &body).await.status, 200);
    assert_eq!(rep.get("/api/v1/me").await.status, 401);
    assert_eq!(rep_api.get("/api/v1/me").await.status, 401);
    let r = app
        .client()
        .post_form("/login", &[("email", "sales.rep@yunqi.example"), ("password", testkit::PASSWORD)])
        .await;
    assert_eq!(r.status, 401);
    app.stop().await;
});

// §11 on the admin pages and their API: non-admins get 403 for the same actions.
both!(non_admins_are_refused, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut rep = app.login("sales.rep@yunqi.example").await;
    for path in ["/org/users/new", "/org/departments/new", "/org/teams/new", "/audit", "/playbook/edit"] {
        assert_eq!(rep.get(path).await.status, 403, "{path}");
    }
    let r = rep.post_form("/company", &[("name", "Hacked")]).await;
    assert_eq!(r.status, 403);
    for path in ["/company", "/org", "/playbook", "/calendar", "/account"] {
        assert_eq!(rep.get(path).await.status, 200, "{path}");
    }
    let before = app.audit_count().await;
    let mut api = app.api("sales.rep@yunqi.example").await;
    let checks = [
        (Method::PATCH, "/api/v1/company", json!({"size": "large"})),
        (Method::POST, "/api/v1/departments", json!({"name": "X", "kind": "sales"})),
        (
            Method::POST,
            "/api/v1/users",
            json!({"email": "x@y.cn", "display_name": "X", "role": "admin", "password": "12345678"}),
        ),
        (Method::POST, "/api/v1/playbook", json!({"document": domain::playbook::DEFAULT_DOCUMENT})),
        (Method::PUT, "/api/v1/calendar/2026-12-24", json!({"kind": "holiday", "name": "x"})),
    ];
    for (m, path, body) in checks {
        let r = api.json(m, path, &body).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.json()["error"]["code"], "forbidden");
    }
    assert_eq!(api.get("/api/v1/audit").await.status, 403);
    assert_eq!(api.delete("/api/v1/teams/1").await.status, 403);
    // Nothing was written (the token creation above was the only audited change).
    assert_eq!(app.audit_count().await, before + 1);
    // The executive may read the audit log; the marketing director may edit the company.
    assert_eq!(app.api("ceo@yunqi.example").await.get("/api/v1/audit").await.status, 200);
    assert_eq!(app.login("ceo@yunqi.example").await.get("/audit").await.status, 200);
    app.stop().await;
});

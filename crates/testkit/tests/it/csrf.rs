//! Unsafe browser requests need same-origin Fetch Metadata or a matching Origin.

use super::*;

both!(forged_cross_site_requests_are_refused, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.login("admin@yunqi.example").await;
    let before = app.audit_count().await;
    let form = [
        ("name", "Forged"),
        ("business_type", "complex_b2b"),
        ("stage", "growth"),
        ("size", "small"),
        ("currency", "CNY"),
        ("time_zone", "Asia/Shanghai"),
        ("working_hours", "09:00-18:00"),
    ];
    // A foreign Origin.
    c.origin = Some("https://evil.example".into());
    assert_eq!(c.post_form("/company", &form).await.status, 403);
    // No Origin and no Fetch Metadata: not provably same-origin.
    c.origin = None;
    assert_eq!(c.post_form("/company", &form).await.status, 403);
    // The JSON API with the session cookie is protected the same way.
    let r = c.json(Method::PATCH, "/api/v1/company", &json!({"name": "Forged"})).await;
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (403, json!("forbidden")));
    // Sec-Fetch-Site: cross-site wins over anything else.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http
        .post(format!("{}/company", app.url))
        .header("cookie", format!("mko_session={}", c.session.clone().unwrap()))
        .header("sec-fetch-site", "cross-site")
        .header("origin", app.url.clone())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.audit_count().await, before, "nothing was written");
    assert_eq!(store::company::get(&app.db).await.unwrap().unwrap().name, "云启科技");
    // Same-origin by Fetch Metadata is accepted…
    let r = http
        .post(format!("{}/company", app.url))
        .header("cookie", format!("mko_session={}", c.session.clone().unwrap()))
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // …and bearer-token clients are exempt (they carry no ambient credentials).
    let mut api = app.api("admin@yunqi.example").await;
    api.origin = None;
    assert_eq!(api.json(Method::PATCH, "/api/v1/company", &json!({"name": "云启科技"})).await.status, 200);
    app.stop().await;
});

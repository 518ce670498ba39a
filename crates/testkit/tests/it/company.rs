//! O-1: the company profile through the API and the UI; bad input names the field and
//! changes nothing.

use super::*;

both!(o1_company_profile_api, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut viewer = app.api("viewer@yunqi.example").await;
    let c = viewer.get("/api/v1/company").await.json();
    assert_eq!(c["name"], "云启科技");
    assert_eq!(c["business_type"], "complex_b2b");
    assert_eq!(c["stage"], "growth");
    assert_eq!(c["weekend_days"], json!(["sat", "sun"]));

    let mut director = app.api("director@yunqi.example").await;
    let before_audit = app.audit_count().await;
    let before = store::company::get(&app.db).await.unwrap();
    // Wrong types, unknown enum values, unknown fields, bad zone: every field named, nothing written.
    let r = director
        .json(
            Method::PATCH,
            "/api/v1/company",
            &json!({
                "size": 5, "stage": "teenager", "time_zone": "Mars/Olympus", "colour": "red",
                "weekend_days": ["sat", "funday"], "working_hours": "18:00-09:00", "currency": "XXX"
            }),
        )
        .await;
    assert_eq!(r.status, 422);
    let f = r.fields();
    assert_eq!(f["size"], "must be a string");
    assert!(f["stage"].as_str().unwrap().contains("startup, growth, mature"));
    assert!(f["time_zone"].as_str().unwrap().contains("Mars/Olympus"));
    assert_eq!(f["colour"], "unknown field");
    assert!(f["weekend_days"].as_str().unwrap().contains("funday"));
    assert!(f["working_hours"].as_str().is_some());
    assert!(f["currency"].as_str().unwrap().contains("CNY"));
    assert_eq!(r.json()["error"]["code"], "validation_failed");
    // PUT needs every required field.
    let r = director.json(Method::PUT, "/api/v1/company", &json!({"name": "x"})).await;
    assert_eq!(r.status, 422);
    for k in ["business_type", "stage", "size", "currency", "time_zone", "working_hours"] {
        assert!(r.fields()[k].as_str().unwrap().starts_with("is required"), "{k}: {}", r.fields()[k]);
    }
    assert_eq!(store::company::get(&app.db).await.unwrap(), before);
    assert_eq!(app.audit_count().await, before_audit);

    // A good patch changes only what it names, and is audited with before and after.
    let r = director.json(Method::PATCH, "/api/v1/company", &json!({"stage": "mature", "weekend_days": "sun"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["stage"], "mature");
    assert_eq!(r.json()["weekend_days"], json!(["sun"]));
    assert_eq!(r.json()["name"], "云启科技");
    let log = store::audit::list(
        &app.db,
        &store::audit::Filter { entity: Some("company".into()), limit: 1, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(log[0].before.as_ref().unwrap()["stage"], "growth");
    assert_eq!(log[0].after.as_ref().unwrap()["stage"], "mature");
    assert_eq!(log[0].via, "api");
    assert_eq!(log[0].actor_id, Some(app.user_id("director@yunqi.example").await));
    assert_eq!(log[0].changed_fields(), ["stage", "weekend_days"]);
    app.stop().await;
});

both!(o1_company_profile_ui, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.login("director@yunqi.example").await;
    let page = c.get("/company").await.text;
    assert!(page.contains("value=\"云启科技\"") && page.contains("id=\"company-save\""));
    let mut form = vec![
        ("name", "云启科技"),
        ("industry", "云计算"),
        ("business_type", "complex_b2b"),
        ("stage", "growth"),
        ("size", "medium"),
        ("currency", "CNY"),
        ("time_zone", "Mars/Olympus"),
        ("weekend_days", "sat"),
        ("weekend_days", "sun"),
        ("working_hours", "09:00-12:00,13:00-18:00"),
    ];
    let before = app.audit_count().await;
    let r = c.post_form("/company", &form).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"time_zone-error\""), "{}", r.text);
    assert!(r.text.contains("未知时区“Mars/Olympus”"));
    assert!(r.text.contains("value=\"Mars/Olympus\""), "the bad value is kept for correction");
    assert_eq!(app.audit_count().await, before);
    form[6] = ("time_zone", "Asia/Shanghai");
    form[4] = ("size", "large");
    let r = c.post_form("/company", &form).await;
    assert_eq!((r.status, r.location()), (303, "/company?done=saved".to_string()));
    let p = store::company::get(&app.db).await.unwrap().unwrap();
    assert_eq!(p.size, domain::company::Size::Large);
    assert_eq!(p.industry.as_deref(), Some("云计算"));
    assert!(c.get("/company?done=saved").await.text.contains("已保存"));
    // A viewer sees the profile read-only.
    let mut v = app.login("viewer@yunqi.example").await;
    let page = v.get("/company").await.text;
    assert!(page.contains("disabled") && !page.contains("id=\"company-save\""));
    app.stop().await;
});

//! O-1: the working calendar and due times.

use super::*;

both!(o1_due_times_across_holidays_and_makeup_days, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.api("marketer@yunqi.example").await;
    let days = c.get("/api/v1/calendar?year=2026").await.json();
    assert_eq!(days.as_array().unwrap().len(), 39);
    assert!(days.as_array().unwrap().iter().any(|d| d["date"] == "2026-10-10" && d["kind"] == "workday"));
    // 6 working hours from the afternoon before National Day: 3 h, then 8 Oct morning.
    let r = c
        .json(Method::POST, "/api/v1/calendar/due", &json!({"start": "2026-09-30T15:00:00+08:00", "working_hours": 6}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let due = r.json();
    assert_eq!(due["due_local"], "2026-10-08T12:00:00+08:00");
    assert_eq!(due["due"], "2026-10-08T04:00:00.000000Z");
    assert_eq!(due["skipped"].as_array().unwrap().len(), 7);
    assert_eq!(due["skipped"][0]["reason"], "国庆节");
    // One working day from Friday 9 Oct lands on the make-up Saturday.
    let r = c
        .json(Method::POST, "/api/v1/calendar/due", &json!({"start": "2026-10-09T10:00:00+08:00", "working_days": 1}))
        .await;
    assert_eq!(r.json()["due_local"], "2026-10-10T10:00:00+08:00");
    // Bad input names the field.
    let r = c
        .json(
            Method::POST,
            "/api/v1/calendar/due",
            &json!({"start": "yesterday", "working_hours": 1, "working_days": 1}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.fields()["start"].as_str().unwrap().contains("RFC 3339"));
    assert!(r.fields()["working_days"].as_str().unwrap().contains("not both"));
    assert_eq!(c.get("/api/v1/calendar?year=abc").await.fields()["year"], "must be a year between 1900 and 2200");
    app.stop().await;
});

both!(o1_calendar_is_editable_data, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.api("director@yunqi.example").await;
    // A company-specific day off changes due times at once.
    let r = c.json(Method::PUT, "/api/v1/calendar/2026-11-24", &json!({"kind": "holiday", "name": "公司年会"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c
        .json(Method::POST, "/api/v1/calendar/due", &json!({"start": "2026-11-23T17:00:00+08:00", "working_hours": 2}))
        .await;
    assert_eq!(r.json()["due_local"], "2026-11-25T10:00:00+08:00");
    assert_eq!(r.json()["skipped"][0]["reason"], "公司年会");
    let before = app.audit_count().await;
    let r = c.json(Method::PUT, "/api/v1/calendar/2026-13-40", &json!({"kind": "vacation", "name": ""})).await;
    assert_eq!(r.status, 422);
    assert!(r.fields()["date"].is_string() && r.fields()["kind"].is_string() && r.fields()["name"].is_string());
    assert_eq!(app.audit_count().await, before);
    assert_eq!(c.delete("/api/v1/calendar/2026-11-24").await.status, 204);
    assert_eq!(c.delete("/api/v1/calendar/2026-11-24").await.status, 404);
    // Loading the shipped year again changes nothing; an unknown year is refused.
    let r = c.json(Method::POST, "/api/v1/calendar/load", &json!({"region": "CN", "year": 2026})).await;
    assert_eq!(r.json()["changed"], 0);
    let r = c.json(Method::POST, "/api/v1/calendar/load", &json!({"region": "CN", "year": 2031})).await;
    assert!(r.fields()["year"].as_str().unwrap().contains("CN 2026"));
    // The UI: calendar page, add a day with a field error, and the htmx due calculator.
    let mut ui = app.login("director@yunqi.example").await;
    assert!(ui.get("/calendar?year=2026").await.text.contains("春节调休上班"));
    let r = ui.post_form("/calendar/days", &[("date", "2026-12-31"), ("kind", "holiday"), ("name", "")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"name-error\""));
    let r = ui.post_form("/calendar/days", &[("date", "2026-12-31"), ("kind", "holiday"), ("name", "跨年")]).await;
    assert_eq!(r.location(), "/calendar?year=2026&done=saved");
    let r = ui.post_form("/calendar/due", &[("start", "2026-12-30T17:00"), ("amount", "2"), ("unit", "hours")]).await;
    assert!(r.text.contains("2027-01-01") || r.text.contains("2026-12-31"), "{}", r.text);
    assert!(r.text.contains("跨年"));
    app.stop().await;
});

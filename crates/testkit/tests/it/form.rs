//! L-1 (b): the public web form of a campaign.

use super::*;

both!(l1_public_form_captures_with_utm_and_limits_spam, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut mk = app.api("marketer@yunqi.example").await;
    let camp = mk
        .json(Method::POST, "/api/v1/campaigns", &json!({"name": "官网白皮书下载", "channel": "website_form"}))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let mut visitor = app.client();
    let page = visitor.get(&format!("/f/{camp}?utm_source=baidu&utm_campaign=q4&evil=1")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("官网白皮书下载") && page.text.contains("value=\"baidu\"") && !page.text.contains("evil")
    );
    assert!(
        page.header("x-frame-options").is_none()
            && !page.header("content-security-policy").unwrap().contains("frame-ancestors"),
        "embeddable"
    );
    // Posted from the page embedding it: a cross-site request with no session is accepted.
    visitor.origin = Some("https://www.yunqi.example".into());
    let r =
        visitor.post_form(&format!("/f/{camp}"), &[("name", "访客"), ("email", "bad"), ("utm_source", "baidu")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"email-error\""));
    let r = visitor
        .post_form(
            &format!("/f/{camp}"),
            &[
                ("name", "访客"),
                ("company", "丁公司"),
                ("email", "v@ding.example"),
                ("need", "critical"),
                ("utm_source", "baidu"),
                ("utm_campaign", "q4"),
                ("channel", "referral"),
                ("owner_id", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("id=\"form-thanks\""));
    let l = &store::leads::list(
        &app.db,
        store::leads::Scope::All,
        &store::leads::Filter { limit: 5, ..Default::default() },
    )
    .await
    .unwrap()[0];
    assert_eq!(
        (l.channel.as_str(), l.campaign_id, l.utm_source.as_deref(), l.utm_campaign.as_deref()),
        ("website_form", Some(camp), Some("baidu"), Some("q4")),
        "the channel and campaign come from the form, not from posted fields"
    );
    assert_eq!(l.need.as_deref(), Some("critical"));
    // The honeypot silently drops bots.
    let before = store::leads::count(&app.db).await.unwrap();
    let r = visitor
        .post_form(&format!("/f/{camp}"), &[("name", "bot"), ("email", "bot@spam.example"), ("website", "http://spam")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(store::leads::count(&app.db).await.unwrap(), before);
    // Ten submissions an hour from one address, then 429 (the two above counted).
    for i in 0..8 {
        let r =
            visitor.post_form(&format!("/f/{camp}"), &[("name", "x"), ("email", &format!("s{i}@spam.example"))]).await;
        assert_eq!(r.status, 200, "submission {i}");
    }
    assert_eq!(
        visitor.post_form(&format!("/f/{camp}"), &[("name", "x"), ("email", "s9@spam.example")]).await.status,
        429
    );
    app.clock.advance_secs(3601);
    assert_eq!(
        visitor.post_form(&format!("/f/{camp}"), &[("name", "x"), ("email", "s10@spam.example")]).await.status,
        200
    );
    assert_eq!(visitor.get("/f/99999").await.status, 404);
    let audit = store::audit::list(
        &app.db,
        &store::audit::Filter { via: Some("form".into()), limit: 50, ..Default::default() },
    )
    .await
    .unwrap();
    assert!(!audit.is_empty());
    app.stop().await;
});

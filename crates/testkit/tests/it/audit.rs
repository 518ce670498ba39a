//! P-3: every create, update and delete — UI, API or CLI — is in the audit log.

use super::*;

both!(p3_changes_from_every_interface_are_audited, |kind| async move {
    let app = TestApp::spawn(kind).await;
    // UI
    let mut ui = app.login("admin@yunqi.example").await;
    ui.post_form("/org/departments", &[("name", "临时部门"), ("kind", "operations")]).await;
    // API
    let mut api = app.api("admin@yunqi.example").await;
    let dept = store::org::list_departments(&app.db).await.unwrap().into_iter().find(|d| d.name == "临时部门").unwrap();
    let r = api
        .json(
            Method::PUT,
            &format!("/api/v1/departments/{}", dept.id),
            &json!({"name": "临时部门", "kind": "strategy"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(api.delete(&format!("/api/v1/departments/{}", dept.id)).await.status, 204);
    // CLI
    let mut cfg = testkit::test_config(&app.testdb.url);
    cfg.log_level = "warn".into();
    let cmd = marketops::cli::Command::User(marketops::cli::UserCmd::Add {
        email: "cli.user@yunqi.example".into(),
        name: "命令行".into(),
        role: "viewer".into(),
        password: Some("cli password".into()),
    });
    marketops::cli::run(cmd, cfg).await.unwrap();

    let mut exec = app.api("ceo@yunqi.example").await;
    let page = exec.get(&format!("/api/v1/audit?entity=department&entity_id={}", dept.id)).await.json();
    let entries = page["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["delete", "update", "create"], "newest first");
    assert_eq!(entries[2]["via"], "ui");
    assert_eq!(entries[1]["via"], "api");
    assert_eq!(entries[1]["before"]["kind"], "operations");
    assert_eq!(entries[1]["after"]["kind"], "strategy");
    assert_eq!(entries[1]["changed"], json!(["kind"]));
    assert!(entries[0]["after"].is_null());
    assert!(entries[0]["actor_label"].as_str().unwrap().contains("admin@yunqi.example"));
    let cli = exec.get("/api/v1/audit?via=cli&entity=user").await.json();
    assert!(cli["entries"].as_array().unwrap().iter().any(|e| e["after"]["email"] == "cli.user@yunqi.example"));
    // Filters: by actor, by date range, and bad filters name the parameter.
    let admin_id = app.user_id("admin@yunqi.example").await;
    let by_actor = exec.get(&format!("/api/v1/audit?actor_id={admin_id}&limit=500")).await.json();
    assert!(by_actor["entries"].as_array().unwrap().iter().all(|e| e["actor_id"] == admin_id));
    let today = exec.get("/api/v1/audit?from=2026-11-23&until=2026-11-23&entity=department&action=create").await.json();
    assert!(!today["entries"].as_array().unwrap().is_empty());
    let tomorrow = exec.get("/api/v1/audit?from=2026-11-24&entity=department").await.json();
    assert!(tomorrow["entries"].as_array().unwrap().is_empty());
    let r = exec.get("/api/v1/audit?via=fax&from=soon&limit=0&colour=red").await;
    assert_eq!(r.status, 422);
    for k in ["via", "from", "limit", "colour"] {
        assert!(r.fields()[k].is_string(), "{k}: {}", r.fields());
    }
    // Keyset pagination walks the whole log without repeats.
    let mut seen = std::collections::HashSet::new();
    let mut next = Some(String::from("/api/v1/audit?limit=7"));
    while let Some(path) = next {
        let p = exec.get(&path).await.json();
        for e in p["entries"].as_array().unwrap() {
            assert!(seen.insert(e["id"].as_i64().unwrap()));
        }
        next = p["next_before_id"].as_i64().map(|id| format!("/api/v1/audit?limit=7&before_id={id}"));
    }
    assert_eq!(seen.len() as i64, app.audit_count().await);
    // The UI page, filtered.
    let mut ui_exec = app.login("ceo@yunqi.example").await;
    let html = ui_exec.get("/audit?entity=department&action=update").await.text;
    assert!(html.contains("临时部门") && html.contains("strategy"), "{html}");
    assert_eq!(ui_exec.get("/audit?from=notadate").await.status, 422);
    app.stop().await;
});

//! O-2: departments, teams and accounts.

use super::*;

both!(o2_demo_organisation, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.api("viewer@yunqi.example").await;
    let depts = c.get("/api/v1/departments").await.json();
    let kinds: Vec<&str> = depts.as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for k in [
        "marketing",
        "product",
        "rnd",
        "design",
        "operations",
        "sales",
        "customer_success",
        "finance",
        "legal",
        "strategy",
        "executive",
    ] {
        assert!(kinds.contains(&k), "missing department kind {k}");
    }
    assert!(depts.as_array().unwrap().iter().all(|d| d["head_user_id"].is_i64()), "every department has a head");
    let teams = c.get("/api/v1/teams").await.json();
    let names: Vec<&str> = teams.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for t in ["品牌组", "获客组", "内容组", "数据组", "销售一组（华东）", "销售二组（华北）"]
    {
        assert!(names.contains(&t), "{t}");
    }
    let users = c.get("/api/v1/users").await.json();
    for r in domain::role::Role::ALL {
        assert!(users.as_array().unwrap().iter().any(|u| u["role"] == r.code()), "no demo login for {r:?}");
    }
    let page = app.login("viewer@yunqi.example").await.get("/org").await.text;
    assert!(page.contains("市场部") && page.contains("获客组") && !page.contains("id=\"new-user\""));
    app.stop().await;
});

both!(o2_admin_manages_departments_teams_users, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut a = app.api("admin@yunqi.example").await;
    let r = a
        .json(
            Method::POST,
            "/api/v1/departments",
            &json!({"name": "海外市场部", "kind": "marketing", "description": "东南亚"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let dept = r.json()["id"].as_i64().unwrap();
    // Duplicate name and unknown head are field errors; nothing is written.
    let before = app.audit_count().await;
    let r = a.json(Method::POST, "/api/v1/departments", &json!({"name": "海外市场部", "kind": "marketing"})).await;
    assert_eq!((r.status, r.fields()["name"].clone()), (422, json!("another department has this name")));
    let r = a
        .json(Method::POST, "/api/v1/departments", &json!({"name": "X", "kind": "marketing", "head_user_id": 99999}))
        .await;
    assert_eq!(r.fields()["head_user_id"], "no user with id 99999");
    let r = a.json(Method::POST, "/api/v1/departments", &json!({"kind": "wizards", "head_user_id": "seven"})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.fields()["name"], "is required");
    assert!(r.fields()["kind"].as_str().unwrap().contains("customer_success"));
    assert_eq!(r.fields()["head_user_id"], "must be a whole number");
    assert_eq!(app.audit_count().await, before);

    let r = a.json(Method::POST, "/api/v1/teams", &json!({"name": "东南亚组", "department_id": dept})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let team = r.json()["id"].as_i64().unwrap();
    let r = a
        .json(
            Method::POST,
            "/api/v1/users",
            &json!({
                "email": "New.Person@Yunqi.example", "display_name": "新同事", "role": "marketer",
                "department_id": dept, "team_id": team, "password": "a long password"
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["email"], "new.person@yunqi.example");
    let uid = r.json()["id"].as_i64().unwrap();
    // The new account can log in.
    let mut c = app.client();
    assert_eq!(
        c.post_form("/login", &[("email", "new.person@yunqi.example"), ("password", "a long password")]).await.status,
        303
    );
    let r = a
        .json(Method::POST, "/api/v1/users", &json!({"email": "new.person@yunqi.example", "display_name": "x", "role": "marketer", "password": "12345678"}))
        .await;
    assert_eq!(r.fields()["email"], "is already used by another account");
    let other_team =
        store::org::list_teams(&app.db).await.unwrap().into_iter().find(|t| t.name == "品牌组").unwrap().id;
    let r = a
        .json(Method::PUT, &format!("/api/v1/users/{uid}"), &json!({
            "email": "new.person@yunqi.example", "display_name": "新同事", "role": "marketer", "department_id": dept, "team_id": other_team
        }))
        .await;
    assert_eq!(r.fields()["team_id"], "the team belongs to another department");
    // A department with teams cannot be deleted; after its team goes, it can.
    assert_eq!(a.delete(&format!("/api/v1/departments/{dept}")).await.status, 409);
    assert_eq!(a.delete(&format!("/api/v1/teams/{team}")).await.status, 204);
    assert_eq!(a.delete(&format!("/api/v1/departments/{dept}")).await.status, 204);
    assert_eq!(a.get(&format!("/api/v1/departments/{dept}")).await.status, 404);
    let u = a.get(&format!("/api/v1/users/{uid}")).await.json();
    assert!(u["department_id"].is_null() && u["team_id"].is_null(), "members are unplaced, not deleted");
    // The last admin cannot demote or delete themselves away.
    let me = app.user_id("admin@yunqi.example").await;
    let r = a
        .json(
            Method::PUT,
            &format!("/api/v1/users/{me}"),
            &json!({"email": "admin@yunqi.example", "display_name": "管理员", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.fields()["role"], "the last active admin cannot lose admin rights");
    assert_eq!(a.delete(&format!("/api/v1/users/{me}")).await.fields()["id"], "you cannot delete your own account");
    assert_eq!(a.delete(&format!("/api/v1/users/{uid}")).await.status, 204);
    app.stop().await;
});

both!(o2_ui_forms_show_field_errors, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.login("admin@yunqi.example").await;
    assert_eq!(c.get("/org/users/new").await.status, 200);
    let r = c
        .post_form(
            "/org/users",
            &[("email", "not-an-email"), ("display_name", ""), ("role", "marketer"), ("password", "short")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("id=\"email-error\"") && r.text.contains("不是有效的邮箱地址"));
    assert!(r.text.contains("id=\"display_name-error\""));
    assert!(r.text.contains("id=\"password-error\"") && r.text.contains("至少 8 个字符"));
    let r = c.post_form("/org/departments", &[("name", "市场部"), ("kind", "marketing")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("已有同名部门"));
    let r = c.post_form("/org/departments", &[("name", "品牌中心"), ("kind", "design"), ("head_user_id", "")]).await;
    assert_eq!((r.status, r.location()), (303, "/org?done=saved".to_string()));
    let d = store::org::list_departments(&app.db).await.unwrap().into_iter().find(|d| d.name == "品牌中心").unwrap();
    let r = c.post_form(&format!("/org/departments/{}/delete", d.id), &[]).await;
    assert_eq!(r.status, 303);
    assert!(store::org::get_department(&app.db, d.id).await.unwrap().is_none());
    app.stop().await;
});

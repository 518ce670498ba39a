//! The API as a whole: OpenAPI document, error shapes, body limits, tokens, health.

use super::*;
use testkit::client::Body;

/// Every `$ref` in the document points at a schema that exists.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap_or_default().to_string());
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The routes the API serves, by method and path template.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/me"),
    ("get", "/api/v1/company"),
    ("put", "/api/v1/company"),
    ("patch", "/api/v1/company"),
    ("get", "/api/v1/departments"),
    ("post", "/api/v1/departments"),
    ("get", "/api/v1/departments/{id}"),
    ("put", "/api/v1/departments/{id}"),
    ("delete", "/api/v1/departments/{id}"),
    ("get", "/api/v1/teams"),
    ("post", "/api/v1/teams"),
    ("get", "/api/v1/teams/{id}"),
    ("put", "/api/v1/teams/{id}"),
    ("delete", "/api/v1/teams/{id}"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("put", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("put", "/api/v1/users/{id}/password"),
    ("put", "/api/v1/users/{id}/availability"),
    ("get", "/api/v1/playbook"),
    ("post", "/api/v1/playbook"),
    ("post", "/api/v1/playbook/check"),
    ("get", "/api/v1/playbook/versions"),
    ("get", "/api/v1/playbook/versions/{version}"),
    ("get", "/api/v1/playbook/diff"),
    ("get", "/api/v1/calendar"),
    ("put", "/api/v1/calendar/{date}"),
    ("delete", "/api/v1/calendar/{date}"),
    ("post", "/api/v1/calendar/load"),
    ("post", "/api/v1/calendar/due"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("post", "/api/v1/leads"),
    ("get", "/api/v1/leads"),
    ("get", "/api/v1/leads/{id}"),
    ("put", "/api/v1/leads/{id}/answers"),
    ("get", "/api/v1/campaigns"),
    ("post", "/api/v1/campaigns"),
    ("get", "/api/v1/campaigns/{id}"),
    ("put", "/api/v1/campaigns/{id}"),
    ("post", "/api/v1/campaigns/{id}/spend"),
    ("post", "/api/v1/leads/{id}/activities"),
    ("get", "/api/v1/leads/{id}/activities"),
    ("get", "/api/v1/notifications"),
    ("post", "/api/v1/notifications/read"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("get", "/api/v1/webhooks/deliveries"),
    ("get", "/api/v1/reports/sla"),
    ("post", "/api/v1/leads/{id}/reassign"),
    ("post", "/api/v1/leads/{id}/accept"),
    ("post", "/api/v1/leads/{id}/reject"),
    ("post", "/api/v1/leads/{id}/touches"),
    ("get", "/api/v1/leads/{id}/touches"),
    ("post", "/api/v1/leads/{id}/convert"),
    ("get", "/api/v1/deals"),
    ("get", "/api/v1/deals/{id}"),
    ("put", "/api/v1/deals/{id}/stage"),
    ("get", "/api/v1/reports/channels"),
    ("get", "/api/v1/leads/regrade"),
    ("post", "/api/v1/leads/regrade"),
    ("get", "/api/v1/leads/{id}/duplicates"),
    ("post", "/api/v1/leads/{id}/merge"),
    ("post", "/api/v1/leads/{id}/not-duplicate"),
    ("get", "/api/v1/reports/lead-quality"),
    ("get", "/api/v1/automation/rules"),
    ("post", "/api/v1/automation/rules"),
    ("put", "/api/v1/automation/rules/{id}/enabled"),
    ("delete", "/api/v1/automation/rules/{id}"),
    ("get", "/api/v1/leads/{id}/automation"),
    ("post", "/api/v1/leads/{id}/signals"),
    ("get", "/api/v1/tasks"),
    ("post", "/api/v1/tasks/{id}/done"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/customers"),
    ("get", "/api/v1/customers/{customer_id}"),
    ("get", "/api/v1/analytics/rfm"),
    ("get", "/api/v1/analytics/clv"),
    ("get", "/api/v1/analytics/ltv"),
    ("get", "/api/v1/dashboard"),
    ("post", "/api/v1/customers/{customer_id}/referral-code"),
    ("post", "/api/v1/referrals"),
    ("post", "/api/v1/subscriptions"),
    ("post", "/api/v1/referrals/{id}/payouts"),
    ("get", "/api/v1/analytics/referrals"),
    ("get", "/api/v1/experiments"),
    ("post", "/api/v1/experiments"),
    ("get", "/api/v1/experiments/{key}"),
    ("get", "/api/v1/experiments/plan"),
    ("post", "/api/v1/experiments/{key}/start"),
    ("post", "/api/v1/experiments/{key}/stop"),
    ("post", "/api/v1/experiments/{key}/assignments"),
    ("post", "/api/v1/experiments/{key}/conversions"),
    ("post", "/api/v1/events"),
    ("get", "/api/v1/analytics/funnel"),
];

#[tokio::test]
async fn openapi_document_is_valid_and_covers_every_route() {
    let app = TestApp::spawn(Kind::Sqlite).await;
    let mut c = app.client();
    let doc = c.get("/api/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let mut listed = Vec::new();
    let mut op_ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            listed.push((method.clone(), path.clone()));
            assert!(op_ids.insert(op["operationId"].as_str().unwrap().to_string()), "duplicate operationId");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no responses"
            );
            // Every path parameter is declared.
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(['{', '}']);
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                assert!(params.iter().any(|p| p["name"] == name && p["in"] == "path"), "{method} {path}: {name}");
            }
        }
    }
    let mut expected: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "the OpenAPI document and the route list differ");
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    for r in all_refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "dangling $ref {r}");
    }
    // Every documented operation is actually routed (never 404/405 for the template itself).
    let mut admin = app.api("admin@yunqi.example").await;
    for (m, p) in ROUTES {
        let path = p.replace("{id}", "999999").replace("{version}", "1").replace("{date}", "2026-12-25");
        let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
        let r = admin.send(method, &path, Some(Body::Json(&json!({})))).await;
        assert_ne!(r.status, 405, "{m} {p}");
        if r.status == 404 {
            assert_eq!(r.json()["error"]["code"], "not_found", "{m} {p} is not routed");
            assert!(p.contains('{'), "{m} {p} answered 404");
        }
    }
    app.stop().await;
}

both!(bad_bodies_get_clear_errors_and_change_nothing, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.api("admin@yunqi.example").await;
    let before = (app.audit_count().await, store::backup::dump(&app.db).await.unwrap());
    let r =
        c.send(Method::POST, "/api/v1/departments", Some(Body::Raw("application/json", b"{\"name\": ".to_vec()))).await;
    assert_eq!(r.status, 422);
    assert!(r.fields()["body"].as_str().unwrap().contains("not valid JSON"));
    let r = c.send(Method::POST, "/api/v1/departments", Some(Body::Raw("application/json", b"[1,2]".to_vec()))).await;
    assert_eq!(r.fields()["body"], "must be a JSON object");
    let r = c.send(Method::POST, "/api/v1/departments", Some(Body::Raw("text/plain", b"name=x".to_vec()))).await;
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (415, json!("unsupported_media_type")));
    // A body over the limit is refused from its Content-Length, before it is read. (The
    // request is written by hand: an HTTP client still sending the body would see the
    // connection close under it.)
    let token = c.bearer_token().unwrap();
    let head = format!(
        "POST /api/v1/departments HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        app.addr,
        2 * 1024 * 1024
    );
    let raw = raw_http(app.addr, head.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("payload_too_large"), "{raw}");
    let r = c.json(Method::POST, "/api/v1/departments", &json!({"name": "x".repeat(81), "kind": "sales"})).await;
    assert_eq!(r.fields()["name"], "must be at most 80 characters");
    let r = c
        .json(
            Method::POST,
            "/api/v1/users",
            &json!({"email": ["a"], "role": "god", "active": "maybe", "department_id": -3}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.fields()["email"], "must be a string");
    assert!(r.fields()["role"].as_str().unwrap().contains("sales_rep"));
    assert_eq!(r.fields()["active"], "must be true or false");
    assert_eq!(r.fields()["department_id"], "must be a positive id");
    assert_eq!(r.fields()["display_name"], "is required");
    assert_eq!(r.fields()["password"], "is required");
    let r = c.get("/api/v1/nothing-here").await;
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (404, json!("not_found")));
    assert_eq!(c.get("/api/v1/users/abc").await.fields()["path"].as_str().map(|s| s.contains("parse")), Some(true));
    let after = (app.audit_count().await, store::backup::dump(&app.db).await.unwrap());
    assert_eq!(before.0, after.0);
    assert_eq!(before.1["departments"], after.1["departments"]);
    assert_eq!(before.1["users"], after.1["users"]);
    app.stop().await;
});

both!(tokens_are_created_used_and_revoked, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut ui = app.login("marketer@yunqi.example").await;
    let r = ui.post_form("/account/tokens", &[("name", "官网表单")]).await;
    assert_eq!(r.status, 201);
    let start = r.text.find("id=\"new-token\">").unwrap() + "id=\"new-token\">".len();
    let secret: String = r.text[start..].chars().take_while(|c| *c != '<').collect();
    assert!(secret.starts_with("mko_"));
    // Shown once: the account page does not show it again.
    assert!(!ui.get("/account").await.text.contains(&secret));
    let mut bot = app.client().with_bearer(&secret);
    assert_eq!(bot.get("/api/v1/me").await.json()["user"]["email"], "marketer@yunqi.example");
    let list = bot.get("/api/v1/tokens").await.json();
    let id = list[0]["id"].as_i64().unwrap();
    assert!(list[0]["last_used_at"].is_string());
    assert!(!serde_json::to_string(&list).unwrap().contains(&secret));
    // Someone else's token cannot be revoked; one's own can, and it stops working at once.
    let mut other = app.api("director@yunqi.example").await;
    assert_eq!(other.delete(&format!("/api/v1/tokens/{id}")).await.status, 404);
    let r = ui.post_form(&format!("/account/tokens/{id}/revoke"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(bot.get("/api/v1/me").await.status, 401);
    let mut garbage = app.client().with_bearer("mko_0000");
    assert_eq!(garbage.get("/api/v1/me").await.json()["error"]["code"], "unauthorized");
    let r = other.json(Method::POST, "/api/v1/tokens", &json!({"name": ""})).await;
    assert_eq!(r.fields()["name"], "is required");
    let r = other.json(Method::POST, "/api/v1/tokens", &json!({"name": "zapier"})).await;
    assert_eq!(r.status, 201);
    assert!(r.json()["secret"].as_str().unwrap().starts_with("mko_"));
    app.stop().await;
});

both!(health_readiness_and_metrics, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let mut c = app.client();
    assert_eq!(c.get("/healthz").await.json()["status"], "ok");
    assert_eq!(c.get("/readyz").await.json()["status"], "ready");
    c.get("/login").await;
    c.get("/api/v1/users/1").await;
    let m = c.get("/metrics").await;
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    assert!(
        m.text.contains("marketops_http_requests_total{method=\"GET\",route=\"/login\",status=\"200\"} 1"),
        "{}",
        m.text
    );
    assert!(m.text.contains("route=\"/api/v1/users/{id}\",status=\"401\""));
    assert!(m.text.contains("marketops_http_request_duration_seconds_bucket{route=\"/login\",le=\"+Inf\"} 1"));
    assert!(m.text.contains("marketops_job_queue_depth 0"));
    // An un-migrated database is not ready.
    let other = testkit::TestDb::new(kind).await;
    let raw = other.connect().await;
    assert!(raw.ready().await.unwrap());
    sqlx_forget_migrations(&raw).await;
    assert!(!raw.ready().await.unwrap());
    // The CLI health check agrees with /readyz.
    let code = marketops::cli::run(
        marketops::cli::Command::Healthcheck { host: Some("127.0.0.1".into()), port: Some(app.addr.port()) },
        testkit::test_config(&app.testdb.url),
    )
    .await
    .unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let code = marketops::cli::run(
        marketops::cli::Command::Healthcheck { host: Some("127.0.0.1".into()), port: Some(1) },
        testkit::test_config(&app.testdb.url),
    )
    .await
    .unwrap();
    assert_eq!(code, std::process::ExitCode::FAILURE);
    app.stop().await;
});

/// Makes a database look as if its newest migration had never been applied.
async fn sqlx_forget_migrations(db: &store::Db) {
    let sql = "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)";
    match db {
        store::Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        store::Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
    }
    .unwrap();
}

/// Writes raw bytes to the server and reads the whole answer.
async fn raw_http(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

/// A burst of clients connecting at once is queued by the kernel until the server accepts
/// them (`startup::listen`): with the usual backlog of 128, the handshakes past it were
/// dropped and those clients waited a second for their retry (L-1 captures from a client
/// opening its pool, a form going out to a campaign). Nothing accepts here, so every
/// connection below completes only if the queue holds it.
#[tokio::test]
async fn the_listener_queues_a_burst_of_connections_beyond_128() {
    let listener = marketops::startup::listen("127.0.0.1", 0).await.expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut open = Vec::new();
    for n in 0..300 {
        let connected =
            tokio::time::timeout(std::time::Duration::from_millis(500), tokio::net::TcpStream::connect(addr))
                .await
                .unwrap_or_else(|_| panic!("connection {n} was not queued: the listener's backlog is too short"));
        open.push(connected.expect("connect"));
    }
    assert_eq!(open.len(), 300);
}

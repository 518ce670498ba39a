//! Real-browser walks (headless Chromium via chromedriver): the foundation, and a lead's
//! whole journey from the public web form to a won deal (L-1…L-9), customers and their
//! analytics (C-2…C-7).

use super::*;
use testkit::browser::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn director_switches_language_reads_playbook_and_edits_company() {
    let app = TestApp::spawn(Kind::Sqlite).await;
    let url = app.url.clone();
    let db = app.db.clone();
    scenario("director", async |b| {
        b.goto(&format!("{url}/company")).await?;
        // Redirected to the login form, which returns to the company page afterwards.
        b.fill("#email", "director@yunqi.example").await?;
        b.fill("#password", testkit::PASSWORD).await?;
        b.click("#login-submit").await?;
        b.wait_text("公司资料").await?;
        b.goto(&format!("{url}/")).await?;
        b.wait_text("市场管理总览").await?;
        b.click("#lang-en").await?;
        b.wait_text("Marketing management overview").await?;
        b.click("#lang-zh").await?;
        b.wait_text("市场管理总览").await?;
        b.goto(&format!("{url}/playbook")).await?;
        let rule = b.text("[id='rule-leads.bant.grade_a_min']").await?;
        anyhow::ensure!(rule.contains("10") && rule.contains("L-3"), "grade A rule shows {rule:?}");
        b.goto(&format!("{url}/company")).await?;
        b.fill("#time_zone", "Mars/Olympus").await?;
        b.click("#company-save").await?;
        let err = b.text("#time_zone-error").await?;
        anyhow::ensure!(err.contains("Mars/Olympus"), "field error shows {err:?}");
        b.snap("company-error").await;
        b.fill("#time_zone", "Asia/Shanghai").await?;
        b.click("select#size option[value='large']").await?;
        b.click("#company-save").await?;
        b.wait_text("已保存").await?;
        let p = store::company::get(&db).await?.ok_or_else(|| anyhow::anyhow!("no company"))?;
        anyhow::ensure!(p.size == domain::company::Size::Large && p.time_zone == "Asia/Shanghai", "saved {p:?}");
        b.click("#logout").await?;
        b.wait_text("登录").await?;
        Ok(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_rep_is_refused_the_admin_pages() {
    let app = TestApp::spawn(Kind::Sqlite).await;
    let url = app.url.clone();
    scenario("sales-rep", async |b| {
        b.goto(&format!("{url}/login")).await?;
        b.fill("#email", "sales.rep@yunqi.example").await?;
        b.fill("#password", testkit::PASSWORD).await?;
        b.click("#login-submit").await?;
        b.wait_text("刘洋").await?;
        for path in ["/org/users/new", "/org/departments/new", "/audit", "/playbook/edit"] {
            b.goto(&format!("{url}{path}")).await?;
            let status = b.text("#error-status").await?;
            anyhow::ensure!(status == "403", "{path} answered {status}");
        }
        // The navigation does not offer what the role cannot use.
        b.goto(&format!("{url}/")).await?;
        let nav = b.text("header nav").await?;
        anyhow::ensure!(!nav.contains("审计日志"), "nav shows the audit log: {nav}");
        Ok(())
    })
    .await;
    app.stop().await;
}

async fn log_in(b: &mut testkit::browser::Browser, url: &str, email: &str, name: &str) -> anyhow::Result<()> {
    b.goto(&format!("{url}/login")).await?;
    b.fill("#email", email).await?;
    b.fill("#password", testkit::PASSWORD).await?;
    b.click("#login-submit").await?;
    b.wait_text(name).await
}

/// L-1 → L-9 in a real browser, one role at a time: the marketer runs a campaign with a
/// public form; a visitor fills it in; the A lead is routed to the east rep (L-3, L-4); the
/// clock passes the 6-working-hour first response (L-5) and the sales manager finds the
/// breach in the notifications and the SLA report; the rep accepts the hand-off (L-7),
/// converts it and wins the deal (L-8); the marketer sees the revenue on the campaign (L-9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_journey_from_web_form_to_won_deal() {
    let app = TestApp::spawn(Kind::Sqlite).await;
    let url = app.url.clone();
    let db = app.db.clone();
    let runner = marketops::jobs::Runner::new(
        db.clone(),
        app.clock.as_clock(),
        store::auth::SessionPolicy::default(),
        store::auth::ThrottlePolicy::default(),
    );
    let clock = app.clock.clone();
    let rep_id = app.user_id("sales.rep@yunqi.example").await;
    scenario("lead-journey", async |b| {
        // The marketer creates the campaign and opens its public form.
        log_in(b, &url, "marketer@yunqi.example", "李娜").await?;
        b.goto(&format!("{url}/campaigns")).await?;
        b.fill("#name", "官网试用申请").await?;
        b.click("select#channel option[value='website_form']").await?;
        b.fill("#planned_cost", "20000").await?;
        b.click("#campaign-form button[type='submit']").await?;
        b.wait_text("官网试用申请").await?;
        let campaign = store::campaigns::list(&db)
            .await?
            .into_iter()
            .find(|c| c.name == "官网试用申请")
            .ok_or_else(|| anyhow::anyhow!("campaign not saved"))?;
        b.goto(&format!("{url}/campaigns/{}", campaign.id)).await?;
        b.click("#public-form-link").await?;
        b.wait("#public-form").await?;
        b.goto(&format!("{url}/")).await?;
        b.click("#logout").await?;
        b.wait("#login-submit").await?;
        // A visitor fills the form in (no account needed).
        b.goto(&format!("{url}/f/{}?utm_source=website", campaign.id)).await?;
        b.fill("#name", "周杰").await?;
        b.fill("#company", "苏州精工制造").await?;
        b.fill("#email", "zhou.jie@jinggong.example").await?;
        b.fill("#phone", "139 1234 5678").await?;
        b.fill("#province", "江苏").await?;
        b.fill("#city", "苏州").await?;
        for (q, a) in [
            ("budget", "approved"),
            ("authority", "decision_maker"),
            ("need", "clear"),
            ("timeline", "within_3_months"),
        ] {
            b.click(&format!("select#{q} option[value='{a}']")).await?;
        }
        b.click("#form-submit").await?;
        b.wait("#form-thanks").await?;
        let lead =
            store::leads::list(&db, store::leads::Scope::All, &store::leads::Filter { limit: 5, ..Default::default() })
                .await?
                .into_iter()
                .find(|l| l.email.as_deref() == Some("zhou.jie@jinggong.example"))
                .ok_or_else(|| anyhow::anyhow!("the form created no lead"))?;
        anyhow::ensure!(
            lead.grade == "A" && lead.owner_id == Some(rep_id) && lead.campaign_id == Some(campaign.id),
            "graded/routed as {lead:?}"
        );
        // Monday 10:00 + 7 h: past the 17:00 first-response deadline; one scan finds it.
        clock.advance_secs(7 * 3600);
        runner.tick().await?;
        log_in(b, &url, "sales.manager@yunqi.example", "张伟").await?;
        b.goto(&format!("{url}/notifications")).await?;
        let notes = b.text("#notifications").await?;
        anyhow::ensure!(notes.contains("首次响应超时") && notes.contains("周杰"), "notifications: {notes}");
        b.goto(&format!("{url}/reports/sla")).await?;
        let counts = b.text("#sla-counts").await?;
        anyhow::ensure!(counts.contains("刘洋") && counts.contains("首次响应超时"), "SLA report: {counts}");
        b.click("#logout").await?;
        // The rep accepts the hand-off, converts the lead and wins the deal.
        log_in(b, &url, "sales.rep@yunqi.example", "刘洋").await?;
        b.goto(&format!("{url}/leads")).await?;
        b.click(&format!("#lead-list a[href='/leads/{}']", lead.id)).await?;
        b.wait("#lead-grade").await?;
        b.click("#accept-lead").await?;
        b.wait("#lead-convert").await?;
        b.fill("#deal-name", "精工私有云").await?;
        b.fill("#convert-amount", "120000").await?;
        b.click("#convert-lead").await?;
        b.wait("#stage-form").await?;
        b.click("select#stage option[value='closed_won']").await?;
        b.click("#save-stage").await?;
        b.wait("#deal-cycle").await?;
        b.snap("won").await;
        let deal = store::deals::deal_of_lead(&db, lead.id).await?.ok_or_else(|| anyhow::anyhow!("no deal"))?;
        anyhow::ensure!(deal.stage == "closed_won" && deal.amount_fen == 12_000_000, "deal {deal:?}");
        b.click("#logout").await?;
        // The marketer sees the won revenue on the campaign's row of the channel report.
        log_in(b, &url, "marketer@yunqi.example", "李娜").await?;
        b.goto(&format!("{url}/reports/channels")).await?;
        let row = b.text("#campaign-table").await?;
        anyhow::ensure!(row.contains("官网试用申请") && row.contains("120,000"), "channel report: {row}");
        Ok(())
    })
    .await;
    app.stop().await;
}

/// C-1, C-2 in a real browser: orders arrive by the API; a viewer (data transparency, C-7)
/// opens *Customers* from the navigation, reads the segments with their actions, looks at
/// another date, opens a customer's page with its orders and scores, and the funnel (C-5)
/// with its chart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_reads_rfm_segments_and_a_customer_page() {
    let app = TestApp::spawn(Kind::Sqlite).await;
    let url = app.url.clone();
    let mut fin = app.api("finance@yunqi.example").await;
    let orders: Vec<Value> = (0..40)
        .map(|i| {
            json!({"order_id": format!("R{i}"), "customer_id": format!("{}", 100 + i % 12),
                   "order_date": format!("2026-{:02}-{:02}", i % 10 + 1, i % 27 + 1), "amount": format!("{}.00", 50 + i * 7),
                   "customer_name": format!("客户{}", i % 12)})
        })
        .collect();
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &json!({"orders": orders})).await.status, 201);
    let events: Vec<Value> = (0..30)
        .map(|i| {
            let kind = ["exposure", "click", "conversion", "repurchase"][(i % 7).min(3)];
            json!({"user_id": format!("u{}", i / 7), "channel": "douyin", "campaign": "v1", "type": kind,
                   "ts": format!("2026-06-{:02}T10:{:02}:00Z", 10 + i / 7, i % 7)})
        })
        .collect();
    assert_eq!(fin.json(Method::POST, "/api/v1/events", &json!({"events": events})).await.status, 201);
    scenario("customers", async |b| {
        log_in(b, &url, "viewer@yunqi.example", "吴昊").await?;
        b.click("header nav a[href='/customers']").await?;
        b.wait("#segment-list").await?;
        let segments = b.text("#segment-list").await?;
        anyhow::ensure!(segments.contains("高价值忠诚客户") && segments.contains("推送限量定制款"), "{segments}");
        // Another date (the date widget's typing order depends on the browser's locale; the
        // form submits by GET, so the address is what it sends).
        b.goto(&format!("{url}/customers?as_of=2026-06-30")).await?;
        b.wait_text("2026-05-31 → 2026-06-30").await?;
        b.snap("segments").await;
        b.click("#customer-list a").await?;
        b.wait("#order-list").await?;
        let facts = b.text("#customer-rfm").await?;
        anyhow::ensure!(facts.contains("R · F · M"), "{facts}");
        b.snap("customer").await;
        // The funnel, drawn by ECharts from the API's JSON.
        b.goto(&format!("{url}/reports/funnel?from=2026-06-01&to=2026-06-30")).await?;
        b.wait("#funnel-table").await?;
        b.wait(".chart svg").await?;
        b.snap("funnel").await;
        // C-7: the dashboard from the navigation, every chart drawn beside its table.
        b.click("header nav a[href='/dashboard']").await?;
        b.wait("#dash-experiments").await?;
        b.wait("#dash-clv .chart svg").await?;
        b.wait("#dash-segments .chart svg").await?;
        let top = b.text("#dash-top-customers").await?;
        anyhow::ensure!(top.contains("¥"), "{top}");
        b.snap("dashboard").await;
        // C-3: from a top customer to its page with its lifetime value.
        b.click("#dash-top-customers a").await?;
        b.wait("#customer-clv").await?;
        b.snap("customer-value").await;
        Ok(())
    })
    .await;
    app.stop().await;
}

/// C-4 and C-3 in a real browser: finance pays a qualified referral's rewards from the
/// referral report (the row's Pay button, a payment reference), sees it paid with nothing
/// left owed, and reads subscription retention and NDR on the lifetime-value page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_pays_a_referral_and_reads_subscription_retention() {
    let app = TestApp::spawn(Kind::Sqlite).await;
    let url = app.url.clone();
    let mut fin = app.api("finance@yunqi.example").await;
    let first =
        json!({"orders": [{"order_id": "A1", "customer_id": "100", "order_date": "2026-06-01", "amount": "300.00"}]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &first).await.status, 201);
    let code = fin.json(Method::POST, "/api/v1/customers/100/referral-code", &json!({})).await.json()["code"]
        .as_str()
        .unwrap()
        .to_string();
    let r = fin
        .json(
            Method::POST,
            "/api/v1/referrals",
            &json!({"code": code, "customer_id": "300", "referred_on": "2026-10-01"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let later =
        json!({"orders": [{"order_id": "B1", "customer_id": "300", "order_date": "2026-10-20", "amount": "250.00"}]});
    assert_eq!(fin.json(Method::POST, "/api/v1/orders", &later).await.status, 201);
    let subs = json!({"subscriptions": [
        {"subscription_id": "S1", "customer_id": "100", "plan": "专业版", "start_date": "2025-01-01", "mrr": "2990"},
        {"subscription_id": "S2", "customer_id": "300", "plan": "基础版", "start_date": "2025-01-10", "end_date": "2025-06-10", "mrr": "990"}]});
    assert_eq!(fin.json(Method::POST, "/api/v1/subscriptions", &subs).await.status, 201);
    scenario("referral-payout", async |b| {
        log_in(b, &url, "finance@yunqi.example", "赵敏").await?;
        b.goto(&format!("{url}/reports/referrals")).await?;
        b.wait("#referral-list").await?;
        let owed = b.text("#referral-totals").await?;
        anyhow::ensure!(owed.contains("¥75.00"), "25 to the referrer and 50 welcome owed: {owed}");
        b.fill("#referral-list input[name='reference']", "TX-0001").await?;
        b.snap("before-pay").await;
        b.click("#referral-list form button").await?;
        b.wait_text("已保存").await?;
        let row = b.text("#referral-list tbody tr").await?;
        anyhow::ensure!(row.contains("¥75.00") && row.contains("¥0.00"), "paid 75, nothing owed: {row}");
        anyhow::ensure!(
            b.client.find(fantoccini::Locator::Css("#referral-list form")).await.is_err(),
            "no Pay button left"
        );
        b.goto(&format!("{url}/reports/clv")).await?;
        let table = b.text("#subscription-retention").await?;
        anyhow::ensure!(table.contains("2025-01") && table.contains("50.0%"), "{table}");
        b.snap("subscriptions").await;
        Ok(())
    })
    .await;
    let paid: i64 = store::on_db!(&app.db, p => sqlx::query_scalar("SELECT count(*) FROM referral_payouts WHERE reference = 'TX-0001'").fetch_one(p).await).unwrap();
    assert_eq!(paid, 1);
    app.stop().await;
}

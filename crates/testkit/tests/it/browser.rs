//! Real-browser walks through the foundation (headless Chromium via chromedriver).

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

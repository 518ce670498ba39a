//! A real Chromium, headless, driven through chromedriver (Debian's `chromium` and
//! `chromium-driver`, installed by the test command).

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    name: String,
    step: usize,
    /// A picture of every page visited, written out only if the scenario fails.
    shots: Vec<(String, Vec<u8>)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn find(cands: &[&str], env: &str) -> String {
    if let Ok(p) = std::env::var(env) {
        return p;
    }
    cands.iter().find(|p| std::path::Path::new(p).exists()).map_or_else(|| cands[0].to_string(), |p| p.to_string())
}

/// Where screenshots of failing browser tests go.
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/browser-screenshots"))
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium profile. `name` labels screenshots.
    pub async fn start(name: &str) -> anyhow::Result<Browser> {
        let driver_bin = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"], "CHROMEDRIVER");
        let chrome_bin = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"], "CHROMIUM");
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("cannot start {driver_bin}: {e} (the test command installs chromium-driver)")
            })?;
        let profile = tempfile::tempdir()?;
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chrome_bin,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--disable-quic", "--window-size=1280,900", "--lang=zh-CN",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                // A Chinese user's browser: MarketOps is zh-CN first.
                "prefs": { "intl.accept_languages": "zh-CN,zh" }
            }
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("built as an object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_err = String::new();
        for _ in 0..100 {
            let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            builder.capabilities(caps.clone());
            match builder.connect(&url).await {
                Ok(client) => {
                    return Ok(Browser {
                        client,
                        driver,
                        _profile: profile,
                        name: name.to_string(),
                        step: 0,
                        shots: Vec::new(),
                    });
                }
                Err(e) => {
                    last_err = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let mut driver = driver;
        let _ = driver.kill();
        anyhow::bail!("chromedriver did not start a session: {last_err}")
    }

    pub async fn goto(&mut self, url: &str) -> anyhow::Result<()> {
        self.step += 1;
        self.client.goto(url).await?;
        self.snap(url).await;
        Ok(())
    }

    /// Keeps a screenshot of the current page for the failure report.
    pub async fn snap(&mut self, label: &str) {
        if let Ok(png) = self.client.screenshot().await {
            let label: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            self.shots.push((format!("{:02}-{label}", self.step), png));
        }
    }

    fn write_shots(&self) -> Vec<PathBuf> {
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        self.shots
            .iter()
            .filter_map(|(label, png)| {
                let path = dir.join(format!("{}-{label}.png", self.name));
                std::fs::write(&path, png).ok().map(|_| path)
            })
            .collect()
    }

    /// Waits for `css` to appear, up to 10 s.
    pub async fn wait(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        Ok(self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await?)
    }

    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.wait(css).await?.text().await?)
    }

    pub async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let e = self.wait(css).await?;
        e.clear().await?;
        e.send_keys(value).await?;
        Ok(())
    }

    pub async fn click(&mut self, css: &str) -> anyhow::Result<()> {
        self.step += 1;
        self.wait(css).await?.click().await?;
        Ok(())
    }

    /// Waits until the page's text contains `needle` (after a navigation or swap).
    pub async fn wait_text(&mut self, needle: &str) -> anyhow::Result<()> {
        for _ in 0..100 {
            // The page may be between documents (a form just submitted): retry until it settles.
            let body = match self.client.find(Locator::Css("body")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if body.contains(needle) {
                let label = format!("text-{}", self.step);
                self.snap(&label).await;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the page never showed {needle:?}")
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Runs a browser scenario; on failure saves a screenshot of the page it failed on.
pub async fn scenario<F>(name: &str, f: F)
where
    F: AsyncFnOnce(&mut Browser) -> anyhow::Result<()>,
{
    let mut b = Browser::start(name).await.expect("start the browser");
    let result = f(&mut b).await;
    if let Err(e) = &result {
        b.snap("failure").await;
        let shots = b.write_shots();
        let url = b.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        b.close().await;
        panic!("browser scenario `{name}` failed at {url}: {e:#}\nscreenshots: {shots:?}");
    }
    b.close().await;
}

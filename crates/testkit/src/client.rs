//! An HTTP client that keeps the session cookie and sends `Origin` like a browser would.

use reqwest::Method;
use serde_json::Value;

pub struct Client {
    http: reqwest::Client,
    pub base: String,
    pub session: Option<String>,
    pub lang: Option<String>,
    bearer: Option<String>,
    /// Sent on unsafe requests; `None` sends no Origin (a non-browser client).
    pub origin: Option<String>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// Every `Set-Cookie` header.
    pub fn cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
    }

    pub fn location(&self) -> String {
        self.header("location").unwrap_or_default()
    }

    /// The field-error map of an API error body.
    pub fn fields(&self) -> Value {
        self.json()["error"]["fields"].clone()
    }
}

impl Client {
    pub fn new(base: &str) -> Client {
        marketops::jobs::install_tls();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client");
        Client { http, base: base.to_string(), session: None, lang: None, bearer: None, origin: Some(base.to_string()) }
    }

    pub fn bearer_token(&self) -> Option<String> {
        self.bearer.clone()
    }

    pub fn with_bearer(mut self, token: &str) -> Client {
        self.bearer = Some(token.to_string());
        self
    }

    fn remember(&mut self, r: &Resp) {
        for c in r.cookies() {
            let first = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                let v = (!v.is_empty()).then(|| v.to_string());
                match k {
                    "mko_session" => self.session = v,
                    "mko_lang" => self.lang = v,
                    _ => {}
                }
            }
        }
    }

    pub async fn send(&mut self, method: Method, path: &str, body: Option<Body<'_>>) -> Resp {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        let mut cookies = Vec::new();
        if let Some(s) = &self.session {
            cookies.push(format!("mko_session={s}"));
        }
        if let Some(l) = &self.lang {
            cookies.push(format!("mko_lang={l}"));
        }
        if !cookies.is_empty() {
            req = req.header("cookie", cookies.join("; "));
        }
        if let Some(b) = &self.bearer {
            req = req.bearer_auth(b);
        }
        if method != Method::GET
            && let Some(o) = &self.origin
        {
            req = req.header("origin", o);
        }
        req = match body {
            None => req,
            Some(Body::Form(pairs)) => req.form(pairs),
            Some(Body::Json(v)) => req.json(v),
            Some(Body::Raw(ct, bytes)) => req.header("content-type", ct).body(bytes),
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let r = Resp { status, headers, text };
        self.remember(&r);
        r
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    pub async fn post_form(&mut self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.send(Method::POST, path, Some(Body::Form(pairs))).await
    }

    pub async fn json(&mut self, method: Method, path: &str, body: &Value) -> Resp {
        self.send(method, path, Some(Body::Json(body))).await
    }

    pub async fn delete(&mut self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }
}

pub enum Body<'a> {
    Form(&'a [(&'a str, &'a str)]),
    Json(&'a Value),
    Raw(&'static str, Vec<u8>),
}

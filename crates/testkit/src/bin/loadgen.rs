//! Load generator for the benchmarks in `bench/`: runs in its own process and talks to a
//! running `marketops serve` over loopback HTTP, or writes the reference rows straight into
//! a database.
//!
//!   loadgen capture --url http://127.0.0.1:18182 --token T --concurrency 32 --seconds 10
//!   loadgen capture … --rate 4000            # open loop: a request every 1/rate s
//!   loadgen plain-insert --database-url sqlite://plain.db --rows 50000
//!   loadgen csv --rows 1000000 > leads.csv
//!   loadgen pages --url … --header 'Cookie: …' --paths /leads,/leads/1 --requests 300
//!
//! Latency in the open loop counts from when a request was due, not when it was sent, so a
//! stalled server cannot hide its queueing (no coordinated omission).

// The server's allocator: the C library's cost the generator a fifth of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// POST /api/v1/leads with a fresh Idempotency-Key each time.
    Capture {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Requests per second (open loop); without it, each worker sends as fast as it can.
        #[arg(long)]
        rate: Option<f64>,
        /// The first lead number: runs into one database take disjoint ranges, so every
        /// capture creates a lead (unique e-mail and phone per number).
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// GET this path instead of capturing (the cost of HTTP and authentication alone).
        #[arg(long)]
        get: Option<String>,
        /// E-mail, phone and idempotency key spread over their whole range rather than
        /// in order (still one per lead number): each capture then lands on a page of its
        /// own in every unique index, as keys from real clients do.
        #[arg(long)]
        random_keys: bool,
        /// Also write each answered request's due time and latency (µs from the start,
        /// µs) to this file, one line each in the order they were due: where a tail comes
        /// from (a stall, a burst) shows in time.
        #[arg(long)]
        latencies: Option<std::path::PathBuf>,
    },
    /// The physical limit: the same rows inserted one committed transaction at a time into
    /// a plain table, with the server's connection settings.
    PlainInsert {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 50_000)]
        rows: u64,
    },
    /// Writes `rows` generated leads as CSV (the import benchmark's file) to stdout.
    Csv {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 0)]
        first: u64,
    },
    /// Writes `rows` generated orders as CSV (`order_id,customer_id,order_date,amount`) to
    /// stdout: customers 1..=customers, half the orders from the first tenth of them (heavy
    /// buyers), dates over 2024–2025, amounts 1.00–2,000.00. Seeded: the same file every time.
    Orders {
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 800_000)]
        customers: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Writes orders CSV of `customers` customers who buy as BG/NBD assumes (C-3): each has
    /// a purchase rate λ ~ Gamma(0.6, 40 days) and a drop-out chance p ~ Beta(1.2, 4) after
    /// every purchase, and spends around a level ν ~ Gamma(3, 1/200 yuan) per order; first
    /// purchases over 2024, observed to the end of 2025. Seeded.
    ClvOrders {
        #[arg(long, default_value_t = 1_000_000)]
        customers: u64,
        #[arg(long, default_value_t = 11)]
        seed: u64,
    },
    /// Writes funnel events as CSV (`user_id,channel,campaign,type,ts`) to stdout: `users`
    /// users, each in one of 6 channels × 4 campaigns, going down exposure → click →
    /// conversion → repurchase with per-channel odds, some steps repeated, some events out of
    /// order or at the same second as the step before (which must not advance), over the first
    /// half of 2026, until `rows` events are written. Seeded.
    Events {
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 2_000_000)]
        users: u64,
        #[arg(long, default_value_t = 5)]
        seed: u64,
    },
    /// Fits BG/NBD and Gamma-Gamma to the customers of a `marketops analytics clv --format
    /// csv` file (frequency, recency, T, monetary) `runs` times; prints the median time and
    /// the parameters (the fit alone, on exactly what the reference fitter reads).
    ClvFit {
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// The physical limit for an orders import: the rows of an orders CSV inserted into a
    /// table without indexes, in one transaction, multi-row statements (no checks, no
    /// customers). Prints rows per second.
    BulkOrders {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// GETs each path `requests` times, signed in by a header (`Cookie: …` for pages,
    /// `Authorization: Bearer …` for the API); prints the latency quantiles per path.
    Pages {
        #[arg(long)]
        url: String,
        #[arg(long)]
        header: String,
        #[arg(long, value_delimiter = ',')]
        paths: Vec<String>,
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
}

/// The n-th generated lead: realistic Chinese names, companies and BANT answers, unique
/// e-mail and phone so every capture creates a lead.
pub fn lead(n: u64) -> Value {
    lead_keyed(n, false)
}

/// A bijection of the 64-bit numbers that looks random (SplitMix64's finaliser): distinct
/// lead numbers keep distinct keys.
fn scatter(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `lead(n)`, with its e-mail and phone scattered over their ranges when `random` (the
/// phone's last nine digits by a bijection of 0..10⁹: 3¹⁸ is prime to 10⁹). Scattered
/// phones count their second digit down from 9 where the ordered ones count up from 3, so
/// below 6·10⁹ leads the two never meet: a store holding both would otherwise merge a
/// thousandth of the scattered captures into earlier leads (L-2), answered 200, not 201.
fn lead_keyed(n: u64, random: bool) -> Value {
    const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "欧阳"];
    const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "磊", "洋", "晓东", "思远", "雨涵"];
    const WORDS: &[&str] = &["云帆", "数澜", "星河", "智联", "恒信", "天工", "瑞达", "博远"];
    const PLACES: &[(&str, &str)] =
        &[("上海", "上海"), ("江苏", "苏州"), ("浙江", "杭州"), ("北京", "北京"), ("山东", "青岛"), ("广东", "深圳")];
    const CHANNELS: &[&str] = &["baidu_sem", "wechat", "website_form", "douyin", "trade_show", "webinar"];
    let i = n as usize;
    let (province, city) = PLACES[i % PLACES.len()];
    let budget = ["approved", "planned", "unknown"][i % 3];
    let authority = ["decision_maker", "influencer", "user"][(i / 3) % 3];
    let need = ["critical", "clear", "moderate", "exploring"][i % 4];
    let timeline = ["within_3_months", "within_12_months", "later"][(i / 2) % 3];
    json!({
        "name": format!("{}{}", SURNAMES[i % SURNAMES.len()], GIVEN[(i / 7) % GIVEN.len()]),
        "company": format!("{city}{}科技有限公司", WORDS[(i / 3) % WORDS.len()]),
        "email": if random { format!("{:016x}@bench.example", scatter(n)) } else { format!("lead{n}@bench.example") },
        // Mainland mobile numbers, unique up to 7·10⁹ leads.
        "phone": if random {
            format!("1{}{:09}", 9 - (n / 1_000_000_000) % 7, ((n % 1_000_000_000) * 387_420_489 + 123_456_789) % 1_000_000_000)
        } else {
            format!("1{}{:09}", 3 + (n / 1_000_000_000) % 7, n % 1_000_000_000)
        },
        "province": province,
        "city": city,
        "channel": CHANNELS[i % CHANNELS.len()],
        "budget": budget, "authority": authority, "need": need, "timeline": timeline,
        "utm_source": "bench",
    })
}

/// Requests made ahead per second of a closed loop (more than any run has reached).
const PREMADE_PER_SECOND: f64 = 20_000.0;

/// Where the requests go, and the header lines every one of them carries.
struct Target {
    /// `--random-keys`.
    random_keys: bool,
    addr: String,
    path: String,
    /// `Host` and `Authorization`, each line ending in CRLF.
    headers: String,
}

impl Target {
    fn new(url: &str, path: &str, token: &str, random_keys: bool) -> Target {
        let url: reqwest::Url = url.parse().expect("--url");
        let host = url.host_str().expect("--url has a host");
        let addr = format!("{host}:{}", url.port_or_known_default().unwrap_or(80));
        let path = format!("{}{path}", url.path().trim_end_matches('/'));
        Target { headers: format!("Host: {addr}\r\nAuthorization: Bearer {token}\r\n"), addr, path, random_keys }
    }

    /// The capture of the n-th generated lead, with its idempotency key: a whole request.
    fn capture(&self, n: u64) -> Vec<u8> {
        let body = serde_json::to_vec(&lead_keyed(n, self.random_keys)).expect("JSON");
        let key = if self.random_keys { format!("bench-{:016x}", scatter(!n)) } else { format!("bench-{n}") };
        let mut r = format!(
            "POST {} HTTP/1.1\r\n{}Content-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.headers,
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(&body);
        r
    }

    fn get(&self) -> Vec<u8> {
        format!("GET {} HTTP/1.1\r\n{}\r\n", self.path, self.headers).into_bytes()
    }
}

/// One keep-alive HTTP/1.1 connection: a request written whole, its answer read to the end
/// of its body (`Content-Length`; the server sends no other kind to these requests).
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> std::io::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(8192) })
    }

    /// Sends `request`; the answer's status code.
    async fn round_trip(&mut self, request: &[u8]) -> std::io::Result<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        self.stream.write_all(request).await?;
        self.buf.clear();
        let (head_end, status, length) = loop {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = std::str::from_utf8(&self.buf[..end]).map_err(|_| bad("a head that is not UTF-8"))?;
            let status = head.get(9..12).and_then(|c| c.parse().ok()).ok_or_else(|| bad("no status"))?;
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .ok_or_else(|| bad("no Content-Length"))?;
            break (end + 4, status, length);
        };
        while self.buf.len() < head_end + length {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(status)
    }
}

struct Stats {
    lat_us: Vec<u64>,
    /// (due, latency) in µs from the start: kept for an open loop and for `--latencies`.
    timeline: Vec<(u64, u64)>,
    errors: u64,
}

fn report(name: &str, mut s: Stats, secs: f64) -> Value {
    s.lat_us.sort_unstable();
    let q = |p: f64| {
        if s.lat_us.is_empty() {
            0.0
        } else {
            s.lat_us[((s.lat_us.len() as f64 * p) as usize).min(s.lat_us.len() - 1)] as f64 / 1000.0
        }
    };
    json!({
        "measure": name, "ok": s.lat_us.len(), "errors": s.errors, "seconds": secs,
        "per_second": s.lat_us.len() as f64 / secs,
        "p50_ms": q(0.50), "p90_ms": q(0.90), "p99_ms": q(0.99), "max_ms": q(1.0),
    })
}

struct Load<'a> {
    url: &'a str,
    token: &'a str,
    concurrency: usize,
    seconds: f64,
    rate: Option<f64>,
    first: u64,
    get: Option<String>,
    latencies: Option<std::path::PathBuf>,
    random_keys: bool,
}

async fn capture(l: Load<'_>) -> Value {
    let Load { url, token, concurrency, seconds, rate, first, get, latencies, random_keys } = l;
    // An open loop's tail is reported second by second too: a tail in every second is a
    // server short of capacity, a tail in one or two a stall (of the server or the host).
    let keep_timeline = latencies.is_some() || rate.is_some();
    // The generator shares the two cores with the server: what it spends per request is
    // taken from the server, and its own delays count as latency. So it is lean, as wrk
    // is: one connection per worker, requests made before the clock starts (more as
    // needed) and written whole, answers read to their end and only their status looked at.
    let target = Arc::new(Target::new(url, get.as_deref().unwrap_or("/api/v1/leads"), token, random_keys));
    let expected = match (get.is_some(), rate) {
        (true, _) => 0,
        (false, Some(r)) => (r * seconds).ceil() as u64,
        (false, None) => (PREMADE_PER_SECOND * seconds) as u64,
    };
    let requests: Arc<Vec<Vec<u8>>> = Arc::new((0..expected).map(|n| target.capture(first + n)).collect());
    let get_request = Arc::new(target.get());
    let next = Arc::new(AtomicU64::new(0));
    let get = get.is_some();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (target, next, requests, get_request) =
            (target.clone(), next.clone(), requests.clone(), get_request.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = Stats { lat_us: Vec::new(), timeline: Vec::new(), errors: 0 };
            let mut conn: Option<Conn> = None;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                // Open loop: request n is due at start + n / rate, whoever sends it.
                let due = match rate {
                    Some(r) => start + Duration::from_secs_f64(n as f64 / r),
                    None => Instant::now(),
                };
                if due >= end {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep(due - now).await;
                }
                let made;
                let request: &[u8] = if get {
                    &get_request
                } else if let Some(r) = requests.get(n as usize) {
                    r
                } else {
                    made = target.capture(first + n);
                    &made
                };
                let status = match conn.as_mut() {
                    Some(c) => c.round_trip(request).await,
                    None => match Conn::open(&target.addr).await {
                        Ok(c) => conn.insert(c).round_trip(request).await,
                        Err(e) => Err(e),
                    },
                };
                let ok = match status {
                    Ok(status) => status == if get { 200 } else { 201 },
                    Err(_) => {
                        // A broken connection is opened again for the next request.
                        conn = None;
                        false
                    }
                };
                if ok {
                    let latency = due.elapsed().as_micros() as u64;
                    s.lat_us.push(latency);
                    if keep_timeline {
                        s.timeline.push(((due - start).as_micros() as u64, latency));
                    }
                } else {
                    s.errors += 1;
                }
            }
            s
        }));
    }
    let mut all = Stats { lat_us: Vec::new(), timeline: Vec::new(), errors: 0 };
    for t in tasks {
        let s = t.await.expect("worker");
        all.lat_us.extend(s.lat_us);
        all.timeline.extend(s.timeline);
        all.errors += s.errors;
    }
    all.timeline.sort_unstable();
    let each_second = p99_each_second(&all.timeline);
    if let Some(path) = latencies {
        let lines: String = all.timeline.iter().map(|(due, lat)| format!("{due} {lat}\n")).collect();
        std::fs::write(&path, lines).expect("--latencies file");
    }
    let secs = start.elapsed().as_secs_f64();
    let what = match (get, rate.is_some()) {
        (true, _) => "GET (HTTP and authentication only)",
        (false, true) => "capture (open loop)",
        (false, false) => "capture (closed loop)",
    };
    let mut out = report(what, all, secs);
    if rate.is_some() {
        out["p99_ms_each_second"] = json!(each_second);
    }
    out
}

/// The p99 latency (ms, one decimal) of the requests due in each whole second of the run.
fn p99_each_second(timeline: &[(u64, u64)]) -> Vec<f64> {
    let mut seconds: Vec<Vec<u64>> = Vec::new();
    for &(due, latency) in timeline {
        let i = (due / 1_000_000) as usize;
        if seconds.len() <= i {
            seconds.resize_with(i + 1, Vec::new);
        }
        seconds[i].push(latency);
    }
    seconds
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|mut s| {
            s.sort_unstable();
            let p99 = s[((s.len() as f64 * 0.99) as usize).min(s.len() - 1)];
            (p99 as f64 / 100.0).round() / 10.0
        })
        .collect()
}

async fn plain_insert(url: &str, rows: u64) -> Value {
    // The server's own connection settings (WAL, synchronous NORMAL on SQLite).
    let db = store::Db::connect(url).await.expect("database");
    let create = "CREATE TABLE IF NOT EXISTS plain_leads (id BIGINT PRIMARY KEY, name TEXT, company TEXT, email TEXT, \
                  phone TEXT, province TEXT, city TEXT, channel TEXT, budget TEXT, authority TEXT, need TEXT, timeline TEXT)";
    let ins = "INSERT INTO plain_leads (id, name, company, email, phone, province, city, channel, budget, authority, need, \
               timeline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    let t = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let start = Instant::now();
    let mut s = Stats { lat_us: Vec::new(), timeline: Vec::new(), errors: 0 };
    macro_rules! run {
        ($pool:expr) => {{
            sqlx::query(create).execute($pool).await.expect("create");
            for n in 0..rows {
                let l = lead(n);
                let t0 = Instant::now();
                let r = sqlx::query(ins)
                    .bind(n as i64)
                    .bind(t(&l, "name"))
                    .bind(t(&l, "company"))
                    .bind(t(&l, "email"))
                    .bind(t(&l, "phone"))
                    .bind(t(&l, "province"))
                    .bind(t(&l, "city"))
                    .bind(t(&l, "channel"))
                    .bind(t(&l, "budget"))
                    .bind(t(&l, "authority"))
                    .bind(t(&l, "need"))
                    .bind(t(&l, "timeline"))
                    .execute($pool)
                    .await;
                match r {
                    Ok(_) => s.lat_us.push(t0.elapsed().as_micros() as u64),
                    Err(_) => s.errors += 1,
                }
            }
        }};
    }
    match &db {
        store::Db::Sqlite(p) => run!(p),
        store::Db::Postgres(p) => run!(p),
    }
    report("plain insert loop (one committed row per statement)", s, start.elapsed().as_secs_f64())
}

async fn pages(url: &str, header: &str, paths: &[String], requests: usize) -> Value {
    let client = reqwest::Client::new();
    let (hname, hvalue) = header.split_once(':').map(|(a, b)| (a.trim(), b.trim())).expect("--header 'Name: value'");
    let mut out = Vec::new();
    for p in paths {
        let mut s = Stats { lat_us: Vec::new(), timeline: Vec::new(), errors: 0 };
        for _ in 0..requests {
            let t0 = Instant::now();
            let r = client.get(format!("{}{p}", url.trim_end_matches('/'))).header(hname, hvalue).send().await;
            match r {
                Ok(resp) if resp.status().is_success() => {
                    let _ = resp.bytes().await;
                    s.lat_us.push(t0.elapsed().as_micros() as u64);
                }
                _ => s.errors += 1,
            }
        }
        let mut v = report(p, s, 0.0);
        v.as_object_mut().map(|o| o.remove("per_second"));
        out.push(v);
    }
    Value::Array(out)
}

const CSV_FIELDS: [&str; 11] =
    ["name", "company", "email", "phone", "province", "city", "channel", "budget", "authority", "need", "timeline"];

fn csv(rows: u64, first: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    writeln!(out, "{}", CSV_FIELDS.join(",")).expect("stdout");
    for n in first..first + rows {
        let l = lead(n);
        // No generated value holds a comma, a quote or a line break.
        let cells: Vec<&str> = CSV_FIELDS.iter().map(|f| l[*f].as_str().unwrap_or_default()).collect();
        writeln!(out, "{}", cells.join(",")).expect("stdout");
    }
    out.flush().expect("stdout");
}

/// SplitMix64, for seeded data.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn orders(rows: u64, customers: u64, seed: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    writeln!(out, "order_id,customer_id,order_date,amount").expect("stdout");
    let first = jiff::civil::date(2024, 1, 1);
    let mut st = seed;
    for n in 0..rows {
        let r = splitmix(&mut st);
        let pool = if r & 1 == 0 { customers } else { (customers / 10).max(1) };
        let customer = 1 + (r >> 1) % pool;
        let r2 = splitmix(&mut st);
        let date = first.checked_add(jiff::Span::new().days((r2 % 731) as i64)).expect("date");
        let fen = 100 + (r2 >> 16) % 199_901;
        writeln!(out, "{},{customer},{date},{}.{:02}", 1_000_000_000 + n, fen / 100, fen % 100).expect("stdout");
    }
    out.flush().expect("stdout");
}

/// A uniform draw in (0, 1).
fn unit(st: &mut u64) -> f64 {
    ((splitmix(st) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A standard normal draw (Box–Muller).
fn normal(st: &mut u64) -> f64 {
    (-2.0 * unit(st).ln()).sqrt() * (2.0 * std::f64::consts::PI * unit(st)).cos()
}

/// A Gamma(shape, 1) draw (Marsaglia and Tsang; shape < 1 boosted).
fn gamma(st: &mut u64, shape: f64) -> f64 {
    if shape < 1.0 {
        return gamma(st, shape + 1.0) * unit(st).powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(st);
        let v = (1.0 + c * x).powi(3);
        if v > 0.0 && unit(st).ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

fn clv_orders(customers: u64, seed: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    writeln!(out, "order_id,customer_id,order_date,amount").expect("stdout");
    let first = jiff::civil::date(2024, 1, 1);
    let end = 730.0;
    let mut st = seed;
    let mut n = 0u64;
    for customer in 1..=customers {
        let lambda = gamma(&mut st, 0.6) / 40.0;
        let (g1, g2) = (gamma(&mut st, 1.2), gamma(&mut st, 4.0));
        let p = g1 / (g1 + g2);
        let nu = gamma(&mut st, 3.0) / 200.0;
        let mut t = (unit(&mut st) * 365.0).floor();
        loop {
            // Spend of one order: Gamma(p = 4, ν), at least one yuan.
            let yuan = (gamma(&mut st, 4.0) / nu).max(1.0);
            let fen = (yuan * 100.0).round() as u64;
            let date = first.checked_add(jiff::Span::new().days(t as i64)).expect("date");
            writeln!(out, "{},{customer},{date},{}.{:02}", 2_000_000_000 + n, fen / 100, fen % 100).expect("stdout");
            n += 1;
            if unit(&mut st) < p {
                break;
            }
            t += -unit(&mut st).ln() / lambda.max(1e-9);
            if t >= end {
                break;
            }
        }
    }
    out.flush().expect("stdout");
}

fn events(rows: u64, users: u64, seed: u64) {
    use std::io::Write;
    const CHANNELS: [&str; 6] = ["douyin", "wechat", "baidu_sem", "xiaohongshu", "email", "website_form"];
    const KINDS: [&str; 4] = ["exposure", "click", "conversion", "repurchase"];
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    writeln!(out, "user_id,channel,campaign,type,ts").expect("stdout");
    let start = jiff::Timestamp::from_second(1_767_196_800).expect("2026-01-01"); // 2026-01-01T00:00:00+08:00
    let mut st = seed;
    let mut n = 0u64;
    let mut user = 0u64;
    while n < rows {
        let u = 1 + user % users.max(1);
        user += 1;
        let ch = (splitmix(&mut st) % 6) as usize;
        let campaign = splitmix(&mut st) % 4;
        let mut t = (splitmix(&mut st) % (180 * 86_400)) as i64;
        // Odds of going on to the next step, percent, by channel.
        let go = [40 + ch as u64 * 5, 20 + ch as u64 * 2, 30];
        let mut step = 0;
        loop {
            // Sometimes the same step twice, sometimes an event at the same second.
            let repeats = 1 + u64::from(splitmix(&mut st).is_multiple_of(5));
            for _ in 0..repeats {
                let ts = start.checked_add(jiff::SignedDuration::from_secs(t)).expect("in range");
                writeln!(out, "u{u},{},c{campaign},{},{ts}", CHANNELS[ch], KINDS[step]).expect("stdout");
                n += 1;
            }
            if step == 3 || n >= rows || splitmix(&mut st) % 100 >= go[step] {
                break;
            }
            step += 1;
            t += (splitmix(&mut st) % 3 * (splitmix(&mut st) % 7_200)) as i64;
        }
    }
    out.flush().expect("stdout");
}

fn clv_fit(file: &std::path::Path, runs: usize) -> Value {
    let text = std::fs::read_to_string(file).expect("clv file");
    let hs: Vec<domain::clv::History> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: usize| f[i].parse::<f64>().expect("number");
            domain::clv::History { x: num(1) as u32, t_x: num(2), t: num(3), monetary: num(4) }
        })
        .collect();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let bg = domain::clv::fit_bg_nbd(&hs).expect("customers");
        let gg = domain::clv::fit_gamma_gamma(&hs).expect("repeat customers");
        times.push(start.elapsed().as_secs_f64());
        last = Some((bg, gg));
    }
    times.sort_by(f64::total_cmp);
    let (bg, gg) = last.expect("a run");
    json!({"engine": "marketops fit", "customers": hs.len(), "median_s": times[times.len() / 2],
        "bg_nbd": bg.params, "bg_nbd_converged": bg.converged, "bg_nbd_ll": bg.log_likelihood,
        "gamma_gamma": gg.params, "gamma_gamma_converged": gg.converged})
}

async fn bulk_orders(url: &str, file: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(file).expect("orders file");
    // The server's connection settings, and the same kind of transaction as the import's:
    // on SQLite, alone with the database, it writes with a rollback journal (pages once).
    let db = store::Db::connect_alone(url).await.expect("database");
    let create = "CREATE TABLE bulk_orders (order_id TEXT, customer_id TEXT, order_day BIGINT, amount_fen BIGINT)";
    let epoch = jiff::civil::date(1970, 1, 1);
    let start = Instant::now();
    let mut n = 0usize;
    let mut tx = db.begin_bulk(true).await.expect("begin");
    store::on_tx!(&mut tx, c => sqlx::query(create).execute(c).await.map(|r| r.rows_affected())).expect("create");
    let lines: Vec<&str> = text.lines().skip(1).collect();
    for chunk in lines.chunks(1000) {
        store::on_tx!(&mut tx, c => {
            let mut qb =
                sqlx::QueryBuilder::new("INSERT INTO bulk_orders (order_id, customer_id, order_day, amount_fen) ");
            qb.push_values(chunk, |mut b, line| {
                let mut c = line.split(',');
                let (o, cu, d, a) =
                    (c.next().unwrap_or(""), c.next().unwrap_or(""), c.next().unwrap_or(""), c.next().unwrap_or(""));
                let day = d.parse::<jiff::civil::Date>().map(|d| (d - epoch).get_days() as i64).unwrap_or(0);
                let fen = domain::money::Money::parse_major(a).map(|m| m.fen()).unwrap_or(0);
                b.push_bind(o.to_string()).push_bind(cu.to_string()).push_bind(day).push_bind(fen);
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })
        .expect("insert");
        n += chunk.len();
    }
    tx.commit().await.expect("commit");
    let secs = start.elapsed().as_secs_f64();
    db.close().await;
    json!({"measure": "bare bulk insert of the orders", "rows": n, "seconds": secs, "per_second": n as f64 / secs})
}

#[tokio::main]
async fn main() {
    marketops::jobs::install_tls();
    let args = Args::parse();
    let out = match args.cmd {
        Cmd::Capture { url, token, concurrency, seconds, rate, first, get, latencies, random_keys } => {
            capture(Load { url: &url, token: &token, concurrency, seconds, rate, first, get, latencies, random_keys })
                .await
        }
        Cmd::PlainInsert { database_url, rows } => plain_insert(&database_url, rows).await,
        Cmd::Pages { url, header, paths, requests } => pages(&url, &header, &paths, requests).await,
        Cmd::Csv { rows, first } => return csv(rows, first),
        Cmd::Orders { rows, customers, seed } => return orders(rows, customers, seed),
        Cmd::BulkOrders { database_url, file } => bulk_orders(&database_url, &file).await,
        Cmd::ClvOrders { customers, seed } => return clv_orders(customers, seed),
        Cmd::Events { rows, users, seed } => return events(rows, users, seed),
        Cmd::ClvFit { file, runs } => clv_fit(&file, runs),
    };
    println!("{out}");
}

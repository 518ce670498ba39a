//! Building and running the server; shared by `marketops serve` and the tests, so tests
//! exercise the same path as production (bound to port 0).

use crate::config::Config;
use crate::jobs::Runner;
use std::net::SocketAddr;
use std::time::Duration;
use store::Db;
use web::{AppState, Clock};

pub struct Application {
    pub addr: SocketAddr,
    pub state: AppState,
    listener: tokio::net::TcpListener,
    jobs: Option<(Runner, Duration)>,
    /// The search indexer's pause once caught up (`search_index_ms`); `None`: no indexer.
    search_pause: Option<Duration>,
    /// The checkpoints' interval (`checkpoint_ms`).
    checkpoint_every: Duration,
}

/// Connects, migrates, and makes sure a playbook exists (version 1 is the shipped default).
pub async fn open_db(url: &str) -> anyhow::Result<Db> {
    migrated(url, Db::connect(url).await).await
}

/// `open_db` for an import from the command line: one connection (`Db::connect_alone`).
pub async fn open_db_alone(url: &str) -> anyhow::Result<Db> {
    migrated(url, Db::connect_alone(url).await).await
}

async fn migrated(url: &str, connected: store::Result<Db>) -> anyhow::Result<Db> {
    let db = connected.map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", store::redact_url(url)))?;
    db.migrate().await.map_err(|e| anyhow::anyhow!("cannot migrate {}: {e}", store::redact_url(url)))?;
    let repaired = store::leads::run_data_repairs(&db).await?;
    if repaired > 0 {
        tracing::info!(leads = repaired, "stored data repaired after an upgrade");
    }
    Ok(db)
}

pub async fn ensure_playbook(db: &Db, now: store::Ts) -> anyhow::Result<()> {
    let active = store::playbook::active(db).await?;
    // A playbook saved before a newer MarketOps added a section gets that section's
    // defaults as a new version (kept, diffable, attributed to the system).
    if let Some(v) = &active
        && let Some(document) = domain::playbook::Playbook::upgrade(&v.document)
    {
        let actor = store::Actor::system(now);
        let note = "MarketOps upgrade: sections added with their shipped defaults";
        match store::playbook::create(db, &actor, &document, Some(note), Some(v.version)).await {
            Ok(_) | Err(store::Error::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if active.is_none() {
        let actor = store::Actor::system(now);
        let r =
            store::playbook::create(db, &actor, domain::playbook::DEFAULT_DOCUMENT, Some("MarketOps default"), None)
                .await;
        // Another instance starting at the same moment may have created it: fine.
        if let Err(e) = r
            && !matches!(e, store::Error::Conflict(_))
        {
            return Err(e.into());
        }
    }
    Ok(())
}

impl Application {
    pub async fn build(cfg: &Config, db: Db, clock: Clock) -> anyhow::Result<Application> {
        ensure_playbook(&db, store::Ts::new(clock())).await?;
        let settings = cfg.web_settings();
        let link_base = cfg.public_origin.clone().unwrap_or_else(|| format!("http://{}:{}", cfg.host, cfg.port));
        let jobs = cfg.jobs.then(|| {
            (
                Runner::new(db.clone(), clock.clone(), settings.session, settings.throttle).with_link_base(link_base),
                Duration::from_millis(cfg.job_poll_ms.max(10)),
            )
        });
        let state = AppState::new(db, settings, clock);
        let listener = listen(&cfg.host, cfg.port)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", cfg.host, cfg.port))?;
        let addr = listener.local_addr()?;
        let search_pause = (cfg.search_index_ms > 0).then(|| Duration::from_millis(cfg.search_index_ms));
        let checkpoint_every = Duration::from_millis(cfg.checkpoint_ms.max(1));
        Ok(Application { addr, state, listener, jobs, search_pause, checkpoint_every })
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and stops the worker.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = self.jobs.map(|(runner, poll)| tokio::spawn(runner.run(poll, stop_rx.clone())));
        let checkpointer = tokio::spawn(checkpoint_loop(self.state.db.clone(), self.checkpoint_every, stop_rx.clone()));
        let indexer = self
            .search_pause
            .map(|pause| tokio::spawn(search_loop(self.state.db.clone(), self.state.captures.clone(), pause, stop_rx)));
        let app = web::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await?;
        let _ = stop_tx.send(true);
        if let Some(w) = worker {
            let _ = w.await;
        }
        let _ = checkpointer.await;
        if let Some(i) = indexer {
            let _ = i.await;
        }
        Ok(())
    }
}

/// Connections the kernel completes and holds for the server before it accepts them (it
/// takes the smaller of this and `net.core.somaxconn`).
pub const BACKLOG: u32 = 4096;

/// The server's listening socket on `host:port` (the first of its addresses that binds),
/// with a queue of [`BACKLOG`] connections. `TcpListener::bind` asks for 128: when more
/// clients than that connect at once (a campaign's form going out, a client's pool opening)
/// while the server is busy, the kernel drops the rest of their handshakes and each of
/// those clients waits a second for its retry (the 256-client capture loop of `bench/`
/// had a 1.05 s outlier in every run, the kernel's `ListenOverflows` counting them).
pub async fn listen(host: &str, port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let bound = (|| {
            let socket =
                if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
            // As `TcpListener::bind`: a restarted server binds while old connections linger.
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(BACKLOG)
        })();
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to listen on")))
}

/// SQLite upkeep while serving: checkpoints the write-ahead log every `every`
/// (`checkpoint_ms`, see `Db::checkpoint`).
async fn checkpoint_loop(db: Db, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    if !matches!(db, Db::Sqlite(_)) {
        return;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = db.checkpoint().await {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

/// SQLite: the search indexer (`store::search::Indexer`), on a connection of its own. Paced
/// by `store::search::pace`: back to back while it is behind and no capture is coming in
/// (after a large import), short steps with rests while captures come in (`captures`), and
/// after `pause` (`search_index_ms`) once caught up. A search is exact meanwhile
/// (`store::search`); a shorter pause only makes more, smaller steps, each a segment for
/// FTS5 to merge.
async fn search_loop(
    db: Db,
    captures: store::capture::Queue,
    pause: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut indexer = match store::search::Indexer::open(&db).await {
        Ok(Some(i)) => i,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the search index; searches read the leads' stored text");
            return;
        }
    };
    let mut most = store::search::STEP_MOST;
    let mut traffic = store::search::Traffic::new(captures.taken());
    loop {
        let started = std::time::Instant::now();
        let stepped = indexer.step(most).await;
        let took = started.elapsed();
        let busy = traffic.busy(captures.taken(), std::time::Instant::now());
        let rest = match stepped {
            Ok(s) => {
                if s != store::search::Step::default() {
                    tracing::debug!(
                        indexed = s.indexed,
                        changed = s.changed,
                        rebuilt = s.rebuilt,
                        busy,
                        took_ms = took.as_millis() as u64,
                        "search index step"
                    );
                }
                let next = store::search::pace(&s, took, busy, pause);
                most = next.most;
                next.rest
            }
            Err(e) => {
                tracing::warn!(error = %e, "search index step failed");
                pause
            }
        };
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(rest) => {}
        }
    }
}

//! Orders (C-1) and funnel events (C-5) from a CSV or XLSX file in the browser: columns are
//! matched by their headers (the same names the command line knows), every row is checked
//! first, and a file with bad rows is refused with each error by row and column — unless
//! the user asks for the valid rows only. Nothing is written for a refused file.

use super::{Ctx, internal, unprocessable};
use crate::AppState;
use crate::sheets;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Response};
use domain::import::RowError;
use domain::role::Action;

/// What a page imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Orders,
    Events,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Orders => "orders",
            Kind::Events => "events",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Kind::Orders => "/customers/import",
            Kind::Events => "/reports/funnel/import",
        }
    }

    /// Fields a file must have a column for, and the header names each is known by.
    fn fields(self) -> (&'static [&'static str], &'static [(&'static str, &'static [&'static str])]) {
        match self {
            Kind::Orders => (&domain::order::ORDER_FIELDS[..4], domain::order::ORDER_SYNONYMS),
            Kind::Events => (&["user_id", "channel", "type", "ts"], domain::funnel::EVENT_SYNONYMS),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "sheet_import.html")]
pub struct Page {
    ctx: Ctx,
    kind: &'static str,
    action: &'static str,
    error: Option<String>,
    errors: Vec<RowError>,
    more_errors: usize,
    done: Option<String>,
}

impl Page {
    /// `sheet-import-orders-title` and the like.
    fn key(&self, part: &str) -> String {
        format!("sheet-import-{}-{part}", self.kind)
    }
}

fn page(ctx: &Ctx, kind: Kind) -> Page {
    Page {
        ctx: ctx.clone(),
        kind: kind.code(),
        action: kind.path(),
        error: None,
        errors: Vec::new(),
        more_errors: 0,
        done: None,
    }
}

pub async fn orders_page(ctx: Ctx) -> Response {
    let _u = allowed!(ctx, Action::ManageOrders);
    page(&ctx, Kind::Orders).into_response()
}

pub async fn events_page(ctx: Ctx) -> Response {
    let _u = allowed!(ctx, Action::ManageOrders);
    page(&ctx, Kind::Events).into_response()
}

pub async fn orders_upload(State(s): State<AppState>, ctx: Ctx, form: Multipart) -> Response {
    upload(s, ctx, form, Kind::Orders).await
}

pub async fn events_upload(State(s): State<AppState>, ctx: Ctx, form: Multipart) -> Response {
    upload(s, ctx, form, Kind::Events).await
}

/// A checked file: its rows as a batch, and the errors by row.
enum Checked {
    Orders(domain::order_batch::Checked),
    Events(domain::event_batch::CheckedEvents),
}

async fn upload(s: AppState, ctx: Ctx, mut form: Multipart, kind: Kind) -> Response {
    let u = allowed!(ctx, Action::ManageOrders);
    let (mut file, mut valid_only) = (None, false);
    while let Ok(Some(field)) = form.next_field().await {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or(kind.code()).to_string();
                if let Ok(b) = field.bytes().await
                    && !b.is_empty()
                {
                    file = Some((name, b.to_vec()));
                }
            }
            Some("valid_only") => valid_only = true,
            _ => {}
        }
    }
    let mut p = page(&ctx, kind);
    let Some((name, bytes)) = file else {
        p.error = Some(ctx.t("import-no-file"));
        return unprocessable(p);
    };
    let table = match sheets::read(&bytes) {
        Ok(t) => t,
        Err(e) => {
            p.error = Some(format!("{}: {e}", ctx.t("import-unreadable")));
            return unprocessable(p);
        }
    };
    let (needed, synonyms) = kind.fields();
    let map = domain::import::auto_map_with(&table.headers, synonyms);
    let missing: Vec<&str> = needed.iter().copied().filter(|f| !map.contains(&Some(*f))).collect();
    if !missing.is_empty() {
        let args = [("fields", missing.join(", ")), ("headers", table.headers.join(", "))];
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        p.error = Some(ctx.i18n.t_args("sheet-import-missing", &args));
        return unprocessable(p);
    }
    let checked = match kind {
        Kind::Orders => match crate::api::customers::as_of_day(&s, None).await {
            // Orders dated after today (in the company's time zone) are refused.
            Ok(today) => Checked::Orders(domain::order::check(&table, &map, today)),
            Err(e) => return super::customers::failed(&ctx, e),
        },
        Kind::Events => Checked::Events(domain::event_batch::check(&table, &map)),
    };
    drop(table);
    let (errors, bad_rows) = match &checked {
        Checked::Orders(c) => (&c.errors, c.bad_rows),
        Checked::Events(c) => (&c.errors, c.bad_rows),
    };
    if bad_rows > 0 && !valid_only {
        p.error = Some(ctx.i18n.t_args("sheet-import-has-errors", &[("bad", &bad_rows.to_string())]));
        p.errors =
            errors.iter().take(100).map(|e| RowError { message: ctx.i18n.problem(&e.message), ..e.clone() }).collect();
        p.more_errors = errors.len().saturating_sub(100);
        return unprocessable(p);
    }
    let actor = u.actor(s.now());
    let skipped = bad_rows.to_string();
    let done = match checked {
        Checked::Orders(c) => store::customers::add_batch(&s.db, &actor, &c.batch, &name, &|_| {}).await.map(|o| {
            let args = [
                ("created", o.created.to_string()),
                ("unchanged", o.unchanged.to_string()),
                ("customers", o.new_customers.to_string()),
                ("skipped", skipped.clone()),
            ];
            let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ctx.i18n.t_args("sheet-import-orders-done", &args)
        }),
        Checked::Events(c) => store::funnel::add_batch(&s.db, &actor, &c.batch, &name, &|_| {})
            .await
            .map(|n| ctx.i18n.t_args("sheet-import-events-done", &[("events", &n.to_string()), ("skipped", &skipped)])),
    };
    match done {
        Ok(msg) => {
            p.done = Some(msg);
            p.into_response()
        }
        // An order stored earlier with other values: the whole file is refused.
        Err(store::Error::Conflict(m)) => {
            p.error = Some(ctx.i18n.problem(&m));
            unprocessable(p)
        }
        Err(e) => internal(&ctx, e),
    }
}

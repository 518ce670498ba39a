//! Lead import (L-1 c) in the browser: upload a CSV or XLSX, map the columns, check every
//! row (errors by row and column), then import all or only the valid rows. And lead export.

use super::{Ctx, Errors, Opt, internal, unprocessable};
use crate::AppState;
use crate::rules::{lead_scope, load};
use crate::sheets;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use domain::Fields;
use domain::import::{RowError, Table};
use domain::lead::{Channel, LEAD_FIELDS};
use domain::role::Action;

/// The largest file the import page accepts.
pub const MAX_UPLOAD: usize = 64 * 1024 * 1024;

#[derive(Template, WebTemplate)]
#[template(path = "import_upload.html")]
pub struct UploadPage {
    ctx: Ctx,
    error: Option<String>,
}

pub async fn upload_page(ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::CaptureLeads) {
        return r;
    }
    UploadPage { ctx, error: None }.into_response()
}

pub async fn upload(State(s): State<AppState>, ctx: Ctx, mut form: Multipart) -> Response {
    let u = allowed!(ctx, Action::CaptureLeads);
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or("leads").to_string();
            match field.bytes().await {
                Ok(b) if !b.is_empty() => file = Some((name, b.to_vec())),
                _ => {}
            }
        }
    }
    let again = |key: &str| {
        let page = UploadPage { error: Some(ctx.t(key)), ctx: ctx.clone() };
        unprocessable(page)
    };
    let Some((name, bytes)) = file else { return again("import-no-file") };
    if let Err(e) = sheets::read(&bytes) {
        let page = UploadPage { error: Some(format!("{}: {e}", ctx.t("import-unreadable"))), ctx: ctx.clone() };
        return unprocessable(page);
    }
    match store::import::save_upload(&s.db, u.user.id, &name, &bytes, s.now()).await {
        Ok(token) => Redirect::to(&format!("/leads/import/{token}")).into_response(),
        Err(e) => internal(&ctx, e),
    }
}

pub struct ColumnView {
    index: usize,
    header: String,
    samples: String,
    fields: Vec<Opt>,
}

#[derive(Template, WebTemplate)]
#[template(path = "import_map.html")]
pub struct MapPage {
    ctx: Ctx,
    token: String,
    file: String,
    rows: usize,
    columns: Vec<ColumnView>,
    channels: Vec<Opt>,
    checked: bool,
    valid: usize,
    bad_rows: usize,
    errors: Vec<RowError>,
    more_errors: usize,
    form_errors: Errors,
}

fn field_label(ctx: &Ctx, f: &str) -> String {
    ctx.i18n.try_t(&format!("import-field-{f}")).unwrap_or_else(|| f.to_string())
}

async fn load_upload(s: &AppState, ctx: &Ctx, token: &str) -> Result<(String, Table), Response> {
    let u = ctx.user.as_ref().ok_or_else(|| ctx.error_page(StatusCode::UNAUTHORIZED, "error-forbidden"))?;
    match store::import::upload(&s.db, u.user.id, token).await {
        Ok(Some((name, bytes))) => sheets::read(&bytes)
            .map(|t| (name, t))
            .map_err(|_| ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "import-unreadable")),
        Ok(None) => Err(ctx.error_page(StatusCode::NOT_FOUND, "error-not-found")),
        Err(e) => Err(internal(ctx, e)),
    }
}

fn map_page(ctx: &Ctx, token: &str, file: String, t: &Table, map: &[Option<&'static str>], channel: &str) -> MapPage {
    let columns = t
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let current = map.get(i).copied().flatten().unwrap_or("");
            let mut fields =
                vec![Opt { value: String::new(), label: ctx.t("import-ignore"), selected: current.is_empty() }];
            fields.extend(LEAD_FIELDS.iter().map(|f| Opt {
                value: f.to_string(),
                label: field_label(ctx, f),
                selected: *f == current,
            }));
            let samples = t
                .rows
                .iter()
                .take(3)
                .filter_map(|r| r.get(i))
                .filter(|v| !v.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" · ");
            ColumnView { index: i, header: h.clone(), samples, fields }
        })
        .collect();
    let codes: Vec<&str> = Channel::ALL.iter().map(|c| c.code()).collect();
    MapPage {
        token: token.to_string(),
        file,
        rows: t.rows.len(),
        columns,
        channels: Opt::list(&codes, channel, |c| ctx.i18n.code_label("channel", c)),
        checked: false,
        valid: 0,
        bad_rows: 0,
        errors: Vec::new(),
        more_errors: 0,
        form_errors: Errors::default(),
        ctx: ctx.clone(),
    }
}

pub async fn map_form(State(s): State<AppState>, ctx: Ctx, Path(token): Path<String>) -> Response {
    if let Err(r) = ctx.allowed(Action::CaptureLeads) {
        return r;
    }
    let (name, t) = match load_upload(&s, &ctx, &token).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let map = domain::import::auto_map(&t.headers);
    map_page(&ctx, &token, name, &t, &map, "website_form").into_response()
}

/// Checks (or imports) the upload with the chosen mapping. Nothing is written unless the
/// user asked to import, and a file with errors is imported only as "valid rows only".
pub async fn map_submit(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
    form: super::UiForm,
) -> Response {
    let u = allowed!(ctx, Action::CaptureLeads);
    let (name, t) = match load_upload(&s, &ctx, &token).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pairs = form.0;
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let map: Vec<Option<&'static str>> = (0..t.headers.len())
        .map(|i| {
            let v = get(&format!("map_{i}"));
            LEAD_FIELDS.iter().find(|f| **f == v).copied()
        })
        .collect();
    let channel = get("channel");
    let mut page = map_page(&ctx, &token, name.clone(), &t, &map, &channel);
    let rules = match load(&s).await {
        Ok(r) => r,
        Err(e) => return internal(&ctx, e),
    };
    let defaults = Fields::from_pairs([("channel", channel.clone())]);
    let campaigns = match store::campaigns::ids(&s.db).await {
        Ok(c) => c,
        Err(e) => return internal(&ctx, e),
    };
    let checked = domain::import::check(&t, &map, &rules.playbook, &defaults, &campaigns);
    page.checked = true;
    page.valid = checked.valid.len();
    page.bad_rows = checked.bad_rows;
    page.more_errors = checked.errors.len().saturating_sub(200);
    page.errors = checked
        .errors
        .iter()
        .take(200)
        .map(|e| RowError { message: ctx.i18n.problem(&e.message), ..e.clone() })
        .collect();
    let action = get("action");
    if action != "import" && action != "import_valid" {
        return if checked.bad_rows > 0 { unprocessable(page) } else { page.into_response() };
    }
    if checked.bad_rows > 0 && action != "import_valid" {
        page.form_errors.0.insert("action".into(), ctx.t("import-has-errors"));
        return unprocessable(page);
    }
    let rows: Vec<domain::lead::LeadInput> = checked.valid.into_iter().map(|(_, l)| l).collect();
    match store::import::import_leads(&s.db, &u.actor(s.now()), rows, &rules.rules(), &name, &|_| {}).await {
        Ok(out) => {
            let _ = store::import::drop_upload(&s.db, &token).await;
            let msg = ctx.i18n.t_args(
                "import-done",
                &[
                    ("created", &out.created.to_string()),
                    ("merged", &out.merged.to_string()),
                    ("skipped", &checked.bad_rows.to_string()),
                ],
            );
            let p = super::ErrorPage { ctx: ctx.clone(), status: 200, message: msg };
            p.into_response()
        }
        Err(e) => internal(&ctx, e),
    }
}

/// L-1: any lead list exported as CSV or XLSX, with the list's filters and the account's
/// scope (a sales rep exports only their own leads).
pub async fn export(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(format): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let u = allowed!(ctx, Action::ViewLeads);
    let q: Vec<(String, String)> =
        q.into_iter().filter(|(k, v)| !v.is_empty() && k != "limit" && k != "before_id").collect();
    let mut f = Fields::from_pairs(q);
    f.set("limit", "500");
    let mut filter = match crate::api::leads::parse_filter(&f) {
        Ok(x) => x,
        Err(_) => return ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "error-bad-filter"),
    };
    let headers = [
        "id",
        "name",
        "company",
        "title",
        "email",
        "phone",
        "province",
        "city",
        "channel",
        "campaign_id",
        "grade",
        "total",
        "budget",
        "authority",
        "need",
        "timeline",
        "route",
        "status",
        "owner_id",
        "created_at",
    ];
    let mut t = Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() };
    // Keyset pages of 500 up to 100,000 rows.
    loop {
        let page = match store::leads::list(&s.db, lead_scope(&u), &filter).await {
            Ok(p) => p,
            Err(e) => return internal(&ctx, e),
        };
        let n = page.len();
        for l in &page {
            let o = |v: &Option<String>| v.clone().unwrap_or_default();
            t.rows.push(vec![
                l.id.to_string(),
                o(&l.name),
                o(&l.company),
                o(&l.title),
                o(&l.email),
                o(&l.phone),
                o(&l.province),
                o(&l.city),
                l.channel.clone(),
                l.campaign_id.map(|c| c.to_string()).unwrap_or_default(),
                l.grade.clone(),
                l.total.to_string(),
                o(&l.budget),
                o(&l.authority),
                o(&l.need),
                o(&l.timeline),
                l.route.clone(),
                l.status.clone(),
                l.owner_id.map(|x| x.to_string()).unwrap_or_default(),
                l.created_at.to_text(),
            ]);
        }
        if n < 500 || t.rows.len() >= 100_000 {
            break;
        }
        filter.before_id = page.last().map(|l| l.id);
    }
    send_table(&ctx, &t, &format, "leads")
}

/// A table as a download: `format` csv or xlsx (anything else is 404), named `name.ext`.
pub fn send_table(ctx: &Ctx, t: &Table, format: &str, name: &str) -> Response {
    let (bytes, mime, ext) = match format {
        "csv" => (sheets::write_csv(t), "text/csv; charset=utf-8", "csv"),
        "xlsx" => match sheets::write_xlsx(t, name) {
            Ok(b) => (b, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
            Err(_) => return ctx.error_page(StatusCode::INTERNAL_SERVER_ERROR, "error-internal"),
        },
        _ => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
    };
    let disposition = format!("attachment; filename=\"{name}.{ext}\"");
    ([(header::CONTENT_TYPE, mime.to_string()), (header::CONTENT_DISPOSITION, disposition)], bytes).into_response()
}

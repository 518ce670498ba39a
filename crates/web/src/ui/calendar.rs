//! Working calendar page (O-1): holidays and make-up days by year, loading the shipped
//! arrangement, and a due-time calculator that uses the same domain function as every SLA.

use super::{Ctx, Errors, Opt, UiForm, done, form_fields, internal, unprocessable};
use crate::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::FieldErrors;
use domain::calendar::{DayKind, shipped_days};
use domain::role::Action;

struct DayView {
    date: String,
    weekday: String,
    kind: String,
    kind_code: String,
    name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "calendar.html")]
pub struct CalendarPage {
    ctx: Ctx,
    year: i16,
    years: Vec<i16>,
    days: Vec<DayView>,
    weekend: String,
    hours: String,
    time_zone: String,
    shipped: Vec<(String, i16)>,
    form_date: String,
    form_name: String,
    kinds: Vec<Opt>,
    errors: Errors,
}

#[derive(serde::Deserialize)]
pub struct YearQuery {
    year: Option<String>,
}

async fn view(s: &AppState, ctx: &Ctx, year: Option<i16>, form: (String, String, String), errors: Errors) -> Response {
    let company = match store::company::get(&s.db).await {
        Ok(c) => c,
        Err(e) => return internal(ctx, e),
    };
    let tz = super::company_tz(s).await;
    let this_year = s.now().get().to_zoned(tz).year();
    let year = year.unwrap_or(this_year);
    let loaded = async {
        Ok::<_, store::Error>((store::calendar::list(&s.db, Some(year)).await?, store::calendar::years(&s.db).await?))
    }
    .await;
    let (rows, mut years) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(ctx, e),
    };
    for y in [this_year, year] {
        if !years.contains(&y) {
            years.push(y);
        }
    }
    years.sort_unstable_by(|a, b| b.cmp(a));
    let i = &ctx.i18n;
    let days = rows
        .into_iter()
        .map(|d| {
            let weekday = d
                .day
                .parse::<jiff::civil::Date>()
                .map(|x| i.code_label("weekday", domain::company::weekday_code(x.weekday())))
                .unwrap_or_default();
            DayView { kind: i.code_label("daykind", &d.kind), kind_code: d.kind, weekday, date: d.day, name: d.name }
        })
        .collect();
    let (weekend, hours, time_zone) = company.map_or_else(Default::default, |c| {
        let weekend = c
            .weekend_days
            .iter()
            .map(|d| i.code_label("weekday", domain::company::weekday_code(*d)))
            .collect::<Vec<_>>()
            .join("、");
        (weekend, c.working_hours.to_string(), c.time_zone)
    });
    let codes: Vec<&str> = DayKind::ALL.iter().map(|k| k.code()).collect();
    let page = CalendarPage {
        year,
        years,
        days,
        weekend,
        hours,
        time_zone,
        shipped: domain::calendar::SHIPPED.iter().map(|(r, y, _)| (r.to_string(), *y)).collect(),
        form_date: form.0,
        kinds: Opt::list(&codes, &form.1, |c| i.code_label("daykind", c)),
        form_name: form.2,
        errors,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

pub async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<YearQuery>) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewCalendar) {
        return r;
    }
    let year = q.year.as_deref().and_then(|y| y.parse::<i16>().ok()).filter(|y| (1900..=2200).contains(y));
    view(&s, &ctx, year, (String::new(), "holiday".into(), String::new()), Errors::default()).await
}

pub async fn save_day(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditCalendar);
    let f = form_fields(form.0);
    let date = f.0.get("date").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let kind = f.0.get("kind").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let name = f.0.get("name").and_then(|v| v.as_str()).unwrap_or("").to_string();
    match crate::api::calendar::parse_day(&date, &f) {
        Ok(day) => {
            let year = day.date.year();
            match store::calendar::upsert(&s.db, &u.actor(s.now()), &day).await {
                Ok(()) => done(&format!("/calendar?year={year}"), "saved"),
                Err(e) => internal(&ctx, e),
            }
        }
        Err(e) => {
            let year = date.get(..4).and_then(|y| y.parse().ok());
            view(&s, &ctx, year, (date, kind, name), ctx.errors(&e)).await
        }
    }
}

pub async fn delete_day(State(s): State<AppState>, ctx: Ctx, Path(date): Path<String>) -> Response {
    let u = allowed!(ctx, Action::EditCalendar);
    let year = date.get(..4).unwrap_or("").to_string();
    match store::calendar::delete(&s.db, &u.actor(s.now()), &date).await {
        Ok(()) => done(&format!("/calendar?year={year}"), "deleted"),
        Err(e) => internal(&ctx, e),
    }
}

pub async fn load_shipped(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditCalendar);
    let f = form_fields(form.0);
    let region = f.0.get("region").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let year = f.0.get("year").and_then(|v| v.as_str()).and_then(|y| y.parse::<i16>().ok()).unwrap_or(0);
    let Some(days) = shipped_days(&region, year) else {
        return ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "calendar-not-shipped");
    };
    match store::calendar::upsert_many(&s.db, &u.actor(s.now()), &days).await {
        Ok(_) => done(&format!("/calendar?year={year}"), "calendar-loaded"),
        Err(e) => internal(&ctx, e),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "calendar_due.html")]
pub struct DueFragment {
    ctx: Ctx,
    due: String,
    skipped: Vec<(String, String)>,
    errors: Errors,
}

/// htmx: "due time of N working hours/days from this moment" in the company calendar.
pub async fn due(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewCalendar) {
        return r;
    }
    let f = form_fields(form.0);
    let mut e = FieldErrors::new();
    let company = match store::company::get(&s.db).await {
        Ok(Some(c)) => c,
        Ok(None) => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(err) => return internal(&ctx, err),
    };
    let tz = jiff::tz::TimeZone::get(&company.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let start = f.text(&mut e, "start").and_then(|t| {
        // `<input type="datetime-local">` sends local civil time without a zone.
        match t.parse::<jiff::civil::DateTime>().ok().and_then(|dt| tz.to_timestamp(dt).ok()) {
            Some(ts) => Some(ts),
            None => {
                e.add("start", "must be a date and time like 2026-09-30T15:00");
                None
            }
        }
    });
    if start.is_none() && !e.0.contains_key("start") {
        e.add("start", "is required");
    }
    let amount = f.int(&mut e, "amount");
    match amount {
        Some(a) if (0..=10_000).contains(&a) => {}
        Some(_) => e.add("amount", "must be between 0 and 10000, got a larger number"),
        None if !e.0.contains_key("amount") => e.add("amount", "is required"),
        None => {}
    }
    let unit = f.text(&mut e, "unit").unwrap_or_default();
    if unit != "hours" && unit != "days" {
        e.add("unit", "unknown value `".to_string() + &unit + "`; expected one of: hours, days");
    }
    let (Some(start), Some(amount)) = (start, amount) else {
        return unprocessable(DueFragment { errors: ctx.errors(&e), due: String::new(), skipped: Vec::new(), ctx });
    };
    if !e.is_empty() {
        return unprocessable(DueFragment { errors: ctx.errors(&e), due: String::new(), skipped: Vec::new(), ctx });
    }
    let cal = match store::calendar::working_calendar(&s.db, &company).await {
        Ok(c) => c,
        Err(err) => return internal(&ctx, err),
    };
    let result = if unit == "hours" {
        cal.add_working_hours(start, &tz, amount)
    } else {
        cal.add_working_days(start, &tz, amount)
    };
    match result {
        Ok(d) => DueFragment {
            due: d.at.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string(),
            skipped: d.skipped.into_iter().map(|k| (k.date.to_string(), k.reason)).collect(),
            errors: Errors::default(),
            ctx,
        }
        .into_response(),
        Err(err) => {
            let e = FieldErrors::single("amount", err.to_string());
            unprocessable(DueFragment { errors: ctx.errors(&e), due: String::new(), skipped: Vec::new(), ctx })
        }
    }
}

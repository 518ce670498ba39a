//! Customers and orders (C-1) and RFM (C-2).

use super::JsonBody;
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use domain::order::{OrderInput, date_of, day_number};
use domain::rfm::Scored;
use domain::role::Action;
use domain::{FieldErrors, Fields};
use serde::Serialize;
use std::sync::Arc;
use store::customers::{AddOutcome, Customer, Order};
use utoipa::ToSchema;

/// Most orders one request may carry.
const MAX_BATCH: usize = 10_000;

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OrderIn {
    order_id: String,
    customer_id: String,
    /// YYYY-MM-DD, not in the future.
    order_date: String,
    /// Yuan with at most two decimals, as a string ("199.90") or a number.
    amount: String,
    customer_name: Option<String>,
    /// The channel that acquired the customer (kept from its first order naming one).
    channel: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OrdersIn {
    orders: Vec<OrderIn>,
}

/// The list under `key` of a batch body (the body's only field), 1 to `max` items long.
pub(crate) fn batch(f: &Fields, key: &str, max: usize) -> ApiResult<Vec<serde_json::Value>> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &[key]);
    e.into_result(())?;
    match f.0.get(key) {
        Some(serde_json::Value::Array(items)) if !items.is_empty() && items.len() <= max => Ok(items.clone()),
        Some(serde_json::Value::Array(_)) => Err(ApiError::field(key, format!("must hold 1 to {max} items"))),
        _ => Err(ApiError::field(key, "must be a list")),
    }
}

/// Files an item's errors under `key[i].field` (or `key[i]` for the item as a whole).
/// The items under `key` of a batch body, each parsed by `parse`: every problem named
/// `key[i].field`, a 422 when there is any.
pub(crate) fn parse_batch<T>(
    f: &Fields,
    key: &str,
    max: usize,
    parse: impl Fn(&Fields) -> Result<T, FieldErrors>,
) -> ApiResult<Vec<T>> {
    let items = batch(f, key, max)?;
    let mut e = FieldErrors::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match Fields::from_json(item).and_then(|f| parse(&f)) {
            Ok(x) => out.push(x),
            Err(errs) => prefix_errors(&mut e, key, i, errs),
        }
    }
    e.into_result(out).map_err(ApiError::Invalid)
}

pub(crate) fn prefix_errors(e: &mut FieldErrors, key: &str, i: usize, errs: FieldErrors) {
    for (field, message) in errs.0 {
        let name = if field == "body" { format!("{key}[{i}]") } else { format!("{key}[{i}].{field}") };
        e.add(name, message);
    }
}

/// Query parameters as fields, with an error for each one not in `allowed`.
pub(crate) fn query_fields(q: Vec<(String, String)>, allowed: &[&str]) -> (Fields, FieldErrors) {
    let f = Fields::from_pairs(q);
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, allowed);
    (f, e)
}

/// Today in the company's time zone.
pub(crate) async fn today(s: &AppState) -> ApiResult<jiff::civil::Date> {
    let rules = s.rules.get(&s.db).await?;
    Ok(s.now().get().to_zoned(rules.tz.clone()).date())
}

/// The `as_of` field: a date, or today in the company's time zone when blank.
pub async fn as_of_day(s: &AppState, as_of: Option<&str>) -> ApiResult<jiff::civil::Date> {
    match as_of.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => v
            .parse::<jiff::civil::Date>()
            .map_err(|_| ApiError::field("as_of", format!("`{v}` is not a date (YYYY-MM-DD)"))),
        None => today(s).await,
    }
}

/// Adds a batch of orders (C-1), idempotent by order id: resending an order already stored
/// with the same values changes nothing (it is counted as unchanged); an order id stored
/// with another customer, date or amount is 409 and nothing is written. Every problem of
/// the batch is a 422 naming `orders[i].field`, and nothing is written.
#[utoipa::path(post, path = "/orders", tag = "customers", request_body = OrdersIn,
    responses((status = 200, body = AddOutcome), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn add_orders(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<AddOutcome>)> {
    u.require(Action::ManageOrders)?;
    let latest = today(&s).await?;
    let orders = parse_batch(&f, "orders", MAX_BATCH, |f| OrderInput::parse(f, latest))?;
    let label = format!("api:{}", orders.len());
    let out = store::customers::add_orders(&s.db, &u.actor(s.now()), &orders, &label, &|_| {}).await?;
    let status = if out.created > 0 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(out)))
}

#[derive(Serialize, ToSchema)]
pub struct CustomerPage {
    pub customers: Vec<Customer>,
    /// Pass as `before_id` for the next page; absent on the last one.
    pub next_before_id: Option<i64>,
}

#[derive(utoipa::IntoParams)]
#[allow(dead_code)]
pub struct PageQuery {
    before_id: Option<i64>,
    /// 1 to 500, default 50.
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/customers", tag = "customers", params(PageQuery),
    responses((status = 200, body = CustomerPage), (status = 422, body = ErrorBody)))]
pub async fn list_customers(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<CustomerPage>> {
    u.require(Action::ViewCustomers)?;
    let (f, mut e) = query_fields(q, &["before_id", "limit"]);
    let before_id = f.int(&mut e, "before_id");
    let limit = f.int(&mut e, "limit").unwrap_or(50);
    if !(1..=500).contains(&limit) {
        e.add("limit", "must be between 1 and 500");
    }
    e.into_result(())?;
    let customers = store::customers::list(&s.db, before_id, limit).await?;
    let next_before_id = (customers.len() as i64 == limit).then(|| customers.last().map(|c| c.id)).flatten();
    Ok(Json(CustomerPage { customers, next_before_id }))
}

#[derive(Serialize, ToSchema)]
pub struct OrderOut {
    pub order_id: String,
    /// YYYY-MM-DD
    pub order_date: String,
    /// Yuan, two decimals.
    pub amount: String,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerDetail {
    pub customer: Customer,
    /// The 100 most recent orders.
    pub orders: Vec<OrderOut>,
    /// Its subscriptions (C-3), newest first; days since 1970-01-01.
    pub subscriptions: Vec<store::subscriptions::Stored>,
}

pub fn order_out(o: &Order) -> OrderOut {
    OrderOut {
        order_id: o.external_id.clone(),
        order_date: date_of(o.order_day).to_string(),
        amount: domain::money::Money(o.amount_fen).decimal(),
    }
}

/// A customer by the id it has in the company's systems, with its recent orders.
#[utoipa::path(get, path = "/customers/{customer_id}", tag = "customers", params(("customer_id" = String, Path)),
    responses((status = 200, body = CustomerDetail), (status = 404, body = ErrorBody)))]
pub async fn get_customer(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    super::ApiPath(id): super::ApiPath<String>,
) -> ApiResult<Json<CustomerDetail>> {
    u.require(Action::ViewCustomers)?;
    let customer = store::customers::get(&s.db, &id).await?.ok_or(ApiError::NotFound)?;
    let orders = store::customers::orders_of(&s.db, customer.id, 100).await?.iter().map(order_out).collect();
    let subscriptions = store::subscriptions::of_customer(&s.db, customer.id).await?;
    Ok(Json(CustomerDetail { customer, orders, subscriptions }))
}

#[derive(Serialize, ToSchema)]
pub struct RfmRow {
    pub customer_id: String,
    pub recency_days: i64,
    pub frequency: i64,
    /// Yuan, two decimals.
    pub monetary: String,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: String,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentCount {
    pub segment: String,
    pub customers: usize,
    /// The playbook's action for the segment.
    pub action: String,
}

#[derive(Serialize, ToSchema)]
pub struct MoveOut {
    /// The segment `moves_since`; absent for customers who had not ordered by then.
    pub from: Option<String>,
    pub to: String,
    pub customers: usize,
}

#[derive(Serialize, ToSchema)]
pub struct RfmOut {
    /// YYYY-MM-DD
    pub as_of: String,
    pub playbook_version: i64,
    pub segments: Vec<SegmentCount>,
    /// The earlier date moves are counted from (the playbook's `customers.rfm.moves_since_days`).
    pub moves_since: String,
    /// Customers whose segment changed since then, largest moves first.
    pub moves: Vec<MoveOut>,
    /// Customers matching `segment` (all when none is given).
    pub total: usize,
    /// In customer id order (as C-2 compares ids), from after `after`, at most `limit`.
    pub customers: Vec<RfmRow>,
    /// The `after` of the next page, when there is one.
    pub next_after: Option<String>,
}

#[derive(utoipa::IntoParams)]
#[allow(dead_code)]
pub struct RfmQuery {
    /// YYYY-MM-DD; default today in the company's time zone.
    as_of: Option<String>,
    /// Only the customers of this segment (a name from the playbook, e.g. `at_risk`).
    segment: Option<String>,
    /// Customers per page, 1–100000; default all.
    limit: Option<i64>,
    /// The customer id after which the page starts (`next_after` of the page before).
    after: Option<String>,
}

/// Recent results by key, newest first: the customer page, the segment page and the API
/// ask for the same scoring or fit again and again, and over 800,000 customers each takes a
/// second. Keys include `store::customers::data_mark`, so a new order or customer makes a
/// new key and nothing stale is served.
pub struct Recent<K, V> {
    kept: std::sync::Mutex<Vec<(K, Arc<V>)>>,
    size: usize,
}

impl<K: PartialEq, V> Recent<K, V> {
    pub fn new(size: usize) -> Self {
        Recent { kept: std::sync::Mutex::new(Vec::new()), size }
    }

    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.kept.lock().ok().and_then(|c| c.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    /// The most recently kept value whose key meets `pred`.
    pub fn newest_where(&self, pred: impl Fn(&K) -> bool) -> Option<Arc<V>> {
        self.kept.lock().ok().and_then(|c| c.iter().find(|(k, _)| pred(k)).map(|(_, v)| v.clone()))
    }

    pub fn put(&self, key: K, value: Arc<V>) {
        if let Ok(mut c) = self.kept.lock() {
            c.retain(|(k, _)| *k != key);
            c.insert(0, (key, value));
            c.truncate(self.size);
        }
    }
}

/// RFM scorings by (day, playbook version, data mark): today's and the one the moves
/// compare with, for a few dates.
pub type RfmCache = Recent<(i64, i64, (i64, i64)), Vec<Scored>>;

impl Default for RfmCache {
    fn default() -> Self {
        Recent::new(4)
    }
}

/// All customers scored as of `day` under the active playbook, from the cache when nothing
/// changed since.
async fn scored_as_of(s: &AppState, day: jiff::civil::Date) -> ApiResult<(i64, Arc<Vec<Scored>>)> {
    let rules = s.rules.get(&s.db).await?;
    let key = (day_number(day), rules.version, store::customers::data_mark(&s.db).await?);
    if let Some(v) = s.rfm.get(&key) {
        return Ok((rules.version, v));
    }
    let segments = domain::rfm::segments(&rules.playbook)?;
    let scored = Arc::new(domain::rfm::score(store::customers::rfm_values(&s.db, key.0).await?, &segments));
    s.rfm.put(key, scored.clone());
    Ok((rules.version, scored))
}

/// The moves between segments over the playbook's period before `day` (C-2): the scores
/// as of the earlier date against `scored`.
pub async fn rfm_moves(
    s: &AppState,
    day: jiff::civil::Date,
    scored: &[Scored],
) -> ApiResult<(jiff::civil::Date, Vec<domain::rfm::Move>)> {
    let rules = s.rules.get(&s.db).await?;
    let since = day
        .checked_sub(jiff::Span::new().days(rules.playbook.customers.rfm.moves_since_days))
        .map_err(|e| ApiError::field("as_of", e.to_string()))?;
    let (_, before) = scored_as_of(s, since).await?;
    Ok((since, domain::rfm::moves(&before, scored)))
}

/// The scored customers and segment counts as of a date (C-2).
pub async fn rfm_as_of(
    s: &AppState,
    as_of: Option<&str>,
) -> ApiResult<(jiff::civil::Date, i64, Vec<SegmentCount>, Arc<Vec<Scored>>)> {
    let day = as_of_day(s, as_of).await?;
    let rules = s.rules.get(&s.db).await?;
    let segments = domain::rfm::segments(&rules.playbook)?;
    let (version, scored) = scored_as_of(s, day).await?;
    let counts = domain::rfm::counts(&scored, &segments)
        .into_iter()
        .map(|(segment, customers)| {
            let action = rules.playbook.customers.rfm.actions.get(&segment).cloned().unwrap_or_default();
            SegmentCount { segment, customers, action }
        })
        .collect();
    Ok((day, version, counts, scored))
}

#[utoipa::path(get, path = "/analytics/rfm", tag = "customers", params(RfmQuery),
    responses((status = 200, body = RfmOut), (status = 422, body = ErrorBody)))]
pub async fn rfm(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<RfmOut>> {
    u.require(Action::ViewCustomers)?;
    let (f, mut e) = query_fields(q, &["as_of", "segment", "limit", "after"]);
    let as_of = f.text(&mut e, "as_of");
    let segment = f.text(&mut e, "segment");
    let limit = f.int(&mut e, "limit");
    if limit.is_some_and(|l| !(1..=100_000).contains(&l)) {
        e.add("limit", "must be between 1 and 100000");
    }
    let after = f.text(&mut e, "after");
    e.into_result(())?;
    let (day, playbook_version, segments, scored) = rfm_as_of(&s, as_of.as_deref()).await?;
    if let Some(name) = &segment
        && !segments.iter().any(|c| &c.segment == name)
    {
        let known: Vec<&str> = segments.iter().map(|c| c.segment.as_str()).collect();
        return Err(ApiError::Invalid(FieldErrors::single(
            "segment",
            format!("unknown value `{name}`; expected one of: {}", known.join(", ")),
        )));
    }
    let (since, moves) = rfm_moves(&s, day, &scored).await?;
    let moves = moves.into_iter().map(|m| MoveOut { from: m.from, to: m.to, customers: m.customers }).collect();
    let matching: Vec<&Scored> =
        scored.iter().filter(|c| segment.as_ref().is_none_or(|name| &c.segment == name)).collect();
    // Customers are in id order: the page starts after the named customer.
    let start = match &after {
        None => 0,
        Some(id) => match matching.iter().position(|c| &c.customer == id) {
            Some(i) => i + 1,
            None => {
                return Err(ApiError::Invalid(FieldErrors::single(
                    "after",
                    format!("no customer `{id}` in this list"),
                )));
            }
        },
    };
    let take = limit.map_or(usize::MAX, |l| l as usize);
    let page = &matching[start.min(matching.len())..];
    let next_after = (page.len() > take).then(|| page[take - 1].customer.clone());
    let customers = page
        .iter()
        .take(take)
        .map(|c| RfmRow {
            customer_id: c.customer.clone(),
            recency_days: c.recency_days,
            frequency: c.frequency,
            monetary: domain::money::Money(c.monetary).decimal(),
            r: c.r,
            f: c.f,
            m: c.m,
            segment: c.segment.clone(),
        })
        .collect();
    Ok(Json(RfmOut {
        as_of: day.to_string(),
        playbook_version,
        segments,
        moves_since: since.to_string(),
        moves,
        total: matching.len(),
        customers,
        next_after,
    }))
}

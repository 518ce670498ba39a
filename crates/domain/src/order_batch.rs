//! C-1 a batch of orders held compactly: ten million orders from a file in about 24 bytes
//! each plus their ids' text, instead of a table of owned cells and a struct of owned
//! strings per row (5.7 GiB for such a file). Ids live in one text arena; customers are
//! numbered in the order first seen; each customer's aggregates (C-2, C-3) are summed
//! from the batch in one pass.

use crate::errors::FieldErrors;
use crate::import::RowError;
use crate::order::{OrderInput, Parts, day_number};
use std::collections::HashMap;

/// Where an id sits in the batch's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u16,
}

/// One order of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    id: Span,
    /// 0 for none, else 1 + the channel's number in the batch.
    channel: u16,
    /// The customer's number in the batch (see `Batch::customer_id`).
    pub customer: u32,
    /// Days since 1970-01-01.
    pub day: i32,
    pub fen: i64,
}

/// Orders with distinct ids, their customers and the optional fields.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    text: String,
    rows: Vec<Row>,
    customers: Vec<Span>,
    channels: Vec<String>,
    /// The first name given for a customer, by customer number.
    names: HashMap<u32, String>,
    /// Each order's name as given (kept only for rows that give one), to tell a repeated
    /// row from a conflicting one.
    row_names: HashMap<u32, String>,
}

/// A customer's sums over the orders of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub count: i64,
    pub fen: i64,
    pub first_day: i64,
    pub last_day: i64,
    /// Amount of the orders on `first_day` (C-3).
    pub first_day_fen: i64,
    /// Distinct order days (C-3: a transaction is a purchase day).
    pub purchase_days: i64,
    /// The order naming a channel with the earliest day (the first such row on a tie).
    pub channel_row: Option<u32>,
}

/// An order whose id an earlier order of the batch already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dup {
    /// Its position among the orders added, and the first one's.
    pub index: usize,
    pub first: usize,
    /// The same values too (a repeated line), not a conflict.
    pub same: bool,
    /// The order id (kept for a conflict only).
    pub id: String,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    fn text(&self, s: Span) -> &str {
        &self.text[s.start as usize..s.start as usize + s.len as usize]
    }

    pub fn order_id(&self, r: &Row) -> &str {
        self.text(r.id)
    }

    pub fn customers(&self) -> usize {
        self.customers.len()
    }

    pub fn customer_id(&self, customer: u32) -> &str {
        self.text(self.customers[customer as usize])
    }

    pub fn customer_name(&self, customer: u32) -> Option<&str> {
        self.names.get(&customer).map(String::as_str)
    }

    pub fn channel(&self, r: &Row) -> Option<&str> {
        r.channel.checked_sub(1).map(|c| self.channels[c as usize].as_str())
    }

    fn push_text(&mut self, s: &str) -> Result<Span, &'static str> {
        let start = u32::try_from(self.text.len()).map_err(|_| TOO_BIG)?;
        let len = u16::try_from(s.len()).map_err(|_| TOO_BIG)?;
        self.text.push_str(s);
        Ok(Span { start, len })
    }

    /// The batch's orders, rebuilt (for tests and small batches).
    pub fn inputs(&self) -> Vec<OrderInput> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| OrderInput {
                order_id: self.order_id(r).to_string(),
                customer_id: self.customer_id(r.customer).to_string(),
                order_date: crate::order::date_of(r.day.into()),
                amount: crate::money::Money(r.fen),
                customer_name: self.row_names.get(&(i as u32)).cloned(),
                channel: self.channel(r).map(str::to_string),
            })
            .collect()
    }

    /// Orders from an API body: a repeated order counts in the second number; the same id
    /// with other values is refused with that id.
    pub fn from_inputs(orders: &[OrderInput]) -> Result<(Batch, usize), String> {
        let mut b = Builder::default();
        for o in orders {
            let p = Parts {
                order_id: Some(&o.order_id),
                customer_id: Some(&o.customer_id),
                customer_name: o.customer_name.as_deref(),
                channel: o.channel.as_deref(),
                ..Parts::default()
            };
            b.add(&p, day_number(o.order_date), o.amount.fen())?;
        }
        let (batch, dups) = b.finish();
        match dups.iter().filter(|d| !d.same).min_by_key(|d| d.index) {
            Some(d) => Err(orders[d.index].order_id.clone()),
            None => Ok((batch, dups.len())),
        }
    }

    /// The orders with `keep[i]` true; customers keep their numbers (one with no order left
    /// sums to a count of 0).
    pub fn filtered(&self, keep: &[bool]) -> Batch {
        let mut b = Batch { rows: Vec::with_capacity(self.rows.len()), ..Batch::default() };
        for (i, r) in self.rows.iter().enumerate() {
            if keep.get(i).copied().unwrap_or(true) {
                if let Some(n) = self.row_names.get(&(i as u32)) {
                    b.row_names.insert(b.rows.len() as u32, n.clone());
                }
                b.rows.push(*r);
            }
        }
        b.text.clone_from(&self.text);
        b.customers.clone_from(&self.customers);
        b.channels.clone_from(&self.channels);
        b.names.clone_from(&self.names);
        b
    }

    /// Each customer's sums over the batch, by customer number.
    pub fn sums(&self) -> Vec<Sums> {
        let mut sums = vec![Sums { first_day: i64::MAX, last_day: i64::MIN, ..Sums::default() }; self.customers.len()];
        // The orders' days grouped by customer (a counting sort), to count distinct days.
        let mut start = vec![0u32; self.customers.len() + 1];
        for r in &self.rows {
            start[r.customer as usize + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut fill = start.clone();
        let mut days = vec![0i32; self.rows.len()];
        for (i, r) in self.rows.iter().enumerate() {
            let s = &mut sums[r.customer as usize];
            let day = i64::from(r.day);
            s.count += 1;
            s.fen += r.fen;
            if day < s.first_day {
                s.first_day = day;
                s.first_day_fen = 0;
            }
            if day == s.first_day {
                s.first_day_fen += r.fen;
            }
            s.last_day = s.last_day.max(day);
            if r.channel != 0 && s.channel_row.is_none_or(|c| r.day < self.rows[c as usize].day) {
                s.channel_row = Some(i as u32);
            }
            let slot = &mut fill[r.customer as usize];
            days[*slot as usize] = r.day;
            *slot += 1;
        }
        for (c, s) in sums.iter_mut().enumerate() {
            let d = &mut days[start[c] as usize..start[c + 1] as usize];
            d.sort_unstable();
            s.purchase_days = 1 + d.windows(2).filter(|w| w[0] != w[1]).count() as i64;
            if s.count == 0 {
                // A customer whose only orders were left out of the batch: nothing summed.
                *s = Sums::default();
            }
        }
        sums
    }
}

const TOO_BIG: &str = "the file is too large for one import (more than 4 GB of ids); split it";

/// The orders a builder took since the previous part, for a writer that goes ahead of the
/// check (C-1: a large file's first orders are written while the rest is still read). Each
/// order's customer is its number in the whole batch; the customers first seen in this
/// part are numbered from `first_customer` on.
#[derive(Debug, Clone, Default)]
pub struct Part {
    /// The orders (ids in this part's text) and the new customers' ids.
    orders: Batch,
    pub first_customer: u32,
}

impl Part {
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    pub fn order(&self, i: usize) -> (&str, &Row) {
        let r = &self.orders.rows[i];
        (self.orders.order_id(r), r)
    }

    /// The customers first seen in this part: (number, id), in number order.
    pub fn new_customers(&self) -> impl Iterator<Item = (u32, &str)> {
        (0..self.orders.customers() as u32).map(|k| (self.first_customer + k, self.orders.customer_id(k)))
    }
}

/// Builds a batch order by order; repeated order ids are found once all are in.
#[derive(Debug, Default)]
pub struct Builder {
    batch: Batch,
    customers: Interner,
    /// Orders whose customer (a short id) is numbered a run at a time: (row, key). The run's
    /// table places are read first, so their cache misses overlap (`Short::touch`).
    pending: Vec<(u32, u128)>,
}

/// Lookups read ahead together.
const RUN: usize = 32;

impl Builder {
    /// Adds a checked order (ids present and valid: no control characters); `Err` only
    /// when the batch is full.
    pub fn add(&mut self, p: &Parts<'_>, day: i64, fen: i64) -> Result<(), String> {
        let (order_id, customer_id) = (p.order_id.unwrap_or_default(), p.customer_id.unwrap_or_default());
        let b = &mut self.batch;
        let next = b.rows.len() as u32;
        let day = i32::try_from(day).map_err(|_| "date out of range".to_string())?;
        let channel = match p.channel {
            None => 0,
            Some(c) => match b.channels.iter().position(|x| x == c) {
                Some(i) => i as u16 + 1,
                None if b.channels.len() < u16::MAX as usize - 1 => {
                    b.channels.push(c.to_string());
                    b.channels.len() as u16
                }
                None => return Err("more than 65,000 different channels in one import".into()),
            },
        };
        // The arena must hold every pending customer's text when the run is numbered.
        if b.text.len() + 16 * (self.pending.len() + 1) + order_id.len() > u32::MAX as usize {
            return Err(TOO_BIG.into());
        }
        let id = b.push_text(order_id)?;
        let deferred = short_key(customer_id).filter(|_| p.customer_name.is_none());
        let customer = match deferred {
            Some(key) => {
                self.pending.push((next, key));
                u32::MAX
            }
            None => {
                self.number_pending();
                let b = &mut self.batch;
                match self.customers.find(customer_id, b.customers.len() as u32) {
                    Some(c) => c,
                    None => {
                        let s = b.push_text(customer_id)?;
                        b.customers.push(s);
                        b.customers.len() as u32 - 1
                    }
                }
            }
        };
        let b = &mut self.batch;
        if let Some(n) = p.customer_name {
            b.names.entry(customer).or_insert_with(|| n.to_string());
            b.row_names.insert(next, n.to_string());
        }
        b.rows.push(Row { id, channel, customer, day, fen });
        if self.pending.len() == RUN {
            self.number_pending();
        }
        Ok(())
    }

    /// Numbers the pending orders' customers in row order (customers are numbered in the
    /// order first seen).
    fn number_pending(&mut self) {
        let touched = self.pending.iter().fold(0u128, |acc, (_, key)| acc ^ self.customers.short.touch(*key));
        std::hint::black_box(touched);
        let b = &mut self.batch;
        for (row, key) in self.pending.drain(..) {
            let customer = match self.customers.short.find(key, b.customers.len() as u32) {
                Some(c) => c,
                None => {
                    // Room was checked when the order was added.
                    let text = short_text(key);
                    b.customers.push(Span { start: b.text.len() as u32, len: text.len() as u16 });
                    b.text.push_str(&text);
                    b.customers.len() as u32 - 1
                }
            };
            b.rows[row as usize].customer = customer;
        }
    }

    /// The orders added from `rows_from` on, with the customers numbered from
    /// `customers_from` on (see `Part`).
    fn part(&mut self, rows_from: usize, customers_from: usize) -> Part {
        self.number_pending();
        let b = &self.batch;
        let mut part = Part { first_customer: customers_from as u32, ..Part::default() };
        let p = &mut part.orders;
        for r in &b.rows[rows_from..] {
            // A part is a small copy of a batch whose text fits.
            let id = p.push_text(b.order_id(r)).expect("a part's text fits");
            p.rows.push(Row { id, ..*r });
        }
        for s in &b.customers[customers_from..] {
            let span = p.push_text(b.text(*s)).expect("a part's text fits");
            p.customers.push(span);
        }
        part
    }

    /// The batch with each order id once (its first order), and the later orders that
    /// repeated an id.
    pub fn finish(mut self) -> (Batch, Vec<Dup>) {
        self.number_pending();
        let mut b = self.batch;
        let dups = b.repeated_ids();
        if !dups.is_empty() {
            let mut keep = vec![true; b.rows.len()];
            for d in &dups {
                keep[d.index] = false;
            }
            b = b.filtered(&keep);
        }
        (b, dups)
    }
}

impl Batch {
    /// Orders whose id an earlier order has: (hash, position) keys sorted, so equal ids
    /// meet as neighbours. A sort reads memory in order where a hash table of ten million
    /// ids misses the cache on every probe (13 of 21 s checking such a file); the two
    /// halves of the hash range are sorted on two threads.
    fn repeated_ids(&self) -> Vec<Dup> {
        let key = |(i, r): (usize, &Row)| (u128::from(id_hash(self.order_id(r))) << 32) | i as u128;
        let (mut low, mut high): (Vec<u128>, Vec<u128>) =
            self.rows.iter().enumerate().map(key).partition(|k| k >> 127 == 0);
        std::thread::scope(|s| {
            s.spawn(|| low.sort_unstable());
            high.sort_unstable();
        });
        let index = |k: &u128| (*k & 0xffff_ffff) as usize;
        let mut dups = Vec::new();
        for run in low.chunk_by(|a, b| a >> 32 == b >> 32).chain(high.chunk_by(|a, b| a >> 32 == b >> 32)) {
            if run.len() < 2 {
                continue;
            }
            // Equal ids together, each group in position order: its first is kept.
            let mut members: Vec<usize> = run.iter().map(index).collect();
            members.sort_by(|a, b| self.order_id(&self.rows[*a]).cmp(self.order_id(&self.rows[*b])).then(a.cmp(b)));
            for group in members.chunk_by(|a, b| self.order_id(&self.rows[*a]) == self.order_id(&self.rows[*b])) {
                let first = group[0];
                for &i in &group[1..] {
                    let same = self.same(first, i);
                    let id = if same { String::new() } else { self.order_id(&self.rows[i]).to_string() };
                    dups.push(Dup { index: i, first, same, id });
                }
            }
        }
        dups
    }

    /// Two orders of the batch with the same values (id aside).
    fn same(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.rows[a], &self.rows[b]);
        self.customer_id(x.customer) == self.customer_id(y.customer)
            && (x.day, x.fen, x.channel) == (y.day, y.fen, y.channel)
            && self.row_names.get(&(a as u32)) == self.row_names.get(&(b as u32))
    }
}

/// FNV-1a over the id's bytes, finished with a multiply so all bits mix.
fn id_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Hashes a 128-bit key of `Interner` (MurmurHash3's 64-bit finaliser). The table places a
/// key by the hash's low bits, and the low bits of a product depend only on the low bits of
/// its factors: with one multiply, digit ids ("27244") varied in a few bits there and
/// 800,000 customers fell into ~1,600 places.
fn mix(v: u128) -> u64 {
    let mut x = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
    x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// An id of up to 16 bytes as its own key (checked ids hold no NUL, so zero padding is
/// unambiguous, and no key is 0: ids are not empty).
fn short_key(id: &str) -> Option<u128> {
    (id.len() <= 16).then(|| {
        let mut bytes = [0u8; 16];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        u128::from_le_bytes(bytes)
    })
}

/// The text of a short key.
fn short_text(key: u128) -> String {
    let bytes = key.to_le_bytes();
    let len = bytes.iter().position(|b| *b == 0).unwrap_or(16);
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

/// One place of `Short`: a key (0 = free) and its number, two to a cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    key: u128,
    number: u32,
}

/// Open addressing with linear probing over short keys, at most half full: a lookup reads
/// one slot, mostly. Its places can be read ahead (`touch`) so that the cache misses of a
/// run of lookups overlap instead of following one another (ten million lookups in a
/// table of 800,000 customers: 2.5 s one after the other).
#[derive(Debug, Default)]
struct Short {
    slots: Vec<Slot>,
    len: usize,
}

impl Short {
    fn place(&self, key: u128) -> usize {
        mix(key) as usize & (self.slots.len() - 1)
    }

    /// Reads the place of `key`, so that a lookup soon after finds it in the cache.
    fn touch(&self, key: u128) -> u128 {
        if self.slots.is_empty() { 0 } else { self.slots[self.place(key)].key }
    }

    fn find(&mut self, key: u128, next: u32) -> Option<u32> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = mix(key) as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.key == key {
                return Some(slot.number);
            }
            if slot.key == 0 {
                *slot = Slot { key, number: next };
                self.len += 1;
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|s| s.key != 0) {
            let mut i = self.place(s.key);
            while self.slots[i].key != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }
}

/// Numbers for ids. An id of up to 16 bytes is its own key, held in the table: one memory
/// access a lookup, no text compared elsewhere. Longer ids are keyed by their text.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    short: Short,
    long: HashMap<String, u32>,
}

impl Interner {
    /// The number of `key` if it has one; otherwise `next` becomes its number and `None`
    /// is returned.
    pub(crate) fn find(&mut self, key: &str, next: u32) -> Option<u32> {
        if let Some(k) = short_key(key) {
            self.short.find(k, next)
        } else if let Some(n) = self.long.get(key) {
            Some(*n)
        } else {
            self.long.insert(key.to_string(), next);
            None
        }
    }
}

/// The result of checking every row of an orders file before anything is written.
#[derive(Debug, Default)]
pub struct Checked {
    pub batch: Batch,
    pub errors: Vec<RowError>,
    pub bad_rows: usize,
}

/// Checks an orders file row by row as it is read (see `crate::order::check`).
#[derive(Debug)]
pub struct Checker {
    latest: jiff::civil::Date,
    /// The field of each column.
    map: Vec<Option<&'static str>>,
    /// The header shown for each field in errors.
    columns: HashMap<&'static str, String>,
    builder: Builder,
    /// The sheet row of each order (for "already appears on row N").
    sheet_rows: Vec<u32>,
    errors: Vec<RowError>,
    bad_rows: usize,
    /// Orders and customers handed out in parts so far (`Checker::part`).
    parted: (usize, usize),
}

impl Checker {
    pub fn new(headers: &[String], map: &[Option<&'static str>], latest: jiff::civil::Date) -> Checker {
        let columns = crate::order::ORDER_FIELDS
            .iter()
            .map(|f| {
                let header = map.iter().position(|m| *m == Some(*f)).and_then(|c| headers.get(c).cloned());
                (*f, header.unwrap_or_else(|| f.to_string()))
            })
            .collect();
        Checker {
            latest,
            map: map.to_vec(),
            columns,
            builder: Builder::default(),
            sheet_rows: Vec::new(),
            errors: Vec::new(),
            bad_rows: 0,
            parted: (0, 0),
        }
    }

    /// The orders checked since the previous part (see `Part`). The batch at the end still
    /// holds every order, and an order that repeats an earlier one's id is in a part too:
    /// a writer keeps the first order of each id, as `finish` does.
    pub fn part(&mut self) -> Part {
        let part = self.builder.part(self.parted.0, self.parted.1);
        self.parted = (self.builder.batch.rows.len(), self.builder.batch.customers.len());
        part
    }

    /// Rows with an error so far (an order id met again with other values is counted at
    /// the end, by `finish`).
    pub fn bad_rows(&self) -> usize {
        self.bad_rows
    }

    fn column(&self, field: &str) -> String {
        self.columns.get(field).cloned().unwrap_or_else(|| field.to_string())
    }

    /// Checks one row (`row` is its sheet row number, the header being row 1). Rows with
    /// every cell empty are skipped; the same order id twice is an error on the later row
    /// unless the two rows are identical (a repeated line).
    pub fn row<'a>(&mut self, row: usize, cells: impl IntoIterator<Item = &'a str>) {
        let mut p = Parts::default();
        let any = crate::import::each_cell(cells, &self.map, |field, v| match field {
            "order_id" => p.order_id = Some(v),
            "customer_id" => p.customer_id = Some(v),
            "order_date" => p.order_date = Some(v),
            "amount" => p.amount = Some(v),
            "customer_name" => p.customer_name = Some(v),
            "channel" => p.channel = Some(v),
            _ => {}
        });
        if !any {
            return;
        }
        let fail = |me: &mut Checker, e: FieldErrors| {
            me.bad_rows += 1;
            for (field, message) in e.0 {
                let column = me.column(&field);
                me.errors.push(RowError { row, column, message });
            }
        };
        match crate::order::validate(&p, self.latest) {
            Err(e) => fail(self, e),
            Ok((date, amount)) => match self.builder.add(&p, day_number(date), amount.fen()) {
                Ok(()) => self.sheet_rows.push(row as u32),
                Err(message) => fail(self, FieldErrors::single("order_id", message)),
            },
        }
    }

    /// The batch, and the errors in row order (with an order id met again with other
    /// values an error on the later row).
    pub fn finish(mut self) -> Checked {
        let (batch, dups) = std::mem::take(&mut self.builder).finish();
        let column = self.column("order_id");
        for d in dups.iter().filter(|d| !d.same) {
            self.bad_rows += 1;
            let (row, first) = (self.sheet_rows[d.index] as usize, self.sheet_rows[d.first]);
            let message = format!("order {} already appears on row {first} with other values", d.id);
            self.errors.push(RowError { row, column: column.clone(), message });
        }
        self.errors.sort_by_key(|e| e.row);
        Checked { batch, errors: self.errors, bad_rows: self.bad_rows }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::Date;

    fn input(id: &str, customer: &str, date: &str, fen: i64) -> OrderInput {
        OrderInput {
            order_id: id.into(),
            customer_id: customer.into(),
            order_date: date.parse().unwrap(),
            amount: crate::money::Money(fen),
            customer_name: None,
            channel: None,
        }
    }

    #[test]
    fn c1_a_batch_keeps_each_order_once_and_numbers_customers() {
        let mut named = input("o3", "b", "2026-01-03", 700);
        named.customer_name = Some("Bo".into());
        named.channel = Some("wechat".into());
        let orders = vec![
            input("o1", "a", "2026-01-02", 100),
            input("o2", "a", "2026-01-01", 200),
            input("o1", "a", "2026-01-02", 100),
            named.clone(),
            input("o4", "a", "2026-01-01", 50),
        ];
        let (b, repeats) = Batch::from_inputs(&orders).unwrap();
        assert_eq!((b.len(), b.customers(), repeats), (4, 2, 1));
        assert_eq!(b.inputs()[2], named);
        assert_eq!((b.customer_id(0), b.customer_id(1), b.customer_name(1)), ("a", "b", Some("Bo")));
        let s = b.sums();
        let jan1 = day_number(Date::constant(2026, 1, 1));
        assert_eq!(
            s[0],
            Sums {
                count: 3,
                fen: 350,
                first_day: jan1,
                last_day: jan1 + 1,
                first_day_fen: 250,
                purchase_days: 2,
                channel_row: None
            }
        );
        assert_eq!((s[1].count, s[1].channel_row), (1, Some(2)));
        let kept = b.filtered(&[false, true, false, true]);
        assert_eq!(kept.inputs(), vec![orders[1].clone(), orders[4].clone()]);
        assert_eq!((kept.sums()[0].count, kept.sums()[1]), (2, Sums::default()));
        let mut other = input("o1", "a", "2026-01-02", 101);
        assert_eq!(Batch::from_inputs(&[orders[0].clone(), other.clone()]).unwrap_err(), "o1");
        other.amount = crate::money::Money(100);
        other.customer_name = Some("A".into());
        assert!(Batch::from_inputs(&[orders[0].clone(), other]).is_err());
    }

    #[test]
    fn c1_a_repeated_id_keeps_its_first_order() {
        // o1 three times (once with another customer), o2 twice, o3 once, in mixed order.
        let orders = [
            input("o2", "a", "2026-01-02", 100),
            input("o1", "a", "2026-01-02", 100),
            input("o1", "z", "2026-01-02", 100),
            input("o3", "a", "2026-01-02", 100),
            input("o2", "a", "2026-01-02", 100),
            input("o1", "a", "2026-01-02", 100),
        ];
        let mut b = Builder::default();
        for o in &orders {
            let p = Parts { order_id: Some(&o.order_id), customer_id: Some(&o.customer_id), ..Parts::default() };
            b.add(&p, day_number(o.order_date), o.amount.fen()).unwrap();
        }
        let (b, mut dups) = b.finish();
        dups.sort_by_key(|d| d.index);
        let ids: Vec<String> = b.inputs().into_iter().map(|o| o.order_id).collect();
        assert_eq!(ids, ["o2", "o1", "o3"]);
        let found: Vec<(usize, usize, bool, &str)> =
            dups.iter().map(|d| (d.index, d.first, d.same, d.id.as_str())).collect();
        assert_eq!(found, [(2, 1, false, "o1"), (4, 0, true, ""), (5, 1, true, "")]);
        // The customer of the dropped row stays numbered, with nothing summed.
        assert_eq!((b.customers(), b.sums()[1].count), (2, 0));
    }

    /// C-1: digit ids differ in a few bits of a few bytes; their hashes still spread over
    /// the low bits the table places keys by (as random keys would: ~69,700 of 131,072
    /// places for 100,000 keys; the one-multiply hash used ~1,600).
    #[test]
    fn c1_numbered_ids_spread_over_the_table() {
        let places: std::collections::HashSet<u64> =
            (0..100_000u32).map(|n| mix(short_key(&n.to_string()).unwrap()) & ((1 << 17) - 1)).collect();
        assert!(places.len() > 65_000, "{} places", places.len());
    }

    /// C-1: customers numbered a run at a time get the numbers they would get one by one:
    /// first seen, first numbered, across runs, long ids and named rows between them.
    #[test]
    fn c1_customers_are_numbered_in_the_order_first_seen() {
        let long = "a-customer-id-longer-than-16-bytes";
        let ids: Vec<String> = (0..200)
            .map(|i| match i {
                50 => long.to_string(),
                _ => format!("c{}", (i * 7919) % 61),
            })
            .collect();
        let mut b = Builder::default();
        for (i, id) in ids.iter().enumerate() {
            let order = format!("o{i}");
            let name = (i == 90).then_some("Named");
            let p = Parts { order_id: Some(&order), customer_id: Some(id), customer_name: name, ..Parts::default() };
            b.add(&p, 20_000, 100).unwrap();
        }
        let (batch, dups) = b.finish();
        assert!(dups.is_empty());
        let mut first_seen: Vec<&str> = Vec::new();
        for (row, id) in batch.rows().iter().zip(&ids) {
            assert_eq!(batch.customer_id(row.customer), id);
            if !first_seen.contains(&id.as_str()) {
                first_seen.push(id);
            }
        }
        let numbered: Vec<&str> = (0..batch.customers() as u32).map(|c| batch.customer_id(c)).collect();
        assert_eq!(numbered, first_seen);
        assert_eq!(batch.customer_name(batch.rows()[90].customer), Some("Named"));
    }

    /// C-1: the parts a checker hands out while checking (for a writer ahead of the check)
    /// hold every order once, in order, with the customer numbers of the final batch, and
    /// each customer among a part's new ones exactly once, in number order; parts taken
    /// in the middle of a run of pending customers (short ids) or with nothing new are too.
    #[test]
    fn c1_checked_parts_are_the_batch_in_order() {
        let headers: Vec<String> = ["order_id", "customer_id", "order_date", "amount"].map(String::from).to_vec();
        let map: Vec<Option<&'static str>> = crate::order::ORDER_FIELDS[..4].iter().map(|f| Some(*f)).collect();
        let mut c = Checker::new(&headers, &map, jiff::civil::date(2026, 12, 31));
        let mut parts = Vec::new();
        for i in 0..500usize {
            let (order, customer) = (format!("o{}", i % 470), format!("c{}", (i * 7919) % 97));
            let date = if i == 200 { "2026-02-30".to_string() } else { format!("2026-01-{:02}", i % 28 + 1) };
            c.row(i + 2, [order.as_str(), customer.as_str(), date.as_str(), "1.50"]);
            if [0, 17, 40, 41, 250, 499].contains(&i) {
                parts.push(c.part());
            }
        }
        assert_eq!(c.bad_rows(), 1, "the impossible date");
        let checked = c.finish();
        // Rows 470..500 repeat ids 0..30 with other dates: in the parts, not in the batch.
        assert_eq!(parts.iter().map(Part::len).sum::<usize>(), 499);
        let mut seen: Vec<(String, u32, i32)> = Vec::new();
        let mut numbered: Vec<String> = Vec::new();
        for p in &parts {
            assert_eq!(p.first_customer as usize, numbered.len());
            for (n, id) in p.new_customers() {
                assert_eq!(n as usize, numbered.len(), "numbers follow on across parts");
                numbered.push(id.to_string());
            }
            seen.extend((0..p.len()).map(|i| {
                let (id, r) = p.order(i);
                (id.to_string(), r.customer, r.day)
            }));
        }
        let b = &checked.batch;
        assert_eq!(numbered, (0..b.customers() as u32).map(|n| b.customer_id(n).to_string()).collect::<Vec<_>>());
        let firsts: Vec<(String, u32, i32)> = {
            let mut ids = std::collections::HashSet::new();
            seen.iter().filter(|(id, ..)| ids.insert(id.clone())).cloned().collect()
        };
        let batch: Vec<(String, u32, i32)> =
            b.rows().iter().map(|r| (b.order_id(r).to_string(), r.customer, r.day)).collect();
        assert_eq!(firsts, batch, "the first order of each id, as the batch keeps");
        assert_eq!(checked.bad_rows, 31, "the date and 30 ids met again with other values");
    }

    #[test]
    fn c1_short_and_long_ids_are_numbered_exactly() {
        let mut i = Interner::default();
        let long = "a-customer-id-longer-than-16-bytes";
        assert_eq!(i.find("ab", 0), None);
        assert_eq!(i.find("a", 1), None);
        assert_eq!(i.find("abcdefghijklmnop", 2), None);
        assert_eq!(i.find(long, 3), None);
        assert_eq!(i.find(&long[..long.len() - 1], 4), None);
        for (key, n) in [("ab", 0), ("a", 1), ("abcdefghijklmnop", 2), (long, 3)] {
            assert_eq!(i.find(key, 99), Some(n), "{key}");
        }
    }
}

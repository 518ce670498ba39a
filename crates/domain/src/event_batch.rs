//! C-5 a batch of funnel events held as numbers: each user id and each channel/campaign
//! pair once, and per event 24 bytes (user, pair, step, instant). Ten million events from a
//! file took 5.2 GiB as text cells and one struct of owned strings per row.

use crate::errors::FieldErrors;
use crate::funnel::{Cells, EVENT_FIELDS, EventInput, Numbered, Step};
use crate::import::RowError;
use crate::order_batch::Interner;
use std::collections::HashMap;

/// Events with their users and channel/campaign pairs numbered in the order first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventBatch {
    /// User ids by number.
    pub users: Vec<String>,
    /// (channel, campaign) by number; the campaign is empty for none.
    pub groups: Vec<(String, String)>,
    pub rows: Vec<Numbered>,
}

impl EventBatch {
    pub fn from_inputs(events: &[EventInput]) -> EventBatch {
        let mut b = Builder::default();
        for e in events {
            b.add(&e.user, &e.channel, &e.campaign, e.step, e.at.as_microsecond());
        }
        b.batch
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The conversions of users in campaign `campaign`: (user id, instant in µs).
    pub fn conversions_in(&self, campaign: &str) -> Vec<(&str, i64)> {
        let groups: Vec<bool> = self.groups.iter().map(|(_, c)| !c.is_empty() && c == campaign).collect();
        self.rows
            .iter()
            .filter(|r| r.step == Step::Conversion && groups[r.group as usize])
            .map(|r| (self.users[r.user as usize].as_str(), r.at))
            .collect()
    }
}

#[derive(Debug, Default)]
struct Builder {
    users: Interner,
    /// channel → campaign → number: looked up by `&str`, so a known pair costs no allocation.
    groups: HashMap<String, HashMap<String, u32>>,
    batch: EventBatch,
}

impl Builder {
    fn add(&mut self, user: &str, channel: &str, campaign: &str, step: Step, at: i64) {
        let next = self.batch.users.len() as u32;
        let user = self.users.find(user, next).unwrap_or_else(|| {
            self.batch.users.push(user.to_string());
            next
        });
        let group = match self.groups.get(channel).and_then(|c| c.get(campaign)) {
            Some(g) => *g,
            None => {
                let g = self.batch.groups.len() as u32;
                self.groups.entry(channel.to_string()).or_default().insert(campaign.to_string(), g);
                self.batch.groups.push((channel.to_string(), campaign.to_string()));
                g
            }
        };
        self.batch.rows.push(Numbered { user, group, step, at });
    }
}

/// The result of checking every row of an events file before anything is written.
#[derive(Debug, Default)]
pub struct CheckedEvents {
    pub batch: EventBatch,
    pub errors: Vec<RowError>,
    pub bad_rows: usize,
}

/// Checks an events file row by row as it is read, with the rule of `EventInput::parse`.
#[derive(Debug)]
pub struct Checker {
    /// The field of each column.
    map: Vec<Option<&'static str>>,
    /// The header shown for each field in errors.
    columns: HashMap<&'static str, String>,
    builder: Builder,
    errors: Vec<RowError>,
    bad_rows: usize,
}

impl Checker {
    pub fn new(headers: &[String], map: &[Option<&'static str>]) -> Checker {
        let columns = EVENT_FIELDS
            .iter()
            .map(|f| {
                let header = map.iter().position(|m| *m == Some(*f)).and_then(|c| headers.get(c).cloned());
                (*f, header.unwrap_or_else(|| f.to_string()))
            })
            .collect();
        Checker { map: map.to_vec(), columns, builder: Builder::default(), errors: Vec::new(), bad_rows: 0 }
    }

    /// Checks one row (`row` is its sheet row number, the header being row 1); rows with
    /// every cell empty are skipped.
    pub fn row<'a>(&mut self, row: usize, cells: impl IntoIterator<Item = &'a str>) {
        let mut c = Cells::default();
        let any = crate::import::each_cell(cells, &self.map, |field, v| match field {
            "user_id" => c.user = Some(v),
            "channel" => c.channel = Some(v),
            "campaign" => c.campaign = Some(v),
            "type" => c.kind = Some(v),
            "ts" => c.ts = Some(v),
            _ => {}
        });
        if !any {
            return;
        }
        let mut e = FieldErrors::new();
        match c.check(&mut e) {
            Some((step, at)) if e.is_empty() => {
                let (user, channel) = (c.user.unwrap_or_default(), c.channel.unwrap_or_default());
                self.builder.add(user, channel, c.campaign.unwrap_or_default(), step, at);
            }
            _ => {
                self.bad_rows += 1;
                for (field, message) in e.0 {
                    let column = self.columns.get(field.as_str()).cloned().unwrap_or(field);
                    self.errors.push(RowError { row, column, message });
                }
            }
        }
    }

    pub fn finish(self) -> CheckedEvents {
        CheckedEvents { batch: self.builder.batch, errors: self.errors, bad_rows: self.bad_rows }
    }
}

/// Checks every row of a table read whole (XLSX, or a CSV in another encoding) with
/// `Checker`, rows numbered as in the sheet (the header is row 1).
pub fn check(table: &crate::import::Table, map: &[Option<&'static str>]) -> CheckedEvents {
    let mut c = Checker::new(&table.headers, map);
    for (i, cells) in table.rows.iter().enumerate() {
        c.row(i + 2, cells.iter().map(String::as_str));
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fields;

    /// C-5: a file's rows and the same events through the API make the same batch; bad rows
    /// are named by row and column header and left out.
    #[test]
    fn c5_events_file_rows_are_checked_and_numbered() {
        let headers: Vec<String> = ["用户id", "channel", "campaign", "type", "ts"].map(String::from).into();
        let map = crate::import::auto_map_with(&headers, crate::funnel::EVENT_SYNONYMS);
        let mut c = Checker::new(&headers, &map);
        c.row(2, ["u1", "douyin", "v1", "exposure", "2026-05-02T10:00:00+08:00"]);
        c.row(3, ["u2", "douyin", "v1", "click", "2026-05-02T10:00:00Z"]);
        c.row(4, ["u1", "douyin", "", "click", "2026-05-02T11:00:00+08:00"]);
        c.row(5, ["", " ", "", "", ""]);
        c.row(6, ["u3", "", "v1", "view", "soon"]);
        c.row(7, [" u1 ", "douyin", "v1", "conversion", "2026-05-02T12:00:00+08:00"]);
        let got = c.finish();
        assert_eq!(got.bad_rows, 1);
        let named: Vec<(usize, &str)> = got.errors.iter().map(|e| (e.row, e.column.as_str())).collect();
        assert_eq!(named, [(6, "channel"), (6, "ts"), (6, "type")]);
        assert_eq!(got.batch.users, ["u1", "u2"]);
        assert_eq!(got.batch.groups, [("douyin".into(), "v1".into()), ("douyin".into(), String::new())]);
        let inputs: Vec<EventInput> = [
            ("u1", "v1", "exposure", "2026-05-02T10:00:00+08:00"),
            ("u2", "v1", "click", "2026-05-02T10:00:00Z"),
            ("u1", "", "click", "2026-05-02T11:00:00+08:00"),
            ("u1", "v1", "conversion", "2026-05-02T12:00:00+08:00"),
        ]
        .iter()
        .map(|(u, c, k, t)| {
            let f = Fields::from_pairs([
                ("user_id", *u),
                ("channel", "douyin"),
                ("campaign", *c),
                ("type", *k),
                ("ts", *t),
            ]);
            EventInput::parse(&f).unwrap()
        })
        .collect();
        assert_eq!(EventBatch::from_inputs(&inputs), got.batch);
        let at = "2026-05-02T12:00:00+08:00".parse::<jiff::Timestamp>().unwrap().as_microsecond();
        assert_eq!(got.batch.conversions_in("v1"), [("u1", at)]);
        assert!(got.batch.conversions_in("").is_empty(), "events without a campaign belong to no experiment");
    }
}

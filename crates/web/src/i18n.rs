//! Interface language, per request (never process-global).
//!
//! Strings live in `locales/<lang>/*.ftl`. Fluent's Unicode isolation marks are switched
//! off: they would end up as invisible characters in HTML attributes and text.

use fluent_templates::{Loader, static_loader};
use std::borrow::Cow;
use std::collections::HashMap;
use unic_langid::LanguageIdentifier;

static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "zh-CN",
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhCn,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s == "zh-cn" || s == "zh" || s.starts_with("zh-hans") || s == "zh_cn" {
            Some(Lang::ZhCn)
        } else if s == "en" || s.starts_with("en-") || s.starts_with("en_") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The first supported language of an `Accept-Language` header, by quality.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut tags: Vec<(f32, &str)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let tag = it.next()?.trim();
                let q = it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                Some((q, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        tags.into_iter().find_map(|(_, t)| Lang::parse(t).or_else(|| t.starts_with("zh").then_some(Lang::ZhCn)))
    }

    fn id(self) -> LanguageIdentifier {
        match self {
            Lang::ZhCn => unic_langid::langid!("zh-CN"),
            Lang::En => unic_langid::langid!("en"),
        }
    }
}

/// Translations for one request.
#[derive(Debug, Clone)]
pub struct I18n {
    pub lang: Lang,
    id: LanguageIdentifier,
}

impl I18n {
    pub fn new(lang: Lang) -> I18n {
        I18n { lang, id: lang.id() }
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn t(&self, key: &str) -> String {
        LOCALES.lookup(&self.id, key)
    }

    pub fn try_t(&self, key: &str) -> Option<String> {
        LOCALES.try_lookup(&self.id, key)
    }

    /// With named arguments: `t_args("playbook-version", &[("version", "3")])`.
    pub fn t_args(&self, key: &str, args: &[(&str, &str)]) -> String {
        let map: HashMap<Cow<'static, str>, fluent_templates::fluent_bundle::FluentValue> = args
            .iter()
            .map(|(k, v)| {
                (Cow::Owned(k.to_string()), fluent_templates::fluent_bundle::FluentValue::from(v.to_string()))
            })
            .collect();
        LOCALES.lookup_with_args(&self.id, key, &map)
    }

    /// A localised label for a closed-set code (`role-sales_rep`, `stage-growth`, …),
    /// falling back to the code itself.
    pub fn code_label(&self, prefix: &str, code: &str) -> String {
        self.try_t(&format!("{prefix}-{code}")).unwrap_or_else(|| code.to_string())
    }

    /// Translates a validation message from `domain` (written in English) into this
    /// language, argument by argument; unknown messages are shown as they are.
    pub fn problem(&self, message: &str) -> String {
        if self.lang == Lang::En {
            return message.to_string();
        }
        let fixed = [
            ("is required", "err-required"),
            ("unknown field", "err-unknown-field"),
            ("unknown key", "err-unknown-key"),
            ("is missing", "err-missing"),
            ("must be a string", "err-string"),
            ("must be a whole number", "err-whole-number"),
            ("must be true or false", "err-bool"),
            ("must be a positive id", "err-positive-id"),
            ("is not an e-mail address", "err-email"),
            ("must not be empty", "err-not-empty"),
            ("must be a list of strings", "err-list"),
            ("is already used by another account", "err-email-taken"),
            ("another department has this name", "err-department-taken"),
            ("the department already has a team with this name", "err-team-taken"),
            ("the team belongs to another department", "err-team-department"),
            ("at least one day of the week must be a working day", "err-no-working-day"),
            ("is not a phone number", "err-phone"),
            ("give an e-mail address or a phone number", "err-contact"),
            ("give a name or a company", "err-who"),
            ("is required for this action", "err-required-for-action"),
        ];
        if let Some((_, key)) = fixed.iter().find(|(m, _)| *m == message) {
            return self.t(key);
        }
        if let Some(rest) = message.strip_prefix("unknown value `")
            && let Some((value, allowed)) = rest.split_once("`; expected one of: ")
        {
            return self.t_args("err-unknown-value", &[("value", value), ("allowed", allowed)]);
        }
        if let Some(rest) = message.strip_prefix("must be between ")
            && let Some((range, got)) = rest.split_once(", got ")
            && let Some((min, max)) = range.split_once(" and ")
        {
            return self.t_args("err-range", &[("min", min), ("max", max), ("got", got)]);
        }
        if let Some(n) = message.strip_prefix("must be at most ").and_then(|r| r.strip_suffix(" characters")) {
            return self.t_args("err-max-chars", &[("max", n)]);
        }
        if let Some(n) = message.strip_prefix("must be at least ").and_then(|r| r.strip_suffix(" characters")) {
            return self.t_args("err-min-chars", &[("min", n)]);
        }
        if let Some(rest) = message.strip_prefix("must be an integer, got ") {
            return self.t_args("err-integer", &[("got", rest)]);
        }
        if let Some(value) = message.strip_prefix('`').and_then(|r| r.strip_suffix("` is not a date (YYYY-MM-DD)")) {
            return self.t_args("err-date", &[("value", value)]);
        }
        if let Some(rest) = message.strip_prefix("unknown time zone `").and_then(|r| r.split_once('`')) {
            return self.t_args("err-time-zone", &[("value", rest.0)]);
        }
        message.to_string()
    }
}

/// Every message key of one language, for the parity test.
pub fn keys(lang: Lang) -> Vec<String> {
    let dir = match lang {
        Lang::ZhCn => include_str!("../locales/zh-CN/main.ftl"),
        Lang::En => include_str!("../locales/en/main.ftl"),
    };
    let mut keys: Vec<String> = dir
        .lines()
        .filter(|l| !l.starts_with([' ', '#', '\t', '.', '*', '[', '}']) && l.contains(" ="))
        .filter_map(|l| l.split_once(" =").map(|(k, _)| k.trim().to_string()))
        .collect();
    keys.sort();
    keys
}

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

    /// Translates a message from `domain` or `store` (written in English: a validation
    /// problem or a conflict) into this language, argument by argument; unknown messages are
    /// shown as they are. The English locale's `err-*` and `conflict-*` messages are the
    /// templates: a message matching one is that key with the placeholders' values.
    pub fn problem(&self, message: &str) -> String {
        if self.lang == Lang::En {
            return message.to_string();
        }
        for (key, template) in PROBLEMS.iter() {
            if let Some(args) = fill(template, message) {
                return self.t_args(key, &args);
            }
        }
        message.to_string()
    }
}

/// The English `err-*` and `conflict-*` messages (key, text): what `domain` and `store`
/// write, in the order of the file.
static PROBLEMS: std::sync::LazyLock<Vec<(&'static str, &'static str)>> = std::sync::LazyLock::new(|| {
    include_str!("../locales/en/main.ftl")
        .lines()
        .filter(|l| l.starts_with("err-") || l.starts_with("conflict-"))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
});

/// The placeholders' values when `message` is `template` (Fluent's `{ $name }` standing
/// for any text), else `None`.
fn fill<'a, 'm>(template: &'a str, message: &'m str) -> Option<Vec<(&'a str, &'m str)>> {
    let mut pieces = template.split("{ $");
    let mut rest = message.strip_prefix(pieces.next()?)?;
    let mut args = Vec::new();
    let mut pieces = pieces.peekable();
    while let Some(piece) = pieces.next() {
        let (name, literal) = piece.split_once(" }")?;
        let value = if pieces.peek().is_none() {
            // The last placeholder runs to the message's own ending.
            let v = rest.strip_suffix(literal)?;
            rest = "";
            v
        } else {
            let at = rest.find(literal)?;
            let v = &rest[..at];
            rest = &rest[at + literal.len()..];
            v
        };
        if value.is_empty() {
            return None;
        }
        args.push((name, value));
    }
    rest.is_empty().then_some(args)
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

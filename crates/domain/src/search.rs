//! L-1 search: the text a lead is found by, segmented with jieba so Chinese names and
//! companies match on words, and the query built from what a user typed.
//!
//! Both backends index the same space-separated tokens (SQLite FTS5 with `ascii`,
//! PostgreSQL a GIN index over `array_to_tsvector`), and both match a query token as a
//! prefix of an indexed token, so the two give the same results.

use jieba_rs::Jieba;
use std::sync::LazyLock;

/// One segmenter for the process (≈100 ms and 30 MB to build), with marketing words the
/// default dictionary splits wrongly (双十一, 种草, 私域 …).
static JIEBA: LazyLock<Jieba> = LazyLock::new(|| {
    let mut j = Jieba::new();
    let mut dict = std::io::Cursor::new(include_str!("../dict/marketing.txt"));
    j.load_dict(&mut dict).expect("the marketing dictionary is well formed");
    j
});

/// Builds the segmenter now rather than on the first lead (startup, not a request, pays).
pub fn warm_up() {
    LazyLock::force(&JIEBA);
}

/// The CJK Unified Ideographs block: every one a letter, none with case.
const COMMON_IDEOGRAPHS: std::ops::RangeInclusive<char> = '\u{4E00}'..='\u{9FFF}';

fn is_cjk(c: char) -> bool {
    c.is_alphabetic() && !c.is_ascii()
}

/// Splits text into runs of CJK characters and runs of other letters or digits (lower-cased);
/// everything else separates.
fn runs(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    each_run(text, &mut String::new(), |cjk, run| out.push((cjk, run.to_string())));
    out
}

/// `runs` handed to `f` one at a time, each made in `buf` (a large import indexes a million
/// leads: no vector and no string per run).
fn each_run(text: &str, buf: &mut String, mut f: impl FnMut(bool, &str)) {
    buf.clear();
    let mut cur_cjk = false;
    for c in text.chars() {
        // Fast answers for the two commonest kinds of character, the same as the general
        // ones (`common_ideographs_are_letters_without_case` proves it): ASCII, and the
        // common CJK ideographs, which are letters without case. The Unicode tables were a
        // good part of a large import's time.
        // `lower`: the character as the run holds it, when known without the tables.
        let (letter, cjk, lower) = if c.is_ascii() {
            (c.is_ascii_alphanumeric(), false, Some(c.to_ascii_lowercase()))
        } else if COMMON_IDEOGRAPHS.contains(&c) {
            (true, true, Some(c))
        } else {
            (c.is_alphanumeric(), is_cjk(c), None)
        };
        if !letter {
            if !buf.is_empty() {
                f(cur_cjk, buf);
                buf.clear();
            }
            continue;
        }
        if !buf.is_empty() && cjk != cur_cjk {
            f(cur_cjk, buf);
            buf.clear();
        }
        cur_cjk = cjk;
        match lower {
            Some(l) => buf.push(l),
            None => buf.extend(c.to_lowercase()),
        }
    }
    if !buf.is_empty() {
        f(cur_cjk, buf);
    }
}

/// Runs' words as `cut_for_search` finds them, space-joined, remembered per thread: a
/// file's companies, names, provinces and cities repeat, and segmenting one again cost
/// more than the rest of its search text. Forgotten all at once when full.
struct Segments(std::collections::HashMap<String, String>);

/// Runs remembered per thread at most.
const SEGMENTS_MAX: usize = 65_536;

thread_local! {
    static SEGMENTS: std::cell::RefCell<Segments> = std::cell::RefCell::new(Segments(std::collections::HashMap::new()));
}

impl Segments {
    fn words(&mut self, run: &str) -> &str {
        if !self.0.contains_key(run) {
            if self.0.len() >= SEGMENTS_MAX {
                self.0.clear();
            }
            let words: Vec<&str> = JIEBA.cut_for_search(run, true).into_iter().map(|w| w.word).collect();
            self.0.insert(run.to_string(), words.join(" "));
        }
        &self.0[run]
    }
}

/// Space-separated tokens, each once, with where each one lies: whether a token is already
/// there is a comparison with the tokens of its length (splitting the text again for every
/// token was a good part of making a large import's search texts).
struct Tokens {
    out: String,
    at: Vec<(u32, u32)>,
}

impl Tokens {
    /// Appends `token` unless it is empty or already there.
    fn push(&mut self, token: &str) {
        let len = token.len() as u32;
        if token.is_empty()
            || self.at.iter().any(|&(s, l)| l == len && &self.out[s as usize..(s + l) as usize] == token)
        {
            return;
        }
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        self.at.push((self.out.len() as u32, len));
        self.out.push_str(token);
    }
}

/// The index tokens of some texts, space-joined: every run whole (so a typed beginning of a
/// company name matches), and for Chinese runs the words jieba finds in them, fine-grained
/// (`cut_for_search`: 有限公司 → 有限, 公司, 有限公司). `extra` tokens are added as they are
/// (e.g. the last four digits of a phone number).
pub fn index_text<'a>(texts: impl IntoIterator<Item = &'a str>, extra: &[String]) -> String {
    let mut out = Tokens { out: String::with_capacity(128), at: Vec::with_capacity(24) };
    let mut buf = String::new();
    SEGMENTS.with_borrow_mut(|segments| {
        for text in texts {
            each_run(text, &mut buf, |cjk, run| {
                out.push(run);
                if cjk && run.chars().nth(1).is_some() {
                    for w in segments.words(run).split(' ') {
                        out.push(w);
                    }
                }
            });
        }
    });
    for e in extra {
        each_run(e, &mut buf, |_, run| out.push(run));
    }
    out.out
}

/// A parsed search: every group must match; a group matches when any of its alternatives
/// does, and an alternative when all its tokens match (each as a prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query(Vec<Vec<Vec<String>>>);

impl Query {
    /// `None` when the text has nothing to search by (only punctuation or spaces).
    pub fn parse(text: &str) -> Option<Query> {
        let groups: Vec<Vec<Vec<String>>> = runs(text)
            .into_iter()
            .map(|(cjk, run)| {
                let mut alts = vec![vec![run.clone()]];
                if cjk && run.chars().count() > 1 {
                    let words: Vec<String> = JIEBA.cut(&run, true).into_iter().map(|t| t.word.to_string()).collect();
                    if words.len() > 1 {
                        alts.push(words);
                    }
                }
                alts
            })
            .collect();
        (!groups.is_empty()).then_some(Query(groups))
    }

    fn render(&self, token: impl Fn(&str) -> String, and: &str, or: &str) -> String {
        let group = |alts: &Vec<Vec<String>>| {
            let alts: Vec<String> = alts
                .iter()
                .map(|words| format!("({})", words.iter().map(|w| token(w)).collect::<Vec<_>>().join(and)))
                .collect();
            format!("({})", alts.join(or))
        };
        self.0.iter().map(group).collect::<Vec<_>>().join(and)
    }

    /// The groups, each a list of alternatives, each a list of tokens.
    pub fn groups(&self) -> &[Vec<Vec<String>>] {
        &self.0
    }

    /// Whether a search text (`index_text`'s tokens) matches: what both full-text indexes
    /// answer, and what SQLite's search checks against the stored text of leads its index
    /// does not hold yet.
    pub fn matches(&self, text: &str) -> bool {
        let has = |w: &String| text.split(' ').any(|t| t.starts_with(w.as_str()));
        self.0.iter().all(|alts| alts.iter().any(|words| words.iter().all(has)))
    }

    /// As an FTS5 MATCH expression. Tokens hold only letters and digits, so quoting them is
    /// enough to keep FTS5 syntax out.
    pub fn fts5(&self) -> String {
        self.render(|w| format!("\"{w}\"*"), " AND ", " OR ")
    }

    /// As a PostgreSQL `tsquery` literal (cast with `::tsquery`, no dictionary applied).
    pub fn tsquery(&self) -> String {
        self.render(|w| format!("'{w}':*"), " & ", " | ")
    }
}

/// The tokens SQLite's FTS5 `ascii` tokenizer makes of an L-2 weak key
/// (`lead::company_name_key`): it splits at ASCII characters other than letters and digits
/// and folds ASCII capitals, and a weak key is lower case already. The search file indexes
/// each lead's weak key in an FTS5 table of its own (`store::search`): appended to a run of
/// segments rather than put into a B-tree at a random place, so that a page of the file is
/// not written again for each new lead.
pub fn weak_key_tokens(key: &str) -> impl Iterator<Item = &str> {
    key.split(|c: char| c.is_ascii() && !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty())
}

/// An FTS5 MATCH expression for the leads whose weak key has every token of `key`
/// ([`weak_key_tokens`], each whole: no prefix); `None` when it has none. A token holds no
/// ASCII punctuation, so quoting it keeps FTS5 syntax out. The caller compares the stored
/// keys: two keys with the same tokens in another order or with other punctuation match
/// here alike.
pub fn weak_key_fts5(key: &str) -> Option<String> {
    let tokens: Vec<String> = weak_key_tokens(key).map(|t| format!("\"{t}\"")).collect();
    (!tokens.is_empty()).then(|| tokens.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1_index_segments_chinese_and_splits_contacts() {
        let t = index_text(["无锡云帆科技有限公司", "Zhang.Wei@Example.com", "张伟"], &["8000".into()]);
        let tokens: Vec<&str> = t.split(' ').collect();
        for want in [
            "无锡云帆科技有限公司",
            "无锡",
            "科技",
            "有限公司",
            "公司",
            "zhang",
            "wei",
            "example",
            "com",
            "张伟",
            "8000",
        ] {
            assert!(tokens.contains(&want), "{want} missing from {t}");
        }
        assert!(!t.contains("  ") && !t.starts_with(' ') && !t.ends_with(' '));
        // Each token once, in the order first seen, a prefix of another kept as a token.
        let mut seen = tokens.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), tokens.len(), "{t}");
        assert_eq!(index_text(["ab abc ab", "abc"], &["ab".into(), "a".into()]), "ab abc a");
        // The marketing dictionary keeps campaign words whole.
        assert!(index_text(["双十一种草"], &[]).split(' ').any(|w| w == "双十一"));
    }

    /// L-1: a run's words remembered from an earlier lead are the words jieba finds in it
    /// afresh (a thread that has seen nothing yet), and a full memory starts over.
    #[test]
    fn l1_remembered_segments_equal_fresh_ones() {
        let texts = ["深圳博远科技有限公司", "杨思远", "广东", "Zhang Wei"];
        let first = index_text(texts, &["9999".into()]);
        assert_eq!(index_text(texts, &["9999".into()]), first);
        let fresh = std::thread::spawn(move || index_text(texts, &["9999".into()])).join().unwrap();
        assert_eq!(fresh, first);
        let ideograph = |n: usize| char::from_u32(0x4E00 + n as u32).unwrap();
        for k in 0..SEGMENTS_MAX + 10 {
            let run: String = [ideograph(k % 256), ideograph(k / 256)].iter().collect();
            index_text([run.as_str()], &[]);
        }
        assert!(SEGMENTS.with_borrow(|s| s.0.len()) <= SEGMENTS_MAX);
        assert_eq!(index_text(texts, &["9999".into()]), first);
    }

    #[test]
    fn common_ideographs_are_letters_without_case() {
        for c in COMMON_IDEOGRAPHS {
            assert!(c.is_alphanumeric() && is_cjk(c), "{c:?}");
            assert!(c.to_lowercase().eq([c]), "{c:?}");
        }
        for c in (0u8..128).map(char::from) {
            assert_eq!(c.is_ascii_alphanumeric(), c.is_alphanumeric());
            assert!(!is_cjk(c));
        }
        // Other letters take the general path; a run changes where CJK-ness (any letter
        // outside ASCII) does.
        let r = runs("Ünïcode 云帆Ⅻ x²");
        let r: Vec<(bool, &str)> = r.iter().map(|(c, t)| (*c, t.as_str())).collect();
        assert_eq!(r, [(true, "ü"), (false, "n"), (true, "ï"), (false, "code"), (true, "云帆ⅻ"), (false, "x²")]);
    }

    #[test]
    fn l1_query_renders_the_same_logic_for_both_backends() {
        let q = Query::parse("云帆科技 zhang").unwrap();
        assert_eq!(q.fts5(), r#"(("云帆科技"*) OR ("云帆"* AND "科技"*)) AND (("zhang"*))"#);
        assert_eq!(q.tsquery(), "(('云帆科技':*) | ('云帆':* & '科技':*)) & (('zhang':*))");
        assert_eq!(Query::parse(" -- ''\" "), None);
        // Quotes and operators typed by a user never reach either syntax.
        assert_eq!(Query::parse("a\"b OR c:*").unwrap().fts5(), r#"(("a"*)) AND (("b"*)) AND (("or"*)) AND (("c"*))"#);
    }

    /// L-1: a query matches a text when every group has an alternative whose tokens all
    /// begin one of the text's tokens (not the middle of one, not across two).
    #[test]
    fn l1_query_matches_token_prefixes() {
        let text = index_text(["无锡云帆科技有限公司", "zhang.wei@example.com"], &["8000".into()]);
        for (q, want) in [
            ("云帆科技", true),
            ("云帆 zhang", true),
            ("zha exa", true),
            ("8000", true),
            ("有限", true),
            ("hang", false),
            ("zhang 8001", false),
            ("weiexample", false),
        ] {
            assert_eq!(Query::parse(q).unwrap().matches(&text), want, "{q} in {text}");
        }
    }

    /// L-2: a weak key's tokens are what FTS5's `ascii` tokenizer makes of it, matched whole.
    #[test]
    fn l2_weak_key_tokens_as_fts5_makes_them() {
        let key = crate::lead::company_name_key("Acme (上海) 科技有限公司", "Zhang Wei").unwrap();
        assert_eq!(key, "acme(上海)科技有限公司|zhangwei");
        assert_eq!(weak_key_tokens(&key).collect::<Vec<_>>(), ["acme", "上海", "科技有限公司", "zhangwei"]);
        assert_eq!(weak_key_fts5(&key).unwrap(), r#""acme" AND "上海" AND "科技有限公司" AND "zhangwei""#);
        // Full-width punctuation is not ASCII: part of the token, as FTS5 has it.
        assert_eq!(weak_key_tokens("云帆（上海）|王伟").collect::<Vec<_>>(), ["云帆（上海）", "王伟"]);
        assert_eq!(weak_key_fts5("--|\"\""), None);
    }
}

//! `pgsim.scope`: the custom setting a test framework sends to say which
//! test a connection belongs to. On a real PostgreSQL it is a valid
//! placeholder setting (any name with a dot is), so it costs nothing live;
//! the recorder notes it on every exchange and replay answers a connection
//! only from exchanges recorded in its scope.
//!
//! Understood, for the recorder and the mock alike:
//! - at startup, a `pgsim.scope` startup parameter or `-c pgsim.scope=NAME`
//!   (also `--pgsim.scope=NAME`) in `options` (libpq's `PGOPTIONS`);
//! - `SET [SESSION] pgsim.scope {TO | =} 'NAME'` (a quoted or bare value),
//!   `SET pgsim.scope TO DEFAULT`, `RESET pgsim.scope` and `RESET ALL`,
//!   taking effect once the server answered SET or RESET.
//!
//! `SET LOCAL` and `set_config()` are not followed: a transaction-long scope
//! would end at COMMIT or ROLLBACK, which is not what a test means. An empty
//! name is no scope.

use std::collections::BTreeMap;

/// The setting's name, as PostgreSQL folds it.
pub(crate) const SETTING: &str = "pgsim.scope";

/// The scope a connection starts in, from its startup parameters.
pub(crate) fn at_startup(parameters: &BTreeMap<String, String>) -> Option<String> {
    let direct = parameters.get(SETTING).cloned();
    let from_options = parameters.get("options").and_then(|o| from_options(o));
    non_empty(from_options.or(direct))
}

/// `-c pgsim.scope=NAME` or `--pgsim.scope=NAME` in a startup `options`
/// string (words split on whitespace, `\` escaping the next character, as
/// PostgreSQL splits them). The last one wins, as in PostgreSQL.
fn from_options(options: &str) -> Option<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut found = None;
    let mut i = 0;
    while i < words.len() {
        let setting = match words[i].as_str() {
            "-c" => {
                i += 1;
                words.get(i).map(String::as_str)
            }
            w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
        };
        if let Some((name, value)) = setting.and_then(|s| s.split_once('=')) {
            if name.eq_ignore_ascii_case(SETTING) {
                found = Some(value.to_owned());
            }
        }
        i += 1;
    }
    found
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// What one statement that the server completed with `tag` does to the
/// scope: `Some(new)` when it sets or resets it.
pub(crate) fn after_statement(sql: &str, tag: &str) -> Option<Option<String>> {
    let words = Words::new(sql);
    match tag {
        "SET" => set(words),
        "RESET" => reset(words),
        _ => None,
    }
}

/// Whether `sql` may change the scope: a cheap test before splitting.
pub(crate) fn may_change(sql: &str) -> bool {
    let lower = sql.trim_start().get(..5).map(str::to_ascii_lowercase);
    matches!(lower.as_deref(), Some("reset")) || contains_ignore_case(sql, SETTING)
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn set(mut w: Words<'_>) -> Option<Option<String>> {
    if !w.keyword("set") {
        return None;
    }
    if w.keyword("local") {
        return None;
    }
    w.keyword("session");
    if !w.setting_name() {
        return None;
    }
    if !(w.symbol('=') || w.keyword("to")) {
        return None;
    }
    if w.keyword("default") {
        return w.end().then_some(None);
    }
    let value = w.value()?;
    w.end().then(|| non_empty(Some(value)))
}

fn reset(mut w: Words<'_>) -> Option<Option<String>> {
    if !w.keyword("reset") {
        return None;
    }
    if (w.keyword("all") || w.setting_name()) && w.end() {
        return Some(None);
    }
    None
}

/// Just enough of a lexer for one SET statement.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Self {
        Words { rest: sql }
    }

    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let Some(head) = self.rest.get(..word.len()) else {
            return false;
        };
        let boundary = self.rest[word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        if head.eq_ignore_ascii_case(word) && boundary {
            self.rest = &self.rest[word.len()..];
            return true;
        }
        false
    }

    fn symbol(&mut self, c: char) -> bool {
        self.skip_space();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// `pgsim.scope`, each part bare (any case) or double-quoted (exact).
    fn setting_name(&mut self) -> bool {
        self.skip_space();
        let save = self.rest;
        let ok = self.name_part("pgsim") && self.rest.starts_with('.') && {
            self.rest = &self.rest[1..];
            self.name_part("scope")
        };
        if !ok {
            self.rest = save;
        }
        ok
    }

    fn name_part(&mut self, want: &str) -> bool {
        if let Some(rest) = self.rest.strip_prefix('"') {
            let quoted = format!("{want}\"");
            if let Some(after) = rest.strip_prefix(quoted.as_str()) {
                self.rest = after;
                return true;
            }
            return false;
        }
        let len = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        if self.rest[..len].eq_ignore_ascii_case(want) {
            self.rest = &self.rest[len..];
            return true;
        }
        false
    }

    /// A quoted string (`'it''s'`, `E'...'` is not followed) or a bare word
    /// or number, as SET takes them.
    fn value(&mut self) -> Option<String> {
        self.skip_space();
        if let Some(mut rest) = self.rest.strip_prefix('\'') {
            let mut out = String::new();
            loop {
                let end = rest.find('\'')?;
                out.push_str(&rest[..end]);
                rest = &rest[end + 1..];
                match rest.strip_prefix('\'') {
                    Some(more) => {
                        out.push('\'');
                        rest = more;
                    }
                    None => break,
                }
            }
            self.rest = rest;
            return Some(out);
        }
        if let Some(rest) = self.rest.strip_prefix('"') {
            let end = rest.find('"')?;
            let out = rest[..end].to_owned();
            self.rest = &rest[end + 1..];
            return Some(out);
        }
        let len = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-'))
            .unwrap_or(self.rest.len());
        if len == 0 {
            return None;
        }
        let word = &self.rest[..len];
        self.rest = &self.rest[len..];
        // PostgreSQL folds a bare identifier to lower case.
        Some(word.to_lowercase())
    }

    fn end(&mut self) -> bool {
        self.skip_space();
        let rest = self.rest.strip_prefix(';').unwrap_or(self.rest);
        rest.trim().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_to(sql: &str) -> Option<Option<String>> {
        after_statement(sql, "SET")
    }

    #[test]
    fn set_statements_that_change_the_scope() {
        assert_eq!(set_to("SET pgsim.scope = 'a'"), Some(Some("a".into())));
        assert_eq!(
            set_to("set PGSIM.Scope to 'it''s'"),
            Some(Some("it's".into()))
        );
        assert_eq!(
            set_to("SET SESSION pgsim.scope TO Bare;"),
            Some(Some("bare".into()))
        );
        assert_eq!(
            set_to("SET \"pgsim\".\"scope\" = \"Q\""),
            Some(Some("Q".into()))
        );
        assert_eq!(set_to("SET pgsim.scope TO DEFAULT"), Some(None));
        assert_eq!(set_to("SET pgsim.scope = ''"), Some(None));
        assert_eq!(after_statement("RESET pgsim.scope", "RESET"), Some(None));
        assert_eq!(after_statement("reset all;", "RESET"), Some(None));
    }

    #[test]
    fn statements_that_leave_it_alone() {
        assert_eq!(set_to("SET LOCAL pgsim.scope = 'a'"), None);
        assert_eq!(set_to("SET pgsim.scoped = 'a'"), None);
        assert_eq!(set_to("SET search_path = 'a'"), None);
        assert_eq!(set_to("SET pgsim.scope = 'a' junk"), None);
        assert_eq!(after_statement("SET pgsim.scope = 'a'", "SELECT 1"), None);
        assert_eq!(after_statement("RESET search_path", "RESET"), None);
        assert!(!may_change("select 1"));
        assert!(may_change("  RESET ALL"));
        assert!(may_change("set PGSIM.SCOPE = 'x'"));
    }

    #[test]
    fn startup_options() {
        let p = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(
            at_startup(&p("options", "-c pgsim.scope=t1")),
            Some("t1".into())
        );
        assert_eq!(
            at_startup(&p("options", "-cpgsim.scope=t2")),
            Some("t2".into())
        );
        assert_eq!(
            at_startup(&p("options", "--pgsim.scope=a\\ b -c x=y")),
            Some("a b".into())
        );
        assert_eq!(
            at_startup(&p("pgsim.scope", "direct")),
            Some("direct".into())
        );
        assert_eq!(at_startup(&p("options", "-c search_path=x")), None);
        assert_eq!(at_startup(&p("options", "-c pgsim.scope=")), None);
    }
}

//! Shell-style globs for database names: `*` (any run), `?` (one
//! character), `[abc]`, `[a-z]`, `[!abc]` (a set or its complement) and `\`
//! (the next character literally). Matching is over characters, not bytes,
//! and case-sensitive, as database names are.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Any,
    One,
    Literal(char),
    Set {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

/// A compiled glob pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`. Every string is a valid pattern: an unclosed `[`
    /// is a literal `[`, a trailing `\` a literal `\`.
    pub fn new(pattern: &str) -> Self {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if tokens.last() != Some(&Token::Any) {
                        tokens.push(Token::Any);
                    }
                }
                '?' => tokens.push(Token::One),
                '\\' if i + 1 < chars.len() => {
                    i += 1;
                    tokens.push(Token::Literal(chars[i]));
                }
                '[' => match parse_set(&chars[i + 1..]) {
                    Some((set, used)) => {
                        tokens.push(set);
                        i += used;
                    }
                    None => tokens.push(Token::Literal('[')),
                },
                c => tokens.push(Token::Literal(c)),
            }
            i += 1;
        }
        Glob {
            pattern: pattern.to_owned(),
            tokens,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        // Greedy with one backtrack point (the last `*`): linear for the
        // patterns people write, never exponential.
        let (mut t, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match self.tokens.get(t) {
                Some(Token::Any) => {
                    star = Some((t, n));
                    t += 1;
                    continue;
                }
                Some(tok) if single(tok, name[n]) => {
                    t += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((st, sn)) => {
                    t = st + 1;
                    n = sn + 1;
                    star = Some((st, sn + 1));
                }
                None => return false,
            }
        }
        self.tokens[t..].iter().all(|tok| *tok == Token::Any)
    }
}

fn single(token: &Token, c: char) -> bool {
    match token {
        Token::Any => false,
        Token::One => true,
        Token::Literal(l) => *l == c,
        Token::Set { negated, items } => {
            items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// Parses a set after its `[`; returns it and the characters used up to
/// and including `]`.
fn parse_set(chars: &[char]) -> Option<(Token, usize)> {
    let mut i = 0;
    let negated = matches!(chars.first(), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        if c == ']' && !first {
            return Some((Token::Set { negated, items }, i + 1));
        }
        first = false;
        if i + 2 < chars.len() && chars[i + 1] == '-' && chars[i + 2] != ']' {
            items.push((c, chars[i + 2]));
            i += 3;
        } else {
            items.push((c, c));
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_like_a_shell() {
        let cases = [
            ("tmp_*", "tmp_", true),
            ("tmp_*", "tmp_2024", true),
            ("tmp_*", "xtmp_", false),
            ("*_eu", "sales-eu", false),
            ("*-eu", "sales-eu", true),
            ("db?", "db1", true),
            ("db?", "db12", false),
            ("db[0-9]", "db7", true),
            ("db[!0-9]", "db7", false),
            ("db[!0-9]", "dbx", true),
            ("caf?", "café", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("[]x]", "]", true),
            ("[oops", "[oops", true),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b", "xxaxxbxxc", false),
            ("", "", true),
            ("*", "", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                Glob::new(pattern).matches(name),
                want,
                "{pattern:?} vs {name:?}"
            );
        }
    }

    /// The obvious exponential matcher, as the reference.
    fn reference(tokens: &[Token], name: &[char]) -> bool {
        match tokens.split_first() {
            None => name.is_empty(),
            Some((Token::Any, rest)) => (0..=name.len()).any(|k| reference(rest, &name[k..])),
            Some((tok, rest)) => {
                !name.is_empty() && single(tok, name[0]) && reference(rest, &name[1..])
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference_matcher(
            pattern in "[ab*?\\[\\]!\\-\\\\]{0,8}",
            name in "[ab\\-\\]\\[]{0,8}",
        ) {
            let glob = Glob::new(&pattern);
            let chars: Vec<char> = name.chars().collect();
            prop_assert_eq!(glob.matches(&name), reference(&glob.tokens, &chars));
        }

        #[test]
        fn a_name_escaped_into_a_pattern_matches_only_itself(name in "\\PC{0,12}", other in "\\PC{0,12}") {
            let escaped: String = name.chars().flat_map(|c| ['\\', c]).collect();
            let glob = Glob::new(&escaped);
            prop_assert!(glob.matches(&name));
            prop_assert_eq!(glob.matches(&other), other == name);
        }
    }
}

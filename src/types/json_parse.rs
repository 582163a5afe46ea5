//! Iterative JSON parser shared by `json` and `jsonb`.

use super::json::{escape, sort_members};
use super::numeric;

/// A parsed value; containers refer to their children by arena index so
/// that neither building, printing nor dropping recurses.
pub(crate) enum Node {
    Scalar(String),
    Arr(Vec<usize>),
    Obj(Vec<(String, usize)>),
}

/// A container still open while parsing: its node and pending object key.
struct Open {
    node: usize,
    key: Option<String>,
}

/// Iterative JSON parser (no recursion, so any nesting depth is safe).
/// In `jsonb` mode it checks Unicode escapes like PG and renders the
/// canonical `jsonb_out` text; in `json` mode it only validates.
pub(crate) struct Parser<'a> {
    s: &'a str,
    pos: usize,
    jsonb: bool,
}

impl<'a> Parser<'a> {
    /// Starts parsing `s`; `jsonb` enables PG's jsonb-only checks.
    pub(crate) fn new(s: &'a str, jsonb: bool) -> Self {
        Parser { s, pos: 0, jsonb }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn err(&self, what: &str) -> String {
        format!(
            "invalid input syntax for type json: {what} at byte {}",
            self.pos
        )
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("bad \\u escape"))?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err("bad \\u escape"));
        }
        self.pos += 4;
        u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))
    }

    /// Parses a string literal at `pos` (which holds `"`), returns it decoded.
    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            let rest = &self.s.as_bytes()[start..];
            let n = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let n = n.ok_or_else(|| self.err("unterminated string"))?;
            out.push_str(&self.s[start..start + n]);
            self.pos += n;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.escape(&mut out)?,
                _ => return Err(self.err("control character in string")),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        self.pos += 1;
        let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
        self.pos += 1;
        let simple = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode(out),
            _ => return Err(self.err("invalid escape")),
        };
        out.push(simple);
        Ok(())
    }

    fn unicode(&mut self, out: &mut String) -> Result<(), String> {
        let mut cp = self.hex4()?;
        if self.jsonb {
            if (0xDC00..0xE000).contains(&cp) {
                return Err(self.err("unexpected low surrogate"));
            }
            if (0xD800..0xDC00).contains(&cp) {
                if !self.s[self.pos..].starts_with("\\u") {
                    return Err(self.err("high surrogate without low surrogate"));
                }
                self.pos += 2;
                let lo = self.hex4()?;
                if !(0xDC00..0xE000).contains(&lo) {
                    return Err(self.err("high surrogate without low surrogate"));
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if cp == 0 {
                return Err("unsupported Unicode escape sequence \\u0000".into());
            }
        }
        out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
        Ok(())
    }

    fn number(&mut self) -> Result<String, String> {
        let b = self.s.as_bytes();
        let start = self.pos;
        let digits = |p: &mut usize| {
            let s = *p;
            while b.get(*p).is_some_and(u8::is_ascii_digit) {
                *p += 1;
            }
            *p > s
        };
        let mut p = start + usize::from(b[start] == b'-');
        if b.get(p) == Some(&b'0') {
            p += 1;
        } else if !digits(&mut p) {
            return Err(self.err("bad number"));
        }
        if b.get(p) == Some(&b'.') {
            p += 1;
            if !digits(&mut p) {
                return Err(self.err("bad number"));
            }
        }
        if matches!(b.get(p), Some(b'e' | b'E')) {
            p += 1;
            if matches!(b.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            if !digits(&mut p) {
                return Err(self.err("bad number"));
            }
        }
        self.pos = p;
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
        {
            return Err(self.err("bad number"));
        }
        let text = &self.s[start..p];
        if self.jsonb {
            numeric::parse(text).map(|n| numeric::to_text(&n))
        } else {
            Ok(text.to_string())
        }
    }

    fn literal(&mut self) -> Result<String, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
        {
            self.pos += 1;
        }
        match self.s.get(start..self.pos) {
            Some(w @ ("true" | "false" | "null")) => Ok(w.to_string()),
            _ => Err(self.err("invalid token")),
        }
    }

    /// Parses `"key" :` and returns the decoded key.
    fn key(&mut self) -> Result<String, String> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(self.err("expected object key"));
        }
        let k = self.string()?;
        if !self.eat(b':') {
            return Err(self.err("expected ':'"));
        }
        Ok(k)
    }

    /// Parses one complete document into `nodes`; returns the root index.
    pub(crate) fn document(&mut self, nodes: &mut Vec<Node>) -> Result<usize, String> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            self.ws();
            let (node, key) = match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    let key = if self.eat(b'}') {
                        None
                    } else {
                        Some(self.key()?)
                    };
                    (Node::Obj(Vec::new()), key)
                }
                Some(b'[') => {
                    self.pos += 1;
                    let open = !self.eat(b']');
                    (Node::Arr(Vec::new()), open.then(String::new))
                }
                Some(b'"') => (Node::Scalar(escape(&self.string()?)), None),
                Some(b'-' | b'0'..=b'9') => (Node::Scalar(self.number()?), None),
                Some(_) => (Node::Scalar(self.literal()?), None),
                None => return Err(self.err("unexpected end of input")),
            };
            nodes.push(node);
            let mut done = nodes.len() - 1;
            if key.is_some() {
                stack.push(Open { node: done, key });
                continue;
            }
            loop {
                let Some(top) = stack.last_mut() else {
                    self.ws();
                    if self.pos != self.s.len() {
                        return Err(self.err("trailing characters"));
                    }
                    return Ok(done);
                };
                let close = match &mut nodes[top.node] {
                    Node::Arr(items) => {
                        items.push(done);
                        b']'
                    }
                    Node::Obj(members) => {
                        members.push((top.key.take().unwrap_or_default(), done));
                        b'}'
                    }
                    Node::Scalar(_) => return Err(self.err("internal error")),
                };
                if self.eat(close) {
                    done = top.node;
                    if let Node::Obj(members) = &mut nodes[done] {
                        sort_members(members);
                    }
                    stack.pop();
                } else if self.eat(b',') {
                    if close == b'}' {
                        top.key = Some(self.key()?);
                    }
                    break;
                } else {
                    return Err(self.err("expected ',' or closing bracket"));
                }
            }
        }
    }
}

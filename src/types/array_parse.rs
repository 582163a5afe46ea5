//! Parser for the array text syntax (PG `array_in`): optional `[lb:ub]`
//! decorations, nested braces, quoted/unquoted elements and `NULL`.

use super::array::{item_count, MAXDIM};

/// `(length, lower bound)` per dimension.
pub(crate) type Dims = Vec<(i32, i32)>;
/// Row-major element texts; `None` is SQL NULL.
pub(crate) type Items = Vec<Option<String>>;

/// PG `array_isspace`.
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Parser state for the array text syntax.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
    /// Length found for each nesting level.
    lens: Vec<Option<i32>>,
    /// Nesting level holding the elements, once known.
    leaf: Option<usize>,
    items: Vec<Option<String>>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// `[lb:ub]` / `[ub]` decorations; returns (len, lb) per dimension.
    fn explicit_dims(&mut self) -> Result<Vec<(i32, i32)>, String> {
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.peek() != Some('[') {
                return Ok(dims);
            }
            self.pos += 1;
            if dims.len() >= MAXDIM {
                return Err("number of array dimensions exceeds the maximum allowed (6)".into());
            }
            let num = |p: &mut Self| -> Result<i32, String> {
                let rest = &p.s[p.pos..];
                let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '+' || c == '-'));
                let tok = &rest[..n.unwrap_or(rest.len())];
                p.pos += tok.len();
                tok.parse()
                    .map_err(|_| "Missing array dimension value.".to_string())
            };
            let first = num(self)?;
            let (lb, ub) = if self.peek() == Some(':') {
                self.pos += 1;
                (first, num(self)?)
            } else {
                (1, first)
            };
            if self.bump() != Some(']') {
                return Err("Missing \"]\" after array dimensions.".into());
            }
            if ub < lb {
                return Err("upper bound cannot be less than lower bound".into());
            }
            let len = i32::try_from(i64::from(ub) - i64::from(lb) + 1)
                .map_err(|_| "array size exceeds the maximum allowed".to_string())?;
            dims.push((len, lb));
        }
    }

    /// One `{...}` level starting at `{`; depth is bounded by `MAXDIM`.
    fn level(&mut self, depth: usize) -> Result<(), String> {
        self.pos += 1;
        if depth >= MAXDIM {
            return Err("number of array dimensions exceeds the maximum allowed (6)".into());
        }
        if self.lens.len() <= depth {
            self.lens.push(None);
        }
        self.ws();
        if self.peek() == Some('}') && depth == 0 {
            self.pos += 1;
            return Ok(());
        }
        let mut count: i32 = 0;
        loop {
            self.ws();
            let is_sub = self.peek() == Some('{');
            match (is_sub, self.leaf) {
                (true, Some(l)) if l <= depth => return Err("Unexpected \"{\" character.".into()),
                (false, Some(l)) if l != depth => return Err("Unexpected array element.".into()),
                (false, None) => self.leaf = Some(depth),
                _ => {}
            }
            if is_sub {
                self.level(depth + 1)?;
            } else {
                let item = self.element()?;
                self.items.push(item);
            }
            count = count
                .checked_add(1)
                .ok_or("array size exceeds the maximum allowed")?;
            self.ws();
            match self.bump() {
                Some(',') => {}
                Some('}') => break,
                Some(c) => return Err(format!("Unexpected \"{c}\" character.")),
                None => return Err("Unexpected end of input.".into()),
            }
        }
        match self.lens[depth] {
            None => self.lens[depth] = Some(count),
            Some(c) if c != count => {
                return Err(
                    "Multidimensional arrays must have sub-arrays with matching dimensions.".into(),
                )
            }
            _ => {}
        }
        Ok(())
    }

    /// A quoted or unquoted element; `None` for an unquoted `NULL`.
    fn element(&mut self) -> Result<Option<String>, String> {
        let mut s = String::new();
        if self.peek() == Some('"') {
            self.pos += 1;
            loop {
                match self.bump() {
                    None => return Err("Unexpected end of input.".into()),
                    Some('"') => return Ok(Some(s)),
                    Some('\\') => s.push(self.bump().ok_or("Unexpected end of input.")?),
                    Some(c) => s.push(c),
                }
            }
        }
        let (mut keep, mut escaped) = (0, false);
        loop {
            match self.peek() {
                None => return Err("Unexpected end of input.".into()),
                Some(',' | '}') => break,
                Some(c @ ('{' | '"')) => return Err(format!("Unexpected \"{c}\" character.")),
                Some('\\') => {
                    self.pos += 1;
                    s.push(self.bump().ok_or("Unexpected end of input.")?);
                    (keep, escaped) = (s.len(), true);
                }
                Some(c) => {
                    self.pos += c.len_utf8();
                    s.push(c);
                    if !is_space(c) {
                        keep = s.len();
                    }
                }
            }
        }
        s.truncate(keep);
        if s.is_empty() {
            return Err(format!(
                "Unexpected \"{}\" character.",
                self.peek().unwrap_or('}')
            ));
        }
        Ok((escaped || !s.eq_ignore_ascii_case("NULL")).then_some(s))
    }
}

/// Parses array text into `(len, lower bound)` dims and row-major items.
pub(crate) fn parse(text: &str) -> Result<(Dims, Items), String> {
    let mut p = Parser {
        s: text,
        pos: 0,
        lens: Vec::new(),
        leaf: None,
        items: Vec::new(),
    };
    let explicit = p.explicit_dims()?;
    if !explicit.is_empty() {
        if p.bump() != Some('=') {
            return Err("Missing \"=\" after array dimensions.".into());
        }
        p.ws();
    }
    if p.peek() != Some('{') {
        return Err("Array value must start with \"{\" or dimension information.".into());
    }
    p.level(0)?;
    p.ws();
    if p.pos != text.len() {
        return Err("Junk after closing right brace.".into());
    }
    let found: Vec<(i32, i32)> = p.lens.iter().map(|l| (l.unwrap_or(0), 1)).collect();
    let found = if p.items.is_empty() {
        Vec::new()
    } else {
        found
    };
    let dims = if explicit.is_empty() {
        found
    } else {
        let same =
            explicit.len() == found.len() && explicit.iter().zip(&found).all(|(e, f)| e.0 == f.0);
        if !same {
            return Err("Specified array dimensions do not match array contents.".into());
        }
        explicit
    };
    item_count(&dims)?;
    Ok((dims, p.items))
}

//! A bounds-checked reader over one message body: every accessor returns an
//! error instead of reading past the end, so decoding can never panic.

use bytes::Bytes;

use super::WireError;

pub(super) struct Reader<'a> {
    kind: Option<char>,
    body: &'a [u8],
    whole: &'a Bytes,
    offset: usize,
}

impl<'a> Reader<'a> {
    /// Reads `whole[offset..]`; values are sliced out of `whole` without a copy.
    pub(super) fn new(kind: Option<char>, whole: &'a Bytes, offset: usize) -> Self {
        Reader {
            kind,
            body: whole.get(offset..).unwrap_or(&[]),
            whole,
            offset,
        }
    }

    pub(super) fn malformed(&self, reason: impl Into<String>) -> WireError {
        WireError::Malformed {
            kind: self.kind,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        if self.body.len() < n {
            return Err(self.malformed(format!("body ends inside {what}")));
        }
        let (head, tail) = self.body.split_at(n);
        self.body = tail;
        self.offset += n;
        Ok(head)
    }

    pub(super) fn u8(&mut self, what: &str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    pub(super) fn i16(&mut self, what: &str) -> Result<i16, WireError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn i32(&mut self, what: &str) -> Result<i32, WireError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count that must be non-negative and fit in what is left (each item
    /// at least `min_item` bytes), so a hostile count cannot allocate.
    fn count(&mut self, min_item: usize, what: &str) -> Result<usize, WireError> {
        let n = self.i16(what)?;
        let n = usize::try_from(n).map_err(|_| self.malformed(format!("negative {what}")))?;
        if n.saturating_mul(min_item) > self.body.len() {
            return Err(self.malformed(format!("{what} {n} exceeds the body")));
        }
        Ok(n)
    }

    /// An i16 count (as [`Reader::count`]) then that many items.
    pub(super) fn list<T>(
        &mut self,
        min_item: usize,
        what: &str,
        mut item: impl FnMut(&mut Self) -> Result<T, WireError>,
    ) -> Result<Vec<T>, WireError> {
        let n = self.count(min_item, what)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// A NUL-terminated UTF-8 string.
    pub(super) fn cstr(&mut self, what: &str) -> Result<String, WireError> {
        let Some(end) = self.body.iter().position(|b| *b == 0) else {
            return Err(self.malformed(format!("{what} is not NUL-terminated")));
        };
        let bytes = self.take(end + 1, what)?;
        String::from_utf8(bytes[..end].to_vec())
            .map_err(|_| self.malformed(format!("{what} is not valid UTF-8")))
    }

    /// `n` bytes as a slice of the frame (no copy).
    pub(super) fn bytes(&mut self, n: usize, what: &str) -> Result<Bytes, WireError> {
        let start = self.offset;
        self.take(n, what)?;
        Ok(self.whole.slice(start..start + n))
    }

    /// Everything left.
    pub(super) fn rest(&mut self) -> Bytes {
        let start = self.offset;
        self.offset += self.body.len();
        self.body = &[];
        self.whole.slice(start..)
    }

    /// A length-prefixed value: `-1` is NULL.
    pub(super) fn value(&mut self, what: &str) -> Result<Option<Bytes>, WireError> {
        let len = self.i32(what)?;
        if len < 0 {
            return Ok(None);
        }
        self.bytes(len as usize, what).map(Some)
    }

    pub(super) fn finish<T>(self, value: T) -> Result<T, WireError> {
        if self.body.is_empty() {
            Ok(value)
        } else {
            Err(self.malformed(format!("{} unexpected trailing bytes", self.body.len())))
        }
    }
}

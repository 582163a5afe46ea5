//! Arrays of the supported element types (up to 6 dimensions, like PG).
//! Binary: `ndim i32, has_null i32, elem_oid u32, (len i32, lbound i32)*`,
//! then each element as `i32 length (-1 = NULL)` + element binary.

use super::array_parse::{is_space, parse};
use super::{
    bad_bin, bad_text, oid::*, scalar_binary_to_text, scalar_text_to_binary, CodecError, Reader,
};

/// PG `MAXDIM`.
pub(crate) const MAXDIM: usize = 6;
/// PG `MaxArraySize`.
const MAX_ITEMS: i64 = 0x7FF_FFFF;

/// Element type OID for a supported array type OID.
pub(crate) fn element_oid(oid: u32) -> Option<u32> {
    Some(match oid {
        BOOL_ARRAY => BOOL,
        BYTEA_ARRAY => BYTEA,
        CHAR_ARRAY => CHAR,
        NAME_ARRAY => NAME,
        INT2_ARRAY => INT2,
        INT4_ARRAY => INT4,
        TEXT_ARRAY => TEXT,
        VARCHAR_ARRAY => VARCHAR,
        BPCHAR_ARRAY => BPCHAR,
        INT8_ARRAY => INT8,
        FLOAT4_ARRAY => FLOAT4,
        FLOAT8_ARRAY => FLOAT8,
        OID_ARRAY => OID,
        DATE_ARRAY => DATE,
        TIME_ARRAY => TIME,
        TIMESTAMP_ARRAY => TIMESTAMP,
        TIMESTAMPTZ_ARRAY => TIMESTAMPTZ,
        INTERVAL_ARRAY => INTERVAL,
        NUMERIC_ARRAY => NUMERIC,
        UUID_ARRAY => UUID,
        JSON_ARRAY => JSON,
        JSONB_ARRAY => JSONB,
        _ => return None,
    })
}

/// Checks dimension lengths/bounds like `ArrayGetNItems` + `ArrayCheckBounds`
/// and returns the number of elements.
pub(crate) fn item_count(dims: &[(i32, i32)]) -> Result<i64, String> {
    let mut n: i64 = 1;
    for &(len, lb) in dims {
        if len < 0 {
            return Err("array size exceeds the maximum allowed".into());
        }
        if lb.checked_add(len).is_none() {
            return Err("array lower bound is too large".into());
        }
        n = n.saturating_mul(i64::from(len));
        if n > MAX_ITEMS {
            return Err("array size exceeds the maximum allowed".into());
        }
    }
    Ok(n)
}

/// PG `array_out` quoting of one element.
fn push_element(out: &mut String, v: Option<&str>) {
    let Some(s) = v else {
        out.push_str("NULL");
        return;
    };
    let quote = s.is_empty()
        || s.eq_ignore_ascii_case("NULL")
        || s.chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || is_space(c));
    if !quote {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Writes nested `{...}` for `lens` dimensions, consuming `items` in order.
fn push_level<'a>(
    out: &mut String,
    lens: &[i32],
    items: &mut impl Iterator<Item = &'a Option<String>>,
) {
    out.push('{');
    for i in 0..lens[0] {
        if i > 0 {
            out.push(',');
        }
        if lens.len() == 1 {
            push_element(out, items.next().and_then(|v| v.as_deref()));
        } else {
            push_level(out, &lens[1..], items);
        }
    }
    out.push('}');
}

/// Canonical text for dimensions and row-major element texts.
fn render(dims: &[(i32, i32)], items: &[Option<String>]) -> String {
    let mut out = String::new();
    if items.is_empty() {
        return "{}".into();
    }
    if dims.iter().any(|&(_, lb)| lb != 1) {
        for &(len, lb) in dims {
            out.push_str(&format!("[{}:{}]", lb, i64::from(lb) + i64::from(len) - 1));
        }
        out.push('=');
    }
    let lens: Vec<i32> = dims.iter().map(|d| d.0).collect();
    push_level(&mut out, &lens, &mut items.iter());
    out
}

/// PG `array_recv` followed by `array_out`.
pub(crate) fn binary_to_text(oid: u32, elem: u32, bin: &[u8]) -> Result<String, CodecError> {
    let mut r = Reader::new(oid, bin);
    let ndim = r.i32()?;
    if !(0..=MAXDIM as i32).contains(&ndim) {
        return Err(bad_bin(
            oid,
            format!("invalid number of dimensions: {ndim}"),
        ));
    }
    let flags = r.i32()?;
    if flags != 0 && flags != 1 {
        return Err(bad_bin(oid, "invalid array flags"));
    }
    let got = r.u32()?;
    if got != elem {
        return Err(bad_bin(
            oid,
            format!("binary data has array element type {got} instead of expected {elem}"),
        ));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        dims.push((r.i32()?, r.i32()?));
    }
    let n = item_count(&dims).map_err(|e| bad_bin(oid, e))?;
    let n = if ndim == 0 { 0 } else { n };
    if n > (r.remaining() / 4) as i64 {
        return Err(bad_bin(oid, "insufficient data left in message"));
    }
    let mut items = Vec::with_capacity(n as usize);
    for i in 0..n {
        let len = r.i32()?;
        if len == -1 {
            items.push(None);
            continue;
        }
        let len = usize::try_from(len).map_err(|_| bad_bin(oid, "invalid element length"))?;
        let text = scalar_binary_to_text(elem, r.take(len)?)
            .map_err(|e| bad_bin(oid, format!("element {}: {e}", i + 1)))?;
        items.push(Some(text));
    }
    r.finish()?;
    Ok(render(&dims, &items))
}

/// PG `array_in` followed by `array_send`.
pub(crate) fn text_to_binary(oid: u32, elem: u32, text: &str) -> Result<Vec<u8>, CodecError> {
    let (dims, items) = parse(text).map_err(|e| bad_text(oid, e))?;
    let mut out = Vec::new();
    let ndim = if items.is_empty() {
        0
    } else {
        dims.len() as i32
    };
    out.extend_from_slice(&ndim.to_be_bytes());
    out.extend_from_slice(&i32::from(items.iter().any(Option::is_none)).to_be_bytes());
    out.extend_from_slice(&elem.to_be_bytes());
    if ndim > 0 {
        for (len, lb) in &dims {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&lb.to_be_bytes());
        }
    }
    for (i, item) in items.iter().enumerate() {
        match item {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(t) => {
                let b = scalar_text_to_binary(elem, t)
                    .map_err(|e| bad_text(oid, format!("element {}: {e}", i + 1)))?;
                let len = i32::try_from(b.len()).map_err(|_| bad_text(oid, "element too large"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&b);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "array_tests.rs"]
mod tests;

//! Proptest strategies that build canonical PostgreSQL binary values
//! directly from random Rust values.

#![allow(dead_code)]

use pgsim::types::oid::*;
use proptest::prelude::*;

/// First valid / first invalid timestamp (PG's MIN_TIMESTAMP / END_TIMESTAMP).
pub const MIN_TS: i64 = -211_813_488_000_000_000;
pub const END_TS: i64 = 9_223_371_331_200_000_000;
/// Valid date range in days since 2000-01-01.
pub const MIN_DATE: i32 = -2_451_545;
pub const END_DATE: i32 = 2_145_031_949;

/// Every scalar OID with a strategy below.
pub const SCALARS: &[u32] = &[
    BOOL,
    BYTEA,
    CHAR,
    NAME,
    INT8,
    INT2,
    INT4,
    TEXT,
    OID,
    JSON,
    FLOAT4,
    FLOAT8,
    BPCHAR,
    VARCHAR,
    DATE,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    INTERVAL,
    NUMERIC,
    UUID,
    JSONB,
];

/// Every array OID paired with its element OID.
pub const ARRAYS: &[(u32, u32)] = &[
    (BOOL_ARRAY, BOOL),
    (BYTEA_ARRAY, BYTEA),
    (CHAR_ARRAY, CHAR),
    (NAME_ARRAY, NAME),
    (INT2_ARRAY, INT2),
    (INT4_ARRAY, INT4),
    (TEXT_ARRAY, TEXT),
    (VARCHAR_ARRAY, VARCHAR),
    (BPCHAR_ARRAY, BPCHAR),
    (INT8_ARRAY, INT8),
    (FLOAT4_ARRAY, FLOAT4),
    (FLOAT8_ARRAY, FLOAT8),
    (OID_ARRAY, OID),
    (DATE_ARRAY, DATE),
    (TIME_ARRAY, TIME),
    (TIMESTAMP_ARRAY, TIMESTAMP),
    (TIMESTAMPTZ_ARRAY, TIMESTAMPTZ),
    (INTERVAL_ARRAY, INTERVAL),
    (NUMERIC_ARRAY, NUMERIC),
    (UUID_ARRAY, UUID),
    (JSON_ARRAY, JSON),
    (JSONB_ARRAY, JSONB),
];

fn be<const N: usize>(b: [u8; N]) -> Vec<u8> {
    b.to_vec()
}

/// Text without NUL characters (PG text can't hold them).
fn pg_string(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        any::<char>().prop_map(|c| if c == '\0' { '\u{1}' } else { c }),
        0..max,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// Canonical `numeric_send` bytes for a random finite value or special.
fn numeric_bin() -> BoxedStrategy<Vec<u8>> {
    let finite = (
        proptest::collection::vec(0i16..10000, 0..8),
        -6i16..6,
        any::<bool>(),
        0u16..6,
    )
        .prop_map(|(mut digits, weight, neg, extra)| {
            while digits.first() == Some(&0) {
                digits.remove(0);
            }
            while digits.last() == Some(&0) {
                digits.pop();
            }
            let frac_groups = (digits.len() as i32 - 1 - i32::from(weight)).max(0) as u16;
            let dscale = frac_groups * 4 + extra;
            let empty = digits.is_empty();
            let mut out = Vec::new();
            for v in [
                digits.len() as u16,
                if empty { 0 } else { weight as u16 },
                if neg && !empty { 0x4000 } else { 0 },
                dscale,
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            for d in digits {
                out.extend_from_slice(&d.to_be_bytes());
            }
            out
        });
    prop_oneof![
        8 => finite,
        1 => Just(hex::decode("00000000c0000000").unwrap()),
        1 => Just(hex::decode("00000000d0000020").unwrap()),
        1 => Just(hex::decode("00000000f0000020").unwrap()),
    ]
    .boxed()
}

/// Random JSON text (not necessarily canonical).
pub fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        (any::<i16>(), 0u8..100, -5i8..5).prop_map(|(a, b, e)| format!("{a}.{b}e{e}")),
        pg_string(6).prop_map(|s| {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec(("[a-c]{0,2}", inner), 0..4).prop_map(|v| {
                let members: Vec<String> = v.iter().map(|(k, v)| format!("\"{k}\" :{v}")).collect();
                format!("{{ {} }}", members.join(" ,"))
            }),
        ]
    })
}

/// Canonical binary form for a random value of scalar type `oid`.
pub fn scalar_bin(oid: u32) -> BoxedStrategy<Vec<u8>> {
    match oid {
        BOOL => any::<bool>().prop_map(|b| vec![u8::from(b)]).boxed(),
        BYTEA => proptest::collection::vec(any::<u8>(), 0..16).boxed(),
        CHAR => any::<u8>().prop_map(|b| vec![b]).boxed(),
        NAME => pg_string(20)
            .prop_map(|s| {
                let mut end = s.len().min(63);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.as_bytes()[..end].to_vec()
            })
            .boxed(),
        TEXT | VARCHAR | BPCHAR => pg_string(12).prop_map(String::into_bytes).boxed(),
        INT2 => any::<i16>().prop_map(|v| be(v.to_be_bytes())).boxed(),
        INT4 => any::<i32>().prop_map(|v| be(v.to_be_bytes())).boxed(),
        INT8 => any::<i64>().prop_map(|v| be(v.to_be_bytes())).boxed(),
        OID => any::<u32>().prop_map(|v| be(v.to_be_bytes())).boxed(),
        FLOAT4 => any::<u32>()
            .prop_map(|b| {
                let f = f32::from_bits(b);
                be(if f.is_nan() { f32::NAN } else { f }
                    .to_bits()
                    .to_be_bytes())
            })
            .boxed(),
        FLOAT8 => any::<u64>()
            .prop_map(|b| {
                let f = f64::from_bits(b);
                be(if f.is_nan() { f64::NAN } else { f }
                    .to_bits()
                    .to_be_bytes())
            })
            .boxed(),
        DATE => prop_oneof![
            8 => MIN_DATE..END_DATE,
            1 => Just(i32::MAX),
            1 => Just(i32::MIN),
            4 => -800_000i32..100_000,
        ]
        .prop_map(|v| be(v.to_be_bytes()))
        .boxed(),
        TIME => (0i64..=86_400_000_000)
            .prop_map(|v| be(v.to_be_bytes()))
            .boxed(),
        TIMESTAMP | TIMESTAMPTZ => prop_oneof![
            8 => MIN_TS..END_TS,
            1 => Just(i64::MAX),
            1 => Just(i64::MIN),
            4 => -70_000_000_000_000_000i64..5_000_000_000_000_000,
        ]
        .prop_map(|v| be(v.to_be_bytes()))
        .boxed(),
        INTERVAL => (any::<i64>(), any::<i32>(), any::<i32>())
            .prop_map(|(t, d, m)| {
                let mut out = t.to_be_bytes().to_vec();
                out.extend_from_slice(&d.to_be_bytes());
                out.extend_from_slice(&m.to_be_bytes());
                out
            })
            .boxed(),
        NUMERIC => numeric_bin(),
        UUID => any::<[u8; 16]>().prop_map(|b| b.to_vec()).boxed(),
        JSON => json_text().prop_map(String::into_bytes).boxed(),
        JSONB => json_text()
            .prop_map(|t| {
                let bin = pgsim::types::text_to_binary(JSONB, &t).unwrap();
                let canon = pgsim::types::binary_to_text(JSONB, &bin).unwrap();
                let mut out = vec![1];
                out.extend_from_slice(canon.as_bytes());
                out
            })
            .boxed(),
        _ => panic!("no strategy for oid {oid}"),
    }
}

/// Canonical `array_send` bytes: 1-D (sometimes 2-D) with random bounds.
pub fn array_bin(elem: u32) -> BoxedStrategy<Vec<u8>> {
    let items = proptest::collection::vec(proptest::option::weighted(0.8, scalar_bin(elem)), 0..5);
    (items, -3i32..4, 1i32..3)
        .prop_map(move |(items, lb, rows)| {
            let n = items.len() as i32;
            let dims: Vec<(i32, i32)> = if n == 0 {
                vec![]
            } else if rows == 2 && n % 2 == 0 {
                vec![(2, lb), (n / 2, 1)]
            } else {
                vec![(n, lb)]
            };
            let mut out = Vec::new();
            out.extend_from_slice(&(dims.len() as i32).to_be_bytes());
            out.extend_from_slice(&i32::from(items.iter().any(Option::is_none)).to_be_bytes());
            out.extend_from_slice(&elem.to_be_bytes());
            for (len, lb) in dims {
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&lb.to_be_bytes());
            }
            for item in items {
                match item {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(b) => {
                        out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        out.extend_from_slice(&b);
                    }
                }
            }
            out
        })
        .boxed()
}

/// A random supported OID together with a canonical binary value.
pub fn any_value() -> BoxedStrategy<(u32, Vec<u8>)> {
    let mut all: Vec<BoxedStrategy<(u32, Vec<u8>)>> = Vec::new();
    for &oid in SCALARS {
        all.push(scalar_bin(oid).prop_map(move |b| (oid, b)).boxed());
    }
    for &(oid, elem) in ARRAYS {
        all.push(array_bin(elem).prop_map(move |b| (oid, b)).boxed());
    }
    proptest::strategy::Union::new(all).boxed()
}

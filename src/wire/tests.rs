use bytes::{BufMut, BytesMut};

use super::*;

fn typed(kind: u8, body: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(kind);
    b.put_i32(body.len() as i32 + 4);
    b.put_slice(body);
    b
}

#[test]
fn frames_wait_for_the_whole_message() {
    let mut whole = typed(b'Q', b"select 1\0");
    let mut partial = whole.split_to(6);
    assert!(split_frame(&mut partial, false).unwrap().is_none());
    partial.unsplit(whole);
    let frame = split_frame(&mut partial, false).unwrap().unwrap();
    assert!(partial.is_empty());
    match decode_frontend(frame, Phase::Running).unwrap() {
        FrontendMessage::Query(q) => assert_eq!(q.query, "select 1"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rejects_impossible_lengths() {
    let mut b = BytesMut::new();
    b.put_u8(b'Q');
    b.put_i32(2);
    assert!(matches!(
        split_frame(&mut b, false),
        Err(WireError::BadLength { len: 2, .. })
    ));
    let mut b = BytesMut::new();
    b.put_i32(1_000_000);
    b.put_i32(196608);
    assert!(matches!(
        split_frame(&mut b, true),
        Err(WireError::BadLength { .. })
    ));
}

#[test]
fn a_short_body_is_a_protocol_error_not_a_panic() {
    // Bind declaring 3 parameter formats but carrying none.
    let mut body = BytesMut::new();
    body.put_slice(b"\0\0");
    body.put_i16(3);
    let frame = typed(b'B', &body);
    let err = decode_frontend(frame, Phase::Running).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::Malformed {
                kind: Some('B'),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unknown_message_type_is_malformed() {
    let frame = typed(b'!', b"xyz");
    assert!(decode_frontend(frame, Phase::Running).is_err());
}

#[test]
fn encoded_backend_messages_decode_back() {
    let mut buf = BytesMut::new();
    put_row_description(
        &mut buf,
        [ColumnWire {
            name: "n",
            table_oid: 0,
            column_id: 0,
            type_oid: 23,
            type_size: 4,
            type_modifier: -1,
            format: 0,
        }],
    )
    .unwrap();
    put_data_row(&mut buf, &[Some(b"42"), None]).unwrap();
    put_command_complete(&mut buf, "SELECT 1").unwrap();
    put_ready(&mut buf, TransactionStatus::Transaction).unwrap();
    let mut kinds = Vec::new();
    while let Some(frame) = split_frame(&mut buf, false).unwrap() {
        match decode_backend(frame).unwrap() {
            BackendMessage::DataRow(row) => {
                let values = data_row_values(&row.data, row.field_count).unwrap();
                assert_eq!(values, vec![Some(&b"42"[..]), None]);
                kinds.push('D');
            }
            BackendMessage::RowDescription(d) => {
                assert_eq!(d.fields[0].name, "n");
                kinds.push('T');
            }
            BackendMessage::CommandComplete(c) => {
                assert_eq!(c.tag, "SELECT 1");
                kinds.push('C');
            }
            BackendMessage::ReadyForQuery(r) => {
                assert_eq!(status_byte(r.status), b'T');
                kinds.push('Z');
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, ['T', 'D', 'C', 'Z']);
}

#[test]
fn startup_phase_recognises_ssl_request_and_startup() {
    let mut b = BytesMut::new();
    b.put_i32(8);
    b.put_i32(80877103);
    let frame = split_frame(&mut b, true).unwrap().unwrap();
    assert!(matches!(
        decode_frontend(frame, Phase::Startup).unwrap(),
        FrontendMessage::SslNegotiation(SslNegotiationMetaMessage::PostgresSsl(_))
    ));
    let mut b = BytesMut::new();
    let body = b"user\0bob\0database\0shop\0\0";
    b.put_i32(8 + body.len() as i32);
    b.put_i32(196608);
    b.put_slice(body);
    let frame = split_frame(&mut b, true).unwrap().unwrap();
    match decode_frontend(frame, Phase::Startup).unwrap() {
        FrontendMessage::Startup(s) => {
            assert_eq!(
                s.parameters.get("database").map(String::as_str),
                Some("shop")
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

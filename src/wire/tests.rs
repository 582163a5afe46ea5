use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

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
    assert_eq!(
        decode_frontend(frame.freeze()).unwrap(),
        Frontend::Query("select 1".into())
    );
}

#[test]
fn a_declared_length_reserves_only_what_arrives() {
    let mut b = BytesMut::new();
    b.put_u8(b'Q');
    b.put_i32(0x3fff_0000);
    assert!(split_frame(&mut b, false).unwrap().is_none());
    assert!(b.capacity() < 1024 * 1024, "reserved {}", b.capacity());
}

#[test]
fn a_frame_grows_with_the_bytes_received_not_the_declared_length() {
    // As the server reads: split (which may reserve), then fill only the
    // spare capacity, in 1 KiB reads, as a slow client would send.
    let mut b = BytesMut::new();
    b.put_u8(b'Q');
    b.put_i32(0x3fff_0000);
    let mut received = 5;
    for _ in 0..2000 {
        assert!(split_frontend(&mut b, false, MAX_MESSAGE_LEN)
            .unwrap()
            .is_none());
        let room = (b.capacity() - b.len()).min(1024);
        b.put_bytes(b'x', room);
        received += room;
    }
    assert!(received > 1024 * 1024, "received only {received}");
    assert!(
        b.capacity() <= 2 * received + 2 * GROW_STEP,
        "{} bytes reserved for {received} received",
        b.capacity()
    );
}

#[test]
fn each_frontend_type_has_the_limit_postgresql_reads_it_with() {
    let header = |kind: u8, len: i32| {
        let mut b = BytesMut::new();
        b.put_u8(kind);
        b.put_i32(len);
        b
    };
    let refused = |mut b: BytesMut, startup: bool, max: usize| {
        matches!(
            split_frontend(&mut b, startup, max),
            Err(WireError::BadLength { .. })
        )
    };
    // PQ_SMALL_MESSAGE_LIMIT for Sync, Execute...; large for Query.
    assert!(refused(header(b'S', 10_001), false, MAX_MESSAGE_LEN));
    assert!(refused(header(b'E', 10_001), false, MAX_MESSAGE_LEN));
    assert!(!refused(header(b'S', 10_000), false, MAX_MESSAGE_LEN));
    assert!(!refused(header(b'Q', 10_001), false, MAX_MESSAGE_LEN));
    assert!(!refused(header(b'Q', 0x3fff_fffe), false, MAX_MESSAGE_LEN));
    assert!(refused(header(b'Q', 0x3fff_ffff), false, MAX_MESSAGE_LEN));
    // A configured maximum caps every type.
    assert!(refused(header(b'Q', 1025), false, 1024));
    assert!(!refused(header(b'Q', 1024), false, 1024));
    assert!(refused(header(b'p', 65_536), false, MAX_MESSAGE_LEN));
    // Startup packets: 10000 bytes after the length word.
    let startup = |len: i32| {
        let mut b = BytesMut::new();
        b.put_i32(len);
        b.put_i32(196608);
        b
    };
    assert!(!refused(startup(10_004), true, MAX_MESSAGE_LEN));
    assert!(refused(startup(10_005), true, MAX_MESSAGE_LEN));
    // The proxy's framing judges no type: a 1 MB DataRow is a frame.
    let mut b = header(b'D', 1_000_000);
    assert!(split_frame(&mut b, false).unwrap().is_none());
}

#[test]
fn ready_for_query_is_recognised_at_the_end_of_an_answer() {
    let mut out = BytesMut::new();
    put_ready(&mut out, TxStatus::InBlock).unwrap();
    assert!(ends_with_ready(&out));
    put_close_complete(&mut out).unwrap();
    assert!(!ends_with_ready(&out));
    assert!(!ends_with_ready(b"Z\0\0"));
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
    let err = decode_frontend(typed(b'B', &body).freeze()).unwrap_err();
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
    assert!(decode_frontend(typed(b'!', b"xyz").freeze()).is_err());
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
    put_copy_response(
        &mut buf,
        false,
        &CopyFormat {
            overall: 0,
            columns: vec![0, 0],
        },
    )
    .unwrap();
    put_copy_data(&mut buf, b"1\t2\n").unwrap();
    put_copy_done(&mut buf).unwrap();
    put_notification(&mut buf, 7, "chan", "hi").unwrap();
    put_parameter_status(&mut buf, "TimeZone", "UTC").unwrap();
    put_portal_suspended(&mut buf).unwrap();
    put_ready(&mut buf, TxStatus::InBlock).unwrap();
    let mut got = Vec::new();
    while let Some(frame) = split_frame(&mut buf, false).unwrap() {
        got.push(decode_backend(frame.freeze()).unwrap());
    }
    assert!(
        matches!(&got[0], Backend::RowDescription(f) if f[0].name == "n" && f[0].type_oid == 23)
    );
    match &got[1] {
        Backend::DataRow { count, values } => {
            assert_eq!(
                data_row_values(values, *count).unwrap(),
                vec![Some(&b"42"[..]), None]
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(got[2], Backend::CommandComplete("SELECT 1".into()));
    assert_eq!(
        got[3],
        Backend::CopyOutResponse(CopyFormat {
            overall: 0,
            columns: vec![0, 0]
        })
    );
    assert_eq!(got[4], Backend::CopyData(Bytes::from_static(b"1\t2\n")));
    assert_eq!(got[5], Backend::CopyDone);
    assert_eq!(
        got[6],
        Backend::Notification {
            pid: 7,
            channel: "chan".into(),
            payload: "hi".into()
        }
    );
    assert_eq!(
        got[7],
        Backend::ParameterStatus {
            name: "TimeZone".into(),
            value: "UTC".into()
        }
    );
    assert_eq!(got[8], Backend::PortalSuspended);
    assert_eq!(got[9], Backend::ReadyForQuery(TxStatus::InBlock));
    assert_eq!(TxStatus::InBlock.byte(), b'T');
}

fn name() -> impl Strategy<Value = String> {
    "[a-z_0-9]{0,8}"
}

fn frontend() -> impl Strategy<Value = Frontend> {
    let value =
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8).prop_map(Bytes::from));
    prop_oneof![
        "[ -~]{0,40}".prop_map(Frontend::Query),
        (
            name(),
            "[ -~]{0,40}",
            proptest::collection::vec(any::<u32>(), 0..4)
        )
            .prop_map(|(name, sql, types)| Frontend::Parse(Parse { name, sql, types })),
        (
            name(),
            name(),
            proptest::collection::vec(0i16..2, 0..3),
            proptest::collection::vec(value, 0..4),
            proptest::collection::vec(0i16..2, 0..3)
        )
            .prop_map(
                |(portal, statement, param_formats, params, result_formats)| {
                    Frontend::Bind(Bind {
                        portal,
                        statement,
                        param_formats,
                        params,
                        result_formats,
                    })
                }
            ),
        (any::<bool>(), name()).prop_map(|(s, name)| Frontend::Describe {
            target: if s { Target::Statement } else { Target::Portal },
            name
        }),
        (any::<bool>(), name()).prop_map(|(s, name)| Frontend::Close {
            target: if s { Target::Statement } else { Target::Portal },
            name
        }),
        (name(), any::<i32>())
            .prop_map(|(portal, max_rows)| Frontend::Execute { portal, max_rows }),
        Just(Frontend::Sync),
        Just(Frontend::Flush),
        Just(Frontend::Terminate),
        Just(Frontend::CopyDone),
        proptest::collection::vec(any::<u8>(), 0..16)
            .prop_map(|d| Frontend::CopyData(Bytes::from(d))),
        "[ -~]{0,20}".prop_map(Frontend::CopyFail),
    ]
}

proptest! {
    #[test]
    fn every_frontend_message_round_trips(msg in frontend()) {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf).expect("encodes");
        let frame = split_frame(&mut buf, false).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decode_frontend(frame.freeze()).unwrap(), msg);
    }

    #[test]
    fn startup_messages_round_trip(pid in any::<i32>(), secret in any::<i32>(), user in "[a-z]{1,8}") {
        let mut params = std::collections::BTreeMap::new();
        params.insert("user".to_string(), user);
        for msg in [
            Frontend::SslRequest,
            Frontend::GssEncRequest,
            Frontend::Cancel { pid, secret },
            Frontend::Startup { major: 3, minor: 0, parameters: params.clone() },
        ] {
            let mut buf = BytesMut::new();
            msg.encode(&mut buf).expect("encodes");
            let frame = split_frame(&mut buf, true).unwrap().unwrap();
            prop_assert_eq!(decode_startup(frame.freeze()).unwrap(), msg);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(kind in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let frame = typed(kind, &body).freeze();
        let _ = decode_frontend(frame.clone());
        let _ = decode_backend(frame);
        let mut startup = BytesMut::new();
        startup.put_i32(body.len() as i32 + 4);
        startup.put_slice(&body);
        let _ = decode_startup(startup.freeze());
    }
}

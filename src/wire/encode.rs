//! Backend message encoders. Each message's type byte and length are written
//! by pgwire; callers only say what goes in the body.

use bytes::{BufMut, BytesMut};
use pgwire::messages::copy::{CopyData, CopyDone, CopyInResponse, CopyOutResponse};
use pgwire::messages::data::{
    DataRow, FieldDescription, NoData, ParameterDescription, RowDescription,
};
use pgwire::messages::extendedquery::{
    BindComplete, CloseComplete, ParseComplete, PortalSuspended,
};
use pgwire::messages::response::{
    CommandComplete, EmptyQueryResponse, ErrorResponse, NoticeResponse, NotificationResponse,
    ReadyForQuery, SslResponse, TransactionStatus,
};
use pgwire::messages::startup::{
    Authentication, BackendKeyData, NegotiateProtocolVersion, ParameterStatus, SecretKey,
};
use pgwire::messages::Message;

use super::{CopyFormat, TxStatus, WireError};

fn enc<M: Message>(buf: &mut BytesMut, msg: M) -> Result<(), WireError> {
    msg.encode(buf).map_err(|e| WireError::Malformed {
        kind: M::message_type().map(char::from),
        reason: format!("cannot encode: {e}"),
    })
}

/// One column of a RowDescription.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnWire<'a> {
    pub(crate) name: &'a str,
    pub(crate) table_oid: u32,
    pub(crate) column_id: i16,
    pub(crate) type_oid: u32,
    pub(crate) type_size: i16,
    pub(crate) type_modifier: i32,
    pub(crate) format: i16,
}

pub(crate) fn put_row_description<'a>(
    buf: &mut BytesMut,
    columns: impl IntoIterator<Item = ColumnWire<'a>>,
) -> Result<(), WireError> {
    let fields = columns
        .into_iter()
        .map(|c| {
            FieldDescription::new(
                c.name.to_owned(),
                c.table_oid as i32,
                c.column_id,
                c.type_oid,
                c.type_size,
                c.type_modifier,
                c.format,
            )
        })
        .collect();
    enc(buf, RowDescription::new(fields))
}

pub(crate) fn put_data_row(buf: &mut BytesMut, values: &[Option<&[u8]>]) -> Result<(), WireError> {
    let mut data =
        BytesMut::with_capacity(values.iter().map(|v| 4 + v.map_or(0, <[u8]>::len)).sum());
    for v in values {
        match v {
            Some(bytes) => {
                data.put_i32(bytes.len() as i32);
                data.put_slice(bytes);
            }
            None => data.put_i32(-1),
        }
    }
    let count = i16::try_from(values.len()).map_err(|_| WireError::Malformed {
        kind: Some('D'),
        reason: format!("{} columns do not fit a DataRow", values.len()),
    })?;
    enc(buf, DataRow::new(data, count))
}

pub(crate) fn put_command_complete(buf: &mut BytesMut, tag: &str) -> Result<(), WireError> {
    enc(buf, CommandComplete::new(tag.to_owned()))
}

pub(crate) fn put_empty_query(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, EmptyQueryResponse::new())
}

/// An ErrorResponse from (field code, value) pairs, in the given order.
pub(crate) fn put_error(buf: &mut BytesMut, fields: Vec<(u8, String)>) -> Result<(), WireError> {
    enc(buf, ErrorResponse::new(fields))
}

/// A NoticeResponse from (field code, value) pairs, in the given order.
pub(crate) fn put_notice(buf: &mut BytesMut, fields: Vec<(u8, String)>) -> Result<(), WireError> {
    enc(buf, NoticeResponse::new(fields))
}

pub(crate) fn put_ready(buf: &mut BytesMut, status: TxStatus) -> Result<(), WireError> {
    let status = match status {
        TxStatus::Idle => TransactionStatus::Idle,
        TxStatus::InBlock => TransactionStatus::Transaction,
        TxStatus::Failed => TransactionStatus::Error,
    };
    enc(buf, ReadyForQuery::new(status))
}

/// CopyInResponse (`in_`) or CopyOutResponse.
pub(crate) fn put_copy_response(
    buf: &mut BytesMut,
    in_: bool,
    format: &CopyFormat,
) -> Result<(), WireError> {
    let n = i16::try_from(format.columns.len()).map_err(|_| WireError::Malformed {
        kind: Some(if in_ { 'G' } else { 'H' }),
        reason: "too many columns".into(),
    })?;
    if in_ {
        enc(
            buf,
            CopyInResponse::new(format.overall, n, format.columns.clone()),
        )
    } else {
        enc(
            buf,
            CopyOutResponse::new(format.overall, n, format.columns.clone()),
        )
    }
}

pub(crate) fn put_copy_data(buf: &mut BytesMut, data: &[u8]) -> Result<(), WireError> {
    enc(buf, CopyData::new(bytes::Bytes::copy_from_slice(data)))
}

pub(crate) fn put_copy_done(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, CopyDone::new())
}

pub(crate) fn put_notification(
    buf: &mut BytesMut,
    pid: i32,
    channel: &str,
    payload: &str,
) -> Result<(), WireError> {
    enc(
        buf,
        NotificationResponse::new(pid, channel.to_owned(), payload.to_owned()),
    )
}

pub(crate) fn put_parse_complete(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, ParseComplete::new())
}

pub(crate) fn put_bind_complete(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, BindComplete::new())
}

pub(crate) fn put_close_complete(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, CloseComplete::new())
}

pub(crate) fn put_no_data(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, NoData::new())
}

pub(crate) fn put_portal_suspended(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, PortalSuspended::new())
}

pub(crate) fn put_parameter_description(
    buf: &mut BytesMut,
    types: &[u32],
) -> Result<(), WireError> {
    enc(buf, ParameterDescription::new(types.to_vec()))
}

pub(crate) fn put_parameter_status(
    buf: &mut BytesMut,
    name: &str,
    value: &str,
) -> Result<(), WireError> {
    enc(buf, ParameterStatus::new(name.to_owned(), value.to_owned()))
}

pub(crate) fn put_backend_key(buf: &mut BytesMut, pid: i32, secret: i32) -> Result<(), WireError> {
    enc(buf, BackendKeyData::new(pid, SecretKey::I32(secret)))
}

pub(crate) fn put_auth_ok(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, Authentication::Ok)
}

pub(crate) fn put_auth_cleartext(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, Authentication::CleartextPassword)
}

pub(crate) fn put_auth_md5(buf: &mut BytesMut, salt: [u8; 4]) -> Result<(), WireError> {
    enc(buf, Authentication::MD5Password(salt.to_vec()))
}

pub(crate) fn put_auth_sasl(buf: &mut BytesMut, mechanisms: &[&str]) -> Result<(), WireError> {
    enc(
        buf,
        Authentication::SASL(mechanisms.iter().map(|m| (*m).to_owned()).collect()),
    )
}

pub(crate) fn put_auth_sasl_continue(buf: &mut BytesMut, data: &[u8]) -> Result<(), WireError> {
    enc(
        buf,
        Authentication::SASLContinue(bytes::Bytes::copy_from_slice(data)),
    )
}

pub(crate) fn put_auth_sasl_final(buf: &mut BytesMut, data: &[u8]) -> Result<(), WireError> {
    enc(
        buf,
        Authentication::SASLFinal(bytes::Bytes::copy_from_slice(data)),
    )
}

pub(crate) fn put_ssl_refused(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, SslResponse::Refuse)
}

pub(crate) fn put_ssl_accepted(buf: &mut BytesMut) -> Result<(), WireError> {
    enc(buf, SslResponse::Accept)
}

/// Tells a client that asked for protocol 3.x (x > 0) to speak 3.0.
pub(crate) fn put_negotiate_protocol(
    buf: &mut BytesMut,
    unsupported: Vec<String>,
) -> Result<(), WireError> {
    enc(buf, NegotiateProtocolVersion::new(0, unsupported))
}

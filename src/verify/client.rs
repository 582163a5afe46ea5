//! The re-run's own protocol client: it sends each recorded exchange with
//! the very messages its client sent, which a driver cannot be made to do.
//!
//! Why not tokio-postgres, which the rest of the crate uses as a client:
//! it chooses its own message sequence (a statement Describe before every
//! bound query, binary results), while libpq clients such as pgbench and
//! psql's `\bind` send Parse, Bind, Describe of the *portal*, Execute,
//! Sync in one go. A server that only knows what was recorded (a mock
//! server, or a recording compared afterwards) can only be asked what was
//! asked when it was recorded. So this client writes [`Frontend`] messages
//! with the crate's one encoder and reads [`Backend`] messages with its one
//! decoder; passwords (cleartext, MD5, SCRAM-SHA-256 without channel
//! binding) go through `postgres-protocol`, tokio-postgres's own
//! implementation, never hand-written cryptography.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::{ErrorFields, Format, Param, Value};
use crate::wire::{
    decode_backend, split_frame, Auth, Backend, Bind, Frontend, Parse, Target, TxStatus,
};

/// What a session's connection is opened with.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) user: String,
    pub(super) password: Option<Vec<u8>>,
    pub(super) database: String,
    /// The startup `options` (`-c pgsim.scope=...`), if any.
    pub(super) options: Option<String>,
}

/// A connection that failed or broke: not an answer, the run cannot go on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Broken(pub(super) String);

fn broken(message: impl Into<String>) -> Broken {
    Broken(message.into())
}

/// How a connection attempt ended.
pub(super) enum Connected {
    Ready(Conn),
    /// The server refused the session with this error.
    Refused(ErrorFields),
}

/// An open session.
pub(super) struct Conn {
    stream: TcpStream,
    input: BytesMut,
    /// The status of the last ReadyForQuery.
    pub(super) status: TxStatus,
    /// The server ended the session (a FATAL error, or it closed).
    pub(super) closed: bool,
}

/// How a bound query is sent, as its client sent it (see [`describe_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Describe {
    /// Parse and Describe of the statement, Sync; then Bind, Execute, Sync
    /// (tokio-postgres, JDBC, psycopg's prepared statements).
    Statement,
    /// Parse, Bind, Describe of the portal, Execute, Sync (libpq's
    /// `PQexecParams`, pgbench, asyncpg's unnamed queries).
    Portal,
    /// Parse, Bind, Execute, Sync: the client never asked for the columns.
    Nothing,
}

/// Which Describe the client of a recorded exchange sent, as the recording
/// shows it; `None` for the simple query protocol. The recorder keeps the
/// parameter types the server described only when the client described
/// the statement, and marks the columns unknown when it described nothing.
pub fn describe_of(ex: &crate::fixture::Exchange) -> Option<Describe> {
    ex.params.as_ref()?;
    Some(if ex.param_types.is_some() {
        Describe::Statement
    } else if ex.results.iter().any(|r| r.columns_unknown) {
        Describe::Nothing
    } else {
        Describe::Portal
    })
}

/// What the server answered to one request, beyond what the recorder keeps.
#[derive(Debug, Default)]
pub(super) struct Answer {
    /// The first error it raised, if any.
    pub(super) error: Option<ErrorFields>,
}

impl Conn {
    /// Opens a session at `addr` and authenticates as the server asks.
    pub(super) async fn connect(addr: SocketAddr, s: &Settings) -> Result<Connected, Broken> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| broken(format!("cannot connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream,
            input: BytesMut::with_capacity(8 * 1024),
            status: TxStatus::Idle,
            closed: false,
        };
        let mut parameters = BTreeMap::from([
            ("user".to_owned(), s.user.clone()),
            ("database".to_owned(), s.database.clone()),
            ("client_encoding".to_owned(), "UTF8".to_owned()),
            ("application_name".to_owned(), "pgsim verify".to_owned()),
        ]);
        if let Some(options) = &s.options {
            parameters.insert("options".to_owned(), options.clone());
        }
        conn.send(&[Frontend::Startup {
            major: 3,
            minor: 0,
            parameters,
        }])
        .await?;
        let mut scram: Option<ScramSha256> = None;
        let password = || {
            s.password
                .as_deref()
                .ok_or_else(|| broken("the server asks for a password and the URL has none"))
        };
        loop {
            match conn.read().await? {
                Backend::Authentication(auth) => match auth {
                    Auth::Ok => {}
                    Auth::Cleartext => {
                        let mut body = password()?.to_vec();
                        body.push(0);
                        conn.send(&[Frontend::Password(body.into())]).await?;
                    }
                    Auth::Md5(salt) => {
                        let mut body = md5_hash(s.user.as_bytes(), password()?, salt).into_bytes();
                        body.push(0);
                        conn.send(&[Frontend::Password(body.into())]).await?;
                    }
                    Auth::Sasl(mechanisms) => {
                        if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                            return Err(broken(format!(
                                "the server offers SASL mechanisms {mechanisms:?}, not {SCRAM_SHA_256}"
                            )));
                        }
                        let client = ScramSha256::new(password()?, ChannelBinding::unsupported());
                        let mut body = BytesMut::new();
                        body.put_slice(SCRAM_SHA_256.as_bytes());
                        body.put_u8(0);
                        let first = client.message();
                        body.put_i32(i32::try_from(first.len()).unwrap_or(i32::MAX));
                        body.put_slice(first);
                        scram = Some(client);
                        conn.send(&[Frontend::Password(body.freeze())]).await?;
                    }
                    Auth::SaslContinue(data) => {
                        let client = scram
                            .as_mut()
                            .ok_or_else(|| broken("SASL continue before SASL began"))?;
                        client
                            .update(&data)
                            .map_err(|e| broken(format!("SCRAM: {e}")))?;
                        let next = Bytes::copy_from_slice(client.message());
                        conn.send(&[Frontend::Password(next)]).await?;
                    }
                    Auth::SaslFinal(data) => {
                        let mut client = scram
                            .take()
                            .ok_or_else(|| broken("SASL final before SASL began"))?;
                        client
                            .finish(&data)
                            .map_err(|e| broken(format!("SCRAM: the server's signature: {e}")))?;
                    }
                    Auth::Other(code) => {
                        return Err(broken(format!(
                            "the server asks for authentication method {code}, which pgsim verify does not speak"
                        )))
                    }
                },
                Backend::Error(fields) => return Ok(Connected::Refused(ErrorFields::from_wire(&fields))),
                Backend::ReadyForQuery(status) => {
                    conn.status = status;
                    return Ok(Connected::Ready(conn));
                }
                // ParameterStatus, BackendKeyData, notices,
                // NegotiateProtocolVersion: nothing to answer.
                _ => {}
            }
        }
    }

    async fn send(&mut self, messages: &[Frontend]) -> Result<(), Broken> {
        let mut out = BytesMut::new();
        for m in messages {
            m.encode(&mut out)
                .map_err(|e| broken(format!("cannot send the recorded message: {e}")))?;
        }
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| broken(format!("the connection broke while sending: {e}")))
    }

    async fn read(&mut self) -> Result<Backend, Broken> {
        loop {
            match split_frame(&mut self.input, false) {
                Ok(Some(frame)) => {
                    return decode_backend(frame.freeze())
                        .map_err(|e| broken(format!("the server sent {e}")))
                }
                Ok(None) => {}
                Err(e) => return Err(broken(format!("the server sent {e}"))),
            }
            let n = self
                .stream
                .read_buf(&mut self.input)
                .await
                .map_err(|e| broken(format!("the connection broke: {e}")))?;
            if n == 0 {
                self.closed = true;
                return Err(broken("the server closed the connection"));
            }
        }
    }

    /// Reads until `syncs` ReadyForQuery messages came, answering COPY FROM
    /// STDIN with `copy_data`. A FATAL error ends the session.
    async fn answers(&mut self, syncs: usize, copy_data: Option<&[u8]>) -> Result<Answer, Broken> {
        let mut answer = Answer::default();
        let mut left = syncs;
        while left > 0 {
            match self.read().await {
                Ok(Backend::ReadyForQuery(status)) => {
                    self.status = status;
                    left -= 1;
                }
                Ok(Backend::Error(fields)) => {
                    let fields = ErrorFields::from_wire(&fields);
                    let fatal = matches!(
                        fields.0.get("severity").map(String::as_str),
                        Some("FATAL" | "PANIC")
                    );
                    answer.error.get_or_insert(fields);
                    if fatal {
                        self.closed = true;
                        return Ok(answer);
                    }
                }
                Ok(Backend::CopyInResponse(_)) => {
                    let mut messages = Vec::new();
                    match copy_data {
                        Some(data) if !data.is_empty() => {
                            messages.push(Frontend::CopyData(Bytes::copy_from_slice(data)));
                            messages.push(Frontend::CopyDone);
                        }
                        Some(_) => messages.push(Frontend::CopyDone),
                        None => messages.push(Frontend::CopyFail(
                            "pgsim verify: no COPY data was recorded for this statement".into(),
                        )),
                    }
                    self.send(&messages).await?;
                }
                Ok(_) => {}
                // The FATAL error was the answer; the close follows it.
                Err(_) if self.closed && answer.error.is_some() => return Ok(answer),
                Err(e) => return Err(e),
            }
        }
        Ok(answer)
    }

    /// One simple query (a COPY FROM STDIN is given `copy_data`).
    pub(super) async fn simple(
        &mut self,
        sql: &str,
        copy_data: Option<&[u8]>,
    ) -> Result<Answer, Broken> {
        self.send(&[Frontend::Query(sql.to_owned())]).await?;
        self.answers(1, copy_data).await
    }

    /// A statement that failed at Parse when recorded: Parse and Describe,
    /// then, if it now parses and takes no parameter, Bind and Execute.
    pub(super) async fn prepare(&mut self, sql: &str) -> Result<Answer, Broken> {
        self.send(&[
            parse(sql, &[]),
            Frontend::Describe {
                target: Target::Statement,
                name: String::new(),
            },
            Frontend::Sync,
        ])
        .await?;
        let answer = self.answers(1, None).await?;
        if answer.error.is_some() || self.closed {
            return Ok(answer);
        }
        self.send(&[bind(&[], &[])?, execute(), Frontend::Sync])
            .await?;
        self.answers(1, None).await
    }

    /// A bound query, sent the way `describe` says its client sent it;
    /// results are asked for in `result_formats` (one per column).
    pub(super) async fn extended(
        &mut self,
        sql: &str,
        params: &[Param],
        describe: Describe,
        result_formats: &[Format],
    ) -> Result<Answer, Broken> {
        let bind = bind(params, result_formats)?;
        match describe {
            Describe::Statement => {
                self.send(&[
                    parse(sql, params),
                    Frontend::Describe {
                        target: Target::Statement,
                        name: String::new(),
                    },
                    Frontend::Sync,
                ])
                .await?;
                let described = self.answers(1, None).await?;
                if described.error.is_some() || self.closed {
                    return Ok(described);
                }
                self.send(&[bind, execute(), Frontend::Sync]).await?;
            }
            Describe::Portal => {
                self.send(&[
                    parse(sql, params),
                    bind,
                    Frontend::Describe {
                        target: Target::Portal,
                        name: String::new(),
                    },
                    execute(),
                    Frontend::Sync,
                ])
                .await?;
            }
            Describe::Nothing => {
                self.send(&[parse(sql, params), bind, execute(), Frontend::Sync])
                    .await?;
            }
        }
        self.answers(1, None).await
    }

    /// Ends the session politely.
    pub(super) async fn terminate(mut self) {
        if !self.closed {
            let _ = self.send(&[Frontend::Terminate]).await;
        }
        let _ = self.stream.shutdown().await;
    }
}

fn parse(sql: &str, params: &[Param]) -> Frontend {
    Frontend::Parse(Parse {
        name: String::new(),
        sql: sql.to_owned(),
        types: params.iter().map(|p| p.type_oid).collect(),
    })
}

fn execute() -> Frontend {
    Frontend::Execute {
        portal: String::new(),
        max_rows: 0,
    }
}

fn format_code(f: Format) -> i16 {
    match f {
        Format::Text => 0,
        Format::Binary => 1,
    }
}

/// Bind with the recorded values as they were recorded: text in text
/// format without any conversion (the server parses it as the parameter's
/// type, as it parsed the client's), raw bytes in their recorded format.
fn bind(params: &[Param], result_formats: &[Format]) -> Result<Frontend, Broken> {
    let mut formats = Vec::with_capacity(params.len());
    let mut values = Vec::with_capacity(params.len());
    for p in params {
        let (format, value) = sent_value(&p.value)?;
        formats.push(format_code(format));
        values.push(value);
    }
    Ok(Frontend::Bind(Bind {
        portal: String::new(),
        statement: String::new(),
        param_formats: formats,
        params: values,
        result_formats: result_formats.iter().map(|f| format_code(*f)).collect(),
    }))
}

/// A recorded parameter value as it goes on the wire.
pub(super) fn sent_value(v: &Value) -> Result<(Format, Option<Bytes>), Broken> {
    Ok(match v {
        Value::Null => (Format::Text, None),
        Value::Text(t) => (Format::Text, Some(Bytes::copy_from_slice(t.as_bytes()))),
        Value::Raw { hex, format } => (
            *format,
            Some(
                hex::decode(hex)
                    .map_err(|e| broken(format!("a recorded value is not hex: {e}")))?
                    .into(),
            ),
        ),
    })
}

//! TLS for the servers pgsim runs (`pgsim serve`, the client side of
//! `pgsim record`): rustls with ring, a certificate from files or one
//! generated at start, and the stream a connection reads and writes
//! whether or not it was upgraded after SSLRequest.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::Error;

/// Where a server's certificate comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TlsSource {
    /// A PEM certificate chain (the server's first) and its PEM private key.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// Generated at start: a throwaway CA and a certificate it signed for
    /// `localhost`, `127.0.0.1` and `::1`. The CA certificate is written to
    /// `root_cert` when given, for clients to trust
    /// (`sslmode=verify-full sslrootcert=...`).
    Generated {
        /// Where to write the CA certificate (PEM).
        root_cert: Option<PathBuf>,
    },
}

/// A server's TLS: what accepts the handshake, and its certificate (for
/// SCRAM channel binding, `tls-server-end-point`).
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    /// The server's own certificate, PEM.
    pub(crate) cert_pem: Arc<Vec<u8>>,
    /// The CA certificate a client trusts (PEM): the generated CA, or the
    /// chain's last certificate.
    pub(crate) root_pem: Arc<Vec<u8>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}

fn bad(what: String) -> Error {
    Error::Config(what)
}

impl Tls {
    /// Loads or generates the certificate.
    pub(crate) fn new(source: &TlsSource) -> Result<Tls, Error> {
        let (chain, key, cert_pem, root_pem) = match source {
            TlsSource::Files { cert, key } => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| bad(format!("TLS certificate {}: {e}", cert.display())))?;
                if chain.is_empty() {
                    return Err(bad(format!(
                        "TLS certificate {}: no certificate in it",
                        cert.display()
                    )));
                }
                let private = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| bad(format!("TLS key {}: {e}", key.display())))?;
                // The chain's PEM as written: its first certificate is
                // the server's (what channel binding hashes).
                let pem = std::fs::read(cert)
                    .map_err(|e| bad(format!("TLS certificate {}: {e}", cert.display())))?;
                (chain, private, pem.clone(), pem)
            }
            TlsSource::Generated { root_cert } => {
                let (chain, private, leaf, root) = generate()?;
                if let Some(path) = root_cert {
                    std::fs::write(path, &root).map_err(|e| {
                        bad(format!(
                            "writing the CA certificate {}: {e}",
                            path.display()
                        ))
                    })?;
                }
                (chain, private, leaf, root)
            }
        };
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(format!("TLS certificate and key: {e}")))?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert_pem: Arc::new(cert_pem),
            root_pem: Arc::new(root_pem),
        })
    }
}

/// A throwaway CA and a server certificate it signed.
/// The chain, the key, the server certificate's PEM and the CA's PEM.
type Generated = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Vec<u8>,
    Vec<u8>,
);

fn generate() -> Result<Generated, Error> {
    let failed = |e: rcgen::Error| bad(format!("generating a TLS certificate: {e}"));
    let ca_key = rcgen::KeyPair::generate().map_err(failed)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "pgsim test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let mut leaf = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(failed)?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let leaf_cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(failed)?;
    let private = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| bad(format!("generating a TLS key: {e}")))?;
    Ok((
        vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        private,
        leaf_cert.pem().into_bytes(),
        ca_cert.pem().into_bytes(),
    ))
}

/// A connection's byte stream: plain TCP, or TLS after SSLRequest.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// To a server (the recorder's upstream).
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Between the two, during the handshake.
    Upgrading,
}

impl Stream {
    /// Whether the connection is encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_) | Stream::TlsClient(_))
    }

    /// Runs the TLS handshake on a plain stream.
    pub(crate) async fn upgrade(&mut self, tls: &Tls) -> std::io::Result<()> {
        let Stream::Plain(tcp) = std::mem::replace(self, Stream::Upgrading) else {
            return Err(std::io::Error::other("TLS requested twice"));
        };
        let stream = tls.acceptor.accept(tcp).await?;
        *self = Stream::Tls(Box::new(stream));
        Ok(())
    }
}

fn upgrading() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "TLS handshake failed")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// libpq's `sslmode`, for the client toolkit's connections (tokio-postgres
/// knows only the first three; verification is the connector's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// TLS when the server offers it, not verified (libpq's default).
    #[default]
    Prefer,
    /// TLS or nothing, not verified.
    Require,
    /// TLS with a certificate chain the root certificate (`sslrootcert`,
    /// else the webpki roots) vouches for, whatever the host name.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl std::str::FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "invalid sslmode {other:?}: expected disable, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }
}

impl SslMode {
    /// What tokio-postgres is told (it negotiates; the connector verifies).
    pub(crate) fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

/// A tokio-postgres TLS connector (rustls) for `mode`, trusting the PEM
/// certificates of `root_cert` or, without one, the webpki roots.
pub fn tls_connector(
    mode: SslMode,
    root_cert: Option<&[u8]>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, Error> {
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
        client_config(mode, root_cert)?,
    ))
}

/// The rustls client configuration `sslmode` means (see [`tls_connector`]).
pub(crate) fn client_config(
    mode: SslMode,
    root_cert: Option<&[u8]>,
) -> Result<rustls::ClientConfig, Error> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::WebPkiServerVerifier;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| bad(format!("sslrootcert: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("sslrootcert: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| bad(format!("TLS roots: {e}")))?;

    /// How much of the server's certificate is checked.
    #[derive(Debug)]
    struct Verifier {
        webpki: Arc<WebPkiServerVerifier>,
        /// `None`: nothing (prefer, require); `Some(false)`: the chain
        /// (verify-ca); `Some(true)`: the chain and the name (verify-full).
        check: Option<bool>,
    }

    impl ServerCertVerifier for Verifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &rustls::pki_types::ServerName<'_>,
            ocsp: &[u8],
            now: rustls::pki_types::UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let Some(name_too) = self.check else {
                return Ok(ServerCertVerified::assertion());
            };
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName,
                )) if !name_too => Ok(ServerCertVerified::assertion()),
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. },
                )) if !name_too => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.webpki.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.webpki.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.webpki.supported_verify_schemes()
        }
    }

    let check = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => None,
        SslMode::VerifyCa => Some(false),
        SslMode::VerifyFull => Some(true),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { webpki, check }))
        .with_no_client_auth();
    Ok(config)
}

/// Connects to a PostgreSQL server at `addr` (`host:port`) as `mode` says
/// (`config`, the TLS it means, is `None` exactly for `disable`):
/// SSLRequest first unless `disable`; on `S` the TLS handshake (verified as
/// `mode` says), on `N` plaintext for `prefer`, an error otherwise, worded
/// as libpq words it.
pub(crate) async fn connect_upstream(
    addr: &str,
    mode: SslMode,
    config: Option<&Arc<rustls::ClientConfig>>,
) -> std::io::Result<Stream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let Some(config) = config.filter(|_| mode != SslMode::Disable) else {
        return Ok(Stream::Plain(tcp));
    };
    // SSLRequest: length 8, code 1234.5679.
    tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    match answer[0] {
        b'S' => {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| std::io::Error::other(format!("TLS server name {host:?}: {e}")))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, tcp)
                .await?;
            Ok(Stream::TlsClient(Box::new(stream)))
        }
        b'N' if mode == SslMode::Prefer => Ok(Stream::Plain(tcp)),
        b'N' => Err(std::io::Error::other(
            "server does not support SSL, but SSL was required",
        )),
        other => Err(std::io::Error::other(format!(
            "received invalid response to SSL negotiation: {}",
            char::from(other)
        ))),
    }
}

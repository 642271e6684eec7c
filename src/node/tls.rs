//! TLS with rustls (the `ring` provider): the node's certificate for HTTPS
//! and WSS ([`ServerTls`]), and what a dialing node or the CLI trusts
//! ([`ClientTls`]: the operating system's roots, plus a private CA).
//!
//! Certificates and keys are PEM files. The accept side lives in
//! [`super::listener`], which runs the handshake inside a connection's header
//! read timeout; the dial side is [`ClientTls::open`].

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Why a certificate, key or CA file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// What the file was for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: io::Error,
    },
    /// The file is not PEM, or holds nothing of the expected kind.
    #[error("{what} {}: {detail}", path.display())]
    Pem {
        /// What the file was for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// rustls refused the certificate and key (a key that does not match the
    /// certificate, an unsupported key type).
    #[error("TLS certificate {} with key {}: {source}", cert.display(), key.display())]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
}

/// The `ring` provider: it builds with a C compiler alone (aws-lc-rs would
/// bring post-quantum key exchange, at the cost of a much longer build).
/// rustls 0.23.48 marks it deprecated for that reason only.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate of a PEM file (at least one).
fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            path: path.to_path_buf(),
            detail: "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        });
    }
    Ok(certs)
}

/// The node's own certificate chain and key: it serves HTTPS and WSS. The
/// pair is read again by [`ServerTls::reload`] (on `SIGHUP`, see
/// [`ServerTls::reload_on_sighup`]): new handshakes get the new certificate,
/// connections already open keep theirs, and a pair that cannot be used is
/// refused with the reason while the one in use stays.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    current: Arc<CurrentCert>,
    cert: PathBuf,
    key: PathBuf,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

/// The certificate and key every new handshake gets.
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl std::fmt::Debug for CurrentCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CurrentCert")
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // a swap is one assignment: a poisoned lock still holds a whole pair
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The chain in `cert` and its key in `key`, checked to match.
fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = certificates("TLS certificate", cert)?;
    let key_pem = read("TLS key", key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        what: "TLS key",
        path: key.to_path_buf(),
        detail: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PEM private key (-----BEGIN PRIVATE KEY-----) in it".into()
            }
            e => e.to_string(),
        },
    })?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|source| TlsError::Config {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })
}

impl ServerTls {
    /// The certificate chain in `cert` (the node's certificate first, then
    /// any intermediates) and its private key in `key` (PKCS#8, PKCS#1 or
    /// SEC1), both PEM. Offers HTTP/2 and HTTP/1.1 by ALPN.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(certified_key(
            cert, key,
        )?))));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Config {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            current,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })
    }

    /// Read the certificate and key files again and serve them to new
    /// handshakes; on an error the pair in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(certified_key(&self.cert, &self.key)?);
        *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// [`ServerTls::reload`] on every `SIGHUP` (logged, with the reason when
    /// the files cannot be used). Must run inside a tokio runtime; `SIGHUP`
    /// is handled from the moment this returns.
    #[cfg(unix)]
    pub fn reload_on_sighup(&self) -> io::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())?;
        let tls = self.clone();
        Ok(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!(cert = %tls.cert.display(), key = %tls.key.display(),
                        "TLS certificate reloaded (SIGHUP)"),
                    Err(e) => tracing::error!(error = %e,
                        "TLS certificate not reloaded; keeping the one in use"),
                }
            }
        }))
    }

    /// The acceptor for the node's listener.
    pub(super) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// Whom a dialing node or the CLI trusts: the operating system's root
/// certificates plus, optionally, a private CA.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    roots: usize,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots)
            .finish()
    }
}

impl ClientTls {
    /// The system's roots (read once per process), plus every certificate in
    /// the PEM file `ca_cert` when given.
    pub fn new(ca_cert: Option<&Path>) -> Result<ClientTls, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.extend(system_roots().roots.iter().cloned());
        if let Some(path) = ca_cert {
            for cert in certificates("CA certificate", path)? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    what: "CA certificate",
                    path: path.to_path_buf(),
                    detail: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        Ok(ClientTls::from_roots(roots))
    }

    /// Trust exactly `roots`.
    pub fn from_roots(roots: RootCertStore) -> ClientTls {
        let count = roots.len();
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            roots: count,
        }
    }

    /// The system's roots only (shared by every caller of the process).
    pub fn system() -> ClientTls {
        static SYSTEM: OnceLock<ClientTls> = OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                let mut roots = RootCertStore::empty();
                roots.extend(system_roots().roots.iter().cloned());
                ClientTls::from_roots(roots)
            })
            .clone()
    }

    /// How many root certificates are trusted.
    pub fn root_count(&self) -> usize {
        self.roots
    }

    /// A TCP connection to `host:port`, wrapped in TLS when `tls` (the
    /// certificate must be valid for `host`, a name or an IP address). The
    /// error says what failed: the TCP connection (the OS's reason) or the
    /// handshake (rustls's reason and, for an untrusted certificate, what to
    /// do about it).
    pub async fn open(&self, host: &str, port: u16, tls: bool) -> Result<MaybeTls, String> {
        // `[::1]` in a URL is `::1` on the wire and in the certificate
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((bare, port))
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        if !tls {
            return Ok(MaybeTls::Plain(tcp));
        }
        let name = ServerName::try_from(bare.to_string())
            .map_err(|e| format!("{host} is not a valid TLS server name: {e}"))?;
        let stream = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| handshake_error(host, &e))?;
        Ok(MaybeTls::Tls(Box::new(stream)))
    }
}

/// The message for a failed client handshake, with a hint for the usual causes.
fn handshake_error(host: &str, e: &io::Error) -> String {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let (kind, hint) = match rustls_error {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => (
            "certificate error: ",
            " (the server's certificate is not signed by a trusted CA: give its CA with \
             --ca-cert FILE, or install it in the system's store)",
        ),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => (
            "certificate error: ",
            " (the certificate does not name this host: dial the name it was issued for)",
        ),
        // webpki's reason for a self-signed CA certificate served as the
        // server's own (what `openssl req -x509` makes by default)
        Some(rustls::Error::InvalidCertificate(CertificateError::Other(other)))
            if format!("{other:?}").contains("CaUsedAsEndEntity") =>
        {
            (
                "certificate error: ",
                " (the server presents a CA certificate as its own: serve a certificate \
                 signed by the CA, with basicConstraints CA:FALSE)",
            )
        }
        Some(rustls::Error::InvalidCertificate(_)) => ("certificate error: ", ""),
        Some(rustls::Error::InvalidMessage(_)) => {
            ("", " (is the server speaking TLS on this port?)")
        }
        _ => ("", ""),
    };
    format!("TLS handshake with {host} failed: {kind}{e}{hint}")
}

/// The operating system's roots, read once.
struct SystemRoots {
    roots: Vec<rustls::pki_types::TrustAnchor<'static>>,
}

fn system_roots() -> &'static SystemRoots {
    static ROOTS: OnceLock<SystemRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "could not read some of the system's root certificates");
        }
        let mut store = RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "system root certificates");
        SystemRoots { roots: store.roots }
    })
}

/// A dialed connection: plain TCP or TLS over TCP.
pub enum MaybeTls {
    /// `ws://`, `http://`.
    Plain(TcpStream),
    /// `wss://`, `https://`.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

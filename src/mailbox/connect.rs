//! TCP and TLS: the one place where sockets are opened and certificates are
//! checked, shared by POP3 and IMAP.
//!
//! Every socket gets the site's timeout for connect, read and write, so a
//! server that accepts and then says nothing ends the run with a temporary
//! failure (exit 75) instead of hanging cron forever.
//!
//! TLS is OpenSSL through the `openssl` crate, set up as its `SslConnector`
//! (and so native-tls) would be, except for how the system's trust anchors
//! are found: a hashed certificate directory is looked up lazily, one file
//! per issuer when a chain is verified, instead of parsing the whole CA
//! bundle (twice, as native-tls did) before every connection: that was about
//! 100 ms of CPU ahead of the first byte to the server.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::error::ErrorStack;
use openssl::ssl::{
    HandshakeError, Ssl, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslStream,
    SslVerifyMode, SslVersion,
};
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::{X509, X509VerifyResult};

use super::Error;
use crate::config::Mailbox as Settings;

/// A connection, encrypted or not; POP3 and IMAP speak over either.
#[derive(Debug)]
pub enum Stream {
    /// No TLS (yet): `tls = "none"`, or before STLS / STARTTLS.
    Plain(TcpStream),
    /// TLS established (implicit or upgraded).
    Tls(Box<SslStream<TcpStream>>),
}

impl Stream {
    /// True once TLS protects the connection.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Where we talk to, for error messages: "POP3 server mail.example.com:995".
#[derive(Debug, Clone)]
pub struct Target {
    /// "POP3" or "IMAP".
    pub protocol: &'static str,
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
}

impl Target {
    /// The target of a site's mailbox settings.
    pub fn of(settings: &Settings, protocol: &'static str) -> Target {
        Target {
            protocol,
            host: settings.host.clone(),
            port: settings.port,
            timeout: Duration::from_secs(settings.timeout_secs.max(1)),
        }
    }

    /// "POP3 server HOST:PORT", the subject of every error message.
    pub fn server(&self) -> String {
        format!("{} server {}:{}", self.protocol, self.host, self.port)
    }

    /// Maps an I/O failure during a session. Every such failure is worth a
    /// retry from cron: a timeout, a reset or a dropped connection all leave
    /// the server state untouched (POP3 deletions apply only at QUIT).
    pub fn io_error(&self, doing: &str, e: &io::Error) -> Error {
        let reason = match e.kind() {
            // Linux reports an expired SO_RCVTIMEO as WouldBlock.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("timed out after {}s {doing}", self.timeout.as_secs())
            }
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => format!("connection dropped {doing}"),
            _ => format!("{doing}: {e}"),
        };
        Error::Temporary {
            server: self.server(),
            reason,
        }
    }

    /// Opens the TCP connection with the timeout on connect, read and write.
    pub fn tcp(&self) -> Result<TcpStream, Error> {
        let unavailable = |reason: String| Error::Unavailable {
            server: self.server(),
            reason,
        };
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| unavailable(format!("cannot resolve host: {e}")))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(self.timeout))
                        .and_then(|()| s.set_write_timeout(Some(self.timeout)))
                        .and_then(|()| s.set_nodelay(true))
                        .map_err(|e| unavailable(e.to_string()))?;
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                // A host that never answers a SYN is as likely to be a
                // transient network problem as a dead server.
                Error::Temporary {
                    server: self.server(),
                    reason: format!("connect timed out after {}s", self.timeout.as_secs()),
                }
            }
            Some(e) => unavailable(e.to_string()),
            None => unavailable("host has no addresses".into()),
        })
    }

    /// TLS handshake over `tcp`, verifying the certificate against the
    /// system roots plus `ca_file`, and the host name.
    pub fn tls(
        &self,
        tcp: TcpStream,
        ca_file: Option<&Path>,
    ) -> Result<SslStream<TcpStream>, Error> {
        let context = context(ca_file).map_err(|reason| Error::Config {
            server: self.server(),
            reason,
        })?;
        let failed = |reason: String| Error::Tls {
            server: self.server(),
            reason,
        };
        let ssl = session(&context, &self.host).map_err(|e| failed(e.to_string()))?;
        match ssl.connect(tcp) {
            Ok(s) => Ok(s),
            Err(HandshakeError::SetupFailure(e)) => Err(failed(e.to_string())),
            Err(HandshakeError::Failure(mid)) => {
                let verify = mid.ssl().verify_result();
                let e = mid.into_error();
                let raw = if verify == X509VerifyResult::OK {
                    e.to_string()
                } else {
                    format!("{e} ({verify})")
                };
                Err(failed(explain_tls(&raw, ca_file.is_some())))
            }
            // With a read timeout set, a stalled handshake surfaces as
            // WouldBlock rather than an error.
            Err(HandshakeError::WouldBlock(_)) => Err(Error::Temporary {
                server: self.server(),
                reason: format!(
                    "timed out after {}s during the TLS handshake",
                    self.timeout.as_secs()
                ),
            }),
        }
    }
}

/// TLS 1.2 cipher suites: OpenSSL's defaults without anonymous, null and
/// legacy ones (the `openssl` crate's `SslConnector` list, which native-tls
/// used). TLS 1.3 suites are OpenSSL's defaults, all strong.
const CIPHERS: &str = "DEFAULT:!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!IDEA:!SEED:!aDSS:!SRP:!PSK";

/// A verifying client context: TLS 1.2 or later, the peer's chain checked
/// against the system roots plus every certificate of `ca_file`.
fn context(ca_file: Option<&Path>) -> Result<SslContext, String> {
    let setup = |e: ErrorStack| format!("cannot set up TLS: {e}");
    let mut b = SslContextBuilder::new(SslMethod::tls_client()).map_err(setup)?;
    // The options and modes of the `openssl` crate's `SslConnector`.
    let options = (SslOptions::ALL
        | SslOptions::NO_COMPRESSION
        | SslOptions::NO_SSLV2
        | SslOptions::NO_SSLV3
        | SslOptions::SINGLE_DH_USE
        | SslOptions::SINGLE_ECDH_USE)
        & !SslOptions::DONT_INSERT_EMPTY_FRAGMENTS;
    b.set_options(options);
    b.set_mode(
        SslMode::AUTO_RETRY
            | SslMode::ACCEPT_MOVING_WRITE_BUFFER
            | SslMode::ENABLE_PARTIAL_WRITE
            | SslMode::RELEASE_BUFFERS,
    );
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(setup)?;
    b.set_cipher_list(CIPHERS).map_err(setup)?;
    b.set_verify(SslVerifyMode::PEER);
    system_roots(&mut b).map_err(setup)?;
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
        let certs = pem_certificates(&pem);
        if certs.is_empty() {
            return Err(format!(
                "ca_file {} holds no PEM certificate",
                path.display()
            ));
        }
        for block in certs {
            X509::from_pem(&block)
                .and_then(|cert| b.cert_store_mut().add_cert(cert))
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    }
    Ok(b.build())
}

/// One connection's TLS state: SNI for a host name, and the certificate
/// must name the host (or IP address), with no partial wildcards such as
/// `w*.example.com` (what `SslConnector::configure` does).
fn session(context: &SslContext, host: &str) -> Result<Ssl, ErrorStack> {
    let mut ssl = Ssl::new(context)?;
    let ip = host.parse::<IpAddr>().ok();
    if ip.is_none() {
        ssl.set_hostname(host)?;
    }
    let param = ssl.param_mut();
    param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
    match ip {
        Some(ip) => param.set_ip(ip)?,
        None => param.set_host(host)?,
    }
    Ok(ssl)
}

/// Adds the system's trust anchors, where OpenSSL and native-tls look for
/// them: `SSL_CERT_DIR` or OpenSSL's own directory, the usual distribution
/// directories, `SSL_CERT_FILE` or the bundle in OpenSSL's directory.
///
/// A directory of hashed names (`5ad8a5d6.0`, as `update-ca-certificates`
/// and `c_rehash` keep them) is looked up lazily, by the hash of the issuer
/// being sought. The system bundle is parsed (in full, as before) only
/// where no such directory exists, and a bundle of the operator's own choice
/// (`SSL_CERT_FILE` naming a file outside those directories) always is.
/// Either way the anchors are the system's: Debian and its derivatives
/// build the bundle and the directory from the same certificates, and
/// Fedora's directory has no hashed names, so its bundle is read. A
/// certificate appended to the system bundle by hand and never rehashed is
/// not trusted where a hashed directory exists: a refusal, never a weaker
/// check.
fn system_roots(b: &mut SslContextBuilder) -> Result<(), ErrorStack> {
    let probe = openssl_probe::probe();
    let own = openssl_dir();
    let mut dirs: Vec<PathBuf> = match std::env::var_os("SSL_CERT_DIR") {
        Some(list) => std::env::split_paths(&list).collect(),
        None => own.iter().map(|d| d.join("certs")).collect(),
    };
    dirs.extend(probe.cert_dir);
    let mut hashed: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let real = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if !hashed.contains(&real) && is_hashed(&real) {
            b.load_verify_locations(None, Some(&real))?;
            hashed.push(real);
        }
    }
    let system_bundle = own
        .map(|d| d.join("cert.pem"))
        .filter(|p| p.is_file())
        .or(probe.cert_file);
    let bundle = match std::env::var_os("SSL_CERT_FILE").map(PathBuf::from) {
        Some(file) if file.is_file() => Some(file),
        _ => system_bundle,
    };
    if let Some(file) = bundle {
        let real = file.canonicalize().unwrap_or(file);
        let covered = real.parent().is_some_and(|d| hashed.iter().any(|h| h == d));
        if !covered {
            b.load_verify_locations(Some(&real), None)?;
        }
    }
    Ok(())
}

/// OpenSSL's directory (`OPENSSLDIR`), as the library reports it:
/// `OPENSSLDIR: "/usr/lib/ssl"`.
fn openssl_dir() -> Option<PathBuf> {
    let text = openssl::version::dir();
    let quoted = text.split_once('"')?.1.rsplit_once('"')?.0;
    (!quoted.is_empty()).then(|| PathBuf::from(quoted))
}

/// True when `dir` holds at least one certificate under a hashed name
/// (eight hex digits, a dot, a number), which OpenSSL's lookup needs.
fn is_hashed(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries
        .flatten()
        .any(|e| hashed_name(&e.file_name().to_string_lossy()))
}

fn hashed_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((hash, n)) => {
            hash.len() == 8
                && hash.bytes().all(|c| c.is_ascii_hexdigit())
                && !n.is_empty()
                && n.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Splits a PEM bundle into its certificates: `Certificate::from_pem` reads
/// only the first, and a CA file often holds a chain.
fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(b) = find(rest, BEGIN) {
        let Some(e) = find(&rest[b..], END) else {
            break;
        };
        let end = b + e + END.len();
        out.push(rest[b..end].to_vec());
        rest = &rest[end..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Turns OpenSSL's error text into something an operator can act on.
fn explain_tls(raw: &str, has_ca: bool) -> String {
    if raw.contains("certificate verify failed") {
        let detail = raw
            .rsplit_once('(')
            .map(|(_, d)| d.trim_end_matches(')').to_string())
            .unwrap_or_else(|| raw.to_string());
        let hint = if has_ca {
            "check that ca_file holds the CA that signed the server certificate"
        } else {
            "set ca_file to trust a private CA"
        };
        format!("certificate not trusted ({detail}); {hint}")
    } else {
        raw.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundle_splits_into_certificates() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let certs = pem_certificates(pem);
        assert_eq!(certs.len(), 2);
        assert!(certs[1].windows(3).any(|w| w == b"BBB"));
    }

    #[test]
    fn verify_failure_names_reason_and_hint() {
        let raw = "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889: (self-signed certificate)";
        let text = explain_tls(raw, false);
        assert!(text.contains("self-signed certificate"), "{text}");
        assert!(text.contains("ca_file"), "{text}");
    }

    #[test]
    fn only_hashed_names_count_as_a_certificate_directory() {
        assert!(hashed_name("5ad8a5d6.0"));
        assert!(hashed_name("002C0B4F.12"));
        for name in [
            "ca-certificates.crt",
            "5ad8a5d6",
            "5ad8a5d6.pem",
            "5ad8a5d.0",
            "x.0",
        ] {
            assert!(!hashed_name(name), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bundle.crt"), "").unwrap();
        assert!(!is_hashed(dir.path()));
        std::fs::write(dir.path().join("5ad8a5d6.0"), "").unwrap();
        assert!(is_hashed(dir.path()));
    }

    #[test]
    fn openssl_directory_is_known() {
        assert!(openssl_dir().is_some(), "{}", openssl::version::dir());
    }

    #[test]
    fn context_with_system_roots_and_ca_file_builds() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here").unwrap();
        let e = context(Some(&empty)).unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        assert!(context(None).is_ok());
    }

    #[test]
    fn system_roots_are_found_by_lazy_lookup() {
        // Any anchor of the system's hashed directory must verify against
        // a context that parsed no bundle.
        let Some(anchor) = ["/etc/ssl/certs", "/etc/pki/tls/certs"]
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .flatten()
            .find(|e| hashed_name(&e.file_name().to_string_lossy()))
        else {
            eprintln!("SKIPPED: no hashed certificate directory here");
            return;
        };
        let cert = X509::from_pem(&std::fs::read(anchor.path()).unwrap()).unwrap();
        let context = context(None).unwrap();
        let chain = openssl::stack::Stack::new().unwrap();
        let mut check = openssl::x509::X509StoreContext::new().unwrap();
        let verified = check
            .init(context.cert_store(), &cert, &chain, |c| c.verify_cert())
            .unwrap();
        assert!(verified, "{}: {}", anchor.path().display(), check.error());
    }

    #[test]
    fn timeout_io_error_is_temporary() {
        let t = Target {
            protocol: "POP3",
            host: "h".into(),
            port: 1,
            timeout: Duration::from_secs(3),
        };
        let e = t.io_error(
            "waiting for RETR",
            &io::Error::from(io::ErrorKind::WouldBlock),
        );
        assert!(matches!(e, Error::Temporary { .. }));
        assert_eq!(
            e.to_string(),
            "POP3 server h:1: timed out after 3s waiting for RETR"
        );
    }
}

//! TCP and TLS: the one place where sockets are opened and certificates are
//! checked, shared by POP3 and IMAP.
//!
//! Every socket gets the site's timeout for connect, read and write, so a
//! server that accepts and then says nothing ends the run with a temporary
//! failure (exit 75) instead of hanging cron forever.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use native_tls::{Certificate, HandshakeError, TlsConnector, TlsStream};

use super::Error;
use crate::config::Mailbox as Settings;

/// A connection, encrypted or not; POP3 and IMAP speak over either.
#[derive(Debug)]
pub enum Stream {
    /// No TLS (yet): `tls = "none"`, or before STLS / STARTTLS.
    Plain(TcpStream),
    /// TLS established (implicit or upgraded).
    Tls(Box<TlsStream<TcpStream>>),
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
    ) -> Result<TlsStream<TcpStream>, Error> {
        let connector = connector(ca_file).map_err(|reason| Error::Config {
            server: self.server(),
            reason,
        })?;
        match connector.connect(&self.host, tcp) {
            Ok(s) => Ok(s),
            Err(HandshakeError::Failure(e)) => Err(Error::Tls {
                server: self.server(),
                reason: explain_tls(&e.to_string(), ca_file.is_some()),
            }),
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

/// A verifying connector: system roots, plus every certificate of `ca_file`.
fn connector(ca_file: Option<&Path>) -> Result<TlsConnector, String> {
    let mut builder = TlsConnector::builder();
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
            let cert = Certificate::from_pem(&block)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up TLS: {e}"))
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

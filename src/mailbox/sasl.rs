//! Authentication shared by POP3 and IMAP: which method to use (SPEC
//! section 2, `auth = "auto"`), and pure functions from credentials (and the
//! server's challenge) to the bytes to send.

use hmac::{KeyInit, Mac, SimpleHmac};
use md5::{Digest, Md5};

use crate::config::Auth;

/// A concrete way to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// POP3 USER/PASS or IMAP LOGIN: the password in clear.
    User,
    /// POP3 APOP: an MD5 digest of the greeting's timestamp and the password.
    Apop,
    /// SASL PLAIN: the password in clear.
    Plain,
    /// SASL LOGIN: the password in clear.
    Login,
    /// SASL CRAM-MD5: a keyed digest of the server's challenge.
    CramMd5,
    /// SASL XOAUTH2: a bearer token, as good as a password to whoever sees it.
    XOAuth2,
}

impl Method {
    /// True when the secret itself crosses the wire.
    pub fn sends_secret(self) -> bool {
        !matches!(self, Method::Apop | Method::CramMd5)
    }

    /// The name in capabilities and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Method::User => "USER",
            Method::Apop => "APOP",
            Method::Plain => "PLAIN",
            Method::Login => "LOGIN",
            Method::CramMd5 => "CRAM-MD5",
            Method::XOAuth2 => "XOAUTH2",
        }
    }
}

/// What the server offers.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    /// The server listed its SASL mechanisms (POP3 servers without CAPA do
    /// not): when false, an explicitly configured mechanism is just tried.
    pub listed: bool,
    /// SASL mechanisms, uppercase.
    pub sasl: Vec<String>,
    /// POP3 APOP: the greeting has a timestamp.
    pub apop: bool,
    /// POP3 USER/PASS or IMAP LOGIN is allowed.
    pub user: bool,
}

impl Offer {
    fn has(&self, mech: &str) -> bool {
        self.sasl.iter().any(|m| m.eq_ignore_ascii_case(mech))
    }
}

/// Picks the login method. An `Err` is a configuration problem (exit 78):
/// the settings and what the server offers cannot work together safely.
pub fn choose(
    requested: Auth,
    offer: &Offer,
    token: bool,
    encrypted: bool,
    allow_plaintext: bool,
) -> Result<Method, String> {
    let clear_ok = encrypted || allow_plaintext;
    let method = match requested {
        _ if token => Method::XOAuth2,
        Auth::Auto if offer.has("CRAM-MD5") => Method::CramMd5,
        Auth::Auto if offer.apop => Method::Apop,
        Auth::Auto if !clear_ok => {
            return Err(
                "the server offers no login that keeps the password off the wire \
                 (CRAM-MD5 or APOP) and the connection is not encrypted; use tls = \"implicit\" \
                 or \"starttls\", or set allow_plaintext_auth = true"
                    .into(),
            );
        }
        Auth::Auto if offer.has("PLAIN") => Method::Plain,
        Auth::Auto if offer.user || !offer.listed => Method::User,
        Auth::Auto if offer.has("LOGIN") => Method::Login,
        Auth::Auto => {
            return Err(format!(
                "the server offers no login method bouncectl supports (offers: {})",
                offer.sasl.join(" ")
            ));
        }
        Auth::User => Method::User,
        Auth::Apop => Method::Apop,
        Auth::Plain => Method::Plain,
        Auth::Login => Method::Login,
        Auth::CramMd5 => Method::CramMd5,
        Auth::XOAuth2 => {
            return Err("auth = \"xoauth2\" needs oauth2_token_command".into());
        }
    };
    if method.sends_secret() && !clear_ok {
        return Err(format!(
            "auth {} would send the {} in clear over an unencrypted connection; \
             use TLS, or set allow_plaintext_auth = true",
            method.name(),
            if token { "token" } else { "password" }
        ));
    }
    let offered = match method {
        Method::Apop => offer.apop,
        Method::User => offer.user || !offer.listed,
        m => !offer.listed || offer.has(m.name()),
    };
    if !offered {
        let what = match method {
            Method::Apop => "APOP (its greeting has no timestamp)".to_string(),
            Method::User => "USER/PASS or LOGIN".to_string(),
            m => format!("AUTH {} (offers: {})", m.name(), offer.sasl.join(" ")),
        };
        return Err(format!("the server does not offer {what}"));
    }
    Ok(method)
}

/// RFC 4616 PLAIN: `\0user\0password` (no authorization identity).
pub fn plain(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

/// RFC 2195 CRAM-MD5: `user HEX(HMAC-MD5(password, challenge))`.
pub fn cram_md5(user: &str, password: &str, challenge: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <SimpleHmac<Md5> as KeyInit>::new_from_slice(password.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(challenge);
    let digest = mac.finalize().into_bytes();
    format!("{user} {}", hex(&digest)).into_bytes()
}

/// RFC 1939 APOP digest: `HEX(MD5(timestamp password))`, where the timestamp
/// includes its angle brackets.
pub fn apop(timestamp: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(password.as_bytes());
    hex(&h.finalize())
}

/// Google/Microsoft XOAUTH2 initial response.
pub fn xoauth2(user: &str, token: &str) -> Vec<u8> {
    format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cram_md5_matches_rfc2195_example() {
        let r = cram_md5(
            "tim",
            "tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>",
        );
        assert_eq!(r, b"tim b913a602c7eda7a495b4e6e7334d3890");
    }

    #[test]
    fn apop_matches_rfc1939_example() {
        let d = apop("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf");
        assert_eq!(d, "c4c9334bac560ecc979e58001b3e22fb");
    }

    fn offer(sasl: &[&str], apop: bool) -> Offer {
        Offer {
            listed: true,
            sasl: sasl.iter().map(|s| s.to_string()).collect(),
            apop,
            user: true,
        }
    }

    #[test]
    fn auto_prefers_cram_md5_then_apop() {
        let o = offer(&["PLAIN", "CRAM-MD5"], true);
        assert_eq!(
            choose(Auth::Auto, &o, false, true, false),
            Ok(Method::CramMd5)
        );
        let o = offer(&["PLAIN"], true);
        assert_eq!(
            choose(Auth::Auto, &o, false, false, false),
            Ok(Method::Apop)
        );
    }

    #[test]
    fn auto_uses_clear_methods_only_inside_tls() {
        let o = offer(&["PLAIN", "LOGIN"], false);
        assert_eq!(
            choose(Auth::Auto, &o, false, true, false),
            Ok(Method::Plain)
        );
        let e = choose(Auth::Auto, &o, false, false, false).unwrap_err();
        assert!(e.contains("allow_plaintext_auth"), "{e}");
        assert_eq!(
            choose(Auth::Auto, &o, false, false, true),
            Ok(Method::Plain)
        );
    }

    #[test]
    fn explicit_plaintext_over_unencrypted_is_refused() {
        let o = offer(&["PLAIN"], false);
        for a in [Auth::User, Auth::Plain, Auth::Login] {
            assert!(choose(a, &o, false, false, false).is_err());
        }
        assert_eq!(
            choose(
                Auth::CramMd5,
                &offer(&["CRAM-MD5"], false),
                false,
                false,
                false
            ),
            Ok(Method::CramMd5)
        );
    }

    #[test]
    fn unoffered_mechanism_is_named() {
        let e = choose(Auth::CramMd5, &offer(&["PLAIN"], false), false, true, false).unwrap_err();
        assert!(e.contains("AUTH CRAM-MD5 (offers: PLAIN)"), "{e}");
        let e = choose(Auth::Apop, &offer(&[], false), false, true, false).unwrap_err();
        assert!(e.contains("APOP"), "{e}");
    }

    #[test]
    fn token_means_xoauth2_and_needs_tls() {
        let o = offer(&["XOAUTH2"], false);
        assert_eq!(
            choose(Auth::Auto, &o, true, true, false),
            Ok(Method::XOAuth2)
        );
        assert!(choose(Auth::XOAuth2, &o, true, false, false).is_err());
    }

    #[test]
    fn plain_has_empty_authzid() {
        assert_eq!(plain("u", "p"), b"\0u\0p");
    }
}

//! The password or OAuth2 token of a site, read at connect time from where
//! the configuration says (SPEC section 2: never the command line).
//!
//! The value never reaches a log line, an error message or `Debug` output:
//! errors name the source (the variable, the file, the command), not what it
//! held.

use std::io::Read;
use std::process::{Command, Stdio};

use super::Error;
use crate::config::Secret;

/// A secret value. `Debug` prints `<redacted>`; read it with [`expose`].
///
/// [`expose`]: Sensitive::expose
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a value (tests and callers that already hold one).
    pub fn new(value: impl Into<String>) -> Sensitive {
        Sensitive(value.into())
    }

    /// The value itself, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a site authenticates with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password (every method but XOAUTH2).
    Password(Sensitive),
    /// An OAuth2 bearer token (XOAUTH2 only).
    Token(Sensitive),
}

/// Reads the site's secret. `server` names the server in errors.
pub fn resolve(secret: Option<&Secret>, server: &str) -> Result<Credential, Error> {
    read(secret).map_err(|reason| Error::Config {
        server: server.to_string(),
        reason,
    })
}

fn read(secret: Option<&Secret>) -> Result<Credential, String> {
    match secret {
        None => {
            Err("no password configured (password_env, password_file or password_command)".into())
        }
        Some(Secret::Inline(v)) => nonempty(v.clone(), "password").map(Credential::Password),
        Some(Secret::Env(name)) => match std::env::var(name) {
            Ok(v) => nonempty(v, &format!("password_env {name}")).map(Credential::Password),
            Err(std::env::VarError::NotPresent) => Err(format!(
                "password_env {name}: the environment variable is not set"
            )),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("password_env {name}: the value is not valid UTF-8"))
            }
        },
        Some(Secret::File(path)) => {
            let source = format!("password_file {}", path.display());
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {source}: {e}"))?;
            nonempty(first_line(&text), &source).map(Credential::Password)
        }
        Some(Secret::Command(cmd)) => {
            nonempty(run(cmd, "password_command")?, "password_command").map(Credential::Password)
        }
        Some(Secret::OAuth2Command(cmd)) => {
            nonempty(run(cmd, "oauth2_token_command")?, "oauth2_token_command")
                .map(Credential::Token)
        }
    }
}

/// The first line without its line ending; a password file written with
/// `echo` ends in a newline that is not part of the password.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

fn nonempty(value: String, source: &str) -> Result<Sensitive, String> {
    if value.is_empty() {
        return Err(format!("{source} is empty"));
    }
    Ok(Sensitive(value))
}

/// Runs `sh -c CMD` and returns its first stdout line. Its stderr goes to
/// ours so that a password manager can explain its own failure.
fn run(cmd: &str, key: &str) -> Result<String, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {key}: {e}"))?;
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_end(&mut out)
            .map_err(|e| format!("cannot read the output of {key}: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("cannot run {key}: {e}"))?;
    if !status.success() {
        return Err(format!("{key} failed ({status})"));
    }
    let text = String::from_utf8(out).map_err(|_| format!("{key} printed invalid UTF-8"))?;
    Ok(first_line(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secret_takes_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\r\nsecond line\n").unwrap();
        let c = resolve(Some(&Secret::File(p)), "S").unwrap();
        assert_eq!(c, Credential::Password(Sensitive::new("s3cret")));
    }

    #[test]
    fn command_secret_takes_first_stdout_line() {
        let c = resolve(Some(&Secret::Command("printf 'tok\\nx\\n'".into())), "S").unwrap();
        assert_eq!(c, Credential::Password(Sensitive::new("tok")));
        let t = resolve(Some(&Secret::OAuth2Command("echo abc".into())), "S").unwrap();
        assert_eq!(t, Credential::Token(Sensitive::new("abc")));
    }

    #[test]
    fn failing_command_names_the_key_not_the_output() {
        let e = resolve(
            Some(&Secret::Command("echo hunter2; exit 3".into())),
            "POP3 server h:1",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("password_command failed"), "{text}");
        assert!(text.starts_with("POP3 server h:1: "), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn missing_env_names_the_variable() {
        let e = resolve(
            Some(&Secret::Env("BOUNCECTL_TEST_SURELY_UNSET_VAR".into())),
            "S",
        )
        .unwrap_err();
        assert!(e.to_string().contains(
            "password_env BOUNCECTL_TEST_SURELY_UNSET_VAR: the environment variable is not set"
        ));
        assert!(matches!(e, Error::Config { .. }));
    }

    #[test]
    fn empty_password_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "\n").unwrap();
        let e = resolve(Some(&Secret::File(p)), "S").unwrap_err();
        assert!(e.to_string().ends_with("is empty"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_value() {
        let c = Credential::Password(Sensitive::new("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

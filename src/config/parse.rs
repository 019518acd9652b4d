//! Reading the TOML file into [`Config`]: every key checked by hand so that a
//! mistake is reported with its full key path (`site[2].mailbox.port`) and
//! what is wrong with it, and unknown keys (typos) are refused.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::{After, Auth, Config, Error, Mailbox, Protocol, Secret, Site, Tls};
use crate::message::Verp;

/// Default `bounce_limit` of a site.
pub const DEFAULT_BOUNCE_LIMIT: u32 = 5;
/// Default connect/read/write timeout of a mailbox, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// One configuration key: its name, default and meaning. The parser accepts
/// exactly these names and the man page lists them from the same tables, so
/// the documentation cannot drift from the code.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

const fn key(name: &'static str, default: &'static str, help: &'static str) -> Key {
    Key {
        name,
        default,
        help,
    }
}

/// Top-level keys.
pub const TOP_KEYS: &[Key] = &[
    key(
        "database",
        "$XDG_DATA_HOME/bouncectl/bounces.db",
        "SQLite database file (--db and BOUNCECTL_DB override it).",
    ),
    key(
        "block_globally",
        "false",
        "A bounce adds to the address's counter in every site; each site applies its own limit.",
    ),
    key(
        "site",
        "one site named \"default\"",
        "Array of [[site]] tables.",
    ),
];

/// Keys of a `[[site]]` table.
pub const SITE_KEYS: &[Key] = &[
    key(
        "name",
        "(required)",
        "Unique site name, used with --site and in the database.",
    ),
    key(
        "bounce_limit",
        "5",
        "Block an address when its counter reaches this; 0 = never block automatically.",
    ),
    key(
        "block_on_complaint",
        "true",
        "A complaint (ARF feedback report) blocks the address at once.",
    ),
    key(
        "delete_unrecognized",
        "false",
        "Also delete mail that is not a bounce (by default it stays on the server).",
    ),
    key(
        "verp",
        "(none)",
        "VERP pattern of the envelope recipient, e.g. bounces+{local}={domain}@example.com.",
    ),
    key(
        "mailbox",
        "(none)",
        "[site.mailbox] table: where this site's bounces arrive.",
    ),
];

/// Keys of a `[site.mailbox]` table.
pub const MAILBOX_KEYS: &[Key] = &[
    key("protocol", "(required)", "pop3 or imap."),
    key(
        "host",
        "(required)",
        "Server host name; certificates are checked against it.",
    ),
    key(
        "port",
        "995/110 (pop3), 993/143 (imap)",
        "Server port; the default follows protocol and tls.",
    ),
    key(
        "tls",
        "implicit",
        "implicit (TLS from the first byte), starttls (STLS/STARTTLS, required), or none.",
    ),
    key(
        "auth",
        "auto",
        "auto, user, apop, plain, login, cram-md5 or xoauth2. auto picks CRAM-MD5, then APOP, else a plaintext method inside TLS.",
    ),
    key("username", "(required)", "Login name."),
    key(
        "password",
        "(none)",
        "The password itself; discouraged: draws a warning when the file is readable by others.",
    ),
    key(
        "password_env",
        "(none)",
        "Name of an environment variable holding the password.",
    ),
    key(
        "password_file",
        "(none)",
        "File whose first line is the password.",
    ),
    key(
        "password_command",
        "(none)",
        "Shell command whose first output line is the password.",
    ),
    key(
        "oauth2_token_command",
        "(none)",
        "Shell command printing an OAuth2 access token (auth = xoauth2).",
    ),
    key(
        "ca_file",
        "(system roots)",
        "Extra trusted CA certificate (PEM).",
    ),
    key("folder", "INBOX", "IMAP folder to read."),
    key(
        "after",
        "delete",
        "What to do with a recorded message: delete, keep, or move:FOLDER (imap only).",
    ),
    key(
        "allow_plaintext_auth",
        "false",
        "Allow sending a password over a connection without TLS.",
    ),
    key(
        "timeout",
        "60",
        "Connect, read and write timeout in seconds.",
    ),
];

/// One table being read: knows its key path for error messages.
struct Reader<'a> {
    file: &'a Path,
    prefix: String,
    table: &'a Table,
}

impl<'a> Reader<'a> {
    fn err(&self, key: &str, problem: impl Into<String>) -> Error {
        let key = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        };
        Error::Invalid {
            path: self.file.to_path_buf(),
            key,
            problem: problem.into(),
        }
    }

    fn only(&self, allowed: &[Key]) -> Result<(), Error> {
        match self
            .table
            .keys()
            .find(|k| !allowed.iter().any(|a| a.name == k.as_str()))
        {
            Some(k) => {
                let names: Vec<&str> = allowed.iter().map(|a| a.name).collect();
                Err(self.err(
                    k,
                    format!("unknown key (expected one of: {})", names.join(", ")),
                ))
            }
            None => Ok(()),
        }
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>, Error> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(self.err(key, format!("expected a string, found {}", v.type_str()))),
        }
    }

    fn nonempty(&self, key: &str) -> Result<Option<&'a str>, Error> {
        match self.str(key)? {
            Some(s) if s.trim().is_empty() => Err(self.err(key, "must not be empty")),
            other => Ok(other),
        }
    }

    fn required(&self, key: &str) -> Result<&'a str, Error> {
        self.nonempty(key)?
            .ok_or_else(|| self.err(key, "is required"))
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, Error> {
        match self.table.get(key) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.err(
                key,
                format!("expected true or false, found {}", v.type_str()),
            )),
        }
    }

    fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, Error> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) if (min..=max).contains(i) => Ok(Some(*i)),
            Some(Value::Integer(i)) => {
                Err(self.err(key, format!("{i} is out of range ({min} to {max})")))
            }
            Some(v) => Err(self.err(
                key,
                format!("expected a whole number, found {}", v.type_str()),
            )),
        }
    }

    fn path(&self, key: &str) -> Result<Option<PathBuf>, Error> {
        Ok(self.nonempty(key)?.map(|s| relative_to(self.file, s)))
    }

    fn choice<T: Copy>(&self, key: &str, options: &[(&str, T)], default: T) -> Result<T, Error> {
        let Some(s) = self.str(key)? else {
            return Ok(default);
        };
        options
            .iter()
            .find(|(name, _)| *name == s.to_ascii_lowercase())
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                self.err(key, format!("'{s}' is not one of: {}", names.join(", ")))
            })
    }
}

/// A path from the file, relative to the file's directory; `~/` is $HOME.
fn relative_to(file: &Path, s: &str) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let p = PathBuf::from(s);
    if p.is_absolute() {
        p
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

pub(super) fn parse(file: &Path, text: &str) -> Result<Config, Error> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| Error::Invalid {
        path: file.to_path_buf(),
        key: line_of(text, e.span()).map_or_else(|| "(syntax)".into(), |l| format!("line {l}")),
        problem: e.message().trim().to_string(),
    })?;
    let top = Reader {
        file,
        prefix: String::new(),
        table: &table,
    };
    top.only(TOP_KEYS)?;
    let mut config = Config {
        path: Some(file.to_path_buf()),
        database: top.path("database")?,
        block_globally: top.bool("block_globally", false)?,
        sites: Vec::new(),
        warnings: Vec::new(),
    };
    match table.get("site") {
        None => config.sites = Config::builtin().sites,
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Value::Table(t) = item else {
                    return Err(top.err(&format!("site[{i}]"), "expected a [[site]] table"));
                };
                let site = parse_site(Reader {
                    file,
                    prefix: format!("site[{i}]"),
                    table: t,
                })?;
                if config.sites.iter().any(|s| s.name == site.name) {
                    return Err(top.err(
                        &format!("site[{i}].name"),
                        format!("site '{}' is defined twice", site.name),
                    ));
                }
                config.sites.push(site);
            }
            if config.sites.is_empty() {
                return Err(top.err("site", "needs at least one [[site]]"));
            }
        }
        Some(v) => {
            return Err(top.err(
                "site",
                format!("expected [[site]] tables, found {}", v.type_str()),
            ));
        }
    }
    config.warnings = permission_warnings(file, &config);
    Ok(config)
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> Option<usize> {
    let start = span?.start.min(text.len());
    Some(
        text.as_bytes()[..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
    )
}

fn parse_site(r: Reader<'_>) -> Result<Site, Error> {
    r.only(SITE_KEYS)?;
    let name = r.required("name")?.trim().to_string();
    let verp = match r.nonempty("verp")? {
        Some(p) => Some(Verp::parse(p).map_err(|e| r.err("verp", e))?),
        None => None,
    };
    let mailbox = match r.table.get("mailbox") {
        None => None,
        Some(Value::Table(t)) => Some(parse_mailbox(Reader {
            file: r.file,
            prefix: format!("{}.mailbox", r.prefix),
            table: t,
        })?),
        Some(v) => {
            return Err(r.err(
                "mailbox",
                format!("expected a [site.mailbox] table, found {}", v.type_str()),
            ));
        }
    };
    Ok(Site {
        name,
        bounce_limit: r
            .int("bounce_limit", 0, i64::from(u32::MAX))?
            .map_or(DEFAULT_BOUNCE_LIMIT, |n| n as u32),
        block_on_complaint: r.bool("block_on_complaint", true)?,
        delete_unrecognized: r.bool("delete_unrecognized", false)?,
        verp,
        mailbox,
    })
}

fn parse_mailbox(r: Reader<'_>) -> Result<Mailbox, Error> {
    r.only(MAILBOX_KEYS)?;
    let protocol = match r.str("protocol")? {
        None => return Err(r.err("protocol", "is required (pop3 or imap)")),
        Some(_) => r.choice(
            "protocol",
            &[("pop3", Protocol::Pop3), ("imap", Protocol::Imap)],
            Protocol::Pop3,
        )?,
    };
    let tls = r.choice(
        "tls",
        &[
            ("implicit", Tls::Implicit),
            ("starttls", Tls::StartTls),
            ("none", Tls::None),
        ],
        Tls::Implicit,
    )?;
    let auth = r.choice(
        "auth",
        &[
            ("auto", Auth::Auto),
            ("user", Auth::User),
            ("apop", Auth::Apop),
            ("plain", Auth::Plain),
            ("login", Auth::Login),
            ("cram-md5", Auth::CramMd5),
            ("xoauth2", Auth::XOAuth2),
        ],
        Auth::Auto,
    )?;
    if auth == Auth::Apop && protocol == Protocol::Imap {
        return Err(r.err(
            "auth",
            "apop is a POP3 method; use cram-md5, plain, login or user with imap",
        ));
    }
    let default_port = match (protocol, tls) {
        (Protocol::Pop3, Tls::Implicit) => 995,
        (Protocol::Pop3, _) => 110,
        (Protocol::Imap, Tls::Implicit) => 993,
        (Protocol::Imap, _) => 143,
    };
    let port = r.int("port", 1, 65535)?.map_or(default_port, |p| p as u16);
    let secret = parse_secret(&r, auth)?;
    let folder = r.nonempty("folder")?;
    if folder.is_some() && protocol == Protocol::Pop3 {
        return Err(r.err(
            "folder",
            "applies to imap only (a POP3 mailbox has no folders)",
        ));
    }
    let after = match r.nonempty("after")? {
        None => After::Delete,
        Some("delete") => After::Delete,
        Some("keep") => After::Keep,
        Some(s) => match s.strip_prefix("move:") {
            Some(f) if !f.trim().is_empty() && protocol == Protocol::Imap => {
                After::Move(f.trim().to_string())
            }
            Some(f) if !f.trim().is_empty() => {
                return Err(r.err("after", "move:FOLDER needs protocol = \"imap\""));
            }
            _ => {
                return Err(r.err(
                    "after",
                    format!("'{s}' is not one of: delete, keep, move:FOLDER"),
                ));
            }
        },
    };
    let ca_file = r.path("ca_file")?;
    let allow_plaintext_auth = r.bool("allow_plaintext_auth", false)?;
    if tls == Tls::None
        && !allow_plaintext_auth
        && matches!(auth, Auth::User | Auth::Plain | Auth::Login)
    {
        return Err(r.err(
            "auth",
            "would send the password in clear over tls = \"none\"; use TLS, or set allow_plaintext_auth = true",
        ));
    }
    Ok(Mailbox {
        protocol,
        host: r.required("host")?.trim().to_string(),
        port,
        tls,
        auth,
        username: r.required("username")?.to_string(),
        secret,
        ca_file,
        folder: folder.unwrap_or("INBOX").to_string(),
        after,
        allow_plaintext_auth,
        timeout_secs: r
            .int("timeout", 1, 86_400)?
            .map_or(DEFAULT_TIMEOUT_SECS, |t| t as u64),
    })
}

fn parse_secret(r: &Reader<'_>, auth: Auth) -> Result<Option<Secret>, Error> {
    let mut found: Vec<(&str, Secret)> = Vec::new();
    if let Some(v) = r.str("password")? {
        found.push(("password", Secret::Inline(v.to_string())));
    }
    if let Some(v) = r.nonempty("password_env")? {
        found.push(("password_env", Secret::Env(v.to_string())));
    }
    if let Some(v) = r.path("password_file")? {
        found.push(("password_file", Secret::File(v)));
    }
    if let Some(v) = r.nonempty("password_command")? {
        found.push(("password_command", Secret::Command(v.to_string())));
    }
    if let Some(v) = r.nonempty("oauth2_token_command")? {
        found.push(("oauth2_token_command", Secret::OAuth2Command(v.to_string())));
    }
    if found.len() > 1 {
        let keys: Vec<&str> = found.iter().map(|(k, _)| *k).collect();
        return Err(r.err(found[1].0, format!("give only one of {}", keys.join(", "))));
    }
    let secret = found.pop();
    match (&secret, auth) {
        (None, Auth::XOAuth2) => Err(r.err(
            "oauth2_token_command",
            "is required with auth = \"xoauth2\"",
        )),
        (None, _) => Err(r.err(
            "password_env",
            "a password source is required (password_env, password_file or password_command)",
        )),
        (Some((_, Secret::OAuth2Command(_))), a) if a != Auth::XOAuth2 && a != Auth::Auto => {
            Err(r.err("oauth2_token_command", "needs auth = \"xoauth2\""))
        }
        (Some((k, s)), Auth::XOAuth2) if !matches!(s, Secret::OAuth2Command(_)) => Err(r.err(
            k,
            "auth = \"xoauth2\" takes its token from oauth2_token_command",
        )),
        (Some((_, s)), _) => Ok(Some(s.clone())),
    }
}

/// A password written in a file that others can read is worth a warning
/// (fetchmail refuses outright; we warn, as the SPEC asks).
fn permission_warnings(file: &Path, config: &Config) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let loose = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
            .filter(|m| m & 0o077 != 0)
    };
    let inline = config.sites.iter().any(|s| {
        matches!(
            s.mailbox.as_ref().and_then(|m| m.secret.as_ref()),
            Some(Secret::Inline(_))
        )
    });
    if inline && let Some(mode) = loose(file) {
        out.push(format!(
            "config {} holds a password and is readable by others (mode {mode:04o}); run chmod 600 on it",
            file.display()
        ));
    }
    for site in &config.sites {
        if let Some(Secret::File(p)) = site.mailbox.as_ref().and_then(|m| m.secret.as_ref())
            && let Some(mode) = loose(p)
        {
            out.push(format!(
                "password file {} of site {} is readable by others (mode {mode:04o}); run chmod 600 on it",
                p.display(),
                site.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        parse(Path::new("/etc/bouncectl/config.toml"), text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_err(text: &str) -> String {
        parse(Path::new("/etc/bouncectl/config.toml"), text)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_file_gives_the_default_site() {
        let c = parse_ok("");
        assert_eq!(c.sites.len(), 1);
        assert_eq!(c.sites[0].name, "default");
        assert_eq!(c.sites[0].bounce_limit, DEFAULT_BOUNCE_LIMIT);
        assert!(!c.block_globally);
    }

    #[test]
    fn full_pop3_site_parses_with_defaults() {
        let c = parse_ok(
            r#"
database = "db/bounces.db"
block_globally = true
[[site]]
name = "example.com"
bounce_limit = 3
verp = "bounces+{local}={domain}@example.com"
[site.mailbox]
protocol = "pop3"
host = "mail.example.com"
username = "bounces@example.com"
password_env = "X"
"#,
        );
        assert_eq!(
            c.database.as_deref(),
            Some(Path::new("/etc/bouncectl/db/bounces.db"))
        );
        assert!(c.block_globally);
        let s = &c.sites[0];
        assert_eq!(s.bounce_limit, 3);
        assert!(s.block_on_complaint && !s.delete_unrecognized);
        assert!(s.verp.is_some());
        let m = s.mailbox.as_ref().unwrap();
        assert_eq!(
            (m.protocol, m.port, m.tls, m.auth),
            (Protocol::Pop3, 995, Tls::Implicit, Auth::Auto)
        );
        assert_eq!(m.secret, Some(Secret::Env("X".into())));
        assert_eq!(m.after, After::Delete);
        assert_eq!(m.timeout_secs, DEFAULT_TIMEOUT_SECS);
    }

    #[test]
    fn imap_starttls_move_and_ports() {
        let c = parse_ok(
            r#"
[[site]]
name = "a"
[site.mailbox]
protocol = "imap"
tls = "starttls"
host = "h"
username = "u"
password_file = "/run/pw"
folder = "Bounces"
after = "move:Processed"
"#,
        );
        let m = c.sites[0].mailbox.as_ref().unwrap();
        assert_eq!(m.port, 143);
        assert_eq!(m.folder, "Bounces");
        assert_eq!(m.after, After::Move("Processed".into()));
    }

    #[test]
    fn mistakes_name_the_key_and_the_problem() {
        let cases = [
            ("bogus = 1", "bogus: unknown key"),
            (
                "[[site]]\nname = \"a\"\nbounce_limit = -1",
                "site[0].bounce_limit: -1 is out of range",
            ),
            (
                "[[site]]\nname = \"a\"\nbounce_limit = \"5\"",
                "site[0].bounce_limit: expected a whole number",
            ),
            ("[[site]]\nbounce_limit = 1", "site[0].name: is required"),
            (
                "[[site]]\nname = \"a\"\n[[site]]\nname = \"a\"",
                "site[1].name: site 'a' is defined twice",
            ),
            (
                "[[site]]\nname = \"a\"\nverp = \"bounces@x\"",
                "site[0].verp: must contain {local}",
            ),
            (
                "[[site]]\nname = \"a\"\n[site.mailbox]\nprotocol = \"smtp\"\nhost = \"h\"\nusername = \"u\"\npassword_env = \"P\"",
                "site[0].mailbox.protocol: 'smtp' is not one of",
            ),
            (
                "[[site]]\nname = \"a\"\n[site.mailbox]\nprotocol = \"pop3\"\nhost = \"h\"\nusername = \"u\"",
                "a password source is required",
            ),
            (
                "[[site]]\nname = \"a\"\n[site.mailbox]\nprotocol = \"pop3\"\nhost = \"h\"\nusername = \"u\"\npassword_env = \"P\"\npassword_file = \"f\"",
                "give only one of",
            ),
            (
                "[[site]]\nname = \"a\"\n[site.mailbox]\nprotocol = \"pop3\"\nhost = \"h\"\nusername = \"u\"\npassword_env = \"P\"\nafter = \"move:X\"",
                "move:FOLDER needs protocol = \"imap\"",
            ),
            (
                "[[site]]\nname = \"a\"\n[site.mailbox]\nprotocol = \"pop3\"\ntls = \"none\"\nauth = \"user\"\nhost = \"h\"\nusername = \"u\"\npassword_env = \"P\"",
                "would send the password in clear",
            ),
            ("[[site]\nname = 1", "line 1"),
        ];
        for (text, want) in cases {
            let got = parse_err(text);
            assert!(
                got.starts_with("config /etc/bouncectl/config.toml: "),
                "{got}"
            );
            assert!(
                got.contains(want),
                "for {text:?}: got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = parse(&path, &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.sites.len(), 2);
        assert!(c.sites.iter().all(|s| s.mailbox.is_some()));
    }

    #[test]
    fn inline_password_in_world_readable_file_warns_without_showing_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        let text = "[[site]]\nname = \"a\"\n[site.mailbox]\nprotocol = \"pop3\"\nhost = \"h\"\nusername = \"u\"\npassword = \"hunter2\"\n";
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = parse(&file, text).unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("readable by others (mode 0644)"));
        assert!(!c.warnings[0].contains("hunter2") && !format!("{c:?}").contains("hunter2"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(parse(&file, text).unwrap().warnings.is_empty());
    }
}

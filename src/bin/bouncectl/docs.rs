//! The man page and shell completions, generated from the clap definition
//! (and the configuration key tables) so they cannot drift from the code.
//! `bouncectl generate-docs DIR` writes them; a test compares the committed
//! copies with a fresh generation.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use bouncectl::config::{Key, MAILBOX_KEYS, SITE_KEYS, TOP_KEYS};
use clap::CommandFactory;

use crate::cli::Cli;

/// Writes `man/bouncectl.1` and `completions/{bouncectl.bash,_bouncectl,bouncectl.fish}` under `dir`.
pub fn generate(dir: &Path) -> anyhow::Result<()> {
    let man_dir = dir.join("man");
    let comp_dir = dir.join("completions");
    for d in [&man_dir, &comp_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let path = man_dir.join("bouncectl.1");
    std::fs::write(&path, man_page()?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for (shell, name) in [
        (clap_complete::Shell::Bash, "bouncectl.bash"),
        (clap_complete::Shell::Zsh, "_bouncectl"),
        (clap_complete::Shell::Fish, "bouncectl.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "bouncectl", &mut buf);
        let path = comp_dir.join(name);
        std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The whole man page as roff.
fn man_page() -> anyhow::Result<String> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone())
        .title("BOUNCECTL")
        .section("1")
        .manual("User Commands");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    let mut page = String::from_utf8(out)?;
    page.push_str(".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_subcommand(&mut page, sub);
    }
    page.push_str(&fixed_sections());
    page.push_str(".SH CONFIGURATION\n");
    page.push_str(
        "A TOML file. Every key has a default, so local \\fBcheck\\fR \\fIPATH\\fR works with no file at all. \
         Relative paths are taken relative to the file's directory. Unknown keys are errors.\n",
    );
    render_keys(&mut page, "Top level", TOP_KEYS);
    render_keys(&mut page, "[[site]]", SITE_KEYS);
    render_keys(&mut page, "[site.mailbox]", MAILBOX_KEYS);
    page.push_str(&examples_section());
    page.push_str(
        ".SH \"SEE ALSO\"\n\\fBcrontab\\fR(5), \\fBsystemd.timer\\fR(5), \\fBsqlite3\\fR(1)\n",
    );
    Ok(page)
}

/// Escapes text for roff: backslashes, and a leading dot or quote.
fn esc(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

fn render_subcommand(page: &mut String, sub: &clap::Command) {
    let name = sub.get_name();
    let _ = writeln!(page, ".SS \"bouncectl {name}\"");
    if let Some(about) = sub.get_about() {
        let _ = writeln!(page, "{}", esc(&about.to_string()));
    }
    for arg in sub
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
    {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let takes_value = matches!(
            arg.get_action(),
            clap::ArgAction::Set | clap::ArgAction::Append
        );
        let value = takes_value.then(|| {
            arg.get_value_names()
                .and_then(|v| v.first())
                .map_or_else(|| id.to_uppercase(), |v| v.to_string())
        });
        let head = match (arg.get_long(), arg.get_short(), &value) {
            (Some(l), Some(s), Some(v)) => {
                format!("\\fB\\-{s}\\fR, \\fB\\-\\-{}\\fR \\fI{v}\\fR", esc(l))
            }
            (Some(l), Some(s), None) => format!("\\fB\\-{s}\\fR, \\fB\\-\\-{}\\fR", esc(l)),
            (Some(l), None, Some(v)) => format!("\\fB\\-\\-{}\\fR \\fI{v}\\fR", esc(l)),
            (Some(l), None, None) => format!("\\fB\\-\\-{}\\fR", esc(l)),
            (None, _, Some(v)) => format!("\\fI{v}\\fR..."),
            (None, _, None) => format!("\\fI{id}\\fR"),
        };
        let _ = writeln!(page, ".TP\n{head}");
        let mut help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && !arg.is_positional() && value.is_some() {
            let _ = write!(help, " [default: {}]", defaults.join(", "));
        }
        let _ = writeln!(page, "{}", esc(&help));
    }
}

fn render_keys(page: &mut String, table: &str, keys: &[Key]) {
    let _ = writeln!(page, ".SS \"{table}\"");
    for k in keys {
        let default = match k.default.strip_prefix('(') {
            Some(_) => k.default.to_string(),
            None => format!("(default: {})", k.default),
        };
        let _ = writeln!(
            page,
            ".TP\n\\fB{}\\fR {}\n{}",
            esc(k.name),
            esc(&default),
            esc(k.help)
        );
    }
}

fn fixed_sections() -> String {
    r#".SH "EXIT STATUS"
Exit codes follow \fBsysexits\fR(3), as mail tools do. When several sites fail differently, the worst outcome is reported.
.TP
\fB0\fR
Success.
.TP
\fB64\fR
Usage error on the command line.
.TP
\fB65\fR
A message or input file could not be read.
.TP
\fB69\fR
A mail server could not be reached, or its TLS certificate was refused.
.TP
\fB74\fR
I/O or database error (for example a read\-only or full disk).
.TP
\fB75\fR
Temporary failure: another run holds the database, a server timed out or dropped the connection. Cron will retry; nothing was lost.
.TP
\fB77\fR
The server refused the login.
.TP
\fB78\fR
Configuration error; the message names the file, the key and the problem.
.SH GUARANTEES
A message is deleted from the server only after the transaction that records it has committed. Every processed message's content fingerprint (and POP3 UIDL or IMAP UIDVALIDITY/UID) is committed with its effects, so a message seen again is never counted twice. Mail that is not a bounce stays on the server unless \fBdelete_unrecognized\fR is set. Only one run at a time uses a database.
.SH FILES
.TP
\fI$XDG_CONFIG_HOME/bouncectl/config.toml\fR, else \fI/etc/bouncectl/config.toml\fR
The configuration file (XDG_CONFIG_HOME defaults to \fI~/.config\fR).
.TP
\fI$XDG_DATA_HOME/bouncectl/bounces.db\fR
The default database (XDG_DATA_HOME defaults to \fI~/.local/share\fR); \fIbounces.db.lock\fR beside it holds the one\-run\-at\-a\-time lock.
.SH ENVIRONMENT
.TP
\fBBOUNCECTL_CONFIG\fR
Configuration file, as \fB\-\-config\fR.
.TP
\fBBOUNCECTL_DB\fR
Database file, as \fB\-\-db\fR.
.TP
\fBXDG_CONFIG_HOME\fR, \fBXDG_DATA_HOME\fR, \fBHOME\fR
Where the default configuration and database are looked for.
.PP
Passwords are never taken from the command line: use \fBpassword_env\fR, \fBpassword_file\fR or \fBpassword_command\fR in the configuration.
"#
    .to_string()
}

fn examples_section() -> String {
    r#".SH EXAMPLES
Classify a saved bounce without changing anything:
.PP
.nf
    bouncectl check \-\-dry\-run \-\-json bounce.eml
.fi
.PP
Process every configured mailbox hourly from cron (silent unless something fails):
.PP
.nf
    17 * * * * bouncectl \-q check
.fi
.PP
Export the suppression list for the mailer:
.PP
.nf
    bouncectl stats \-\-blocked \-\-site example.com > blocked.txt
.fi
"#
    .to_string()
}

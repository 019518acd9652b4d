//! The command line, declared once (clap derive). The man page and shell
//! completions are generated from this definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Process mailing-list bounces: classify bounced mail from a POP3/IMAP
/// mailbox or local files, count bounces per recipient in SQLite, and block
/// recipients that reach the site's limit.
#[derive(Debug, Parser)]
#[command(name = "bouncectl", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit status: 0 ok, 64 usage, 65 unreadable input, 69 server unavailable, 74 I/O or database error, 75 temporary (retry), 77 login refused, 78 configuration error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file [default: $XDG_CONFIG_HOME/bouncectl/config.toml, else /etc/bouncectl/config.toml]
    #[arg(long, global = true, env = "BOUNCECTL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database file [default: the config's `database`, else $XDG_DATA_HOME/bouncectl/bounces.db]
    #[arg(long, global = true, env = "BOUNCECTL_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Machine output: JSON Lines for check, one JSON document for stats
    #[arg(long, global = true)]
    pub json: bool,
    /// No summary line; errors only
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail on stderr (repeatable)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process bounces from every configured mailbox, or from local files
    Check(CheckArgs),
    /// Show counters and blocks
    Stats(StatsArgs),
    /// Block addresses by hand
    Block(BlockArgs),
    /// Zero counters and lift blocks
    Reset(ResetArgs),
    /// Write the man page and shell completions under DIR (for packagers)
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory: man/bouncectl.1 and completions/ are written below it
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Message file, Maildir, mbox, or - for one message on stdin; none = every configured mailbox
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Site whose counters local sources go to (default: the only site)
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Classify and report only: no database write, no deletion
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for another run holding the database, then exit 75
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub wait: u64,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show these addresses in detail, with their events
    #[arg(value_name = "ADDRESS")]
    pub addresses: Vec<String>,
    /// Print blocked addresses only, one per line
    #[arg(long, conflicts_with = "addresses")]
    pub blocked: bool,
    /// Only this site (totals, addresses, --blocked)
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
}

#[derive(Debug, Args)]
pub struct BlockArgs {
    /// Addresses to block
    #[arg(value_name = "ADDRESS", required_unless_present = "file")]
    pub addresses: Vec<String>,
    /// Read addresses from a file, one per line (- = stdin)
    #[arg(long, value_name = "FILE")]
    pub file: Option<String>,
    /// Site to block in (default: the only site)
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Reason recorded with the block
    #[arg(long, default_value = "manual")]
    pub reason: String,
    /// Seconds to wait for another run holding the database
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub wait: u64,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Addresses to reset
    #[arg(value_name = "ADDRESS", required_unless_present_any = ["all", "older_than"])]
    pub addresses: Vec<String>,
    /// Only in this site (default: every site)
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Reset every address (needs --yes)
    #[arg(long, conflicts_with_all = ["addresses", "older_than"], requires = "yes")]
    pub all: bool,
    /// Confirm --all
    #[arg(long)]
    pub yes: bool,
    /// Forget counts whose last bounce is older than DAYS
    #[arg(long, value_name = "DAYS", conflicts_with = "addresses")]
    pub older_than: Option<u32>,
    /// Seconds to wait for another run holding the database
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub wait: u64,
}

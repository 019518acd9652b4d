//! A private Dovecot for one test: its own config, certificate, passwd file,
//! Maildir, log and free ports on 127.0.0.1. Never touches /etc/dovecot or
//! the system instance. Stopped (SIGTERM to the master we started) on drop.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where Dovecot lives on Debian.
pub const DOVECOT: &str = "/usr/sbin/dovecot";

/// The mail user's uid/gid: nobody/nogroup, never root.
const MAIL_UID: u32 = 65534;

/// The test user and its password.
pub const USER: &str = "bounces";
pub const PASSWORD: &str = "s3cret-pw";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A running private Dovecot.
pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Child,
    /// POP3 with STLS offered.
    pub pop3: u16,
    /// POP3 over implicit TLS.
    pub pop3s: u16,
    /// IMAP with STARTTLS offered.
    pub imap: u16,
    /// IMAP over implicit TLS.
    pub imaps: u16,
}

/// Starts a Dovecot, or returns `None` after a notice when it is not
/// installed. Under `CI=true` a missing Dovecot fails the test instead.
pub fn start() -> Option<Dovecot> {
    if !Path::new(DOVECOT).exists() {
        assert!(
            !super::in_ci(),
            "{DOVECOT} is missing and CI=true: install dovecot-pop3d and dovecot-imapd"
        );
        eprintln!("NOTICE: {DOVECOT} not installed: skipping this Dovecot test");
        return None;
    }
    let mut last = String::new();
    // A port picked as free can be taken by a parallel test before Dovecot
    // binds it: try again with new ports.
    for _ in 0..3 {
        match Dovecot::try_start() {
            Ok(d) => return Some(d),
            Err(e) => last = e,
        }
    }
    panic!("cannot start Dovecot: {last}");
}

fn free_ports() -> [u16; 4] {
    let ls: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    let p: Vec<u16> = ls.iter().map(|l| l.local_addr().unwrap().port()).collect();
    [p[0], p[1], p[2], p[3]]
}

/// Unprivileged users for Dovecot's own processes: the Debian package's
/// when present, else nobody.
fn service_users() -> (&'static str, &'static str) {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let has = |u: &str| passwd.lines().any(|l| l.starts_with(&format!("{u}:")));
    if has("dovecot") && has("dovenull") {
        ("dovecot", "dovenull")
    } else {
        ("nobody", "nobody")
    }
}

impl Dovecot {
    fn try_start() -> Result<Dovecot, String> {
        let dir = tempfile::Builder::new()
            .prefix("bouncectl-dovecot-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let root = dir.path().to_path_buf();
        // Dovecot's unprivileged processes must traverse the directory.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let [pop3, pop3s, imap, imaps] = free_ports();
        write_certificate(&root);
        let home = root.join("home");
        for sub in ["Maildir/new", "Maildir/cur", "Maildir/tmp"] {
            fs::create_dir_all(home.join(sub)).unwrap();
        }
        for sub in ["", "Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"] {
            chown(&home.join(sub));
        }
        let passwd = root.join("passwd");
        fs::write(
            &passwd,
            format!(
                "{USER}:{{PLAIN}}{PASSWORD}:{MAIL_UID}:{MAIL_UID}::{}::\n",
                home.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o644)).unwrap();
        let (internal, login) = service_users();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let conf = root.join("dovecot.conf");
        let r = root.display();
        fs::write(
            &conf,
            format!(
                r#"# Private test instance (bouncectl tests/support/dovecot.rs)
instance_name = bouncectl-test-{pid}-{n}
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
protocols = pop3 imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{r}/cert.pem
ssl_key = <{r}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 apop
auth_verbose = yes
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 1
# Deliberate login failures in tests need not wait (the anvil penalty per IP
# still grows: one failing login per instance).
auth_failure_delay = 0
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {r}/passwd
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
"#,
                pid = std::process::id()
            ),
        )
        .unwrap();
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(root.join("stderr.log")).unwrap())
            .spawn()
            .map_err(|e| format!("cannot run {DOVECOT}: {e}"))?;
        let mut d = Dovecot {
            dir,
            child,
            pop3,
            pop3s,
            imap,
            imaps,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if [pop3, pop3s, imap, imaps]
                .iter()
                .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
            {
                return Ok(d);
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                return Err(format!("dovecot exited ({status}): {}", d.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("dovecot did not listen in time: {}", d.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The temporary directory (config, certificate, log, home).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate to trust (the self-signed server certificate).
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join("cert.pem")
    }

    /// The user's Maildir.
    pub fn maildir(&self) -> PathBuf {
        self.dir().join("home/Maildir")
    }

    /// Puts a message into INBOX (Maildir `new/`) and returns its path.
    pub fn deliver(&self, bytes: &[u8]) -> PathBuf {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("1700000000.M{n}P{}.bouncectl-test", std::process::id());
        let tmp = self.maildir().join("tmp").join(&name);
        fs::write(&tmp, bytes).unwrap();
        chown(&tmp);
        let dest = self.maildir().join("new").join(&name);
        fs::rename(&tmp, &dest).unwrap();
        dest
    }

    /// Messages in a Maildir folder (`None` = INBOX), read or not.
    pub fn count(&self, folder: Option<&str>) -> usize {
        let base = match folder {
            None => self.maildir(),
            Some(f) => self.maildir().join(format!(".{f}")),
        };
        ["new", "cur"]
            .iter()
            .map(|s| fs::read_dir(base.join(s)).map_or(0, |d| d.count()))
            .sum()
    }

    /// The Dovecot log and its stderr, for failure messages.
    pub fn log(&self) -> String {
        let read = |n: &str| fs::read_to_string(self.dir().join(n)).unwrap_or_default();
        format!("{}{}", read("dovecot.log"), read("stderr.log"))
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its own children; SIGKILL would leave
        // login and auth processes behind.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chown(p: &Path) {
    std::os::unix::fs::chown(p, Some(MAIL_UID), Some(MAIL_UID)).unwrap();
}

/// A self-signed certificate for 127.0.0.1 and localhost (EC: fast to make).
fn write_certificate(dir: &Path) {
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:prime256v1")
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

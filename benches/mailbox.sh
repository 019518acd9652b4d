#!/bin/sh
# Mailbox throughput and memory: `bouncectl check` against a raw pipelined
# session on the same private Dovecot, over POP3S and IMAPS.
#
# Loads N distinct bounces (corpus mails with a unique header added), runs
#   1. target/release/bouncectl check   (temp DB, after = "delete")
#   2. a raw session with `openssl s_client -quiet`:
#      POP3: USER, PASS, RETR+DELE for every message, QUIT
#      IMAP: LOGIN, SELECT, UID FETCH 1:* BODY.PEEK[], UID STORE \Deleted,
#            EXPUNGE, LOGOUT
# and prints wall time, the bouncectl/raw ratio and peak RSS; plus, to show
# what is not mailbox time, `bouncectl check` of the same messages as a local
# Maildir (classifier + database only).
# Target: ratio <= 2, bouncectl peak RSS < 64 MB.
#
# Usage: benches/mailbox.sh [N]      (default 5000; BENCH_RUNS=R repeats each
#        comparison R times and reports medians; needs root for Dovecot,
#        /usr/sbin/dovecot, openssl, /usr/bin/time; run from the repository)
# The private Dovecot never reads /etc/dovecot and is stopped on exit.
set -eu

N=${1:-5000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BOUNCECTL_BIN:-$ROOT/target/release/bouncectl}
CORPUS=$ROOT/tests/fixtures/maildir/bsd
DOVECOT=/usr/sbin/dovecot
USER_NAME=bounces
PASSWORD=bench-pw

for tool in "$DOVECOT" openssl /usr/bin/time python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing: $tool" >&2; exit 1; }
done
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --quiet)

TMP=$(mktemp -d /tmp/bouncectl-bench-XXXXXX)
chmod 755 "$TMP"
DOVECOT_PID=
cleanup() {
    if [ -n "$DOVECOT_PID" ]; then
        kill -TERM "$DOVECOT_PID" 2>/dev/null || true
        wait "$DOVECOT_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# --- private Dovecot (same approach as tests/support/dovecot.rs) ----------
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
POP3S=$(free_port)
IMAPS=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
HOME_DIR=$TMP/home
mkdir -p "$HOME_DIR/Maildir/new" "$HOME_DIR/Maildir/cur" "$HOME_DIR/Maildir/tmp"
chown -R 65534:65534 "$HOME_DIR"
printf '%s:{PLAIN}%s:65534:65534::%s::\n' "$USER_NAME" "$PASSWORD" "$HOME_DIR" >"$TMP/passwd"
chmod 644 "$TMP/passwd"
if getent passwd dovenull >/dev/null; then INTERNAL=dovecot LOGIN=dovenull; else INTERNAL=nobody LOGIN=nobody; fi
cat >"$TMP/dovecot.conf" <<EOF
instance_name = bouncectl-bench-$$
base_dir = $TMP/run
state_dir = $TMP/state
log_path = $TMP/dovecot.log
protocols = pop3 imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$TMP/cert.pem
ssl_key = <$TMP/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 apop
default_internal_user = $INTERNAL
default_login_user = $LOGIN
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $TMP/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $TMP/passwd
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = $POP3S
    ssl = yes
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $IMAPS
    ssl = yes
  }
}
EOF
"$DOVECOT" -F -c "$TMP/dovecot.conf" 2>>"$TMP/dovecot.log" &
DOVECOT_PID=$!
# (A TCP connect, not s_client: an idle TLS client would be held for
# Dovecot's 3-minute login timeout.)
python3 - "$POP3S" "$IMAPS" <<'EOF' || { cat "$TMP/dovecot.log" >&2; exit 1; }
import socket, sys, time
for port in map(int, sys.argv[1:]):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("dovecot does not listen on %d" % port)
EOF

# --- the mail: N distinct bounces, prepared once, copied in per run --------
STOCK=$TMP/stock
mkdir -p "$STOCK"
python3 - "$CORPUS" "$STOCK" "$N" <<'EOF'
import os, sys
corpus, stock, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted(f for f in os.listdir(corpus) if f.endswith(".eml"))
for i in range(n):
    with open(os.path.join(corpus, files[i % len(files)]), "rb") as f:
        body = f.read()
    with open(os.path.join(stock, "1700000000.M%dP1.bench" % i), "wb") as f:
        f.write(b"X-Bouncectl-Bench: %d\n" % i + body)
EOF
SIZE=$(du -sh "$STOCK" | cut -f1)
LOADS=0
load() {
    # Maildir names must never repeat: Dovecot may take a reused name for a
    # message it already expunged.
    LOADS=$((LOADS + 1))
    python3 - "$STOCK" "$HOME_DIR/Maildir" "$LOADS" <<'EOF'
import os, shutil, sys
stock, maildir, run = sys.argv[1], sys.argv[2], sys.argv[3]
# Named the way Dovecot's own delivery (LDA, LMTP) names them, with the
# size (",S=") and the CRLF size (",W=", what RFC822.SIZE reports) in the
# name (dovecot-lda 2.3 saves a 34-byte, 5-line mail as "...,S=34,W=39"),
# so the listing needs no read of every file.
for name in os.listdir(stock):
    src = os.path.join(stock, name)
    with open(src, "rb") as f:
        data = f.read()
    # W= is the size with CRLF line ends, what IMAP's RFC822.SIZE reports.
    wsize = len(data) + data.count(b"\n") - data.count(b"\r\n")
    name = "%sR%s,S=%d,W=%d" % (name, run, len(data), wsize)
    tmp = os.path.join(maildir, "tmp", name)
    shutil.copyfile(src, tmp)
    os.chown(tmp, 65534, 65534)
    os.rename(tmp, os.path.join(maildir, "new", name))
EOF
}
left() {
    find "$HOME_DIR/Maildir/new" "$HOME_DIR/Maildir/cur" -type f | wc -l
}

# Runs a command under /usr/bin/time; prints "SECONDS PEAK_KB CPU_SECONDS".
timed() {
    /usr/bin/time -f '%e %M %U+%S' -o "$TMP/time" "$@" >"$TMP/out" 2>"$TMP/err" || {
        echo "failed: $*" >&2; cat "$TMP/err" >&2; exit 1; }
    cat "$TMP/time"
}

bouncectl_run() { # PROTOCOL PORT
    cat >"$TMP/config.toml" <<EOF
[[site]]
name = "bench"
bounce_limit = 0
delete_unrecognized = true   # the benchmark measures the mailbox, not the classifier
[site.mailbox]
protocol = "$1"
host = "127.0.0.1"
port = $2
tls = "implicit"
ca_file = "$TMP/cert.pem"
username = "$USER_NAME"
password_env = "BENCH_PASSWORD"
after = "delete"
EOF
    rm -f "$TMP/bench.db"*
    BENCH_PASSWORD=$PASSWORD timed ${BENCH_WRAP:-} env -u BOUNCECTL_CONFIG -u BOUNCECTL_DB \
        "$BIN" --config "$TMP/config.toml" --db "$TMP/bench.db" -q check
}

local_run() {
    rm -rf "$TMP/local" "$TMP/local.db"*
    mkdir -p "$TMP/local/new" "$TMP/local/cur" "$TMP/local/tmp"
    cp "$STOCK"/* "$TMP/local/new/"
    timed env -u BOUNCECTL_CONFIG -u BOUNCECTL_DB XDG_CONFIG_HOME="$TMP/none" \
        "$BIN" --db "$TMP/local.db" -q check "$TMP/local"
}

raw_pop3() {
    python3 - "$N" "$USER_NAME" "$PASSWORD" >"$TMP/pop3.in" <<'EOF'
import sys
n, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = ["USER " + user, "PASS " + pw]
for i in range(1, n + 1):
    out += ["RETR %d" % i, "DELE %d" % i]
out.append("QUIT")
sys.stdout.write("\r\n".join(out) + "\r\n")
EOF
    timed sh -c "openssl s_client -quiet -connect 127.0.0.1:$POP3S -CAfile $TMP/cert.pem <$TMP/pop3.in"
}

raw_imap() {
    printf 'a LOGIN %s %s\r\nb SELECT INBOX\r\nc UID FETCH 1:* BODY.PEEK[]\r\nd UID STORE 1:* +FLAGS.SILENT (\\Deleted)\r\ne EXPUNGE\r\nf LOGOUT\r\n' \
        "$USER_NAME" "$PASSWORD" >"$TMP/imap.in"
    timed sh -c "openssl s_client -quiet -connect 127.0.0.1:$IMAPS -CAfile $TMP/cert.pem <$TMP/imap.in"
}

report() { # NAME BOUNCECTL_RESULTS RAW_RESULTS (";"-separated, one per run)
    python3 - "$@" <<'EOF'
import statistics, sys
name, b, r = sys.argv[1], sys.argv[2].strip(";").split(";"), sys.argv[3].strip(";").split(";")
runs = [(float(t), int(rss), sum(map(float, cpu.split("+")))) for t, rss, cpu in map(str.split, b)]
raw = [float(x.split()[0]) for x in r]
bt = statistics.median(t for t, _, _ in runs)
bcpu = statistics.median(c for _, _, c in runs)
brss = max(rss for _, rss, _ in runs)
rt = statistics.median(raw)
# Each bouncectl run is paired with the raw run that followed it, so that a
# burst of load on a shared machine weighs on both sides of one ratio.
ratios = [t / x if x > 0 else float("inf") for (t, _, _), x in zip(runs, raw)]
ratio = statistics.median(ratios)
ok = "ok" if ratio <= 2 and brss < 64 * 1024 else "OVER TARGET"
print(f"{name:5}  bouncectl {bt:6.2f}s (cpu {bcpu:5.2f}s)  peak RSS {brss/1024:5.1f} MB"
      f" | raw session {rt:6.2f}s | ratio {ratio:4.2f}  [{ok}]")
if len(runs) > 1:
    print(f"       {len(runs)} runs, medians; ratio of each run: "
          + " ".join(f"{x:.2f}" for x in ratios))
EOF
}

# One protocol: RUNS pairs of (bouncectl, raw session), each on a fresh load.
compare() { # NAME PROTOCOL PORT RAW_FUNCTION
    BS= RS= i=0
    while [ "$i" -lt "$RUNS" ]; do
        load; B=$(bouncectl_run "$2" "$3"); [ "$(left)" = 0 ] || { echo "$1: $(left) messages left" >&2; exit 1; }
        load; R=$($4);                      [ "$(left)" = 0 ] || { echo "raw $1: $(left) left" >&2; exit 1; }
        BS="$BS$B;" RS="$RS$R;" i=$((i + 1))
    done
    report "$1" "$BS" "$RS"
}

echo "mailbox benchmark: $N messages ($SIZE) on a private Dovecot $("$DOVECOT" --version | cut -d' ' -f1)"
# BENCH_PROTOCOLS="pop3" runs one protocol only; BENCH_RUNS=5 repeats each
# comparison and reports medians (figures are noisy on a shared machine);
# BENCH_WRAP="perf record ..."
# wraps the bouncectl runs (profiling).
RUNS=${BENCH_RUNS:-1}
for proto in ${BENCH_PROTOCOLS:-pop3 imap}; do
    case $proto in
    pop3) compare POP3S pop3 "$POP3S" raw_pop3 ;;
    imap) compare IMAPS imap "$IMAPS" raw_imap ;;
    esac
done
set -- $(local_run)
printf 'local  bouncectl check of the same messages as a Maildir: %6.2fs, peak RSS %.1f MB (no mailbox)\n' "$1" "$(echo "$2 / 1024" | bc -l)"

#!/bin/sh
# Whole-process speed against Sisimai 4.25 (Debian libsisimai-perl) on the
# same Maildir: the public corpus repeated 20 times (~8,000 messages).
# Usage: benches/vs_sisimai.sh   (from the repository root)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/md/cur" "$tmp/md/new" "$tmp/md/tmp" "$tmp/home"
n=0
for i in $(seq 1 20); do
    for f in tests/fixtures/maildir/bsd/*.eml tests/fixtures/maildir/not/*.eml; do
        n=$((n + 1))
        # mbox files hold several mails; the Maildir gets each file as is.
        cp "$f" "$tmp/md/cur/$i.$n.bench:2,S"
    done
done
echo "maildir: $n messages"

now() { date +%s.%N; }

t0=$(now)
HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/config" XDG_DATA_HOME="$tmp/home/data" \
    target/release/bouncectl check --dry-run --json "$tmp/md" > /dev/null || true
t1=$(now)
perl -MSisimai -e 'my $v = Sisimai->make($ARGV[0], "delivered" => 1); printf STDERR "sisimai: %d results\n", scalar @{ $v || [] };' "$tmp/md/cur"
t2=$(now)

echo "$t0 $t1 $t2" | awk '{ b = $2 - $1; s = $3 - $2;
    printf "bouncectl: %.3f s\nsisimai:   %.3f s\nratio:     %.1fx\n", b, s, (b > 0 ? s / b : 0) }'

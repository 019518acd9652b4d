#!/bin/sh
# Whole-process speed against Sisimai 4.25 (Debian libsisimai-perl) on the
# same Maildir: the public corpus repeated 20 times (~8,000 messages).
# Usage: benches/vs_sisimai.sh   (from the repository root; BENCH_RUNS=R
# times bouncectl R times, default 5, and reports medians)
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

# One untimed run warms the page cache for both tools; then bouncectl runs
# BENCH_RUNS times (default 5) around Sisimai's BENCH_SISIMAI_RUNS (default 1),
# and the medians are compared: one run of bouncectl is short enough for
# the noise of a shared machine to matter.
runs=${BENCH_RUNS:-5}
sruns=${BENCH_SISIMAI_RUNS:-1}
bouncectl() {
    HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/config" XDG_DATA_HOME="$tmp/home/data" \
        target/release/bouncectl check --dry-run --json "$tmp/md" > /dev/null || true
}
time_bouncectl() {
    i=0
    while [ "$i" -lt "$1" ]; do
        t0=$(now); bouncectl; t1=$(now)
        echo "b $t0 $t1" >> "$tmp/times"
        i=$((i + 1))
    done
}
bouncectl
: > "$tmp/times"
# Sisimai's one long run moves with the machine's load (9.8 s to 17.8 s
# on this machine) more than the median of bouncectl's short runs does:
# the load is printed with the ratio, and BENCH_SISIMAI_RUNS repeats it.
load0=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
time_bouncectl $(( (runs + 1) / 2 ))
i=0
while [ "$i" -lt "$sruns" ]; do
    t0=$(now)
    perl -MSisimai -e 'my $v = Sisimai->make($ARGV[0], "delivered" => 1); printf STDERR "sisimai: %d results\n", scalar @{ $v || [] };' "$tmp/md/cur"
    t1=$(now)
    echo "s $t0 $t1" >> "$tmp/times"
    i=$((i + 1))
done
time_bouncectl $(( runs / 2 ))

echo "load:      $load0 before, $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?") after (1-minute average)"
awk '
function median(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$1 == "b" { b[++nb] = $3 - $2; bl = bl sprintf(" %.3f", $3 - $2) }
$1 == "s" { s[++ns] = $3 - $2; sl = sl sprintf(" %.3f", $3 - $2) }
END {
    mb = median(b, nb); ms = median(s, ns)
    printf "bouncectl: %.3f s (median of %d:%s)\n", mb, nb, bl
    printf "sisimai:   %.3f s (median of %d:%s)\n", ms, ns, sl
    printf "ratio:     %.1fx\n", (mb > 0 ? ms / mb : 0)
}' "$tmp/times"

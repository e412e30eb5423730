#!/bin/sh
# Standard guest workload (busybox sh), run by init.sh with the share
# mounted.  Each check prints DPFS-CHECK-OK: name or
# DPFS-CHECK-FAIL: name (detail) and the script goes on, so one run shows
# every broken operation, not just the first.
# Environment: MNT (mount point), MB (big-file size in MiB), PHASE (a word
# that keeps the working dirs of different boots apart).
MNT=${MNT:-/mnt}
MB=${MB:-64}
PHASE=${PHASE:-default}
D=$MNT/dpfs-wl-$PHASE
FAILS=0

ok()  { echo "DPFS-CHECK-OK: $1"; }
bad() { echo "DPFS-CHECK-FAIL: $1 ($2)"; FAILS=$((FAILS + 1)); }
# expect NAME ACTUAL EXPECTED
expect() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi; }

# Seconds with sub-second resolution: busybox date may lack %N, and
# /proc/uptime (10 ms) is always there.
now() {
    t=$(date +%s.%N 2>/dev/null)
    case $t in *[!0-9.]*|*.|'') read -r t _ < /proc/uptime ;; esac
    echo "$t"
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate()    { awk -v mb="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", mb / s; else print "inf" }'; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

echo "DPFS-INFO: nr_cpus=$(nproc) kernel=$(uname -r) phase=$PHASE mb=$MB"
# With MSI-X each virtqueue gets its own interrupt named after it: this is
# how many request queues the guest driver actually set up.
rq=$(grep -c 'requests\.' /proc/interrupts 2>/dev/null)
echo "DPFS-INFO: request_queues=${rq:-unknown}"

T_START=$(now)
# A previous boot against the same share may have left its dir behind.
rm -rf "$D" 2>/dev/null

# --- metadata and small-file operations -------------------------------------
if mkdir -p "$D/sub" && [ -d "$D/sub" ]; then ok mkdir; else bad mkdir "$D/sub missing"; fi

line1="hello dpfs $PHASE"
echo "$line1" > "$D/f" && expect write-read "$(cat "$D/f" 2>&1)" "$line1"

echo line2 >> "$D/f" && expect append "$(tail -n 1 "$D/f" 2>&1)/$(wc -l < "$D/f")" "line2/2"

expect stat-size "$(stat -c %s "$D/f" 2>&1)" "$(( ${#line1} + 1 + 6 ))"

if mv "$D/f" "$D/g" 2>/dev/null && [ ! -e "$D/f" ]; then
    expect rename "$(head -n 1 "$D/g" 2>&1)" "$line1"
else
    bad rename "mv failed or source still present"
fi

if ln "$D/g" "$D/h" 2>/dev/null; then
    expect hardlink "$(stat -c %h "$D/g")/$(stat -c %i "$D/h")/$(head -n 1 "$D/h")" \
        "2/$(stat -c %i "$D/g")/$line1"
else
    bad hardlink "ln failed"
fi

if ln -s g "$D/s" 2>/dev/null; then
    expect symlink "$(readlink "$D/s")/$(head -n 1 "$D/s" 2>&1)" "g/$line1"
else
    bad symlink "ln -s failed"
fi

chmod 640 "$D/g" && expect chmod "$(stat -c %a "$D/g")" 640

if truncate -s 5 "$D/g" 2>/dev/null; then
    expect truncate-shrink "$(stat -c %s "$D/g")/$(cat "$D/g")" "5/hello"
    truncate -s 100000 "$D/g"
    expect truncate-extend "$(stat -c %s "$D/g")/$(head -c 5 "$D/g")" "100000/hello"
else
    bad truncate "truncate failed"
fi

if rm "$D/h" 2>/dev/null && [ ! -e "$D/h" ]; then
    expect unlink "$(stat -c %h "$D/g")" 1
else
    bad unlink "rm failed or file still present"
fi

# readdir with enough entries to need several READDIR(PLUS) replies.
mkdir -p "$D/many"
for i in $(seq 1 200); do echo "$i" > "$D/many/file-$i" || break; done
expect readdir "$(ls "$D/many" | wc -l)/$(cat "$D/many/file-137" 2>&1)" "200/137"

if out=$(stat -f -c '%b %S' "$MNT" 2>&1); then ok "statfs ($out)"; else bad statfs "$out"; fi

# The host side (run.sh) seeds hello.txt into the share it creates.
if [ -e "$MNT/hello.txt" ]; then
    if c=$(cat "$MNT/hello.txt" 2>&1) && [ -n "$c" ]; then
        ok "host-file ($(echo "$c" | head -n 1))"
    else
        bad host-file "unreadable or empty: $c"
    fi
else
    echo "DPFS-INFO: no host-seeded $MNT/hello.txt"
fi

# --- big file: write with fsync, read back cold, compare --------------------
# The source lives in guest tmpfs, so the timing does not include making
# random numbers (~50 MiB/s under TCG, after a ~1 s warm-up).  It is made
# once and reused if the script runs again in the same boot.  Fully random
# data means no 4 KiB block repeats: data at a wrong offset, or a stale
# buffer from an earlier request, fails the md5 compare.
T_SMALL=$(now)
SRC=/tmp/dpfs-big.src
size=$((MB * 1048576))
if [ ! -s "$SRC" ] || [ "$(stat -c %s "$SRC")" != "$size" ]; then
    dd if=/dev/urandom of="$SRC" bs=1M count="$MB" 2>/dev/null
fi
want=$(md5sum < "$SRC" | cut -d' ' -f1)
T_GEN=$(now)
BIG=$D/big.bin
drop_caches
t0=$(now)
dd if="$SRC" of="$BIG" bs=1M conv=fsync 2>/tmp/dd.err || bad big-write "$(cat /tmp/dd.err)"
t1=$(now)
expect big-size "$(stat -c %s "$BIG" 2>&1)" "$size"
drop_caches
t2=$(now)
dd if="$BIG" of=/dev/null bs=1M 2>/tmp/dd.err || bad big-read "$(cat /tmp/dd.err)"
t3=$(now)
# Compare after another drop_caches so the data really comes from the backend.
drop_caches
expect big-md5 "$(md5sum < "$BIG" | cut -d' ' -f1)" "$want"
ws=$(elapsed "$t0" "$t1"); rs=$(elapsed "$t2" "$t3")
echo "DPFS-PERF: mb=$MB write_mib_s=$(rate "$MB" "$ws") read_mib_s=$(rate "$MB" "$rs") write_s=$ws read_s=$rs"

# --- cleanup: recursive removal of the whole tree ---------------------------
# Checks readdir too, not only lookup: a stale entry must not be listed.
# shellcheck disable=SC2010
if rm -rf "$D" 2>/tmp/rm.err && [ ! -e "$D" ] && ! ls "$MNT" | grep -qx "dpfs-wl-$PHASE"; then
    ok rm-rf
else
    bad rm-rf "$(cat /tmp/rm.err) still present: $(ls "$MNT")"
fi

# Leave a marker so the host can see the guest's writes land in the share.
echo "$PHASE" > "$MNT/dpfs-guest-$PHASE.txt" || bad marker "cannot write marker"

T_END=$(now)
echo "DPFS-INFO: small_ops_s=$(elapsed "$T_START" "$T_SMALL") make_src_s=$(elapsed "$T_SMALL" "$T_GEN") big_test_s=$(elapsed "$T_GEN" "$T_END")"
[ "$FAILS" = 0 ]

# Sourced by CI scripts: a private nfs-ganesha on 127.0.0.1:2049 (NFSv4.1, FSAL_VFS,
# graceless, numeric owners) exporting a directory as /export, as the Rust tests' harness
# (backends/nfs/client/tests/support) does.
#
#   ganesha_start EXPORT_DIR STATE_DIR   # starts it, waits until it serves
#   ganesha_stop                         # kills it (also on the caller's EXIT trap)

GANESHA_PID=
ganesha_start() {
    local export=$1 state=$2 i
    mkdir -p "$state/recovery"
    cat >"$state/ganesha.conf" <<CONF
NFS_CORE_PARAM { Protocols = 4; NFS_Port = 2049; Bind_addr = 127.0.0.1; Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }
NFSV4 { Minor_Versions = 1, 2; Grace_Period = 1; Lease_Lifetime = 10; Graceless = true; RecoveryBackend = fs; RecoveryRoot = $state/recovery; Allow_Numeric_Owners = true; Only_Numeric_Owners = true; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT { Export_Id = 1; Path = $export; Pseudo = /export; Protocols = 4; Transports = TCP; Access_Type = RW; Squash = No_Root_Squash; SecType = sys; FSAL { Name = VFS; } }
CONF
    ganesha.nfsd -F -L "$state/ganesha.log" -f "$state/ganesha.conf" -p "$state/ganesha.pid" </dev/null >/dev/null 2>&1 &
    GANESHA_PID=$!
    for i in $(seq 300); do
        if ! kill -0 "$GANESHA_PID" 2>/dev/null; then
            echo "ganesha exited while starting:" >&2; cat "$state/ganesha.log" >&2; return 1
        fi
        if grep -qE 'NOT IN GRACE|skipping GRACE' "$state/ganesha.log" 2>/dev/null &&
            (exec 3<>/dev/tcp/127.0.0.1/2049) 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "ganesha not ready after 30 s:" >&2; cat "$state/ganesha.log" >&2; return 1
}

ganesha_stop() {
    if [ -n "$GANESHA_PID" ]; then
        kill -9 "$GANESHA_PID" 2>/dev/null || true
        wait "$GANESHA_PID" 2>/dev/null || true
        GANESHA_PID=
    fi
}

# Sourced by CI scripts: a private nfs-ganesha on 127.0.0.1:2049 (NFSv4.1, FSAL_VFS,
# graceless, numeric owners) exporting a directory as /export, as the Rust tests' harness
# (backends/nfs/client/tests/support) does.
#
#   ganesha_start EXPORT_DIR STATE_DIR   # starts it, waits until it serves
#   ganesha_stop                         # kills it (also on the caller's EXIT trap)
#   GANESHA_V3=1                         # serve NFSv3 too (for the libnfs engine): rpcbind is
#                                        # started first if it does not answer on port 111

GANESHA_PID=
ganesha_start() {
    local export=$1 state=$2 i
    mkdir -p "$state/recovery"
    local protocols=4
    if [ "${GANESHA_V3:-0}" = 1 ]; then
        protocols="3, 4"
        rpcbind_start || return 1
    fi
    cat >"$state/ganesha.conf" <<CONF
NFS_CORE_PARAM { Protocols = $protocols; NFS_Port = 2049; Bind_addr = 127.0.0.1; Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; Mount_Path_Pseudo = true; }
NFSV4 { Minor_Versions = 1, 2; Grace_Period = 1; Lease_Lifetime = 10; Graceless = true; RecoveryBackend = fs; RecoveryRoot = $state/recovery; Allow_Numeric_Owners = true; Only_Numeric_Owners = true; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT { Export_Id = 1; Path = $export; Pseudo = /export; Protocols = $protocols; Transports = TCP; Access_Type = RW; Squash = No_Root_Squash; SecType = sys; FSAL { Name = VFS; } }
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

# rpcbind_start: makes sure rpcbind answers on 127.0.0.1:111 (NFSv3's MOUNT and NFS ports
# are found through it); a running one (the package's service) is kept.
rpcbind_start() {
    local i
    (exec 3<>/dev/tcp/127.0.0.1/111) 2>/dev/null && return 0
    command -v rpcbind >/dev/null || { echo "rpcbind is not installed (apt-get install rpcbind)" >&2; return 1; }
    mkdir -p /run/rpcbind
    rpcbind -w 2>/dev/null || rpcbind || { echo "rpcbind did not start" >&2; return 1; }
    for i in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/111) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "rpcbind does not answer on 127.0.0.1:111" >&2
    return 1
}

ganesha_stop() {
    if [ -n "$GANESHA_PID" ]; then
        kill -9 "$GANESHA_PID" 2>/dev/null || true
        wait "$GANESHA_PID" 2>/dev/null || true
        GANESHA_PID=
    fi
}

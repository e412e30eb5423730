# Sourced by the install scripts: apt-get that waits for the package manager's lock (another
# install on the machine, unattended upgrades) instead of failing, and that refreshes stale
# or missing package lists once when an install fails.

export DEBIAN_FRONTEND=noninteractive
APT_WAIT=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

# apt_get ARGS...: apt-get with the lock wait.
apt_get() { timeout 1200 apt-get "${APT_WAIT[@]}" "$@"; }

# apt_install PKG...: installs the packages that are not installed yet.
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    printf 'apt: installing %s\n' "${missing[*]}" >&2
    if ! apt_get install -y --no-install-recommends "${missing[@]}" >&2; then
        apt_get update >&2
        apt_get install -y --no-install-recommends "${missing[@]}" >&2
    fi
}

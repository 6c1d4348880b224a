# Sourced by the scripts that install tools into the cache outside the clone
# (validate-deploy.sh, install-envoy.sh, install-miniprogram-deps.sh, install-schemathesis.sh):
# the one install-once routine they share.
#
# Each tool gets a directory in the cache root, ${MINIPAY_TOOLS:-/var/cache/minipay-tools}. A
# marker file in it, written last, says the install finished: an interrupted install is redone,
# not trusted. Each install holds a lock file in the cache root (util-linux's flock), so two
# runs installing at once take turns instead of both removing and filling the same directory,
# and the second finds the first one's install.
#
# The install commands given to these functions may run where `set -e` is ignored (inside a
# `|| ...` or an `if`), so they check each step themselves (`&&`, `|| return 1`).

tools_root="${MINIPAY_TOOLS:-/var/cache/minipay-tools}"
tools_marker=".installed"
tools_me="$(basename "$0" .sh)" # names the script in its messages

# tools_installed DIR: whether an install into DIR finished.
tools_installed() {
    [ -f "$1/$tools_marker" ]
}

# tools_locked LOCKFILE WHAT COMMAND...: runs COMMAND (in a subshell) holding an exclusive
# flock on LOCKFILE; says so on stderr when it has to wait.
tools_locked() {
    local lockfile="$1" what="$2"
    shift 2
    mkdir -p "$(dirname "$lockfile")" || return 1
    (
        if ! flock -n 9; then
            echo "$tools_me: waiting for another install of $what (lock $lockfile)" >&2
            flock 9
        fi
        "$@"
    ) 9>"$lockfile"
}

# tools_install_marked DIR COMMAND...: with the lock already held, unless DIR's install has
# finished (another run may have done it while this one waited for the lock): removes DIR, runs
# COMMAND (which fills DIR) and, if it succeeds, writes the marker.
tools_install_marked() {
    local dir="$1"
    shift
    if tools_installed "$dir"; then
        return 0
    fi
    rm -rf "$dir" || return 1
    "$@" || return 1
    touch "$dir/$tools_marker"
}

# install_once DIR WHAT COMMAND...: installs into DIR by COMMAND unless that is already done,
# holding the lock file DIR.lock. WHAT names the tool in the message when it has to wait.
install_once() {
    local dir="$1" what="$2"
    shift 2
    if tools_installed "$dir"; then
        return 0
    fi
    tools_locked "$dir.lock" "$what" tools_install_marked "$dir" "$@"
}

# pip_venv DIR PIP_INSTALL_ARGS...: a virtualenv in DIR with `pip install ARGS` done in it
# (the chatter on stderr); a COMMAND for install_once.
pip_venv() {
    local dir="$1"
    shift
    python3 -m venv "$dir" >&2 &&
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
}

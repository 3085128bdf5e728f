# Shared by scripts/vm-check.sh and scripts/platform-check.sh (sourced, not run): Debian roots built with
# debootstrap from this machine's own package archive, cached by suite and package list, and removal that
# never follows a mount out of a root.

# The Debian archive URI this machine's apt already uses (e.g. http://deb.debian.org/debian/): the mirror
# that is known to be reachable from here. Override with TCPLAB_MIRROR.
mirror_uri() {
    if [ -n "${TCPLAB_MIRROR:-}" ]; then echo "$TCPLAB_MIRROR"; return; fi
    local uri
    uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
          awk '$2 !~ /-(security|updates|backports)$/ && $1 ~ /debian\/?$/ {print $1; exit}')
    if [ -z "$uri" ]; then
        echo "no Debian archive found in this machine's apt sources; set TCPLAB_MIRROR=URI" >&2
        return 1
    fi
    echo "$uri"
}

# The apt packages scripts/install.sh installs, read from its own `pkgs=(...)` list (one source of truth).
installer_packages() {
    sed -n '/^pkgs=(/,/)/p' "$1/scripts/install.sh" | sed 's/^pkgs=(//; s/).*//' | tr -s ' \n' '\n' |
        grep -v '^$' | sort -u | tr '\n' ' '
}

# Remove everything mounted at or below DIR, deepest first (debootstrap mounts proc and sys in its target;
# an interrupted run leaves them). Returns non-zero if something is still mounted.
unmount_under() {
    local dir=$1 m
    [ -e "$dir" ] || return 0
    dir=$(readlink -f "$dir")
    for m in $(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
    ! awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {found=1} END {exit !found}' /proc/self/mountinfo
}

# Delete DIR, but only once nothing is mounted inside it, and never across a file-system boundary.
remove_tree() {
    local dir=$1
    [ -e "$dir" ] || return 0
    if ! unmount_under "$dir"; then
        echo "still mounted under $dir; not removing it" >&2
        return 1
    fi
    rm -rf --one-file-system "$dir"
}

# cached_root SUITE VARIANT "PKG..." CACHE -> prints the path of a complete root. Built once per suite,
# variant and package list (the key is a hash of them and the mirror); a changed list builds a new one and
# removes the old. Built in a temporary directory and renamed when complete, so an interrupted
# debootstrap never leaves a half root in the cache.
cached_root() {
    local suite=$1 variant=$2 pkgs=$3 cache=$4 mirror key root tmp old
    mirror=$(mirror_uri) || return 1
    key=$(printf '%s\n' "$suite" "$variant" "$mirror" $pkgs | sha256sum | cut -c1-12)
    root="$cache/$suite-$key"
    if [ -f "$root/.tcplab-root-complete" ]; then
        echo "$root"
        return 0
    fi
    mkdir -p "$cache"
    tmp="$root.partial"
    remove_tree "$tmp" || return 1
    echo "debootstrap $suite ($variant) from $mirror into $root (once; cached)" >&2
    # Interrupted: unmount what debootstrap mounted in the half root and remove it (this runs in the
    # caller's $(...) subshell, so the trap is this function's own).
    trap 'remove_tree "$tmp"; exit 130' INT TERM HUP
    if ! debootstrap --variant="$variant" --include="$(echo $pkgs | tr ' ' ',')" "$suite" "$tmp" "$mirror" \
            > "$cache/$suite-$key.debootstrap.log" 2>&1; then
        tail -15 "$cache/$suite-$key.debootstrap.log" >&2
        echo "debootstrap failed; the whole log is $cache/$suite-$key.debootstrap.log" >&2
        remove_tree "$tmp"
        return 1
    fi
    unmount_under "$tmp" || return 1
    touch "$tmp/.tcplab-root-complete"
    mv "$tmp" "$root"
    trap - INT TERM HUP
    for old in "$cache/$suite"-*; do        # roots of this suite for other package lists
        case $old in "$root"|"$root".*) ;; *) [ -d "$old" ] && remove_tree "$old" ;; esac
    done
    echo "$root"
}

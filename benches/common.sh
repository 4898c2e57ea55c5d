# Shared by the bench scripts that time hoist against a local registry: settings from
# the environment, checks, the release build, a temp dir and its cleanup (the
# registry too). Source it after setting `bench` (the script's name, for messages and
# the temp dir) and `results` (the default results folder under target/); it defines
# repo, RUNS, WARMUP, NO_BUILD, RESULTS_DIR, HOIST, die, note, tmp and reg_pid, and
# sources registry.sh (start_registry, clean_registry, …) with its paths under $tmp.
# shellcheck shell=bash
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
NO_BUILD=${NO_BUILD:-0}
RESULTS_DIR=${RESULTS_DIR:-$repo/target/$results}
HOIST=${HOIST:-$repo/target/release/hoist}
export LC_ALL=C

die() { printf '%s: error: %s\n' "$bench" "$*" >&2; exit 1; }
note() { printf '==> %s\n' "$*" >&2; }

# workspace_toml BASE: the root hoist.toml of the benches' generated workspaces
# (members under services/, two platforms on BASE, the version in VERSION).
workspace_toml() {
    cat <<TOML
[workspace]
members = ["services/*"]

[workspace.image]
base = "$1"
platforms = ["linux/amd64", "linux/arm64"]

[version]
source = "VERSION"
TOML
}

case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a positive integer, got '$RUNS'" ;; esac
case $WARMUP in '' | *[!0-9]*) die "WARMUP must be a non-negative integer, got '$WARMUP'" ;; esac
for t in hyperfine python3 curl docker-registry; do
    command -v "$t" >/dev/null 2>&1 ||
        die "'$t' not found (Debian: apt-get install hyperfine python3 curl docker-registry)"
done
if [ "$NO_BUILD" != 1 ]; then
    note "cargo build --release"
    (cd "$repo" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[ -x "$HOIST" ] || die "$HOIST not found or not executable (cargo build --release)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hoist-${bench%.sh}.XXXXXX")
reg_pid=
cleanup() {
    if [ -n "$reg_pid" ]; then
        kill "$reg_pid" 2>/dev/null || true
        wait "$reg_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RESULTS_DIR"

reg_dir=$tmp/registry
reg_store=$reg_dir/storage
reg_log=$reg_dir/registry.log
mkdir -p "$reg_dir"
# shellcheck source=benches/registry.sh
. "$repo/benches/registry.sh"

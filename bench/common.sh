# Shared set-up of the benchmarks, sourced by each: release binaries, the reference tools'
# virtualenv with the PyPI packages named, a scratch directory removed on exit, and the
# machine line.
#
#   . bench/common.sh PACKAGE...
cargo build --release --locked -q -p marketops -p testkit --bin marketops --bin loadgen
BIN=target/release/marketops
LOAD=target/release/loadgen
VENV=target/bench-venv
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q "$@"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"

# Runs a command RUNS times; sets MEDIAN (seconds) and PEAK_MIB (of the last run).
timed_runs() {
  local times=() t rss
  for _ in $(seq 1 "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" 2>/dev/null
    read -r t rss <"$WORK/time"
    times+=("$t")
  done
  MEDIAN=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  PEAK_MIB=$((rss / 1024))
}

#!/usr/bin/env bash
# Runs Samba's smbtorture smb2 subtests against smbiod's embedded server.
#
#   bash .ci/smb/torture.sh SMBIOD_BINARY list  [LIST_FILE]   # CI: every listed test must pass
#   bash .ci/smb/torture.sh SMBIOD_BINARY survey [PATTERN]    # all subtests of the suites issue 25 names
#
# `list` (the default file is .ci/smb/torture-pass.txt) runs each listed
# subtest under a timeout against one embedded server (`smbiod --stay`),
# and after each checks that the server still answers `smbclient ls`. It
# fails if a listed test fails, hangs past its timeout, or leaves the
# server unable to answer: the list must only grow. `survey` runs every
# subtest of the suites and prints PASS/FAIL/TIMEOUT per test and the
# count, to find tests that newly pass (add them to the list).
#
# Needs smbtorture (Debian: samba-testsuite) and smbclient; anonymous
# access only, loopback only.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: torture.sh SMBIOD_BINARY list|survey [ARG]}
mode=${2:-list}
arg=${3:-}
per_test_timeout=${TORTURE_TIMEOUT_S:-45}
suites='^smb2\.(connect|read|rw|create|dir|getinfo|credits|compound|session|tcon|setinfo|lock|notify|oplock|scan|maxfid)\.'

for tool in smbtorture smbclient; do
  command -v "$tool" >/dev/null || { echo "torture.sh: $tool is not installed" >&2; exit 2; }
done

work=$(mktemp -d)
share="$work/share"
mkdir -p "$share"
log="$work/smbiod.log"
"$bin" --stay --serve "$share" --callers 1 --rounds 1 --size 1024 >"$log" 2>&1 &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=""
for _ in $(seq 1 100); do
  port=$(grep -o '127\.0\.0\.1:[0-9]*' "$log" | head -n 1 | cut -d: -f2)
  [ -n "$port" ] && grep -q 'serving until' "$log" && break
  kill -0 "$server" 2>/dev/null || { echo "torture.sh: smbiod exited:" >&2; cat "$log" >&2; exit 2; }
  sleep 0.1
done
[ -n "$port" ] || { echo "torture.sh: no port from smbiod" >&2; cat "$log" >&2; exit 2; }

alive() {
  timeout 15 smbclient "//127.0.0.1/share" -p "$port" -N -c ls >/dev/null 2>&1
}

# A subtest's name as smbtorture runs it: `smb2.lock.cancel.cancel` lists
# as suite.test.subtest; running `smb2.lock.cancel` runs that one.
run_one() {
  local name=$1 out rc
  out=$(timeout "$per_test_timeout" smbtorture "//127.0.0.1/share" -p "$port" -N -U% "$name" 2>&1)
  rc=$?
  if [ "$rc" = 0 ] && grep -q '^success:' <<<"$out" && ! grep -qE '^(failure|error):' <<<"$out"; then
    echo "PASS"
    return
  fi
  if [ "$rc" = 124 ]; then
    echo "TIMEOUT"
  else
    echo "FAIL"
  fi
  # A listed test that fails in CI must say why: smbtorture's last words
  # and the server's (on stderr, outside the captured result).
  if [ "$mode" = list ]; then
    {
      echo "---- $name: smbtorture (exit $rc), last lines:"
      tail -n 15 <<<"$out"
      echo "---- $name: smbiod's log, last lines:"
      tail -n 10 "$log"
    } >&2
  fi
}

case "$mode" in
  list)
    list_file=${arg:-$here/torture-pass.txt}
    mapfile -t tests < <(grep -vE '^\s*(#|$)' "$list_file")
    ;;
  survey)
    pattern=${arg:-$suites}
    mapfile -t tests < <(smbtorture --list 2>/dev/null | grep -E "$pattern" | sed -E 's/^(([^.]+\.){2}[^.]+)\..*$/\1/' | sort -u)
    ;;
  *)
    echo "torture.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac

passed=0
failed=()
dead=""
for t in "${tests[@]}"; do
  result=$(run_one "$t")
  if ! alive; then
    dead="$t"
    echo "DEAD    $t (the server stopped answering)"
    break
  fi
  printf '%-8s%s\n' "$result" "$t"
  if [ "$result" = PASS ]; then
    passed=$((passed + 1))
  else
    failed+=("$t")
  fi
done

echo "smbtorture: $passed of ${#tests[@]} passed against the embedded server"
if [ -n "$dead" ]; then
  echo "torture.sh: the server stopped answering after $dead" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
if [ "$mode" = list ] && [ "${#failed[@]}" -gt 0 ]; then
  echo "torture.sh: listed tests no longer pass: ${failed[*]}" >&2
  exit 1
fi
exit 0

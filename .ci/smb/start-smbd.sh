#!/usr/bin/env bash
# Start (or stop) a private, loopback-only Samba smbd on 127.0.0.1:4445 with a guest-writable
# [share]; the peer used by the examples/smbiod tests. Copied from the smbiod feasibility study
# (a fresh clone has no ../shared) and given a `stop` option.
#
# Usage:  start-smbd.sh            -> daemonizes, waits until port 4445 accepts, prints the PID
#         start-smbd.sh --fg       -> runs smbd in the foreground (logs to stdout)
#         start-smbd.sh stop       -> kills the smbd recorded in the pid file (no-op if none)
# Needs:  apt-get install -y samba smbclient   (Debian 12: Samba 4.17); must run as root
#         (smbd switches uid to the guest account "nobody" per connection).
# State:  everything lives under /tmp/smbtest (the paths inside smb.conf).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF="${SMB_CONF:-$HERE/smb.conf}"
BASE=/tmp/smbtest            # must match the paths inside smb.conf
PORT=4445
PIDFILE="$BASE/run/smbd.pid"

if [ "${1:-}" = "stop" ]; then
  if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    PID=$(cat "$PIDFILE")
    kill "$PID"                 # the parent takes its per-connection children with it
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    echo "smbd pid $PID stopped"
  else
    echo "smbd not running"
  fi
  exit 0
fi

command -v smbd >/dev/null || { echo "smbd missing: apt-get install -y samba smbclient" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

mkdir -p "$BASE"/{lock,state,cache,private,run/ncalrpc,bind-dns,log,share}
chmod 0755 "$BASE"
chmod 0700 "$BASE/private"
chmod 0777 "$BASE/share"          # guest account 'nobody' must be able to write
[ -e "$BASE/share/hello.txt" ] || echo "hello from samba" > "$BASE/share/hello.txt"
chmod 0666 "$BASE/share/hello.txt"

if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "smbd already running (pid $(cat "$PIDFILE")); stop it first: $0 stop" >&2; exit 1
fi

testparm -s "$CONF" >/dev/null 2>"$BASE/log/testparm.err" || { cat "$BASE/log/testparm.err" >&2; exit 1; }

if [ "${1:-}" = "--fg" ]; then
  # -F: foreground (still forks one child per connection), --debug-stdout: logs to stdout.
  # Do NOT add --no-process-group: on SIGTERM the smbd parent signals its whole process group,
  # which then includes the calling shell / test runner (seen: runner killed with 143).
  # Do NOT use -i: interactive mode serves a single connection and then exits.
  exec smbd -F --debug-stdout -s "$CONF"
fi

t0=$(date +%s.%N)
smbd -D -s "$CONF"
# wait (max 10 s) for the listener
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then break; fi
  sleep 0.1
done
t1=$(date +%s.%N)
PID=$(cat "$PIDFILE")
echo "$PID" > "$BASE/smbd.pid"
printf 'smbd pid %s listening on 127.0.0.1:%s after %.2fs (pidfile %s)\n' "$PID" "$PORT" "$(awk "BEGIN{print $t1 - $t0}")" "$PIDFILE"

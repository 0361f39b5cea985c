#!/usr/bin/env bash
# One daemon's supervisor, as systemd (Restart=always) or kubelet would be on a real node. A shell
# script rather than Node: ~3 MB each instead of ~26 MB, and the box runs one per daemon.
#   supervise.sh STATE_DIR NAME -- CMD [ARGS...]
# startDaemon (proc.ts) runs it detached in the root namespace with its output in the daemon's log; for a
# namespaced daemon CMD is `nsenter --net=/run/netns/NS -- ...` (nsenter execs: the child's pid is the
# daemon's).
# - Runs CMD (output to the log, default signal dispositions) and keeps STATE/pid/NAME.pid at its pid.
# - After any exit, restarts it 1 s later; while it keeps dying within 10 s of its start the delay
#   doubles up to 8 s. That is no hot loop, so it never gives up (`kovn status` shows restarts, last exit).
# - STATE/supervise/NAME.json: its pid, the daemon's, the restart count (carried over from an earlier
#   supervisor of the same box), its state, the last exit (read by proc.ts, see SupervisorState).
# - SIGTERM/SIGINT: SIGTERM to the daemon, SIGKILL after 10 s, then it exits (`kovn stop`, `kovn down`).
#   SIGUSR2: no more restarts; it exits once the daemon has (`kovn down` sends it first).
# - SUPERVISE_LIVENESS (environment): a command (`sh -c`) that succeeds while the daemon is alive, as a
#   kubelet liveness probe. Run every SUPERVISE_LIVENESS_EVERY s (default 10, each run bounded by that
#   long); once one has passed, SUPERVISE_LIVENESS_FAILURES (default 3) failures in a row SIGKILL the
#   daemon, which is then restarted as after any exit (for a daemon that runs but no longer serves).
# - One supervisor per NAME: it holds flock(2) on STATE/supervise/NAME.lock (freed by the kernel when it
#   dies, whatever kills it); a second one exits with code 3.
set -u
if [ $# -lt 4 ] || [ "$3" != -- ]; then
  echo 'usage: supervise.sh STATE_DIR NAME -- CMD [ARGS...]' >&2
  exit 2
fi
state=$1 name=$2
shift 3
pidf=$state/pid/$name.pid
sf=$state/supervise/$name.json
readonly FIRST_MS=1000 MAX_MS=8000 STABLE_MS=10000 GRACE_S=10

note() {
  local now
  TZ=UTC0 printf -v now '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  printf -- '--- %s supervisor of %s: %s\n' "$now" "$name" "$1"
}

exec 9>>"$state/supervise/$name.lock"
if ! flock -n 9; then
  note 'another supervisor runs it; exiting'
  exit 3
fi

restarts=0 last=null
if [ -r "$sf" ]; then
  s=$(<"$sf")
  [[ $s =~ \"restarts\":([0-9]+) ]] && restarts=${BASH_REMATCH[1]}
  [[ $s =~ \"lastExit\":(\"[^\"]*\") ]] && last=${BASH_REMATCH[1]}
fi
# save PID CHILD STATE: the state file, whole or not at all.
save() {
  printf '{"pid":%s,"child":%s,"restarts":%d,"state":"%s","lastExit":%s}\n' "$1" "$2" "$restarts" "$3" "$last" >"$sf.$$.tmp" &&
    mv -f "$sf.$$.tmp" "$sf"
}
save $$ null starting

stopping=0 draining=0 child='' napper='' prober=''
every=${SUPERVISE_LIVENESS_EVERY:-10} failures=${SUPERVISE_LIVENESS_FAILURES:-3}

# probe PID: the liveness loop for one run of the daemon (in the background, killed when it exits).
# Failures count only once a probe has passed (a slow start is the start-up check's business), and
# each probe is bounded by the period, so a hanging probe is a failure, never a stuck loop.
probe() {
  local pid=$1 failed=0 passed=0 job=''
  trap '[ -n "$job" ] && kill "$job" 2>/dev/null; exit 0' TERM
  while :; do
    sleep "$every" 9>&- &
    job=$!
    wait "$job"
    job=''
    kill -0 "$pid" 2>/dev/null || return
    timeout -k 2 "$every" sh -c "$SUPERVISE_LIVENESS" >/dev/null 2>&1 9>&- </dev/null &
    job=$!
    if wait "$job"; then
      job='' failed=0 passed=1
      continue
    fi
    job=''
    [ $passed = 1 ] || continue
    failed=$((failed + 1))
    note "liveness probe failed ($failed/$failures)"
    if ((failed >= failures)); then
      note "not alive: SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      return
    fi
  done
}

stop() {
  [ $stopping = 1 ] && return
  stopping=1
  note "$1: stopping"
  [ -n "$prober" ] && kill "$prober" 2>/dev/null
  prober=''
  [ -n "$napper" ] && kill "$napper" 2>/dev/null
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
}
trap 'stop SIGTERM' TERM
trap 'stop SIGINT' INT
trap 'draining=1; note "restarts off (kovn down)"; [ -n "$napper" ] && kill "$napper" 2>/dev/null' USR2

# Once told to stop: wait for the daemon, SIGKILL after the grace (kube-apiserver can hang on TERM).
reap() {
  local i
  for ((i = 0; i < GRACE_S * 5; i++)); do
    kill -0 "$child" 2>/dev/null || return 0
    sleep 0.2 9>&-
  done
  note "still running after ${GRACE_S}s: SIGKILL"
  kill -KILL "$child" 2>/dev/null
}

delay=$((FIRST_MS / 2))
while [ $stopping = 0 ] && [ $draining = 0 ]; do
  t0=${EPOCHREALTIME/./}
  # A subshell that execs: no extra process, and SIGINT/SIGQUIT not ignored as bash does for `cmd &`.
  (trap - INT QUIT; exec "$@") 9>&- </dev/null &
  child=$!
  printf '%s\n' "$child" >"$pidf.$$.tmp" && mv -f "$pidf.$$.tmp" "$pidf"
  save $$ "$child" running
  [ $stopping = 1 ] && kill -TERM "$child" 2>/dev/null # told to stop while it was being started
  if [ -n "${SUPERVISE_LIVENESS:-}" ]; then
    probe "$child" 9>&- &
    prober=$!
  fi
  while :; do
    wait "$child" 2>/dev/null # (bash's own "Killed" notice: the note below says it)
    rc=$?
    kill -0 "$child" 2>/dev/null || break # else a signal woke us up, and it still runs
    [ $stopping = 1 ] && reap
  done
  # Gone: a stop during the backoff must not signal its pid, which the kernel may hand to another process.
  [ -n "$prober" ] && kill "$prober" 2>/dev/null
  prober=''
  gone=$child child=''
  up=$(((${EPOCHREALTIME/./} - t0) / 1000))
  if ((rc > 128)); then how="signal SIG$(kill -l $((rc - 128)))"; else how="exit code $rc"; fi
  TZ=UTC0 printf -v at '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  printf -v last '"%s after %d.%ds at %s"' "$how" $((up / 1000)) $((up % 1000 / 100)) "$at"
  [ $stopping = 1 ] || [ $draining = 1 ] && break
  if ((up >= STABLE_MS)); then delay=$FIRST_MS; else delay=$((delay * 2 > MAX_MS ? MAX_MS : delay * 2)); fi
  restarts=$((restarts + 1))
  save $$ null backoff
  note "exited (${last//\"/}); restart #$restarts in $((delay / 1000))s"
  sleep $((delay / 1000)) 9>&- &
  napper=$!
  wait "$napper"
  kill "$napper" 2>/dev/null
  napper=''
done

# The pidfile names the daemon only while it may run (unless it names someone else's by now).
[ "$(cat "$pidf" 2>/dev/null)" = "$gone" ] && rm -f "$pidf"
save null null stopped
note stopped

# Sourced by scripts/test and .ci/run: named steps, each timed, with a table of durations at
# the end so that a slow step shows in every log.
#
#   step NAME COMMAND...        runs COMMAND now; a failure stops the script
#   step_bg NAME COMMAND...     starts COMMAND in the background (output to a log, shown when
#                               it ends); step_wait waits for every one and fails if any did;
#                               steps_stop_bg stops those still running (in an exit trap)
#
# The outermost script owns the table: nested scripts append to the same file, so .ci/run's
# table includes scripts/test's steps.

if [[ -z ${SWITCHBOARD_STEP_LOG:-} ]]; then
  SWITCHBOARD_STEP_LOG=$(mktemp)
  export SWITCHBOARD_STEP_LOG
  STEPS_OWNER=1
fi
STEPS_BG_PIDS=()
STEPS_BG_NAMES=()
STEPS_BG_LOGS=()

step() {
  local name=$1 start=$SECONDS status=0
  shift
  printf '\n== %s\n' "$name"
  "$@" || status=$?
  printf '%s\t%s\t%s\n' "$((SECONDS - start))" "$([[ $status -eq 0 ]] && echo ok || echo FAILED)" "$name" \
    >>"$SWITCHBOARD_STEP_LOG"
  if [[ $status -ne 0 ]]; then
    printf '\n== step failed: %s (exit %s)\n' "$name" "$status" >&2
    return "$status"
  fi
}

step_bg() {
  local name=$1 log
  shift
  log=$(mktemp)
  printf '\n== %s (started in the background)\n' "$name"
  (step "$name" "$@") >"$log" 2>&1 &
  STEPS_BG_PIDS+=("$!")
  STEPS_BG_NAMES+=("$name")
  STEPS_BG_LOGS+=("$log")
}

step_wait() {
  local i failed=0
  for i in "${!STEPS_BG_PIDS[@]}"; do
    wait "${STEPS_BG_PIDS[$i]}" || failed=1
    printf '\n== output of %s\n' "${STEPS_BG_NAMES[$i]}"
    cat "${STEPS_BG_LOGS[$i]}"
    rm -f "${STEPS_BG_LOGS[$i]}"
  done
  STEPS_BG_PIDS=()
  STEPS_BG_NAMES=()
  STEPS_BG_LOGS=()
  return "$failed"
}

# Stops the background steps still running (after a failure elsewhere), children first.
steps_stop_bg() {
  local pid
  for pid in "${STEPS_BG_PIDS[@]}"; do steps_kill_tree "$pid"; done
}

steps_kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do steps_kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}

steps_report() {
  [[ -n ${STEPS_OWNER:-} && -f $SWITCHBOARD_STEP_LOG ]] || return 0
  printf '\n== step times (seconds; background steps overlap)\n'
  awk -F '\t' '{ printf "%6d  %-6s  %s\n", $1, $2, $3 }' "$SWITCHBOARD_STEP_LOG"
  printf '%6d  total\n' "$SECONDS"
  rm -f "$SWITCHBOARD_STEP_LOG"
}

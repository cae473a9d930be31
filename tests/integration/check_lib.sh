# Shared by every test script: the two ways to fail. fail records a failure in FAILED and
# the script goes on, so that it reports each failure, not only the first, to end with
#   ((FAILED == 0)) && echo "PASS"
#   exit "$FAILED"
# die reports and exits at once, for scripts whose steps each feed the next (collector_lib).
# work_setup makes the work directory WORK and the EXIT trap that cleans up after the script.
#
# shellcheck shell=bash
# shellcheck disable=SC2034 # WORK and FAILED are read by the scripts that source this

FAILED=0
fail() {
    echo "FAIL: $*" >&2
    FAILED=1
}
die() {
    echo "FAIL: $*" >&2
    exit 1
}
pass() { echo "ok: $*"; }

WORK=""
WORK_CLEANUP=""
# WORK_KEEP_FAILED=1: a failed run keeps WORK (the logs in it) and says where.
WORK_KEEP_FAILED=0

# work_setup CLEANUP [MKTEMP_ARGS...]: WORK=$(mktemp -d MKTEMP_ARGS...); on exit the function
# CLEANUP (the script's own steps, e.g. netns_cleanup; "" for none) runs first, then WORK
# goes, and the script still exits with its own status. Call it after netns_setup, which
# installs a trap of its own.
work_setup() {
    WORK_CLEANUP=$1
    WORK=$(mktemp -d "${@:2}")
    trap work_cleanup EXIT
    trap 'exit 130' INT TERM
}

work_cleanup() {
    local rc=$?
    if [[ -n $WORK_CLEANUP ]]; then "$WORK_CLEANUP" || true; fi
    if [[ -n $WORK ]]; then
        if ((rc != 0 && WORK_KEEP_FAILED)); then
            echo "(logs kept in $WORK)" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

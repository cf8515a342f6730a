# shellcheck shell=bash
# The shell test suites' one set of case and assert helpers (tests/init-scripts/run-tests.sh,
# tests/puppet/run-tests.sh). Sourced; bash. The suite defines begin NAME (sets CASE_DIR and
# whatever a case needs, after case_reset) and, optionally, after_case; run_cases does the rest.
# A failed assert marks the case failed and the case goes on, so one run lists every failure.
#
#   FILTER      only the cases whose name contains it (the suite's first argument)
#   OUT, RC     the output file and exit status of the last command a case ran
#   CASE_NOTE   appended to a failed case's line (where its files are)

# `printf ... | assert_file`: without lastpipe the assertion runs in a subshell and a
# failure it records (CASE_OK=0) is lost, so the case passes whatever it checked.
# (Takes effect in the sourcing script: sourced files share its shell options.)
shopt -s lastpipe

PASSED=0 FAILED=0 SKIPPED=0
FAILED_CASES=()
CASE="" CASE_DIR="" CASE_OK=1 OUT="" RC=0 CASE_NOTE=""
FILTER=${FILTER:-}

case_reset() { CASE=$1 CASE_OK=1; }
selected() { [ -z "$FILTER" ] || [[ $1 == *"$FILTER"* ]]; }

fail() {
    echo "    FAIL: $*"
    CASE_OK=0
}

end() {
    if [ "$CASE_OK" = 1 ]; then
        PASSED=$((PASSED + 1))
        echo "PASS $CASE"
    else
        FAILED=$((FAILED + 1))
        FAILED_CASES+=("$CASE")
        echo "FAIL $CASE (files in $CASE_DIR$CASE_NOTE)"
    fi
}

assert_rc() { [ "$RC" = "$1" ] || fail "exit status $RC, expected $1"; }

# assert_out LINE: the last run printed LINE exactly (a whole line).
assert_out() { grep -qxF -- "$1" "$OUT" || fail "output lacks line: $1"; }
assert_out_re() { grep -qE -- "$1" "$OUT" || fail "output matches no /$1/"; }
refute_out_re() { ! grep -qE -- "$1" "$OUT" || fail "output unexpectedly matches /$1/"; }

# assert_file PATH (expected content on stdin, compared byte for byte)
assert_file() {
    local path=$1 exp
    exp=$(mktemp "$CASE_DIR/expected.XXXXXX")
    cat >"$exp"
    if [ ! -f "$path" ]; then
        fail "missing file $path"
    elif ! cmp -s "$exp" "$path"; then
        fail "content of $path differs (expected < > actual):"
        diff "$exp" "$path" | sed 's/^/        /' | head -n 40
    fi
}

# assert_mode PATH 'MODE UID' (octal mode as stat %a, numeric owner)
assert_mode() {
    local m
    m=$(stat -c '%a %u' "$1" 2>/dev/null) || { fail "missing file $1"; return; }
    [ "$m" = "$2" ] || fail "mode/owner of $1 is '$m', expected '$2'"
}

assert_absent() { [ ! -e "$1" ] || fail "$1 should not exist"; }
assert_present() { [ -e "$1" ] || fail "$1 should exist"; }

# run_cases SUITE FUNCTION...: each selected t_NAME as case NAME, then the summary line;
# returns 1 when a case failed.
run_cases() {
    local suite=$1 c name
    shift
    for c in "$@"; do
        name=${c#t_}
        if ! selected "$name"; then
            SKIPPED=$((SKIPPED + 1))
            continue
        fi
        begin "$name"
        "$c"
        if declare -F after_case >/dev/null; then after_case; fi
        end
    done
    echo
    echo "$suite: $PASSED passed, $FAILED failed, $SKIPPED skipped"
    if [ "$FAILED" -ne 0 ]; then
        printf 'failed: %s\n' "${FAILED_CASES[@]}"
        return 1
    fi
    return 0
}

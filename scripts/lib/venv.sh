# Sourced by scripts/crawl and scripts/test: the project's virtualenv in .venv/.
# Idempotent: packages are installed only when the requirements files changed.

PROJECT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$PROJECT_ROOT/.venv"
# Service data (databases, logs, the CKAN virtualenv) lives under one ignored folder.
SERVICES_DIR="${CKANCRAWL_SERVICES_DIR:-$PROJECT_ROOT/.services}"
export PROJECT_ROOT VENV SERVICES_DIR

die() { echo "error: $*" >&2; exit 1; }

# ensure_venv REQUIREMENTS_FILE: create .venv and install REQUIREMENTS_FILE if needed.
ensure_venv() {
    local reqs="$PROJECT_ROOT/$1"
    command -v python3 >/dev/null || die "python3 is not installed; install Python 3.11 (apt-get install -y python3 python3-venv)."
    if [ ! -x "$VENV/bin/python" ]; then
        echo "Creating the virtualenv in $VENV"
        python3 -m venv "$VENV" || die "could not create $VENV; on Debian install python3-venv (apt-get install -y python3-venv)."
    fi
    local stamp="$VENV/.installed-$(basename "$reqs")"
    local want
    want=$(cat "$PROJECT_ROOT"/requirements*.txt "$PROJECT_ROOT/setup.py" | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "Installing Python packages from $(basename "$reqs")"
        "$VENV/bin/pip" install --disable-pip-version-check -q -r "$reqs" \
            || die "pip could not install $(basename "$reqs"); check that PyPI is reachable."
        echo "$want" > "$stamp"
    fi
}

# Sourced by scripts/test after scripts/lib/venv.sh: what the test catalog needs outside
# the project's own .venv. The Debian packages for PostgreSQL 15 and Redis, and a
# separate virtualenv for CKAN 2.11 (CKAN pins versions that conflict with ours).
# Idempotent: apt runs only when something is missing, pip only when the pins changed.

CKAN_VENV="$SERVICES_DIR/ckan-venv"
CKAN_PINS=("ckan[requirements]==2.11.6" "ckanext-scheming==3.1.0" "gunicorn==27.0.1")
PG_BIN=/usr/lib/postgresql/15/bin
export CKAN_VENV

# ensure_system_packages: install the Debian packages the test services need, if missing.
ensure_system_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    [ -x "$PG_BIN/postgres" ] || missing+=(postgresql-15)
    command -v psql >/dev/null || missing+=(postgresql-client-15)
    # psycopg2 (a CKAN pin) is built from source: it needs a compiler, libpq and Python headers.
    command -v pg_config >/dev/null || missing+=(libpq-dev)
    command -v gcc >/dev/null || missing+=(gcc)
    [ -f "/usr/include/python3.11/Python.h" ] || missing+=(python3-dev)
    # Debian's Chromium renders JavaScript pages in the rendering tests (ckancrawl/rendering/).
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]}; install them as root (apt-get install -y ${missing[*]})."
    echo "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    mkdir -p "$SERVICES_DIR"
    local log="$SERVICES_DIR/apt.log"
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } </dev/null >"$log" 2>&1 \
        || { tail -20 "$log" >&2; die "apt-get could not install ${missing[*]} (log: $log)"; }
}

# ensure_ckan_venv: create $CKAN_VENV with CKAN_PINS, rebuilding it when the pins change.
ensure_ckan_venv() {
    local stamp="$CKAN_VENV/.installed-pins"
    local want
    want=$(printf '%s\n' "${CKAN_PINS[@]}" | sha256sum | cut -d' ' -f1)
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
    echo "Installing CKAN into $CKAN_VENV (about 30 s): ${CKAN_PINS[*]}"
    # A half-installed or differently pinned venv is not worth patching: start clean.
    rm -rf "$CKAN_VENV"
    mkdir -p "$SERVICES_DIR"
    python3 -m venv "$CKAN_VENV" || die "could not create $CKAN_VENV; install python3-venv."
    "$CKAN_VENV/bin/pip" install --disable-pip-version-check -q "${CKAN_PINS[@]}" \
        || die "pip could not install ${CKAN_PINS[*]} into $CKAN_VENV; check that PyPI is reachable."
    echo "$want" > "$stamp"
}

# Sourced by scripts/crawl after scripts/lib/venv.sh: the embedded MongoDB-wire server
# (SecantusDB, from requirements.txt) used when MONGODB_URI is not set.
#
# One server per data directory, on 127.0.0.1 only. Crawls that run at the same time
# share it: each registers its pid under users/, and the last one to leave stops the
# server. The server runs in its own session, so Ctrl-C in the terminal reaches the
# crawl (which then stops gracefully and writes its last batch) but not the database.

MONGO_DIR="$SERVICES_DIR/mongodb"
MONGO_DATA="$MONGO_DIR/data"
MONGO_LOG="$MONGO_DIR/secantusd.log"
MONGO_PIDFILE="$MONGO_DIR/secantusd.pid"
MONGO_PORTFILE="$MONGO_DIR/secantusd.port"
MONGO_USERS="$MONGO_DIR/users"
export MONGO_DIR MONGO_DATA

# _mongo_server_pid: print the pid of the server running on MONGO_DATA, if there is one.
_mongo_server_pid() {
    local pid
    pid=$(cat "$MONGO_PIDFILE" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # The pid may have been reused by another program since the pid file was written.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--storage-path $MONGO_DATA " || return 1
    echo "$pid"
}

_mongo_free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# _mongo_wait PID PORT: wait until the server answers a ping (at most 30 s).
_mongo_wait() {
    local pid=$1 port=$2 i
    for i in $(seq 300); do
        kill -0 "$pid" 2>/dev/null \
            || die "the embedded MongoDB (secantusd-py) exited at start; see $MONGO_LOG"
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            "$VENV/bin/python" - "$port" <<'EOF' && return 0
import sys
from pymongo import MongoClient
uri = f"mongodb://127.0.0.1:{sys.argv[1]}/?directConnection=true"
MongoClient(uri, serverSelectionTimeoutMS=5000).admin.command("ping")
EOF
        fi
        sleep 0.1
    done
    die "the embedded MongoDB did not answer on 127.0.0.1:$port within 30 s; see $MONGO_LOG"
}

# _mongo_lock: serialize start and stop between crawls (released when the shell exits
# or by _mongo_unlock).
_mongo_lock() {
    mkdir -p "$MONGO_DATA" "$MONGO_USERS"
    exec 9>"$MONGO_DIR/.lock"
    flock 9
}
_mongo_unlock() { exec 9>&-; }

# mongo_acquire: start the embedded server, or reuse the one already running on the same
# data, and export MONGODB_URI. A fixed port can be asked for with CKANCRAWL_MONGODB_PORT.
mongo_acquire() {
    command -v flock >/dev/null || die "flock is missing; install util-linux (apt-get install -y util-linux)."
    _mongo_lock
    local pid port
    if pid=$(_mongo_server_pid); then
        port=$(cat "$MONGO_PORTFILE")
        echo "Reusing the embedded MongoDB already running on this data (pid $pid)."
    else
        port="${CKANCRAWL_MONGODB_PORT:-$(_mongo_free_port)}"
        setsid "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" \
            --storage-path "$MONGO_DATA" --log-level WARNING </dev/null >>"$MONGO_LOG" 2>&1 9>&- &
        pid=$!
        echo "$pid" >"$MONGO_PIDFILE"
        echo "$port" >"$MONGO_PORTFILE"
        _mongo_wait "$pid" "$port"
    fi
    touch "$MONGO_USERS/$$"
    _mongo_unlock
    export MONGODB_URI="mongodb://127.0.0.1:$port/?directConnection=true"
}

# mongo_release: this crawl is done with the server; stop it if no other crawl uses it.
mongo_release() {
    [ -d "$MONGO_USERS" ] || return 0
    _mongo_lock
    rm -f "$MONGO_USERS/$$"
    local user pid i
    for user in "$MONGO_USERS"/*; do
        [ -e "$user" ] || continue
        if kill -0 "${user##*/}" 2>/dev/null; then
            _mongo_unlock
            return 0
        fi
        rm -f "$user"  # a crawl that died without cleaning up
    done
    if pid=$(_mongo_server_pid); then
        kill -TERM "$pid"
        for i in $(seq 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$MONGO_PIDFILE" "$MONGO_PORTFILE"
    _mongo_unlock
}

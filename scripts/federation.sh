#!/usr/bin/env bash
# scripts/federation.sh -- a whole fedlingua federation on this host, with Flower's own processes.
#
# One `flower-superlink` and one `flower-supernode` per client site, on loopback
# (127.0.0.1) with distinct ports, everything recorded in a run folder. Secure by
# default: TLS on every connection (a local CA, generated here with openssl) and
# SuperNode authentication (only nodes whose public keys were registered with the
# SuperLink may join; any other node is refused). `--insecure` turns both off and
# says so loudly. For machines on a network see README.md, "Running across machines".
#
#   scripts/federation.sh up [--nodes N] [--node-data DIR_1,...,DIR_N] [--config RUN.toml]
#                            [--dir DIR] [--port BASE] [--isolation worker|subprocess]
#                            [--fault I=KIND]... [--insecure]
#       Generates (or reuses) the CA, the certificates and one EC P-384 key pair per node in
#       DIR, starts the SuperLink on BASE (default 9091), registers the nodes' public keys,
#       starts SuperNode i (Runtime API on BASE+1+i) and returns when all N are online.
#       --node-data gives node i its own data folder (node config data-dir=DIR_i, the
#       folder-source layout holding that site's language(s)): each node reads only its
#       folder, and the coordinator reads none. Without it, node i plays partition i of the
#       run config's whole dataset (every node reads all of it: a trial on one machine).
#       --config is the fedlingua run config `run` uses by default.
#       --isolation worker (default): each SuperNode runs `--isolation process` with one
#       long-running ClientApp worker (fedlingua.flower_app.worker), so rounds do not pay a
#       fresh process, imports and model load; subprocess: Flower's default, one
#       `flwr-clientapp` process per message. --fault I=KIND makes node I corrupt its
#       replies (fault injection for tests, see fedlingua/federation/faults.py).
#   scripts/federation.sh run [--dir DIR] [--config RUN.toml] [--overrides "k=v; k=v"]
#                             [--resume RUN_DIR] [--timeout S]
#       `flwr run` of the fedlingua Flower App on this federation, streaming its log until
#       the run ends. --resume continues a run directory after its last checkpoint (after
#       the server died). Exit status 0 only if the run finished:completed.
#   scripts/federation.sh status [--dir DIR]      what runs: pids, ports, nodes online
#   scripts/federation.sh certs [--san NAME]... [--dir DIR]
#       Only make (or keep) the CA and the certificates in DIR/tls, the SuperLink's with the
#       extra subject alternative names (DNS names or IPs the sites use to reach it); for
#       machines on a network (README.md, "Running across machines"). `up` takes --san too.
#   scripts/federation.sh down [--dir DIR]        stop everything `up` (or `restart`) started
#   scripts/federation.sh stop superlink|node-I [--dir DIR]      stop one component
#   scripts/federation.sh kill superlink|node-I [--dir DIR]      crash drill: SIGKILL it
#   scripts/federation.sh restart superlink|node-I [--fault I=KIND] [--dir DIR]
#       (re)start one component; --fault I=KIND replaces node I's fault for this start
#       (--fault I= starts it without one); without --fault, the faults given to `up`.
#
# Trust boundaries: umask 077 (everything created is 0700/0600); the SuperLink runs in
# process isolation and only the SuperExec holding its secret (keys/superlink.superexec)
# gets its tasks, likewise each node's worker (keys/node-I.superexec); bin/ holds the
# guarded flwr-serverapp / flwr-clientapp (fedlingua.flower_app.guard), first on PATH, so
# only fedlingua's own apps ever run; each node has its own runtime-I certificate; run
# configs are read only from FEDLINGUA_CONFIG_DIRS (configs/ and the --config's folder).
#
# DIR defaults to $FEDLINGUA_FEDERATION_DIR or runs/federation. Inside it: tls/ (CA,
# server and runtime certificates), keys/ (node key pairs), pids/, logs/, homes/ (a
# FLWR_HOME per process: the CLI's holds config.toml with the connection "fedlingua"),
# state/superlink.db (the SuperLink's state: registrations survive a restart) and
# federation.env (the settings). Processes run with one torch thread
# (FEDLINGUA_THREADS=1), runtime dependency installation off, offline.
set -euo pipefail
umask 077  # everything this script and its processes create: 0700 folders, 0600 files

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FEDLINGUA_BIN:-$REPO/.venv/bin}"
[[ -x "$BIN/flower-superlink" ]] || BIN="$(dirname "$(command -v flower-superlink || echo /nonexistent/x)")"
PY="$BIN/python"
[[ -x "$PY" ]] || PY="$(command -v python3)"

export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 FLWR_TELEMETRY_ENABLED=0
export FLWR_DISABLE_UPDATE_CHECK=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false RAY_USAGE_STATS_ENABLED=0
export FEDLINGUA_THREADS="${FEDLINGUA_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export PATH="$BIN:$PATH"

die() { echo "federation.sh: $*" >&2; exit 1; }
say() { echo "federation.sh: $*"; }

# ---- arguments ------------------------------------------------------------------------------
CMD="${1:-}"; shift || true
TARGET=""
if [[ "$CMD" == stop || "$CMD" == restart || "$CMD" == kill ]]; then TARGET="${1:-}"; shift || true; fi
DIR="${FEDLINGUA_FEDERATION_DIR:-$REPO/runs/federation}"
RESTART_WINDOW="${FEDLINGUA_NODE_RESTART_WINDOW:-150}"
NODES="" CONFIG="" PORT="" ISOLATION="" INSECURE="" OVERRIDES="" RESUME="" TIMEOUT="" NODE_DATA=""
SANS=() FAULTS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --nodes) NODES="$2"; shift 2 ;;
    --node-data) NODE_DATA="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --isolation) ISOLATION="$2"; shift 2 ;;
    --fault) FAULTS+=("$2"); shift 2 ;;
    --san) SANS+=("$2"); shift 2 ;;
    --insecure) INSECURE=1; shift ;;
    --overrides) OVERRIDES="$2"; shift 2 ;;
    --resume) RESUME="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,56p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
abspath() { [[ -z "$1" ]] && return 0; [[ "$1" = /* ]] && echo "$1" || echo "$PWD/$1"; }
CONFIG="$(abspath "$CONFIG")"
RESUME="$(abspath "$RESUME")"

ENVFILE="$DIR/federation.env"
load_settings() {
  [[ -f "$ENVFILE" ]] || die "no federation in $DIR (run: scripts/federation.sh up --dir $DIR)"
  # shellcheck disable=SC1090
  source "$ENVFILE"
  export FEDLINGUA_CONFIG_DIRS="${CONFIG_DIRS:-}"
  write_guards
}

# ---- processes ------------------------------------------------------------------------------
pidfile() { echo "$DIR/pids/$1.pid"; }
running() {  # a live process (a zombie whose parent has not reaped it yet does not count)
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z* ]]
}
alive() { local f; f="$(pidfile "$1")"; [[ -f "$f" ]] && running "$(cat "$f")"; }

descendants() {  # all live descendants of pid $1 (children first found, recursively)
  local kids
  kids="$(ps -e -o pid=,ppid= | awk -v p="$1" '$2 == p {print $1}')"
  for k in $kids; do echo "$k"; descendants "$k"; done
}

stop_components() {  # stop_components SIG NAME...: signal each component's process group and
  # every descendant at once, wait up to 10 s for all of them, then SIGKILL what is left
  local sig="$1" name f pid pids="" names=""
  shift
  for name in "$@"; do
    f="$(pidfile "$name")"
    [[ -f "$f" ]] || continue
    pid="$(cat "$f")"
    if running "$pid"; then
      pids="$pids $pid $(descendants "$pid" | tr '\n' ' ')"
      kill "-$sig" -- "-$pid" 2>/dev/null || true
      names="$names $name(pid $pid)"
    fi
    rm -f "$f"
  done
  [[ -n "$pids" ]] || return 0
  # shellcheck disable=SC2086
  kill "-$sig" $pids 2>/dev/null || true
  for _ in $(seq 50); do
    local left=""
    for p in $pids; do running "$p" && left="$left $p"; done
    [[ -z "$left" ]] && break
    sleep 0.2
  done
  for p in $pids; do { running "$p" && kill -KILL "$p"; } 2>/dev/null || true; done
  say "stopped$names with SIG$sig"
}
stop_component() {  # the SuperLink goes with its SuperExec
  if [[ "$1" == superlink ]]; then stop_components "${2:-TERM}" superlink superexec
  else stop_components "${2:-TERM}" "$1"; fi
}

write_guards() {  # fedlingua's guarded flwr-serverapp / flwr-clientapp, first on PATH: only
  # fedlingua's own apps run, whatever app package a `flwr run` caller sends
  mkdir -p "$DIR/bin"
  local kind
  for kind in serverapp clientapp; do
    printf '#!/usr/bin/env bash\nexec %q -m fedlingua.flower_app.guard %s "$@"\n' "$PY" "$kind" \
      > "$DIR/bin/flwr-$kind"
    chmod 700 "$DIR/bin/flwr-$kind"
  done
  export PATH="$DIR/bin:$PATH"
}

config_dirs() {  # the folders a run's fedlingua-config may be read from (FEDLINGUA_CONFIG_DIRS)
  local dirs="${CONFIG_DIRS:-${FEDLINGUA_CONFIG_DIRS:-}}"
  dirs="${dirs:+$dirs:}$REPO/configs"
  [[ -n "$CONFIG" ]] && dirs="$dirs:$(dirname "$CONFIG")"
  CONFIG_DIRS="$dirs"
  export FEDLINGUA_CONFIG_DIRS="$CONFIG_DIRS"
}

launch() {  # launch NAME CMD...: a new session (pid = process group), log and pid recorded
  local name="$1"; shift
  mkdir -p "$DIR/pids" "$DIR/logs"
  setsid "$@" >>"$DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile "$name")"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_free() { ! port_open "$1"; }

flwr_cli() { FLWR_HOME="$DIR/homes/cli" "$BIN/flwr" "$@"; }

# ---- security material ----------------------------------------------------------------------
make_tls() {
  local t="$DIR/tls"
  mkdir -p "$t"; chmod 700 "$t"
  if [[ ! -f "$t/ca.crt" ]]; then
    openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 30 -keyout "$t/ca.key" \
      -out "$t/ca.crt" -subj "/CN=fedlingua federation CA" >/dev/null 2>&1
  fi
  local san="IP:127.0.0.1,DNS:localhost"
  for s in "${SANS[@]+"${SANS[@]}"}"; do
    if [[ "$s" =~ ^[0-9.]+$ || "$s" == *:* ]]; then san="$san,IP:$s"; else san="$san,DNS:$s"; fi
  done
  cert() {  # cert NAME SAN: a server certificate signed by the CA
    [[ -f "$t/$1.pem" ]] && return 0
    openssl req -newkey rsa:3072 -nodes -sha256 -keyout "$t/$1.key" -out "$t/$1.csr" \
      -subj "/CN=$1" >/dev/null 2>&1
    printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
      "$2" > "$t/$1.ext"
    openssl x509 -req -in "$t/$1.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
      -days 30 -sha256 -out "$t/$1.pem" -extfile "$t/$1.ext" >/dev/null 2>&1
    rm -f "$t/$1.csr" "$t/$1.ext"
  }
  cert superlink "$san"              # the SuperLink's Fleet/Control/Runtime port
  local i
  for i in $(seq 0 $((${NODES:-0} - 1))); do  # each SuperNode's local Runtime API: its own key
    cert "runtime-$i" "IP:127.0.0.1,DNS:localhost"
  done
  chmod 600 "$t"/*.key
}

make_secret() {  # make_secret NAME: a SuperExec shared secret (32 random bytes), 0600: only
  # the process holding it may acquire the node's tasks from its Runtime API
  local f="$DIR/keys/$1.superexec"
  mkdir -p "$DIR/keys"; chmod 700 "$DIR/keys"
  [[ -f "$f" ]] || head -c 32 /dev/urandom > "$f"
  chmod 600 "$f"
}

make_node_key() {  # an EC P-384 key pair in OpenSSH format, what SuperNode auth uses
  local k="$DIR/keys/node-$1"
  mkdir -p "$DIR/keys"; chmod 700 "$DIR/keys"
  [[ -f "$k" ]] && return 0
  if command -v ssh-keygen >/dev/null; then
    ssh-keygen -q -t ecdsa -b 384 -N "" -C "fedlingua-node-$1" -f "$k"
  else
    "$PY" - "$k" <<'EOF'
import sys
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP384R1())
path = sys.argv[1]
open(path, "wb").write(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.OpenSSH, s.NoEncryption()))
pub = key.public_key().public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH)
open(path + ".pub", "wb").write(pub + b"\n")
EOF
  fi
  chmod 600 "$k"
}

write_connection() {
  mkdir -p "$DIR/homes/cli"
  {
    printf '[superlink]\ndefault = "fedlingua"\n\n[superlink.fedlingua]\n'
    printf 'address = "127.0.0.1:%s"\n' "$PORT"
    if [[ -n "$INSECURE" ]]; then printf 'insecure = true\n'
    else printf 'root-certificates = "%s"\n' "$DIR/tls/ca.crt"; fi
  } > "$DIR/homes/cli/config.toml"
}

# ---- components -----------------------------------------------------------------------------
start_superlink() {
  # process isolation: the SuperLink runs no app process itself and hands a ServerApp task
  # only to the holder of its SuperExec secret: our own flower-superexec, which starts the
  # guarded `flwr-serverapp` first on PATH (write_guards): only fedlingua's ServerApp runs
  make_secret superlink
  local args=(--host 127.0.0.1 --port "$PORT" --database "$DIR/state/superlink.db"
              --disable-runtime-dependency-installation --isolation process
              --superexec-auth-secret-file "$DIR/keys/superlink.superexec")
  local exec_args=(--runtime-api-address "127.0.0.1:$PORT"
                   --superexec-auth-secret-file "$DIR/keys/superlink.superexec")
  if [[ -n "$INSECURE" ]]; then args+=(--insecure); exec_args+=(--insecure)
  else
    args+=(--ssl-ca-certfile "$DIR/tls/ca.crt" --ssl-certfile "$DIR/tls/superlink.pem"
           --ssl-keyfile "$DIR/tls/superlink.key" --enable-supernode-auth)
    exec_args+=(--root-certificates "$DIR/tls/ca.crt")
  fi
  mkdir -p "$DIR/state" "$DIR/homes/superlink"
  (cd "$REPO" && export FLWR_HOME="$DIR/homes/superlink" && launch superlink "$BIN/flower-superlink" "${args[@]}")
  for _ in $(seq 150); do
    if port_open "$PORT"; then
      (cd "$REPO" && export FLWR_HOME="$DIR/homes/superlink" && launch superexec \
        "$BIN/flower-superexec" "${exec_args[@]}" --parent-pid "$(cat "$(pidfile superlink)")")
      say "SuperLink up on 127.0.0.1:$PORT (pid $(cat "$(pidfile superlink)"); SuperExec pid $(cat "$(pidfile superexec)"))"
      return 0
    fi
    alive superlink || die "the SuperLink exited: see $DIR/logs/superlink.log"
    sleep 0.2
  done
  die "the SuperLink did not open port $PORT: see $DIR/logs/superlink.log"
}

register_nodes() {
  [[ -n "$INSECURE" ]] && return 0
  local listed
  listed="$(flwr_cli supernode ls fedlingua --format json 2>/dev/null || true)"
  for i in $(seq 0 $((NODES - 1))); do
    local out
    if out="$(flwr_cli supernode register "$DIR/keys/node-$i.pub" fedlingua --name "node-$i" 2>&1)"; then
      say "registered node-$i's public key"
    elif grep -qi "already" <<<"$out$listed"; then
      say "node-$i's public key was already registered"
    else
      echo "$out" >&2; die "could not register node-$i"
    fi
  done
}

node_fault() {  # the fault spec given for node $1, if any (the first given wins)
  for f in "${FAULTS[@]+"${FAULTS[@]}"}"; do
    [[ "${f%%=*}" == "$1" ]] && { echo "${f#*=}"; return 0; }
  done
  return 0
}

start_node() {
  local i="$1" rport=$((PORT + 1 + i)) fault
  port_free "$rport" || die "port $rport (node-$i's Runtime API) is in use: choose another --port"
  fault="$(node_fault "$i")"
  local config="partition-id=$i num-partitions=$NODES" data
  if [[ -n "$NODE_DATA" ]]; then
    IFS=, read -r -a data <<<"$NODE_DATA"
    config="data-dir='${data[$i]}'"
  fi
  [[ -n "$fault" ]] && config="$config fedlingua-fault='$fault'"
  local args=(--superlink "127.0.0.1:$PORT" --node-config "$config" --host 127.0.0.1 --port "$rport")
  local worker=(-m fedlingua.flower_app.worker --runtime-api-address "127.0.0.1:$rport")
  if [[ "$ISOLATION" == worker ]]; then  # only the worker holding the node's secret gets tasks
    make_secret "node-$i"
    args+=(--superexec-auth-secret-file "$DIR/keys/node-$i.superexec")
    worker+=(--superexec-auth-secret-file "$DIR/keys/node-$i.superexec")
  fi
  if [[ -n "$INSECURE" ]]; then
    args+=(--insecure); worker+=(--insecure)
  else
    args+=(--root-certificates "$DIR/tls/ca.crt" --auth-supernode-private-key "$DIR/keys/node-$i"
           --ssl-certfile "$DIR/tls/runtime-$i.pem" --ssl-keyfile "$DIR/tls/runtime-$i.key"
           --ssl-ca-certfile "$DIR/tls/ca.crt")
    worker+=(--root-certificates "$DIR/tls/ca.crt")
  fi
  mkdir -p "$DIR/homes/node-$i" "$DIR/bin"
  local launcher="$DIR/bin/node-$i.sh"
  {
    echo '#!/usr/bin/env bash'
    echo "# node-$i as federation.sh started it: one session holding the SuperNode (and its"
    echo "# ClientApp worker). A SuperNode that fails (e.g. the SuperLink refuses to activate"
    echo "# it: after a crash the SuperLink counts the node's key as online for up to 2"
    echo "# heartbeat intervals, 60 s) is started again, for up to $RESTART_WINDOW s."
    printf 'export FLWR_HOME=%q\n' "$DIR/homes/node-$i"
    if [[ "$ISOLATION" == worker ]]; then
      printf '%q ' "$PY" "${worker[@]}"; echo '--parent-pid $$ &'
      args+=(--isolation process)
    fi
    echo "deadline=\$((SECONDS + $RESTART_WINDOW))"
    echo 'while :; do'
    printf '  '; printf '%q ' "$BIN/flower-supernode" "${args[@]}"; echo '&'
    echo '  wait $! && exit 0 || rc=$?'
    echo '  [[ $SECONDS -lt $deadline ]] || exit $rc'
    echo '  echo "federation.sh: the SuperNode exited with status $rc; starting it again in 3 s"'
    echo '  sleep 3'
    echo 'done'
  } > "$launcher"
  (cd "$REPO" && launch "node-$i" bash "$launcher")
  [[ -n "$fault" ]] && say "node-$i: FAULT INJECTION fedlingua-fault='$fault'"
  say "node-$i started (${NODE_DATA:+own data, }partition $i of $NODES, Runtime API 127.0.0.1:$rport, pid $(cat "$(pidfile "node-$i")"))"
}

online_nodes() {  # how many nodes the SuperLink sees online
  flwr_cli supernode ls fedlingua --format json 2>/dev/null \
    | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(sum(n.get("status")=="online" for n in d.get("nodes", [])))' \
    2>/dev/null || echo 0
}

wait_online() {
  local want="$1" n=0
  for _ in $(seq 90); do
    n="$(online_nodes)"
    [[ "$n" -ge "$want" ]] && { say "$n node(s) online"; return 0; }
    sleep 2
  done
  die "only $n of $want nodes online after 180 s: see $DIR/logs/"
}

# ---- commands -------------------------------------------------------------------------------
node_data() {  # --node-data as absolute folders, one per node (NODES follows it when unset)
  [[ -n "$NODE_DATA" ]] || return 0
  local dirs=() d out=()
  IFS=, read -r -a dirs <<<"$NODE_DATA"
  NODES="${NODES:-${#dirs[@]}}"
  [[ "${#dirs[@]}" -eq "$NODES" ]] || die "--node-data names ${#dirs[@]} folders for $NODES nodes"
  for d in "${dirs[@]}"; do
    [[ -d "$d" ]] || die "--node-data: $d is not a folder"
    [[ "$d" != *"'"* && "$d" != *,* ]] || die "--node-data: $d: no quotes or commas in folder names"
    out+=("$(cd "$d" && pwd)")
  done
  NODE_DATA="$(IFS=,; echo "${out[*]}")"
}

cmd_up() {
  node_data
  config_dirs
  write_guards
  NODES="${NODES:-3}" PORT="${PORT:-9091}" ISOLATION="${ISOLATION:-worker}"
  [[ "$NODES" =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive integer"
  [[ "$ISOLATION" == worker || "$ISOLATION" == subprocess ]] || die "--isolation: worker or subprocess"
  [[ -z "$CONFIG" || -f "$CONFIG" ]] || die "--config $CONFIG does not exist"
  alive superlink && die "a federation already runs in $DIR (scripts/federation.sh down --dir $DIR)"
  for i in $(seq 0 "$NODES"); do
    port_free $((PORT + i)) || die "port $((PORT + i)) is in use: choose another --port"
  done
  if [[ -n "$INSECURE" ]]; then
    echo "federation.sh: WARNING: --insecure: no TLS and no SuperNode authentication." >&2
    echo "federation.sh: WARNING: anyone who reaches port $PORT can join and read the models." >&2
  else
    command -v openssl >/dev/null || die "openssl is needed to make the certificates"
    make_tls
    for i in $(seq 0 $((NODES - 1))); do make_node_key "$i"; done
  fi
  rm -f "$DIR/state/superlink.db"
  {
    printf 'NODES=%q\nPORT=%q\nISOLATION=%q\nINSECURE=%q\nCONFIG=%q\nNODE_DATA=%q\n' \
      "$NODES" "$PORT" "$ISOLATION" "$INSECURE" "$CONFIG" "$NODE_DATA"
    printf 'CONFIG_DIRS=%q\n' "$CONFIG_DIRS"
    printf 'FAULTS=(%s)\n' "$(printf '%q ' "${FAULTS[@]+"${FAULTS[@]}"}")"
  } > "$ENVFILE"
  write_connection
  start_superlink
  register_nodes
  for i in $(seq 0 $((NODES - 1))); do start_node "$i"; done
  wait_online "$NODES"
  say "federation up in $DIR; run it: scripts/federation.sh run --dir $DIR"
}

cmd_certs() {
  command -v openssl >/dev/null || die "openssl is needed to make the certificates"
  make_tls
  say "certificates in $DIR/tls: ca.crt (give it to every site), superlink.pem/.key, runtime.pem/.key"
  openssl x509 -in "$DIR/tls/superlink.pem" -noout -ext subjectAltName 2>/dev/null | tail -n +2 || true
}

cmd_down() {
  [[ -d "$DIR/pids" ]] || { say "nothing runs in $DIR"; return 0; }
  local names=()
  for f in "$DIR"/pids/*.pid; do [[ -f "$f" ]] && names+=("$(basename "$f" .pid)"); done
  [[ ${#names[@]} -gt 0 ]] && stop_components TERM "${names[@]}"
  say "federation in $DIR is down"
}

cmd_status() {
  load_settings
  local any=""
  printf '%-10s %-8s %-8s %s\n' component pid state port
  for name in superlink $(for i in $(seq 0 $((NODES - 1))); do echo "node-$i"; done); do
    local pid="-" state="stopped" port
    if [[ "$name" == superlink ]]; then port="$PORT"; else port=$((PORT + 1 + ${name#node-})); fi
    if alive "$name"; then pid="$(cat "$(pidfile "$name")")"; state="running"; any=1; fi
    printf '%-10s %-8s %-8s %s\n' "$name" "$pid" "$state" "$port"
  done
  if alive superlink; then
    flwr_cli supernode ls fedlingua 2>/dev/null | tail -n +2 || true
  fi
  [[ -n "$any" ]]
}

write_run_config() {  # the Flower run config (a TOML file: no quoting problems)
  "$PY" - "$DIR/run-config.toml" "$CONFIG" "$OVERRIDES" "$RESUME" "$NODES" <<'EOF'
import sys
import tomli_w
path, config, overrides, resume, sites = sys.argv[1:]
with open(path, "wb") as fh:
    tomli_w.dump(
        {"fedlingua-config": config, "overrides": overrides, "resume": resume, "sites": int(sites)},
        fh,
    )
EOF
}

cmd_run() {
  local cli_config="$CONFIG"
  load_settings
  [[ -n "$cli_config" ]] && CONFIG="$cli_config"
  local cfg_arg="$CONFIG"
  alive superlink || die "the SuperLink is not running (scripts/federation.sh status --dir $DIR)"
  [[ -z "$RESUME" || -f "$RESUME/config.toml" ]] || die "--resume $RESUME is not a run directory"
  write_run_config
  local log="$DIR/logs/run-$(date +%Y%m%d-%H%M%S).log" rc=0
  say "flwr run (config: ${cfg_arg:-defaults}${RESUME:+, resuming $RESUME}); log: $log"
  local cmd=("$BIN/flwr" run "$REPO" fedlingua --stream --run-config "$DIR/run-config.toml")
  if [[ -n "$TIMEOUT" ]]; then cmd=(timeout "$TIMEOUT" "${cmd[@]}"); fi
  (cd "$REPO" && FLWR_HOME="$DIR/homes/cli" "${cmd[@]}") 2>&1 | tee "$log" || rc=$?
  local id
  id="$(grep -o 'Successfully started run [0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)"
  [[ -n "$id" ]] || die "the run did not start (exit $rc): see $log"
  echo "$id" > "$DIR/last-run-id"
  local status
  status="$(flwr_cli ls --run-id "$id" --format json 2>/dev/null \
    | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["status"])' 2>/dev/null || echo unknown)"
  say "run $id: $status"
  [[ "$status" == "finished:completed" ]]
}

cmd_stop() {
  [[ "$TARGET" == superlink || "$TARGET" =~ ^node-[0-9]+$ ]] || die "stop superlink|node-I"
  stop_component "$TARGET"
}

cmd_kill() {  # a crash drill: SIGKILL, no graceful shutdown
  [[ "$TARGET" == superlink || "$TARGET" =~ ^node-[0-9]+$ ]] || die "kill superlink|node-I"
  stop_component "$TARGET" KILL
}

cmd_restart() {
  local given=("${FAULTS[@]+"${FAULTS[@]}"}")
  load_settings
  FAULTS=("${given[@]+"${given[@]}"}" "${FAULTS[@]+"${FAULTS[@]}"}")  # restart's own go first
  [[ "$TARGET" == superlink || "$TARGET" =~ ^node-[0-9]+$ ]] || die "restart superlink|node-I"
  stop_component "$TARGET"
  if [[ "$TARGET" == superlink ]]; then
    start_superlink
  else
    local i="${TARGET#node-}"
    [[ "$i" -lt "$NODES" ]] || die "$TARGET: the federation has nodes 0..$((NODES - 1))"
    start_node "$i"
  fi
}

main() {
  case "$CMD" in
    up) cmd_up ;;
    certs) cmd_certs ;;
    down) cmd_down ;;
    status) cmd_status ;;
    run) cmd_run ;;
    stop) cmd_stop ;;
    kill) cmd_kill ;;
    restart) cmd_restart ;;
    *) sed -n '2,56p' "${BASH_SOURCE[0]}"; [[ -z "$CMD" ]] || exit 2 ;;
  esac
}

# parsed whole before it runs: editing this file during a long `run` cannot derail it
main; exit $?

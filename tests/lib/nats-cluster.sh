#!/usr/bin/env bash
# A JetStream cluster on loopback for tests and benchmarks (issue 15): N
# nats-servers (default 3; --nodes 1: one standalone JetStream server) on free
# 127.0.0.1 ports, each with its own store under DIR. Needs bash, nats-server
# and curl, nothing else.
#
#   nats-cluster.sh up [--nodes N] [--dir DIR] [--timeout S]
#       Starts the nodes and waits (at most S seconds, default 30) until
#       JetStream is ready: with N > 1, every node names the same meta leader
#       and the leader sees the other N-1 as current. Prints, for eval:
#         NATS_URL=nats://127.0.0.1:p1,nats://127.0.0.1:p2,nats://127.0.0.1:p3
#         NATS_PIDS="pid1 pid2 pid3"
#         NATS_DIR=DIR
#         NATS_MONITOR=http://127.0.0.1:m1,...
#       DIR defaults to a fresh mktemp directory; it must not hold a running
#       cluster. On failure the nodes started are stopped, their logs' tails
#       go to stderr, and the exit status is 1.
#   nats-cluster.sh stop [--dir DIR]     SIGTERM every node (SIGKILL after 10 s)
#   nats-cluster.sh kill N [--dir DIR]   SIGKILL node N (1-based), as a crash
#   nats-cluster.sh start N [--dir DIR] [--timeout S]
#       Restarts node N with its ports and store, waits until it is back in
#       the cluster (current with the meta leader), prints NATS_PIDS.
#   nats-cluster.sh status [--dir DIR]   one line per node: N PID up|down
#
# DIR may also come from $NATS_DIR, so after
#   set -a; eval "$(nats-cluster.sh up)"; set +a
# the other subcommands need no --dir. Processes are signalled only by the PIDs in
# DIR/nN/pid, and only while that PID still runs nats-server with DIR's
# config. stop leaves DIR (logs: DIR/nN/nats.log); the caller removes it.
set -euo pipefail

die() { echo "nats-cluster: $*" >&2; exit 1; }

cmd=up
case "${1:-}" in
  up | stop | kill | start | status) cmd=$1; shift ;;
  -* | "") ;;
  *) die "unknown subcommand '$1' (up, stop, kill N, start N, status)" ;;
esac
node=""
if [ "$cmd" = kill ] || [ "$cmd" = start ]; then
  node=${1:-}
  [[ "$node" =~ ^[1-9][0-9]*$ ]] || die "$cmd needs a node number (1-based)"
  shift
fi
nodes=3 dir=${NATS_DIR:-} timeout=30
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=${2:?--nodes needs a value}; shift 2 ;;
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
    *) die "unknown option '$1'" ;;
  esac
done
[[ "$nodes" =~ ^[1-9]$ ]] || die "--nodes must be 1..9"
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a whole number of seconds"
command -v nats-server >/dev/null || die "needs nats-server (apt-get install nats-server)"
command -v curl >/dev/null || die "needs curl"

# A port nobody listens on, below Linux's ephemeral range (32768-60999) so
# that outgoing connections do not take it between this check and the bind.
# The check is racy; up retries with new ports when a bind fails.
# Sets REPLY (not echoed: a subshell would forget the ports handed out).
declare -A taken=()
free_port() {
  local p i
  for i in $(seq 200); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    [ -z "${taken[$p]:-}" ] || continue
    # a successful connect means a listener
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      taken[$p]=1
      REPLY=$p
      return 0
    fi
  done
  die "no free port found on 127.0.0.1"
}

# The PID in DIR/nN/pid if that process is still the nats-server of DIR's
# node N (a recycled PID is never signalled).
node_pid() {
  local f="$dir/n$1/pid" pid
  [ -s "$f" ] || return 1
  pid=$(<"$f")
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "nats-server.*$dir/n$1/nats.conf" || return 1
  echo "$pid"
}

write_config() { # N: DIR/nN/nats.conf from the ports in DIR/ports
  local i=$1 j routes=""
  mkdir -p "$dir/n$i/store"
  {
    echo "server_name: n$i"
    echo "listen: 127.0.0.1:${client[$i]}"
    echo "http: 127.0.0.1:${http[$i]}"
    # Kinesis records reach 10 MiB (UpdateMaxRecordSize), NATS stops at 1 MB.
    echo "max_payload: 12MB"
    echo "jetstream { store_dir: \"$dir/n$i/store\" }"
    if [ "$nodes" -gt 1 ]; then
      for j in $(seq "$nodes"); do routes+="nats-route://127.0.0.1:${route[$j]}, "; done
      echo "cluster { name: sluice, listen: \"127.0.0.1:${route[$i]}\", routes: [ ${routes%, } ] }"
    fi
  } >"$dir/n$i/nats.conf"
}

load_ports() {
  [ -n "$dir" ] || die "no cluster directory: pass --dir DIR or set NATS_DIR"
  [ -s "$dir/ports" ] || die "$dir holds no cluster (no $dir/ports)"
  # shellcheck source=/dev/null
  source "$dir/ports"
}

launch() { # N: start node N in the background, detached from our stdout
  local i=$1
  # stdin/stdout/stderr away from the caller's, or $(nats-cluster.sh up)
  # would wait for the servers to exit
  nats-server -c "$dir/n$i/nats.conf" </dev/null >>"$dir/n$i/nats.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/n$i/pid"
  # no "Killed" job report from bash when up gives up on it
  disown "$pid"
  # $! is the forked shell until it has set up the redirections and exec'd
  # nats-server; node_pid would take it for a dead node until then. Wait
  # (at most 5 s) for the exec, or for the process to be gone.
  for _ in $(seq 100); do
    [ -d "/proc/$pid" ] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "^nats-server" && return 0
    sleep 0.05
  done
}

jsz() { curl -sf --max-time 2 "http://127.0.0.1:${http[$1]}/jsz" 2>/dev/null || true; }

# Node N is ready: standalone, JetStream answers /jsz; clustered, it names
# a meta leader and that leader counts the other nodes as current.
node_ready() {
  local i=$1 j leader
  local js
  js=$(jsz "$i")
  [ -n "$js" ] || return 1
  if [ "$nodes" -eq 1 ]; then
    grep -q '"config"' <<<"$js"
    return
  fi
  leader=$(sed -n 's/^ *"leader": "\(.*\)",*$/\1/p' <<<"$js" | head -1)
  [ -n "$leader" ] || return 1
  j=${leader#n}
  [[ "$j" =~ ^[0-9]+$ ]] && [ "$j" -le "$nodes" ] || return 1
  [ "$(jsz "$j" | grep -c '"current": true')" -ge $((nodes - 1)) ]
}

# Why node_pid no longer recognises node N's process, for the error message.
exit_detail() {
  local pid
  pid=$(cat "$dir/n$1/pid" 2>/dev/null) || { echo " (no PID file)"; return; }
  if [ -d "/proc/$pid" ]; then
    echo " (PID $pid: state $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null), command $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))"
  else
    echo " (PID $pid is gone)"
  fi
}

wait_ready() { # deadline-bounded; node numbers as arguments
  local deadline=$((SECONDS + timeout)) i pending
  while :; do
    pending=""
    for i in "$@"; do
      node_pid "$i" >/dev/null || { echo "node $i exited$(exit_detail "$i")" >&2; return 1; }
      node_ready "$i" || pending+=" $i"
    done
    [ -z "$pending" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "JetStream not ready after ${timeout}s (waiting on node(s)$pending)" >&2
      return 1
    fi
    sleep 0.1
  done
}

signal_node() { # N SIGNAL: signal and wait (at most 10 s) for the exit
  local i=$1 sig=$2 pid
  pid=$(node_pid "$i") || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    [ -d "/proc/$pid" ] || break
    # a zombie has exited; its parent (our caller) reaps it
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
    sleep 0.1
  done
  if [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
    [ "$sig" = KILL ] && die "node $i (PID $pid) survived SIGKILL"
    echo "nats-cluster: node $i (PID $pid) ignored SIG$sig for 10 s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/n$i/pid"
}

print_env() {
  local i urls="" mons="" pids=""
  for i in $(seq "$nodes"); do
    urls+="nats://127.0.0.1:${client[$i]},"
    mons+="http://127.0.0.1:${http[$i]},"
    pids+="$(node_pid "$i" || echo -) "
  done
  echo "NATS_URL=${urls%,}"
  echo "NATS_PIDS=\"${pids% }\""
  echo "NATS_DIR=$dir"
  echo "NATS_MONITOR=${mons%,}"
}

declare -a client=() route=() http=()
case "$cmd" in
  up)
    if [ -z "$dir" ]; then
      dir=$(mktemp -d /tmp/sluice-nats.XXXXXX)
    else
      mkdir -p "$dir"
      dir=$(cd "$dir" && pwd)
      for i in $(seq 9); do
        ! node_pid "$i" >/dev/null || die "$dir already runs a cluster (node $i); stop it first"
      done
    fi
    for attempt in 1 2 3; do
      for i in $(seq "$nodes"); do
        free_port; client[i]=$REPLY
        free_port; route[i]=$REPLY
        free_port; http[i]=$REPLY
      done
      # indexes are 1-based: keep a placeholder at 0
      {
        echo "nodes=$nodes"
        echo "client=(\"\" ${client[*]})"
        echo "route=(\"\" ${route[*]})"
        echo "http=(\"\" ${http[*]})"
      } >"$dir/ports"
      # shellcheck source=/dev/null
      source "$dir/ports"
      for i in $(seq "$nodes"); do
        rm -rf "$dir/n$i"
        write_config "$i"
        launch "$i"
      done
      if wait_ready $(seq "$nodes"); then
        print_env
        exit 0
      fi
      # a lost port race shows as a bind error: try again on other ports
      retry=0
      grep -qs 'address already in use' "$dir"/n*/nats.log && retry=1
      for i in $(seq "$nodes"); do signal_node "$i" KILL; done
      if [ "$retry" = 0 ] || [ "$attempt" = 3 ]; then
        for i in $(seq "$nodes"); do
          echo "--- $dir/n$i/nats.log (tail)" >&2
          tail -n 15 "$dir/n$i/nats.log" >&2 || true
        done
        die "cluster of $nodes in $dir did not become ready"
      fi
      echo "nats-cluster: a port was taken; retrying on other ports" >&2
    done
    ;;
  stop)
    load_ports
    for i in $(seq "$nodes"); do
      if pid=$(node_pid "$i"); then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for i in $(seq "$nodes"); do signal_node "$i" TERM; done
    ;;
  kill)
    load_ports
    [ "$node" -le "$nodes" ] || die "no node $node (the cluster has $nodes)"
    node_pid "$node" >/dev/null || die "node $node is not running"
    signal_node "$node" KILL
    ;;
  start)
    load_ports
    [ "$node" -le "$nodes" ] || die "no node $node (the cluster has $nodes)"
    ! node_pid "$node" >/dev/null || die "node $node is already running"
    launch "$node"
    wait_ready "$node" || {
      tail -n 15 "$dir/n$node/nats.log" >&2
      die "node $node did not rejoin"
    }
    print_env
    ;;
  status)
    load_ports
    for i in $(seq "$nodes"); do
      if pid=$(node_pid "$i"); then echo "$i $pid up"; else echo "$i - down"; fi
    done
    ;;
esac

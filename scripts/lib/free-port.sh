# Sourced by scripts that start a server of their own: `free_port_from N` prints the first port from N that
# nothing on 127.0.0.1 listens on (a port held by a stray server would fail a run for an unrelated reason).
free_port_from() {
  local port="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  echo "$port"
}

# `free_ports N` prints N distinct ports the system has free now, space-separated. All N are bound at once,
# so no two are the same (binding one at a time, the system may hand the same free port out twice).
free_ports() {
  python3 -c 'import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for held in sockets:
    held.bind(("127.0.0.1", 0))
print(" ".join(str(held.getsockname()[1]) for held in sockets))' "$1"
}

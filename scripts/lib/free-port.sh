# Sourced by scripts that start a server of their own: `free_port_from N` prints the first port from N that
# nothing on 127.0.0.1 listens on (a port held by a stray server would fail a run for an unrelated reason).
free_port_from() {
  local port="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  echo "$port"
}

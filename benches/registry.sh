# Shared by the bench scripts: a throw-away docker-registry (CNCF distribution)
# on 127.0.0.1, its access log, and helpers to read it. Source it after setting
# reg_dir (its directory), reg_store (storage root), reg_log (log file), and
# defining die; it defines reg_pid and reg_host once start_registry returns.
# shellcheck shell=bash
# A free loopback port: bound, read, released. The registry may lose it to
# someone else before it binds; start_registry then tries another one.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
now_ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }

# Starts `docker-registry serve` and waits (10 s at most) until GET /v2/
# answers 200. Sets reg_pid and reg_host.
start_registry() {
    local attempt port deadline
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        cat >"$reg_dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $reg_store
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: hoist-bench-compare
EOF
        : >"$reg_log"
        docker-registry serve "$reg_dir/config.yml" </dev/null >>"$reg_log" 2>&1 &
        reg_pid=$!
        deadline=$(($(now_ms) + 10000))
        while kill -0 "$reg_pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
            if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/v2/" 2>/dev/null; then
                reg_host=127.0.0.1:$port
                return 0
            fi
            sleep 0.1
        done
        kill "$reg_pid" 2>/dev/null || true
        wait "$reg_pid" 2>/dev/null || true
        reg_pid=
        if ! grep -q 'address already in use' "$reg_log"; then
            tail -n 30 "$reg_log" >&2
            die "docker-registry did not answer GET http://127.0.0.1:$port/v2/ within 10 s (its log above; attempt $attempt)"
        fi
    done
    die "docker-registry could not bind a free loopback port in 5 attempts"
}

# Waits (5 s at most) until the registry has logged every request answered
# so far: it writes an access line just after answering, so a client that
# has exited can be ahead of the log. Sends a marked GET and waits for it
# (the marker is unique without a counter: this runs in subshells).
sync_log() {
    local marker deadline
    marker=$(date +%s%N)
    curl -fsS -o /dev/null --max-time 5 "http://$reg_host/v2/?bench-sync=$marker" ||
        die "the registry stopped answering (log: $reg_log)"
    deadline=$(($(now_ms) + 5000))
    until grep -q "bench-sync=$marker " "$reg_log"; do
        [ "$(now_ms)" -lt "$deadline" ] || die "the registry did not log its requests within 5 s"
        sleep 0.05
    done
}

# Completed uploads (a 201 answer to PUT …/blobs/uploads/…?digest=D) of
# digest $2 into repository bench/$1, from the access log.
uploads() {
    sync_log
    grep -cE "\"PUT /v2/bench/$1/blobs/uploads/[^ ]*[?&]digest=sha256(%3A|:)${2#sha256:}[& ][^\"]*\" 201 " "$reg_log" || true
}

# The registry's own digest for bench/$1:1 (Docker-Content-Digest).
registry_digest() {
    local accept="application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
    accept="$accept, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
    curl -fsSI --max-time 10 -H "Accept: $accept" "http://$reg_host/v2/bench/$1/manifests/1" |
        tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p'
}

# Empties the registry: what each timed first push starts from.
clean_cmd="rm -rf '$reg_store/docker/registry/v2/repositories/bench' '$reg_store/docker/registry/v2/blobs'"
clean_registry() { eval "$clean_cmd"; }

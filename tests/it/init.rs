//! `hoist init` on real-world Dockerfiles and a compose file: the hoist.toml it writes
//! is built (base overridden to `testdata/base`) and the image judged with umoci (files
//! at their paths, with their modes) and skopeo (the config the Dockerfile says).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{
    Layout, Sandbox, base_layout, failure, parse_json, stdout, success, tool, umoci_unpack,
};

/// Writes `files` (path, text, mode) under `dir`.
fn project(dir: &Path, files: &[(&str, &str, u32)]) {
    for (path, text, mode) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
    }
}

/// `hoist init ARGS` in `dir`; answers stdout.
fn init(sandbox: &Sandbox, dir: &Path, args: &[&str]) -> String {
    let mut command = sandbox.hoist();
    command.current_dir(dir).arg("init").args(args);
    stdout(&success(&mut command))
}

/// `hoist build` in `dir` (extra args: `-p NAME`) on the test base, to `oci:<out>:t`;
/// answers the unpacked rootfs and skopeo's view of the config.
fn build_and_judge(sandbox: &Sandbox, dir: &Path, extra: &[&str], out: &str) -> (PathBuf, Value) {
    let mut command = sandbox.build();
    command
        .current_dir(dir)
        .args(extra)
        .arg("--base")
        .arg(format!("oci:{}:1.0", base_layout().display()))
        .args(["--platform", "linux/amd64", "--output"])
        .arg(format!("{}:t", sandbox.oci(out)));
    success(&mut command);
    let rootfs = umoci_unpack(
        &sandbox.path(out),
        "t",
        &sandbox.path(&format!("{out}-bundle")),
    );
    let config = parse_json(&tool(
        "skopeo",
        &["inspect", "--config", &format!("{}:t", sandbox.oci(out))],
    ));
    (rootfs, config)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

const COMBINED: &str = r#"# syntax=docker/dockerfile:1
ARG NODE_VERSION=20
FROM node:${NODE_VERSION}-alpine AS build
WORKDIR /app/frontend
COPY frontend/package.json ./
RUN npm ci
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim AS py
WORKDIR /app
COPY backend/requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY backend/ ./backend

FROM nginx:1.27 AS final
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 supervisor \
 && rm -rf /var/lib/apt/lists/*
COPY --from=py /app/backend /app/backend
COPY --from=build /app/frontend/dist /usr/share/nginx/html
COPY deploy/nginx.conf /etc/nginx/nginx.conf
COPY --chmod=755 --chown=101:101 deploy/start.sh /usr/local/bin/start
COPY deploy/*.conf /etc/nginx/conf.d/
ENV PYTHONUNBUFFERED=1
WORKDIR /app
EXPOSE 80 8080
STOPSIGNAL SIGQUIT
LABEL org.opencontainers.image.title="dashboard"
CMD ["/usr/local/bin/start", "--both"]
"#;

/// (a) nginx + Python in one image: a node build stage traced to `frontend/dist`, a
/// Python stage's sources, single files with --chmod, EXPOSE 80 8080, exec-form CMD.
#[test]
fn init_translates_a_combined_nginx_and_python_dockerfile() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("dashboard");
    project(
        &dir,
        &[
            ("Dockerfile", COMBINED, 0o644),
            (
                "frontend/package.json",
                "{\"name\": \"dash\", \"version\": \"2.3.1\"}\n",
                0o644,
            ),
            ("frontend/src/main.js", "console.log(1)\n", 0o644),
            ("backend/requirements.txt", "fastapi==0.115.6\n", 0o644),
            ("backend/app/main.py", "print('hi')\n", 0o644),
            ("deploy/nginx.conf", "events {}\n", 0o640),
            ("deploy/start.sh", "#!/bin/sh\nexec nginx\n", 0o644),
            ("deploy/gzip.conf", "gzip on;\n", 0o644),
            // What .dockerignore keeps out of the build stage keeps out of the layer.
            (".dockerignore", "backend/tests\n**/__pycache__\n", 0o644),
            ("backend/tests/test_main.py", "assert True\n", 0o644),
            ("backend/app/__pycache__/main.cpython-311.pyc", "pyc", 0o644),
        ],
    );
    let report = init(&sandbox, &dir, &[]);
    assert!(report.contains("wrote ./hoist.toml"), "{report}");
    for expected in [
        "Dockerfile:6: RUN npm ci",
        "Dockerfile:8: RUN npm run build",
        "on the host or in CI before `hoist build`",
        "Dockerfile:13: RUN pip install --no-cache-dir -r requirements.txt",
        // The requirements file named by its context path, through the stage's COPY.
        "uv pip compile --universal --generate-hashes backend/requirements.txt -o requirements.lock",
        "Dockerfile:17: RUN apt-get update",
        "the base image must already have these packages: python3, supervisor",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
    let toml = fs::read_to_string(dir.join("hoist.toml")).unwrap();
    for expected in [
        "base = \"nginx:1.27\"",
        "from = \"frontend/dist\"\nto = \"/usr/share/nginx/html\"",
        "# built on the host: run `npm ci && npm run build` before `hoist build`",
        "from = \"backend\"\nto = \"/app/backend\"\nexclude = [\"/tests\", \"**/__pycache__\"]",
        "# python = { lock = \"requirements.lock\", venv = \"/opt/venv\", version = \"3.11\" }",
        "#   uv pip compile --universal --generate-hashes backend/requirements.txt -o requirements.lock",
        "#     → the base image must already have these packages: python3, supervisor",
        "[version]\nsource = \"frontend/package.json\"",
    ] {
        assert!(toml.contains(expected), "missing {expected:?} in:\n{toml}");
    }
    // The host build the comment asks for.
    project(
        &dir,
        &[("frontend/dist/index.html", "<h1>dash</h1>\n", 0o644)],
    );
    let (rootfs, config) = build_and_judge(&sandbox, &dir, &[], "out");
    assert_eq!(
        fs::read_to_string(rootfs.join("usr/share/nginx/html/index.html")).unwrap(),
        "<h1>dash</h1>\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("app/backend/app/main.py")).unwrap(),
        "print('hi')\n"
    );
    assert_eq!(mode(&rootfs.join("usr/local/bin/start")), 0o755);
    assert_eq!(mode(&rootfs.join("etc/nginx/nginx.conf")), 0o640);
    assert!(!rootfs.join("usr/share/nginx/html/main.js").exists());
    assert!(!rootfs.join("app/backend/tests").exists());
    assert!(!rootfs.join("app/backend/app/__pycache__").exists());
    // The pattern's matches, each under its own name.
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/nginx/conf.d/gzip.conf")).unwrap(),
        "gzip on;\n"
    );
    assert!(rootfs.join("etc/nginx/conf.d/nginx.conf").is_file());
    let c = &config["config"];
    assert_eq!(strings(&c["Cmd"]), ["/usr/local/bin/start", "--both"]);
    assert_eq!(keys(&c["ExposedPorts"]), ["80/tcp", "8080/tcp"]);
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "dashboard");
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "2.3.1");
    assert!(
        strings(&c["Env"]).contains(&"PYTHONUNBUFFERED=1".to_string()),
        "{c}"
    );
}

const SUBSTITUTED: &str = r#"ARG BASE=alpine
ARG APP_DIR=/srv/app
FROM ${BASE}:3.20
ARG APP_DIR
ARG PORT=8000
ARG CHANNEL
ENV APP_HOME=${APP_DIR} \
    PORT=$PORT \
    MODE=${CHANNEL:-stable}
WORKDIR $APP_HOME
COPY src/ ./src/
COPY --chmod=0640 settings.ini conf/
USER 1000:1000
EXPOSE ${PORT} 53/udp
VOLUME ["/data"]
HEALTHCHECK --interval=30s --retries=3 CMD ["/bin/check", "--port", "9000"]
ENTRYPOINT python3 -m app
LABEL channel="${CHANNEL:-stable}" description="a \"quoted\" one"
"#;

/// (b) ARG defaults (before FROM and in the stage), a --build-arg, ENV used by later
/// instructions, `${VAR:-default}`, a shell-form ENTRYPOINT.
#[test]
fn init_substitutes_args_and_env() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("svc");
    project(
        &dir,
        &[
            ("Dockerfile", SUBSTITUTED, 0o644),
            ("src/app/__main__.py", "print('app')\n", 0o644),
            ("settings.ini", "[app]\n", 0o644),
            ("VERSION", "0.4.0\n", 0o644),
        ],
    );
    init(&sandbox, &dir, &["--build-arg", "PORT=9000"]);
    let toml = fs::read_to_string(dir.join("hoist.toml")).unwrap();
    assert!(toml.contains("base = \"alpine:3.20\""), "{toml}");
    assert!(
        toml.contains("Every instruction of Dockerfile is translated."),
        "{toml}"
    );
    let (rootfs, config) = build_and_judge(&sandbox, &dir, &[], "out");
    assert_eq!(
        fs::read_to_string(rootfs.join("srv/app/src/app/__main__.py")).unwrap(),
        "print('app')\n"
    );
    assert_eq!(mode(&rootfs.join("srv/app/conf/settings.ini")), 0o640);
    let c = &config["config"];
    let env = strings(&c["Env"]);
    for expected in ["APP_HOME=/srv/app", "PORT=9000", "MODE=stable"] {
        assert!(
            env.contains(&expected.to_string()),
            "{expected} not in {env:?}"
        );
    }
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(keys(&c["ExposedPorts"]), ["53/udp", "9000/tcp"]);
    assert_eq!(keys(&c["Volumes"]), ["/data"]);
    assert_eq!(
        strings(&c["Entrypoint"]),
        ["/bin/sh", "-c", "python3 -m app"]
    );
    assert!(
        c["Cmd"].is_null(),
        "an ENTRYPOINT clears the base's Cmd: {c}"
    );
    assert_eq!(c["Labels"]["channel"], "stable");
    assert_eq!(c["Labels"]["description"], "a \"quoted\" one");
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "0.4.0");
    // skopeo's OCI view drops Docker's Healthcheck: read the config blob itself.
    let image = &Layout::open(sandbox.path("out")).platforms("t")[0];
    let check = &image.config["config"]["Healthcheck"];
    assert_eq!(
        strings(&check["Test"]),
        ["CMD", "/bin/check", "--port", "9000"]
    );
    assert_eq!(check["Interval"], 30_000_000_000_u64);
    assert_eq!(check["Retries"], 3);
}

const COMPOSE: &str = r#"services:
  web:
    build: ./web
    image: registry.example.com/acme/web:1.0
    ports: ["80:80"]
  api:
    build:
      context: api
      args:
        PORT: "5000"
  worker:
    build:
      context: ./worker
      dockerfile: Dockerfile.worker
      target: runtime
  db:
    image: postgres:16
"#;

/// (c) A compose file with three services that build (and one that only runs an
/// image): a workspace root and one member per service, each built and judged.
#[test]
fn init_turns_a_compose_file_into_a_workspace() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("shop");
    project(
        &dir,
        &[
            ("compose.yaml", COMPOSE, 0o644),
            (
                "pyproject.toml",
                "[project]\nname = \"shop\"\nversion = \"1.2.0\"\n",
                0o644,
            ),
            (
                "web/Dockerfile",
                "FROM nginx:1.27\nCOPY static/ /usr/share/nginx/html/\nEXPOSE 80\n",
                0o644,
            ),
            ("web/static/index.html", "<p>shop</p>\n", 0o644),
            (
                "api/Dockerfile",
                "FROM python:3.12-slim\nARG PORT=8000\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY app/ ./app/\nENV PORT=$PORT\nEXPOSE $PORT\nCMD [\"python\", \"-m\", \"app\"]\n",
                0o644,
            ),
            ("api/requirements.txt", "flask==3.0.0\n", 0o644),
            ("api/app/__main__.py", "print('api')\n", 0o644),
            (
                "worker/Dockerfile.worker",
                "FROM python:3.12-slim AS runtime\nCOPY --chmod=700 run.sh /usr/local/bin/run-worker\nENTRYPOINT [\"/usr/local/bin/run-worker\"]\nFROM runtime AS debug\nRUN apt-get install -y gdb\n",
                0o644,
            ),
            ("worker/run.sh", "#!/bin/sh\n", 0o644),
        ],
    );
    let report = init(&sandbox, &dir, &["--compose", "compose.yaml", "--json"]);
    let report = parse_json(&report);
    let written: Vec<String> = strings(&report["written"]);
    assert_eq!(
        written,
        [
            "./hoist.toml",
            "./web/hoist.toml",
            "./api/hoist.toml",
            "./worker/hoist.toml"
        ]
    );
    assert_eq!(report["skipped"][0][0], "db");
    let api_notes = &report["images"][1]["plan"]["notes"];
    assert_eq!(api_notes[0]["line"], 5);
    assert_eq!(
        strings(&api_notes[0]["run"]["requirements"]),
        ["requirements.txt"]
    );
    let root = fs::read_to_string(dir.join("hoist.toml")).unwrap();
    assert!(
        root.contains("members = [\"web\", \"api\", \"worker\"]"),
        "{root}"
    );
    assert!(root.contains("source = \"pyproject.toml\""), "{root}");
    assert!(root.contains("db: runs the image `postgres:16`"), "{root}");
    let web_toml = fs::read_to_string(dir.join("web/hoist.toml")).unwrap();
    assert!(
        web_toml.contains("name = \"registry.example.com/acme/web\"\ntags = [\"1.0\"]"),
        "{web_toml}"
    );

    let (web, config) = build_and_judge(&sandbox, &dir, &["-p", "web"], "web");
    assert_eq!(
        fs::read_to_string(web.join("usr/share/nginx/html/index.html")).unwrap(),
        "<p>shop</p>\n"
    );
    assert_eq!(keys(&config["config"]["ExposedPorts"]), ["80/tcp"]);

    let (api, config) = build_and_judge(&sandbox, &dir, &["-p", "api"], "api");
    assert_eq!(
        fs::read_to_string(api.join("app/app/__main__.py")).unwrap(),
        "print('api')\n"
    );
    assert_eq!(
        fs::read_to_string(api.join("app/requirements.txt")).unwrap(),
        "flask==3.0.0\n"
    );
    let c = &config["config"];
    assert_eq!(strings(&c["Cmd"]), ["python", "-m", "app"]);
    assert_eq!(
        keys(&c["ExposedPorts"]),
        ["5000/tcp"],
        "the compose build arg wins"
    );
    assert!(strings(&c["Env"]).contains(&"PORT=5000".to_string()), "{c}");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "1.2.0");

    let (worker, config) = build_and_judge(&sandbox, &dir, &["-p", "worker"], "worker");
    assert_eq!(mode(&worker.join("usr/local/bin/run-worker")), 0o700);
    assert_eq!(
        strings(&config["config"]["Entrypoint"]),
        ["/usr/local/bin/run-worker"]
    );
}

/// An existing hoist.toml is never overwritten; a heredoc is refused with its line;
/// neither writes anything.
#[test]
fn init_refuses_to_overwrite_and_names_bad_lines() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("p");
    project(
        &dir,
        &[
            ("Dockerfile", "FROM alpine\nCOPY . /app\n", 0o644),
            ("hoist.toml", "# mine\n", 0o644),
        ],
    );
    let mut command = sandbox.hoist();
    command.current_dir(&dir).arg("init");
    let err = failure(&mut command);
    assert!(err.contains("./hoist.toml: already exists"), "{err}");
    assert_eq!(
        fs::read_to_string(dir.join("hoist.toml")).unwrap(),
        "# mine\n"
    );

    fs::remove_file(dir.join("hoist.toml")).unwrap();
    project(
        &dir,
        &[(
            "build/Dockerfile",
            "FROM alpine\nRUN <<EOF\napk add curl\nEOF\n",
            0o644,
        )],
    );
    let mut command = sandbox.hoist();
    command
        .current_dir(&dir)
        .args(["init", "--dockerfile", "build/Dockerfile"]);
    let err = failure(&mut command);
    assert!(
        err.contains("build/Dockerfile:2: RUN with a heredoc"),
        "{err}"
    );
    assert!(!dir.join("hoist.toml").exists());
}

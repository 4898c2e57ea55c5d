//! Where pushes find credentials, against a real registry with htpasswd Basic auth
//! that accepts exactly one user and password ([`USER`], [`PASSWORD`]): a push that
//! succeeds sent those, a push refused with 401 sent others or none.
//!
//! - the documented lookup order (docs/cli.md "Registry credentials"), one test per
//!   step: the right credentials in the step, wrong ones in the next → the push
//!   succeeds; swapped → it is refused, so the step was used and nothing after it;
//! - credential helpers speaking docker's protocol (`docker-credential-NAME
//!   get|store|erase|list`, a small script on PATH keeping its secrets in a file next to
//!   it): lookup through `credHelpers` and `credsStore`, `login` storing through the
//!   helper, `logout` erasing through it, and a failing helper named in the error;
//! - no credentials over plain HTTP to a host other than this machine, refused before
//!   any connection is opened.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Sandbox, base_layout, parse_json, stderr};
use crate::login::htpasswd_registry;
use crate::registry::{HOIST_LIMIT, Registry, fails, ok, run};
use crate::token_auth::{PASSWORD, STANDARD, USER, assert_no_secret, base64, output_text};

/// Credentials the registry refuses.
const INTRUDER: &str = "intruder";
const WRONG: &str = "wrong-password";
/// The helper the tests install: `docker-credential-hoist-test`.
const HELPER: &str = "hoist-test";

/// A credential helper speaking docker's protocol, in Python (Debian's python3): its
/// name is taken from the program name, its secrets kept in `NAME.secrets.json` next to
/// it, every call logged to `NAME.log` (action and server URL, never a secret). With a
/// file `NAME.broken` next to it, it fails as a locked keychain would.
const HELPER_SCRIPT: &str = r#"#!/usr/bin/env python3
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
name = os.path.basename(sys.argv[0])[len("docker-credential-"):]
secrets_path = os.path.join(here, name + ".secrets.json")
action = sys.argv[1] if len(sys.argv) > 1 else ""
data = sys.stdin.read()
server = data.strip() if action in ("get", "erase") else ""
if action == "store":
    server = json.loads(data)["ServerURL"]
with open(os.path.join(here, name + ".log"), "a") as log:
    log.write(action + " " + server + "\n")
if os.path.exists(os.path.join(here, name + ".broken")):
    print("the keychain is locked", file=sys.stderr)
    sys.exit(3)
try:
    with open(secrets_path) as f:
        secrets = json.load(f)
except FileNotFoundError:
    secrets = {}
def save():
    with open(secrets_path + ".tmp", "w") as f:
        json.dump(secrets, f)
    os.replace(secrets_path + ".tmp", secrets_path)
def not_found():
    print("credentials not found in native keychain")
    sys.exit(1)
if action == "get":
    if server not in secrets:
        not_found()
    entry = secrets[server]
    print(json.dumps({"ServerURL": server, "Username": entry["Username"], "Secret": entry["Secret"]}))
elif action == "store":
    request = json.loads(data)
    secrets[server] = {"Username": request["Username"], "Secret": request["Secret"]}
    save()
elif action == "erase":
    if server not in secrets:
        not_found()
    del secrets[server]
    save()
elif action == "list":
    print(json.dumps({url: entry["Username"] for url, entry in secrets.items()}))
else:
    print("unknown action " + action, file=sys.stderr)
    sys.exit(2)
"#;

/// One test's world: an htpasswd registry, and every credential file and helper
/// directory hoist could read in the sandbox.
pub(crate) struct World {
    pub sandbox: Sandbox,
    pub registry: Registry,
}

impl World {
    pub fn new() -> World {
        let sandbox = Sandbox::new();
        let registry = htpasswd_registry(&sandbox);
        World { sandbox, registry }
    }

    pub fn host(&self) -> String {
        self.registry.host()
    }

    /// `hoist ARGS` that reads credentials only from the sandbox: docker's config in
    /// `docker/`, podman's runtime dir `run/`, its config home `xdg-config/`, and
    /// helpers from `helpers/` (first on PATH). No `REGISTRY_AUTH_FILE` unless a test
    /// sets one.
    pub fn hoist(&self, args: &[&str]) -> assert_cmd::Command {
        let mut command = self.sandbox.hoist();
        let path = std::env::var("PATH").unwrap_or_default();
        command
            .env_remove("REGISTRY_AUTH_FILE")
            .env("DOCKER_CONFIG", self.sandbox.path("docker"))
            .env("XDG_RUNTIME_DIR", self.sandbox.path("run"))
            .env("XDG_CONFIG_HOME", self.sandbox.path("xdg-config"))
            .env("HOME", self.sandbox.path("home"))
            .env(
                "PATH",
                format!("{}:{path}", self.sandbox.path("helpers").display()),
            )
            .args(args);
        command
    }

    /// `hoist push` of the committed base layout to `acme/app:TAG`.
    pub fn push(&self, tag: &str) -> assert_cmd::Command {
        let source = format!("oci:{}:1.0", base_layout().display());
        let target = self.registry.reference(&format!("acme/app:{tag}"));
        self.hoist(&["push", &source, &target])
    }

    /// Runs `command`, asserting the push went through.
    pub fn pushes(&self, command: &mut assert_cmd::Command) -> String {
        let output = ok(command, &self.registry);
        let text = output_text(&output);
        assert_no_secret(&text);
        text
    }

    /// Runs `command`, asserting the registry refused it (exit 1, 401, the registry
    /// named, no secret printed); returns stderr.
    pub fn refused(&self, command: &mut assert_cmd::Command) -> String {
        let err = fails(command, HOIST_LIMIT);
        assert!(err.contains(&self.host()), "{err}");
        assert!(err.contains("401"), "not refused by the registry:\n{err}");
        assert_no_secret(&err);
        assert!(!err.contains(WRONG), "{err}");
        err
    }

    /// Writes `value` as JSON to `<sandbox>/<relative>`.
    pub fn write_json(&self, relative: &str, value: &Value) -> PathBuf {
        self.sandbox.write(relative, &format!("{value:#}\n"))
    }

    /// `docker/config.json` with `value`.
    pub fn docker_config(&self, value: &Value) -> PathBuf {
        self.write_json("docker/config.json", value)
    }

    /// Installs `docker-credential-NAME` (see [`HELPER_SCRIPT`]) holding `secrets`
    /// (server URL → (username, secret)).
    pub fn helper(&self, name: &str, secrets: &[(&str, &str, &str)]) {
        use std::os::unix::fs::PermissionsExt as _;
        let program = self
            .sandbox
            .write(&format!("helpers/docker-credential-{name}"), HELPER_SCRIPT);
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let secrets: serde_json::Map<String, Value> = secrets
            .iter()
            .map(|(url, user, secret)| {
                (
                    (*url).to_string(),
                    json!({"Username": user, "Secret": secret}),
                )
            })
            .collect();
        self.write_json(
            &format!("helpers/{name}.secrets.json"),
            &Value::Object(secrets),
        );
    }

    /// What helper NAME holds now: server URL → username.
    pub fn helper_secrets(&self, name: &str) -> Value {
        let path = self.sandbox.path(&format!("helpers/{name}.secrets.json"));
        let secrets = parse_json(&std::fs::read_to_string(&path).unwrap());
        let users = secrets
            .as_object()
            .unwrap()
            .iter()
            .map(|(url, entry)| (url.clone(), entry["Username"].clone()))
            .collect();
        Value::Object(users)
    }

    /// Helper NAME's calls so far: `ACTION SERVER_URL` lines.
    pub fn helper_calls(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.sandbox.path(&format!("helpers/{name}.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// An `auths` entry for `user:password`.
pub(crate) fn entry(user: &str, password: &str) -> Value {
    json!({ "auth": base64(format!("{user}:{password}").as_bytes(), STANDARD, true) })
}

/// `{"auths": {KEY: entry(user, password)}}`.
fn auths(key: &str, user: &str, password: &str) -> Value {
    json!({ "auths": { key: entry(user, password) } })
}

fn right(key: &str) -> Value {
    auths(key, USER, PASSWORD)
}

fn wrong(key: &str) -> Value {
    auths(key, INTRUDER, WRONG)
}

/// `-u USER --password-stdin`, with `password` on stdin.
fn with_flags<'a>(
    command: &'a mut assert_cmd::Command,
    user: &str,
    password: &str,
) -> &'a mut assert_cmd::Command {
    command
        .args(["-u", user, "--password-stdin"])
        .write_stdin(format!("{password}\n"))
}

fn with_env<'a>(
    command: &'a mut assert_cmd::Command,
    user: &str,
    password: &str,
) -> &'a mut assert_cmd::Command {
    command
        .env("HOIST_REGISTRY_USERNAME", user)
        .env("HOIST_REGISTRY_PASSWORD", password)
}

// ---- the lookup order, one step per test ----

#[test]
fn flags_win_over_the_environment() {
    let world = World::new();
    world.pushes(with_env(
        with_flags(&mut world.push("flags"), USER, PASSWORD),
        INTRUDER,
        WRONG,
    ));
    world.refused(with_env(
        with_flags(&mut world.push("flags-wrong"), INTRUDER, WRONG),
        USER,
        PASSWORD,
    ));
}

#[test]
fn the_environment_wins_over_podman_auth_json() {
    let world = World::new();
    let host = world.host();
    let auth_file = world.write_json("auth.json", &wrong(&host));
    let mut push = world.push("env");
    push.env("REGISTRY_AUTH_FILE", &auth_file);
    world.pushes(with_env(&mut push, USER, PASSWORD));

    world.write_json("auth.json", &right(&host));
    let mut push = world.push("env-wrong");
    push.env("REGISTRY_AUTH_FILE", &auth_file);
    world.refused(with_env(&mut push, INTRUDER, WRONG));

    // One variable without the other is a mistake, named, not a silent fall-through.
    let mut push = world.push("env-half");
    push.env("REGISTRY_AUTH_FILE", &auth_file)
        .env("HOIST_REGISTRY_USERNAME", USER);
    let err = fails(&mut push, HOIST_LIMIT);
    assert!(
        err.contains("HOIST_REGISTRY_PASSWORD") && err.contains("HOIST_REGISTRY_USERNAME"),
        "{err}"
    );
}

#[test]
fn registry_auth_file_is_read_alone_when_set() {
    let world = World::new();
    let host = world.host();
    // podman reads $REGISTRY_AUTH_FILE instead of its other files, not before them.
    let auth_file = world.write_json("auth.json", &json!({ "auths": {} }));
    world.write_json("run/containers/auth.json", &right(&host));
    let mut push = world.push("auth-file-alone");
    push.env("REGISTRY_AUTH_FILE", &auth_file);
    world.refused(&mut push);

    world.write_json("auth.json", &right(&host));
    world.write_json("run/containers/auth.json", &wrong(&host));
    let mut push = world.push("auth-file");
    push.env("REGISTRY_AUTH_FILE", &auth_file);
    world.pushes(&mut push);
}

#[test]
fn the_runtime_auth_json_wins_over_the_config_home_one() {
    let world = World::new();
    let host = world.host();
    world.write_json("run/containers/auth.json", &right(&host));
    world.write_json("xdg-config/containers/auth.json", &wrong(&host));
    world.pushes(&mut world.push("runtime"));

    world.write_json("run/containers/auth.json", &wrong(&host));
    world.write_json("xdg-config/containers/auth.json", &right(&host));
    world.refused(&mut world.push("runtime-wrong"));

    // Without a runtime file, the config-home one is read (here with a legacy key).
    std::fs::remove_file(world.sandbox.path("run/containers/auth.json")).unwrap();
    world.write_json(
        "xdg-config/containers/auth.json",
        &right(&format!("https://{host}/v2/")),
    );
    world.pushes(&mut world.push("config-home"));
}

#[test]
fn podman_auth_json_wins_over_docker_config_json() {
    let world = World::new();
    let host = world.host();
    world.write_json("xdg-config/containers/auth.json", &right(&host));
    world.docker_config(&wrong(&host));
    world.pushes(&mut world.push("podman"));

    world.write_json("xdg-config/containers/auth.json", &wrong(&host));
    world.docker_config(&right(&host));
    world.refused(&mut world.push("podman-wrong"));

    // `hoist login` writes config.json, and says that podman's file will win.
    let mut login = world.hoist(&["login", &host]);
    let output = run(with_flags(&mut login, USER, PASSWORD), HOIST_LIMIT);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    let podman_file = world.sandbox.path("xdg-config/containers/auth.json");
    assert!(
        text.contains(&format!(
            "note: {} also holds credentials for {host}",
            podman_file.display()
        )),
        "{text}"
    );
}

#[test]
fn a_credential_helper_for_the_registry_wins_over_auths() {
    let world = World::new();
    let host = world.host();
    world.helper(HELPER, &[(&host, USER, PASSWORD)]);
    let mut config = wrong(&host);
    config["credHelpers"] = json!({ &host: HELPER });
    world.docker_config(&config);
    world.pushes(&mut world.push("helper"));
    assert!(
        world.helper_calls(HELPER).contains(&format!("get {host}")),
        "{:?}",
        world.helper_calls(HELPER)
    );

    world.helper(HELPER, &[(&host, INTRUDER, WRONG)]);
    config["auths"] = right(&host)["auths"].clone();
    world.docker_config(&config);
    world.refused(&mut world.push("helper-wrong"));

    // A helper that holds nothing for the registry is no match: the lookup goes on.
    world.helper(HELPER, &[]);
    world.pushes(&mut world.push("helper-empty"));
}

#[test]
fn auths_win_over_the_creds_store() {
    let world = World::new();
    let host = world.host();
    world.helper(HELPER, &[(&host, INTRUDER, WRONG)]);
    let mut config = right(&host);
    config["credsStore"] = json!(HELPER);
    world.docker_config(&config);
    world.pushes(&mut world.push("auths"));

    world.helper(HELPER, &[(&host, USER, PASSWORD)]);
    config["auths"] = wrong(&host)["auths"].clone();
    world.docker_config(&config);
    world.refused(&mut world.push("auths-wrong"));

    // docker's placeholder (an empty entry, the secret being in the store) holds
    // nothing: the store's credentials are used.
    config["auths"] = json!({ &host: {} });
    world.docker_config(&config);
    world.pushes(&mut world.push("store"));
    assert!(
        world.helper_calls(HELPER).contains(&format!("get {host}")),
        "{:?}",
        world.helper_calls(HELPER)
    );
}

#[test]
fn without_credentials_a_push_is_anonymous() {
    let world = World::new();
    let host = world.host();
    // Other registries' credentials are not sent here, however alike their keys.
    let (ip, _) = host.rsplit_once(':').unwrap();
    world.docker_config(&json!({
        "auths": {
            format!("{host}0"): entry(USER, PASSWORD),
            format!("https://{ip}/v2/"): entry(USER, PASSWORD),
            format!("{host}.example"): entry(USER, PASSWORD),
        }
    }));
    let err = world.refused(&mut world.push("anonymous"));
    assert!(err.contains("hoist login"), "{err}");
}

// ---- credential helpers ----

#[test]
fn login_stores_through_the_helper_and_logout_erases_through_it() {
    let world = World::new();
    let host = world.host();
    // Another spelling of the registry already in the store, and a stale secret in
    // auths: login replaces the one, logout removes both.
    world.helper(HELPER, &[(&format!("https://{host}/"), INTRUDER, WRONG)]);
    let mut config = wrong(&format!("https://{host}"));
    config["credsStore"] = json!(HELPER);
    config["auths"]["other.example"] = entry("x", "y");
    world.docker_config(&config);

    let mut login = world.hoist(&["login", &host]);
    let output = run(with_flags(&mut login, USER, PASSWORD), HOIST_LIMIT);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(&format!("credential helper docker-credential-{HELPER}")),
        "{text}"
    );
    assert_no_secret(&text);
    assert_eq!(
        world.helper_secrets(HELPER)[&host],
        USER,
        "{}",
        world.helper_secrets(HELPER)
    );
    // config.json keeps no secret for the registry: no `auth` under any of its keys.
    let stored = std::fs::read_to_string(world.sandbox.path("docker/config.json")).unwrap();
    let stored_config = parse_json(&stored);
    assert_eq!(
        stored_config["auths"],
        json!({ "other.example": entry("x", "y") }),
        "{stored}"
    );
    assert_eq!(stored_config["credsStore"], HELPER);
    assert!(!stored.contains(&base64(
        format!("{USER}:{PASSWORD}").as_bytes(),
        STANDARD,
        true
    )));

    // The push asks the helper (`get`) and the registry takes what it answers.
    world.pushes(&mut world.push("from-helper"));
    assert!(world.helper_calls(HELPER).contains(&format!("get {host}")));

    let output = run(&mut world.hoist(&["logout", &host]), HOIST_LIMIT);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "removed `{host}`, `https://{host}/` from credential helper docker-credential-{HELPER}"
        )),
        "{text}"
    );
    assert_eq!(world.helper_secrets(HELPER), json!({}));
    let calls = world.helper_calls(HELPER);
    assert!(calls.contains(&"list ".to_string()), "{calls:?}");
    assert!(calls.contains(&format!("erase {host}")), "{calls:?}");
    world.refused(&mut world.push("after-logout"));
}

#[test]
fn a_failing_helper_is_named_and_changes_nothing() {
    let world = World::new();
    let host = world.host();
    world.helper(HELPER, &[(&host, USER, PASSWORD)]);
    let config = json!({ "credHelpers": { &host: HELPER }, "auths": { "other.example": {} } });
    let config_path = world.docker_config(&config);
    let before = std::fs::read(&config_path).unwrap();
    world.sandbox.write(&format!("helpers/{HELPER}.broken"), "");

    let program = format!("docker-credential-{HELPER}");
    let err = fails(&mut world.push("broken"), HOIST_LIMIT);
    assert!(err.contains(&format!("{program} get")), "{err}");
    assert!(err.contains(&host), "{err}");
    assert!(
        !err.contains("keychain is locked"),
        "helper output is not quoted:\n{err}"
    );
    assert_no_secret(&err);

    let mut login = world.hoist(&["login", &host]);
    let err = fails(with_flags(&mut login, USER, PASSWORD), HOIST_LIMIT);
    assert!(err.contains(&format!("{program} store")), "{err}");

    let err = fails(&mut world.hoist(&["logout", &host]), HOIST_LIMIT);
    assert!(err.contains(&program), "{err}");
    assert_eq!(std::fs::read(&config_path).unwrap(), before);
    std::fs::remove_file(world.sandbox.path(&format!("helpers/{HELPER}.broken"))).unwrap();
    assert_eq!(world.helper_secrets(HELPER)[&host], USER);

    // A helper config.json names but PATH lacks: named, with the fix.
    world.docker_config(&json!({ "credsStore": "hoist-test-absent" }));
    let err = fails(&mut world.push("absent"), HOIST_LIMIT);
    assert!(
        err.contains("docker-credential-hoist-test-absent get: not found on PATH"),
        "{err}"
    );
}

// ---- never over plain HTTP to another machine ----

/// Proxy variables that send every request hoist makes to `registry` (on loopback),
/// whatever host it names: the host is never resolved, so a name that exists nowhere
/// (`.invalid` is reserved) reaches the registry, and nothing else is contacted.
fn through_loopback_proxy<'a>(
    command: &'a mut assert_cmd::Command,
    registry: &Registry,
) -> &'a mut assert_cmd::Command {
    let proxy = format!("http://{}", registry.host());
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env(name, &proxy);
    }
    command
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("REQUEST_METHOD")
}

/// The access-log lines of requests that came through the proxy variables: their
/// target is absolute (`GET http://registry.invalid:PORT/v2/ HTTP/1.1`). Synced with the
/// registry's log first (see [`Registry::requests`]).
fn proxied_requests(registry: &Registry) -> Vec<String> {
    registry.requests();
    registry
        .log()
        .lines()
        .filter(|line| line.contains(" http://registry.invalid:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn credentials_never_go_over_plain_http_to_another_host() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let remote = format!(
        "registry.invalid:{}",
        registry.host().rsplit_once(':').unwrap().1
    );
    let world = World { sandbox, registry };
    let source = format!("oci:{}:1.0", base_layout().display());
    let target = format!("{remote}/acme/app:1");
    let push = |world: &World| {
        let mut command = world.hoist(&["push", &source, &target, "--insecure-registry", &remote]);
        through_loopback_proxy(&mut command, &world.registry);
        command
    };

    // The route works: without credentials, the push reaches the registry by that name.
    world.pushes(&mut push(&world));
    assert!(
        proxied_requests(&world.registry).len() > 2,
        "hoist did not go through the proxy:\n{}",
        world.registry.log_tail()
    );
    assert_eq!(
        parse_json(&String::from_utf8_lossy(
            &world.registry.manifest("acme/app", "1")
        ))["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );

    // With credentials from any source, hoist refuses before opening a connection: the
    // registry sees no request at all.
    let expect_refusal = |command: &mut assert_cmd::Command, source: &str| {
        let before = proxied_requests(&world.registry).len();
        let err = fails(command, HOIST_LIMIT);
        assert!(err.contains(&remote), "the host is not named:\n{err}");
        assert!(
            err.contains("refusing to send credentials") && err.contains("plain HTTP"),
            "{err}"
        );
        assert!(
            err.contains("--ca-file") && err.contains("--insecure-registry"),
            "the fix is not named:\n{err}"
        );
        assert!(err.contains(source), "the source is not named:\n{err}");
        assert_no_secret(&err);
        let after = proxied_requests(&world.registry);
        assert_eq!(
            after.len(),
            before,
            "hoist sent requests before refusing: {:#?}",
            &after[before..]
        );
    };
    expect_refusal(with_flags(&mut push(&world), USER, PASSWORD), "--username");
    expect_refusal(
        with_env(&mut push(&world), USER, PASSWORD),
        "HOIST_REGISTRY_USERNAME",
    );
    let config = world.docker_config(&right(&remote));
    expect_refusal(&mut push(&world), &config.display().to_string());

    // A pull, and a login, the same.
    let mut pull = world.hoist(&[
        "pull",
        &target,
        "--output",
        &world.sandbox.oci("pulled"),
        "--insecure-registry",
        &remote,
    ]);
    through_loopback_proxy(&mut pull, &world.registry);
    expect_refusal(&mut pull, &config.display().to_string());
    std::fs::remove_file(&config).unwrap();
    let mut login = world.hoist(&["login", &remote, "--insecure-registry", &remote]);
    through_loopback_proxy(&mut login, &world.registry);
    let before = proxied_requests(&world.registry).len();
    let err = fails(with_flags(&mut login, USER, PASSWORD), HOIST_LIMIT);
    assert!(err.contains(&remote) && err.contains("plain HTTP"), "{err}");
    assert_eq!(
        proxied_requests(&world.registry).len(),
        before,
        "login connected"
    );
    assert!(!Path::new(&world.sandbox.path("docker/config.json")).exists());
    assert!(
        stderr(&run(&mut world.hoist(&["logout", &remote]), HOIST_LIMIT)).contains("not logged in")
    );
}

/// The dashboard example in a git checkout (one commit) under the sandbox's `repo/`,
/// its base the committed layout; answers the config path.
fn example_checkout(sandbox: &Sandbox) -> PathBuf {
    let tree = sandbox.path("repo");
    crate::common::copy_tree(&crate::common::example_dir(), &tree);
    let toml = std::fs::read_to_string(tree.join("hoist.toml")).unwrap();
    let toml = toml.replace(
        "base = \"oci:../../testdata/base:1.0\"",
        &format!("base = \"oci:{}:1.0\"", base_layout().display()),
    );
    std::fs::write(tree.join("hoist.toml"), toml).unwrap();
    for args in [
        &["init", "--quiet", "--initial-branch=main"][..],
        &["add", "--all"],
        &["commit", "--quiet", "-m", "Dashboard"],
    ] {
        let mut git = assert_cmd::Command::new("git");
        crate::release::git_env(&mut git)
            .current_dir(&tree)
            .args(args);
        crate::common::success(&mut git);
    }
    tree.join("hoist.toml")
}

/// `hoist verify -u U --password-stdin` in a git checkout: the password is read once
/// for the whole command (verify reads the published image's revision, rebuilds and
/// compares through one transport), and a refused password ends with the login hint.
#[test]
fn verify_reads_the_password_once_and_hints_at_login_when_refused() {
    let world = World::new();
    let config = example_checkout(&world.sandbox);
    let config = config.to_str().unwrap();
    let cache = world.sandbox.cache();
    let cache = cache.to_str().unwrap();
    let image = world.registry.reference("acme/app:1.0");
    world.pushes(with_flags(
        &mut world.hoist(&[
            "build",
            "--config",
            config,
            "--cache-dir",
            cache,
            "--push-to",
            &image,
        ]),
        USER,
        PASSWORD,
    ));

    let verify = |extra: &[&str], password: &str| {
        let mut command = world.hoist(&["verify", "--config", config, "--cache-dir", cache]);
        command.args(extra).arg(&image);
        run(with_flags(&mut command, USER, password), HOIST_LIMIT)
    };
    let output = verify(&[], PASSWORD);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("verified "), "{text}");
    assert_no_secret(&text);

    // A wrong password: exit 2 (could not tell), the registry's 401 with the hint,
    // also from the rebuild's own reads (--revision HEAD skips reading the revision).
    for extra in [&[][..], &["--revision", "HEAD"]] {
        let output = verify(extra, WRONG);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&world.host()) && err.contains("hint:") && err.contains("hoist login"),
            "{extra:?}: {err}"
        );
        assert_no_secret(&err);
    }
}

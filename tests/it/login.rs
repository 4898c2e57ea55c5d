//! `hoist login` / `hoist logout` against real registries: the token flow (see
//! `token_auth.rs`) and htpasswd Basic auth. Credentials are checked before they are
//! stored; a refusal changes nothing; what is stored is what push then uses.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::Value;

use crate::common::{Sandbox, last_line, parse_json, stdout};
use crate::registry::{HOIST_LIMIT, Registry, fails, ok, run};
use crate::token_auth::{
    Fixture, PASSWORD, STANDARD, USER, assert_no_secret, base64, build_layout, hoist, output_text,
    with_password,
};

/// bcrypt (cost 4, as distribution's htpasswd wants) of [`PASSWORD`].
pub(crate) const HTPASSWD_HASH: &str =
    "$2b$04$/v3Av56ZxLd7OHKgtrHdd.FpJle79BYuQLhg6pXYK8ad6mPiqpOZC";

/// What a user already had in config.json: hoist must keep it.
const EXISTING_CONFIG: &str = "{\n\t\"auths\": {\n\t\t\"other.example\": {\n\t\t\t\"auth\": \"eDp5\"\n\t\t}\n\t},\n\t\"experimental\": \"enabled\"\n}\n";

/// `hoist login|logout …` with docker's config in `<sandbox>/docker`.
fn hoist_with_config(sandbox: &Sandbox, args: &[&str]) -> assert_cmd::Command {
    let mut command = hoist(sandbox);
    command
        .env("DOCKER_CONFIG", sandbox.path("docker"))
        .args(args);
    command
}

fn config_json(sandbox: &Sandbox) -> Value {
    let path = sandbox.path("docker/config.json");
    let mode = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "config.json must be private");
    parse_json(&std::fs::read_to_string(&path).unwrap())
}

pub(crate) fn htpasswd_registry(sandbox: &Sandbox) -> Registry {
    let htpasswd = sandbox.write("htpasswd", &format!("{USER}:{HTPASSWD_HASH}\n"));
    Registry::start_with_auth(Some(&format!(
        "auth:\n  htpasswd:\n    realm: hoist-test\n    path: \"{}\"\n",
        htpasswd.display()
    )))
}

#[test]
fn login_checks_token_credentials_stores_them_and_push_uses_them() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    let host = fixture.registry.host();
    sandbox.write("docker/config.json", EXISTING_CONFIG);

    let mut login = hoist_with_config(&sandbox, &["login", &host]);
    let output = run(with_password(&mut login), HOIST_LIMIT);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(&format!("logged in to {host} as {USER}")),
        "{text}"
    );
    assert_no_secret(&text);
    // The token server saw the check: the right user, account=user, no scope needed.
    let requests = fixture.tokens.requests();
    assert!(
        requests.iter().any(|r| r.authenticated
            && r.status == 200
            && r.account.as_deref() == Some(USER)
            && r.scopes.is_empty()),
        "{requests:#?}"
    );

    let config = config_json(&sandbox);
    let expected = base64(format!("{USER}:{PASSWORD}").as_bytes(), STANDARD, true);
    assert_eq!(
        config["auths"][&host]["auth"],
        expected.as_str(),
        "{config:#}"
    );
    assert_eq!(
        config["auths"]["other.example"]["auth"], "eDp5",
        "{config:#}"
    );
    assert_eq!(config["experimental"], "enabled", "{config:#}");

    // A push with no credential flags finds what login stored.
    let digest = build_layout(&sandbox);
    let mut push = hoist_with_config(&sandbox, &["push"]);
    push.arg(sandbox.oci("layout:2"))
        .arg(fixture.registry.reference("acme/app:login"));
    let output = ok(&mut push, &fixture.registry);
    assert_eq!(
        last_line(&stdout(&output)),
        format!("{}@{digest}", fixture.registry.reference("acme/app"))
    );

    // Logout removes this registry's entry only; a push then needs credentials again.
    let mut logout = hoist_with_config(&sandbox, &["logout", &host]);
    let output = run(&mut logout, HOIST_LIMIT);
    assert!(output.status.success(), "{}", output_text(&output));
    let config = config_json(&sandbox);
    assert!(config["auths"].get(&host).is_none(), "{config:#}");
    assert_eq!(
        config["auths"]["other.example"]["auth"], "eDp5",
        "{config:#}"
    );
    let mut push = hoist_with_config(&sandbox, &["push"]);
    push.arg(sandbox.oci("layout:2"))
        .arg(fixture.registry.reference("acme/app:after-logout"));
    let text = fails(&mut push, HOIST_LIMIT);
    assert!(text.contains("hoist login"), "{text}");
}

#[test]
fn login_with_a_wrong_password_or_an_unreadable_config_changes_nothing() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    let host = fixture.registry.host();
    sandbox.write("docker/config.json", EXISTING_CONFIG);

    let mut login = hoist_with_config(&sandbox, &["login", &host, "-u", USER, "--password-stdin"]);
    login.write_stdin("wrong-password\n");
    let text = fails(&mut login, HOIST_LIMIT);
    assert!(text.contains("refused the credentials"), "{text}");
    assert!(text.contains(&host), "{text}");
    assert!(
        !text.contains("wrong-password"),
        "the password leaked:\n{text}"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.path("docker/config.json")).unwrap(),
        EXISTING_CONFIG
    );

    // A config.json hoist cannot read is named and left alone, even with good credentials.
    let broken = "{\"auths\": {\n";
    sandbox.write("docker/config.json", broken);
    let mut login = hoist_with_config(&sandbox, &["login", &host]);
    let text = fails(with_password(&mut login), HOIST_LIMIT);
    assert!(text.contains("config.json"), "{text}");
    assert!(text.contains("not valid JSON"), "{text}");
    assert_no_secret(&text);
    assert_eq!(
        std::fs::read_to_string(sandbox.path("docker/config.json")).unwrap(),
        broken
    );
}

#[test]
fn login_with_htpasswd_basic_auth() {
    let sandbox = Sandbox::new();
    let registry = htpasswd_registry(&sandbox);
    let host = registry.host();

    let mut login = hoist_with_config(&sandbox, &["login", &host, "-u", USER, "--password-stdin"]);
    login.write_stdin("nope\n");
    let text = fails(&mut login, HOIST_LIMIT);
    assert!(text.contains("refused the credentials"), "{text}");
    assert!(!sandbox.path("docker/config.json").exists());

    // No config.json and no ~/.docker yet: both are created, the file private.
    let mut login = hoist_with_config(&sandbox, &["login", &host]);
    let output = run(with_password(&mut login), HOIST_LIMIT);
    assert!(output.status.success(), "{}", output_text(&output));
    let config = config_json(&sandbox);
    let expected = base64(format!("{USER}:{PASSWORD}").as_bytes(), STANDARD, true);
    assert_eq!(
        config["auths"][&host]["auth"],
        expected.as_str(),
        "{config:#}"
    );

    let digest = build_layout(&sandbox);
    let mut push = hoist_with_config(&sandbox, &["push"]);
    push.arg(sandbox.oci("layout:2"))
        .arg(registry.reference("acme/basic:1"));
    let output = ok(&mut push, &registry);
    assert!(last_line(&stdout(&output)).ends_with(&digest));
}

#[test]
fn logout_when_not_logged_in_says_so_and_succeeds() {
    let sandbox = Sandbox::new();
    let mut logout = hoist_with_config(&sandbox, &["logout", "registry.example:5000"]);
    let output = run(&mut logout, HOIST_LIMIT);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("not logged in to registry.example:5000"),
        "{text}"
    );
    assert!(!sandbox.path("docker/config.json").exists());
}

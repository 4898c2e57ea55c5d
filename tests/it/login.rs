//! `hoist login` / `hoist logout` against real registries: the token flow (see
//! `token_auth.rs`) and htpasswd Basic auth. Credentials are checked before they are
//! stored; a refusal changes nothing; what is stored is what push then uses.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::{Value, json};

use crate::common::{Sandbox, last_line, parse_json, stdout};
use crate::credentials::{World, entry};
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

/// Every spelling of a registry's key that docker's and podman's lookups (and hoist's)
/// match: `logout` removes them all, from config.json and from podman's auth.json,
/// keeps everything else, keeps the files' mode, replaces them atomically, and the
/// next push sends no credentials.
#[test]
fn logout_removes_every_spelling_the_lookup_would_find() {
    use std::os::unix::fs::MetadataExt as _;

    let world = World::new();
    let host = world.host();
    let docker_spellings = [
        host.clone(),
        format!("http://{host}"),
        format!("https://{host}"),
        format!("https://{host}/"),
        format!("https://{host}/v2/"),
        format!("{host}/"),
    ];
    let podman_spellings = [host.clone(), format!("https://{host}/v2/")];
    let auth_file = world.sandbox.path("containers/auth.json");
    let podman_push = |tag: &str| {
        let mut push = world.push(tag);
        push.env("REGISTRY_AUTH_FILE", &auth_file);
        push
    };

    // Each spelling alone is found by the lookup: the push sends its credentials.
    for (n, key) in docker_spellings.iter().enumerate() {
        world.docker_config(&json!({ "auths": { key: entry(USER, PASSWORD) } }));
        world.pushes(&mut world.push(&format!("docker-{n}")));
    }
    std::fs::remove_file(world.sandbox.path("docker/config.json")).unwrap();
    for (n, key) in podman_spellings.iter().enumerate() {
        world.write_json(
            "containers/auth.json",
            &json!({ "auths": { key: entry(USER, PASSWORD) } }),
        );
        world.pushes(&mut podman_push(&format!("podman-{n}")));
    }

    // All of them at once, beside other registries' keys (alike ones too) and
    // settings.
    let (ip, _) = host.rsplit_once(':').unwrap();
    let others = json!({
        "other.example": entry("x", "y"),
        format!("{host}0"): entry("x", "y"),
        format!("https://{ip}/v2/"): entry("x", "y"),
    });
    let mut config = json!({
        "auths": others,
        "credHelpers": { "other.example": "never-run" },
        "experimental": "enabled",
    });
    for key in &docker_spellings {
        config["auths"][key] = entry(USER, PASSWORD);
    }
    let config_path = world.docker_config(&config);
    let mut podman = json!({ "auths": { format!("{host}/acme"): entry("x", "y") } });
    for key in &podman_spellings {
        podman["auths"][key] = entry(USER, PASSWORD);
    }
    world.write_json("containers/auth.json", &podman);
    for path in [&config_path, &auth_file] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    // A second name for the original file: an in-place rewrite would change it too.
    let original = world.sandbox.path("original-config.json");
    std::fs::hard_link(&config_path, &original).unwrap();
    let original_text = std::fs::read_to_string(&original).unwrap();

    let mut logout = world.hoist(&["logout", &host]);
    logout.env("REGISTRY_AUTH_FILE", &auth_file);
    let output = run(&mut logout, HOIST_LIMIT);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains(&format!("logged out of {host}")), "{text}");
    for key in docker_spellings.iter().chain(&podman_spellings) {
        assert!(
            text.contains(&format!("`{key}`")),
            "{key} not reported:\n{text}"
        );
    }
    assert!(text.contains(&config_path.display().to_string()), "{text}");
    assert!(text.contains(&auth_file.display().to_string()), "{text}");

    let after = parse_json(&std::fs::read_to_string(&config_path).unwrap());
    assert_eq!(after["auths"], others, "{after:#}");
    assert_eq!(after["credHelpers"], config["credHelpers"], "{after:#}");
    assert_eq!(after["experimental"], "enabled", "{after:#}");
    let podman_after = parse_json(&std::fs::read_to_string(&auth_file).unwrap());
    // podman reads `HOST/acme` as credentials for that namespace, not for the host.
    assert_eq!(
        podman_after["auths"],
        json!({ format!("{host}/acme"): entry("x", "y") }),
        "{podman_after:#}"
    );
    for path in [&config_path, &auth_file] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640, "{} lost its mode", path.display());
    }
    // Replaced by a rename, never rewritten in place; no temporary file left.
    assert_ne!(
        std::fs::metadata(&config_path).unwrap().ino(),
        std::fs::metadata(&original).unwrap().ino()
    );
    assert_eq!(std::fs::read_to_string(&original).unwrap(), original_text);
    for directory in ["docker", "containers"] {
        let names: Vec<String> = std::fs::read_dir(world.sandbox.path(directory))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{directory}: {names:?}");
    }

    // Every spelling held the right credentials, so a refused push sent none.
    let err = world.refused(&mut podman_push("after-logout"));
    assert!(err.contains("hoist login"), "{err}");
    let output = run(&mut world.hoist(&["logout", &host]), HOIST_LIMIT);
    assert!(output_text(&output).contains(&format!("not logged in to {host}")));
}

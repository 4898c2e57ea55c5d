//! Signatures: `hoist key generate`, `hoist sign`, `--sign-key` on pushes and
//! `hoist verify --key`, against the real registry, judged by an independent checker
//! (`sign/cosign_check.py`: Python `cryptography` + PyNaCl, sharing no code with
//! hoist) as well as by hoist's own verify. Each forgery (another key, a tampered
//! payload, a signature moved to another manifest) must fail in both.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

use crate::common::{Sandbox, example_config, parse_json, repo, stderr, stdout};
use crate::registry::{HOIST_LIMIT, Registry, fails, ok, run};

const PASSWORD: &str = "correct horse battery staple";

/// The checker, run with Debian's python (where python3-cryptography and
/// python3-nacl are installed), whatever `python3` is first on PATH.
fn checker(args: &[&str]) -> Output {
    let script = repo().join("tests/it/sign/cosign_check.py");
    let mut command = Command::new("/usr/bin/python3");
    command.arg(script).args(args);
    run(&mut command, HOIST_LIMIT)
}

fn checker_holds(args: &[&str]) -> String {
    let output = checker(args);
    assert!(
        output.status.success(),
        "checker {args:?} refused:\n{}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

fn checker_refuses(args: &[&str]) -> String {
    let output = checker(args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "checker {args:?} should refuse:\n{}{}",
        stdout(&output),
        stderr(&output)
    );
    stderr(&output)
}

/// `hoist key generate` in the sandbox with the password in HOIST_KEY_PASSWORD.
fn generate(sandbox: &Sandbox, prefix: &str) -> Command {
    let mut command = sandbox.hoist();
    command
        .args(["key", "generate", "--output-key-prefix", prefix])
        .env("HOIST_KEY_PASSWORD", PASSWORD)
        .env_remove("COSIGN_PASSWORD");
    command
}

fn hoist_with_password(sandbox: &Sandbox, password: &str) -> Command {
    let mut command = sandbox.hoist();
    command
        .env("HOIST_KEY_PASSWORD", password)
        .env_remove("COSIGN_PASSWORD");
    command
}

/// `hoist verify IMAGE --key PUB --signature-only`, whatever its exit code.
fn verify_signature(sandbox: &Sandbox, image: &str, public: &str) -> Output {
    let mut command = sandbox.hoist();
    command.args([
        "verify",
        image,
        "--key",
        public,
        "--signature-only",
        "--cache-dir",
    ]);
    command.arg(sandbox.cache());
    run(&mut command, HOIST_LIMIT)
}

fn assert_not_verified(output: &Output, names: &str, why: &str) {
    let out = stdout(output);
    assert_eq!(output.status.code(), Some(1), "{out}{}", stderr(output));
    assert!(
        out.contains("NOT verified") && out.contains(names) && out.contains(why),
        "{out}"
    );
}

/// The layers of `digest`'s signature manifest.
fn signature_layers(registry: &Registry, repo: &str, digest: &str) -> Vec<Value> {
    let tag = digest.replace(':', "-") + ".sig";
    let manifest: Value = serde_json::from_slice(&registry.manifest(repo, &tag)).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    manifest["layers"].as_array().unwrap().clone()
}

#[test]
fn key_generation_writes_cosign_files_and_never_overwrites() {
    let sandbox = Sandbox::new();
    let output = generate(&sandbox, "cosign")
        .assert()
        .success()
        .get_output()
        .clone();
    let printed = format!("{}{}", stdout(&output), stderr(&output));
    assert!(
        !printed.contains(PASSWORD),
        "the password was printed:\n{printed}"
    );
    let key = sandbox.path("cosign.key");
    let public = sandbox.path("cosign.pub");
    let key_text = fs::read_to_string(&key).unwrap();
    assert!(
        key_text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
        "{key_text}"
    );
    assert!(!key_text.contains(PASSWORD));
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let scrypt = checker_holds(&[
        "decrypt-key",
        key.to_str().unwrap(),
        PASSWORD,
        public.to_str().unwrap(),
    ]);
    assert_eq!(scrypt.trim(), "N=32768 r=8 p=1");
    let refusal = checker_refuses(&[
        "decrypt-key",
        key.to_str().unwrap(),
        "wrong",
        public.to_str().unwrap(),
    ]);
    assert!(refusal.contains("wrong password"), "{refusal}");

    // A second run refuses, naming the file, and leaves both files as they were.
    let public_text = fs::read_to_string(&public).unwrap();
    let err = crate::common::failure(&mut generate(&sandbox, "cosign"));
    assert!(
        err.contains("cosign.key") && err.contains("already exists"),
        "{err}"
    );
    fs::remove_file(&key).unwrap();
    let err = crate::common::failure(&mut generate(&sandbox, "cosign"));
    assert!(
        err.contains("cosign.pub") && err.contains("already exists"),
        "{err}"
    );
    assert!(!key.exists(), "a refused generate must write nothing");
    assert_eq!(fs::read_to_string(&public).unwrap(), public_text);
    generate(&sandbox, "cosign")
        .arg("--force")
        .assert()
        .success();
    assert_ne!(fs::read_to_string(&public).unwrap(), public_text);

    // No password anywhere and no terminal: a clear error, no file.
    let err = crate::common::failure(
        sandbox
            .hoist()
            .args(["key", "generate", "--output-key-prefix", "other"])
            .env_remove("HOIST_KEY_PASSWORD")
            .env_remove("COSIGN_PASSWORD"),
    );
    assert!(
        err.contains("HOIST_KEY_PASSWORD") && err.contains("no terminal"),
        "{err}"
    );
    assert!(!sandbox.path("other.key").exists());
    // COSIGN_PASSWORD serves too.
    sandbox
        .hoist()
        .args(["key", "generate", "--output-key-prefix", "third"])
        .env_remove("HOIST_KEY_PASSWORD")
        .env("COSIGN_PASSWORD", "x")
        .assert()
        .success();
    let third = sandbox.path("third.key");
    checker_holds(&[
        "decrypt-key",
        third.to_str().unwrap(),
        "x",
        sandbox.path("third.pub").to_str().unwrap(),
    ]);
}

/// Builds the example, pushes it with `--sign-key`, and returns (index digest, the
/// platform manifest digests).
fn push_signed(sandbox: &Sandbox, registry: &Registry, repo: &str) -> (String, Vec<String>) {
    let mut command = sandbox.build();
    command
        .env("HOIST_KEY_PASSWORD", PASSWORD)
        .arg("--config")
        .arg(example_config())
        .arg("--push-to")
        .arg(registry.reference(&format!("{repo}:1.0")))
        .arg("--sign-key")
        .arg(sandbox.path("cosign.key"))
        .arg("--json");
    let json = parse_json(&stdout(&ok(&mut command, registry)));
    let index = json["digest"].as_str().unwrap().to_string();
    let platforms: Vec<String> = json["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["digest"].as_str().unwrap().to_string())
        .collect();
    let signed: Vec<&str> = json["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["digest"].as_str().unwrap())
        .collect();
    assert_eq!(signed.len(), 1 + platforms.len(), "{json}");
    assert_eq!(signed[0], index);
    (index, platforms)
}

#[test]
fn signatures_verify_independently_and_forgeries_fail_in_both_checks() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    generate(&sandbox, "cosign").assert().success();
    generate(&sandbox, "other").assert().success();
    let host = registry.host();
    let (index, platforms) = push_signed(&sandbox, &registry, "acme/signed");
    assert_eq!(platforms.len(), 2);
    let public = sandbox.path("cosign.pub");
    let public = public.to_str().unwrap();
    let other = sandbox.path("other.pub");
    let other = other.to_str().unwrap();
    for digest in std::iter::once(&index).chain(&platforms) {
        checker_holds(&["check-signature", &host, "acme/signed", digest, public]);
        let refusal = checker_refuses(&["check-signature", &host, "acme/signed", digest, other]);
        assert!(refusal.contains("does not verify"), "{refusal}");
        let layers = signature_layers(&registry, "acme/signed", digest);
        assert_eq!(layers.len(), 1);
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
    }
    let image = registry.reference("acme/signed:1.0");
    let output = verify_signature(&sandbox, &image, public);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert_eq!(
        stdout(&output).trim(),
        format!(
            "verified signatures of {}@{index}",
            registry.reference("acme/signed")
        )
    );

    // The rebuild and the signatures together.
    let mut command = sandbox.hoist();
    command
        .args(["verify", &image, "--key", public, "--cache-dir"])
        .arg(sandbox.cache())
        .arg("--config")
        .arg(example_config());
    let output = ok(&mut command, &registry);
    assert!(
        stdout(&output).starts_with("verified "),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("provenance verified: "),
        "{}",
        stderr(&output)
    );
    check_provenance(&sandbox, &registry, &index, &platforms);

    // A provenance validly signed with the key but naming another base: the rebuild
    // matches, the provenance does not.
    let key = sandbox.path("cosign.key");
    checker_holds(&[
        "forge-provenance",
        &host,
        "acme/signed",
        &index,
        key.to_str().unwrap(),
        PASSWORD,
    ]);
    let output = run(&mut command, HOIST_LIMIT);
    assert_not_verified(
        &output,
        &format!(
            "provenance of {}@{index}",
            registry.reference("acme/signed")
        ),
        &format!("names base sha256:{}", "0".repeat(64)),
    );

    // Another key: refused by hoist, naming the index.
    let output = verify_signature(&sandbox, &image, other);
    assert_not_verified(
        &output,
        &format!("acme/signed@{index}"),
        "does not verify with",
    );

    // Signing again with the same key adds nothing; with an annotation, a layer.
    let before = registry.requests().len();
    let mut command = hoist_with_password(&sandbox, PASSWORD);
    command.args(["sign", &image, "--key", "cosign.key"]);
    let err = stderr(&ok(&mut command, &registry));
    assert!(err.contains("already signed"), "{err}");
    let resign: Vec<String> = registry.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    // The index (listing its two manifests) and the three .sig tags: four reads, and
    // an identical signature is not put again.
    assert_eq!(resign.len(), 4, "{resign:?}");
    assert!(resign.iter().all(|r| r.starts_with("GET ")), "{resign:?}");
    assert_eq!(signature_layers(&registry, "acme/signed", &index).len(), 1);
    let mut command = hoist_with_password(&sandbox, PASSWORD);
    command.args([
        "sign",
        &image,
        "--key",
        "other.key",
        "--annotation",
        "ci=run-7",
    ]);
    ok(&mut command, &registry);
    let layers = signature_layers(&registry, "acme/signed", &index);
    assert_eq!(layers.len(), 2, "signing again keeps the first signature");
    checker_holds(&["check-signature", &host, "acme/signed", &index, public]);
    checker_holds(&["check-signature", &host, "acme/signed", &index, other]);
    assert_eq!(
        verify_signature(&sandbox, &image, other).status.code(),
        Some(0)
    );

    // A wrong password names the key file and signs nothing.
    let mut command = hoist_with_password(&sandbox, "not it");
    command.args(["sign", &image, "--key", "cosign.key"]);
    let err = fails(&mut command, HOIST_LIMIT);
    assert!(
        err.contains("cosign.key") && err.contains("wrong password"),
        "{err}"
    );

    // A tampered payload (the first platform's): both refuse, hoist naming it.
    checker_holds(&["tamper", &host, "acme/signed", &platforms[0]]);
    let refusal = checker_refuses(&[
        "check-signature",
        &host,
        "acme/signed",
        &platforms[0],
        public,
    ]);
    assert!(refusal.contains("does not verify"), "{refusal}");
    let output = verify_signature(&sandbox, &image, public);
    assert_not_verified(
        &output,
        &format!("acme/signed@{}", platforms[0]),
        "tampered",
    );

    // The second platform's signature moved onto the index: valid signatures, about
    // another manifest.
    checker_holds(&["move", &host, "acme/signed", &platforms[1], &index]);
    let refusal = checker_refuses(&["check-signature", &host, "acme/signed", &index, public]);
    assert!(
        refusal.contains(&format!("payload names {}", platforms[1])),
        "{refusal}"
    );
    let output = verify_signature(&sandbox, &image, public);
    assert_not_verified(
        &output,
        &format!("acme/signed@{index}"),
        "moved from another manifest",
    );
}

#[test]
fn an_unsigned_image_fails_verify_naming_it() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    generate(&sandbox, "cosign").assert().success();
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--push-to")
        .arg(registry.reference("acme/unsigned:1.0"));
    let index = crate::common::last_line(&stdout(&ok(&mut command, &registry))).to_string();
    let output = verify_signature(
        &sandbox,
        &registry.reference("acme/unsigned:1.0"),
        "cosign.pub",
    );
    assert_not_verified(&output, &format!("acme/unsigned@{index}"), "not signed");
    let mut command = sandbox.hoist();
    command
        .args(["verify", &registry.reference("acme/unsigned:1.0")])
        .args(["--key", "cosign.pub", "--signature-only", "--json"]);
    let output = run(&mut command, HOIST_LIMIT);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let json = parse_json(&stdout(&output));
    assert_eq!(json["verified"], false);
    assert!(
        json["reason"].as_str().unwrap().contains("not signed"),
        "{json}"
    );
    assert!(Path::new(&sandbox.path("cosign.pub")).exists());
}

/// The provenance attached to the index, found through the referrers tag schema
/// (distribution 2.8 has no referrers API), its DSSE envelope verified by the checker
/// (PAE built by the checker itself), its statement naming the build's inputs.
fn check_provenance(sandbox: &Sandbox, registry: &Registry, index: &str, platforms: &[String]) {
    let referrers: Value =
        serde_json::from_slice(&registry.manifest("acme/signed", &index.replace(':', "-")))
            .unwrap();
    let entries: Vec<&Value> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/vnd.in-toto+json")
        .collect();
    assert_eq!(entries.len(), 1, "{referrers}");
    let manifest: Value = serde_json::from_slice(
        &registry.manifest("acme/signed", entries[0]["digest"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(manifest["subject"]["digest"], index);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    let blob = format!(
        "/v2/acme/signed/blobs/{}",
        manifest["layers"][0]["digest"].as_str().unwrap()
    );
    let envelope = registry.http_get(&blob, &[]).unwrap();
    assert_eq!(envelope.status, 200);
    let path = sandbox.path("envelope.json");
    fs::write(&path, &envelope.body).unwrap();
    let public = sandbox.path("cosign.pub");
    let statement = parse_json(&checker_holds(&[
        "check-dsse",
        path.to_str().unwrap(),
        public.to_str().unwrap(),
    ]));
    let refusal = checker_refuses(&[
        "check-dsse",
        path.to_str().unwrap(),
        sandbox.path("other.pub").to_str().unwrap(),
    ]);
    assert!(refusal.contains("no signature"), "{refusal}");

    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    let subjects: Vec<String> = statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("sha256:{}", s["digest"]["sha256"].as_str().unwrap()))
        .collect();
    let mut expected = vec![index.to_string()];
    expected.extend(platforms.iter().cloned());
    assert_eq!(subjects, expected);
    let definition = &statement["predicate"]["buildDefinition"];
    let config = fs::read(example_config()).unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            definition["externalParameters"]["config"]["digest"]["sha256"]
                .as_str()
                .unwrap()
        ),
        crate::common::digest_of(&config)
    );
    assert_eq!(
        definition["externalParameters"]["config"]["path"],
        "examples/dashboard/hoist.toml"
    );
    let head = crate::common::tool(
        "git",
        &["-C", repo().to_str().unwrap(), "rev-parse", "HEAD"],
    );
    assert_eq!(
        definition["externalParameters"]["source"]["revision"],
        head.trim()
    );
    let dependencies = definition["resolvedDependencies"].as_array().unwrap();
    let base = dependencies
        .iter()
        .find(|d| d["name"] == "base")
        .expect("the base is a dependency");
    let index_doc: Value =
        serde_json::from_slice(&registry.manifest("acme/signed", index)).unwrap();
    let platform_doc: Value =
        serde_json::from_slice(&registry.manifest("acme/signed", &platforms[0])).unwrap();
    let recorded = index_doc["annotations"]["org.opencontainers.image.base.digest"]
        .as_str()
        .or(platform_doc["annotations"]["org.opencontainers.image.base.digest"].as_str())
        .unwrap();
    assert_eq!(
        format!("sha256:{}", base["digest"]["sha256"].as_str().unwrap()),
        recorded
    );
    assert!(
        dependencies
            .iter()
            .any(|d| d["uri"] == "file:examples/dashboard/backend"),
        "{dependencies:?}"
    );
    assert!(
        statement["predicate"]["runDetails"]["builder"]["id"]
            .as_str()
            .unwrap()
            .contains("hoist")
    );
}

/// `hoist push --sign-key`: an image copied from a layout is signed once its tag is
/// up (no provenance: a copy has no build to describe), and the checker agrees.
#[test]
fn push_sign_key_signs_the_copied_image() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    generate(&sandbox, "cosign").assert().success();
    let mut command = hoist_with_password(&sandbox, PASSWORD);
    command
        .arg("push")
        .arg(format!(
            "oci:{}:1.0",
            crate::common::base_layout().display()
        ))
        .arg(registry.reference("acme/copied:1.0"))
        .args(["--sign-key", "cosign.key", "--json", "--cache-dir"])
        .arg(sandbox.cache());
    let json = parse_json(&stdout(&ok(&mut command, &registry)));
    let digest = json["digest"].as_str().unwrap();
    let signed = json["signatures"].as_array().unwrap();
    assert_eq!(signed[0]["digest"], digest);
    assert!(signed.len() >= 2, "the index and its manifests: {json}");
    let public = sandbox.path("cosign.pub");
    for entry in signed {
        checker_holds(&[
            "check-signature",
            &registry.host(),
            "acme/copied",
            entry["digest"].as_str().unwrap(),
            public.to_str().unwrap(),
        ]);
    }
    let output = verify_signature(
        &sandbox,
        &registry.reference("acme/copied:1.0"),
        "cosign.pub",
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
}

/// On a terminal the password is prompted for without echo, twice when generating.
/// A pseudo-terminal driver (Python's `pty`) types each answer once its prompt is on
/// the screen and echo is off, so anything echoed would be on the screen too.
#[test]
fn the_password_is_prompted_for_on_a_terminal_without_echo() {
    const DRIVER: &str = r#"
import os, pty, sys, termios, time
argv, answers = sys.argv[1:2], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], [argv[0], "key", "generate"])
screen = b""
prompts = [b"Enter password for cosign.key: ", b"Enter password again: "]
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    screen += chunk
    while prompts and prompts[0] in screen:
        prompts.pop(0)
        # The prompt is printed before echo goes off: type once it is off, as a
        # person would (a terminal that never turns it off hangs into the time limit).
        while termios.tcgetattr(fd)[3] & termios.ECHO:
            time.sleep(0.01)
        os.write(fd, answers.pop(0).encode() + b"\n")
_, status = os.waitpid(pid, 0)
sys.stdout.write(screen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let sandbox = Sandbox::new();
    let typed = "typed-secret-42";
    let mut command = Command::new("/usr/bin/python3");
    command
        .current_dir(sandbox.root())
        .env_remove("HOIST_KEY_PASSWORD")
        .env_remove("COSIGN_PASSWORD")
        .args(["-c", DRIVER, env!("CARGO_BIN_EXE_hoist"), typed, typed]);
    let output = run(&mut command, HOIST_LIMIT);
    let screen = format!("{}{}", stdout(&output), stderr(&output));
    assert!(output.status.success(), "{screen}");
    assert!(screen.contains("Enter password again"), "{screen}");
    assert!(
        !screen.contains(typed),
        "the password was echoed:\n{screen}"
    );
    checker_holds(&[
        "decrypt-key",
        sandbox.path("cosign.key").to_str().unwrap(),
        typed,
        sandbox.path("cosign.pub").to_str().unwrap(),
    ]);
}

/// Keys written by another implementation (the checker, as cosign ≥ 2.3 writes them:
/// N = 2^16; and the older `ENCRYPTED COSIGN PRIVATE KEY` type) sign with hoist, and
/// the checker verifies what hoist signed; hoist's own public key file is not needed.
#[test]
fn keys_written_by_another_implementation_sign() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let mut command = sandbox.hoist();
    command
        .arg("push")
        .arg(format!(
            "oci:{}:1.0",
            crate::common::base_layout().display()
        ))
        .arg(registry.reference("acme/foreign:1.0"))
        .arg("--cache-dir")
        .arg(sandbox.cache());
    let pushed = crate::common::last_line(&stdout(&ok(&mut command, &registry))).to_string();
    let digest = pushed.rsplit('@').next().unwrap().to_string();
    for (name, pem_type, n) in [
        ("new", "ENCRYPTED SIGSTORE PRIVATE KEY", "65536"),
        ("old", "ENCRYPTED COSIGN PRIVATE KEY", "32768"),
    ] {
        let key = sandbox.path(&format!("{name}.key"));
        let public = sandbox.path(&format!("{name}.pub"));
        checker_holds(&[
            "encrypt-key",
            key.to_str().unwrap(),
            public.to_str().unwrap(),
            PASSWORD,
            pem_type,
            n,
        ]);
        let mut command = hoist_with_password(&sandbox, PASSWORD);
        command.args(["sign", &registry.reference("acme/foreign:1.0"), "--key"]);
        command.arg(&key);
        ok(&mut command, &registry);
        checker_holds(&[
            "check-signature",
            &registry.host(),
            "acme/foreign",
            &digest,
            public.to_str().unwrap(),
        ]);
        let output = verify_signature(
            &sandbox,
            &registry.reference("acme/foreign:1.0"),
            public.to_str().unwrap(),
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}{}",
            stdout(&output),
            stderr(&output)
        );
    }
}

/// A registry failure while signing says what was being signed, naming the image,
/// and keeps the registry's answer typed in the chain (the credentials hint finds
/// the 403 a registry refusing the signature's tag answers).
#[test]
fn a_registry_failure_while_signing_names_the_image() {
    use crate::proxy::{Fault, FaultPlan, FaultProxy};
    let registry = Registry::start();
    let plan = FaultPlan::new().always("PUT", ".sig", Fault::envelope(403, "DENIED"));
    let proxy = FaultProxy::start(crate::faults::upstream(&registry), plan);
    let sandbox = Sandbox::new();
    generate(&sandbox, "cosign").assert().success();
    let image = proxy.reference("acme/refused:1.0");
    let mut build = sandbox.build();
    build
        .arg("--config")
        .arg(example_config())
        .arg("--push-to")
        .arg(&image);
    ok(&mut build, &registry);
    let mut command = hoist_with_password(&sandbox, PASSWORD);
    command.args(["sign", &image, "--key", "cosign.key"]);
    let err = fails(&mut command, HOIST_LIMIT);
    assert!(
        err.contains(&format!("signing {}/acme/refused@sha256:", proxy.host()))
            && err.contains("403"),
        "{err}"
    );
    assert!(
        err.contains("hint: the registry refused the credentials"),
        "{err}"
    );
}

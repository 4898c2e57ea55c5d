//! A registry on 127.0.0.1 behind TLS with a CA the test makes (openssl), and htpasswd
//! Basic auth: with `--ca-file`, hoist speaks TLS to it (a loopback registry is tried
//! over TLS first when a CA is given), logs in, pushes and pulls; without the CA it
//! cannot, and says so.

use std::fs;
use std::path::Path;

use crate::common::{Sandbox, last_line, stdout, tool};
use crate::login::HTPASSWD_HASH;
use crate::registry::{HOIST_LIMIT, Registry, run};
use crate::token_auth::{USER, build_layout, hoist, output_text, with_password};

/// A CA, and a certificate for 127.0.0.1 it signed, in `dir`: `ca.pem`,
/// `server.pem`, `server.key`.
pub(crate) fn make_certificates(dir: &Path) {
    let path = |name: &str| dir.join(name).display().to_string();
    tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path("ca.key"),
            "-out",
            &path("ca.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=hoist test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    tool(
        "openssl",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path("server.key"),
            "-out",
            &path("server.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    tool(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &path("server.csr"),
            "-CA",
            &path("ca.pem"),
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-out",
            &path("server.pem"),
            "-days",
            "2",
            "-extfile",
            &path("server.ext"),
        ],
    );
}

#[test]
fn tls_registry_with_a_private_ca_and_basic_auth() {
    let sandbox = Sandbox::new();
    let certs = sandbox.path("certs");
    fs::create_dir_all(&certs).unwrap();
    make_certificates(&certs);
    let htpasswd = sandbox.write("htpasswd", &format!("{USER}:{HTPASSWD_HASH}\n"));
    let registry = Registry::start_with_config(
        Some(&format!(
            "  tls:\n    certificate: \"{}\"\n    key: \"{}\"\n\
             auth:\n  htpasswd:\n    realm: hoist-test\n    path: \"{}\"\n",
            certs.join("server.pem").display(),
            certs.join("server.key").display(),
            htpasswd.display()
        )),
        // A plain GET to a TLS port gets Go's 400.
        400,
    );
    let ca = certs.join("ca.pem").display().to_string();
    let host = registry.host();
    let digest = build_layout(&sandbox);

    // Login over TLS: the credentials are checked, then stored.
    let mut login = hoist(&sandbox);
    login
        .env("DOCKER_CONFIG", sandbox.path("docker"))
        .args(["login", &host, "--ca-file", &ca]);
    let output = run(with_password(&mut login), HOIST_LIMIT);
    assert!(output.status.success(), "{}", output_text(&output));

    // Push with the stored credentials, then pull it back: the same digest.
    let mut push = hoist(&sandbox);
    push.env("DOCKER_CONFIG", sandbox.path("docker"))
        .args(["push", "--ca-file", &ca])
        .arg(sandbox.oci("layout:2"))
        .arg(registry.reference("acme/tls:1"));
    let output = run(&mut push, HOIST_LIMIT);
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(last_line(&stdout(&output)).ends_with(&digest));
    let mut pull = hoist(&sandbox);
    pull.env("DOCKER_CONFIG", sandbox.path("docker"))
        .args(["pull", "--ca-file", &ca, "--cache-dir"])
        .arg(sandbox.path("pull-cache"))
        .arg(registry.reference("acme/tls:1"))
        .arg("--output")
        .arg(sandbox.oci("pulled"));
    let output = run(&mut pull, HOIST_LIMIT);
    assert!(output.status.success(), "{}", output_text(&output));
    assert_eq!(last_line(&stdout(&output)), digest);

    // Without the CA, hoist speaks plain HTTP to it and fails, naming the registry.
    let mut push = hoist(&sandbox);
    push.env("DOCKER_CONFIG", sandbox.path("docker"))
        .arg("push")
        .arg(sandbox.oci("layout:2"))
        .arg(registry.reference("acme/tls:2"));
    let output = run(&mut push, HOIST_LIMIT);
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(&host), "{text}");
}

//! Python layers on real-shaped bases (issue 18): each platform's interpreter facts
//! from its own image (a multi-platform base whose platforms differ), and the
//! interpreter found in the base's files when its config has no `PYTHON_VERSION`.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::{Layout, Sandbox, digest_of, repo};
use crate::python::{
    SimpleIndex, build, build_base, image_entries, image_files, layers, make_wheel, real_files,
    real_lock, refused,
};
use crate::registry::{Registry, ok};

/// Builds a two-platform base at `<sandbox>/<name>:1` from the directories
/// `<name>-amd64/` and `<name>-arm64/` (each only in its platform's image) and
/// the symbolic links `links` (platform, path, target).
fn two_platform_base(
    sandbox: &Sandbox,
    name: &str,
    files: &[(&str, &str, &str)],
    links: &[(&str, &str, &str)],
) -> String {
    for arch in ["amd64", "arm64"] {
        fs::create_dir_all(sandbox.path(&format!("{name}-{arch}/etc"))).unwrap();
    }
    for (arch, path, text) in files {
        sandbox.write(&format!("{name}-{arch}/{path}"), text);
    }
    for (arch, path, target) in links {
        let link = sandbox.path(&format!("{name}-{arch}/{path}"));
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, link).unwrap();
    }
    build_base(
        sandbox,
        name,
        &format!(
            "[[layer]]\nfrom = \"{name}-amd64\"\nto = \"/\"\nplatform = \"linux/amd64\"\n\n[[layer]]\nfrom = \"{name}-arm64\"\nto = \"/\"\nplatform = \"linux/arm64\"\n\n[config]\nenv = {{ LANG = \"C.UTF-8\" }}\n"
        ),
    )
}

/// Sets the config `Env` of the `arch` image tagged `tag` in the layout at `dir`,
/// writing the new config, manifest and index blobs and `index.json`: a base whose
/// platforms' configs differ, as a registry's multi-platform images may.
fn set_env(dir: &Path, tag: &str, arch: &str, env: &[&str]) {
    let layout = Layout::open(dir);
    let put = |value: &Value| {
        let bytes = serde_json::to_vec(value).unwrap();
        let digest = digest_of(&bytes);
        fs::write(layout.blob_path(&digest), &bytes).unwrap();
        (Value::from(digest), Value::from(bytes.len()))
    };
    let mut top = layout.index_json();
    let entry = top["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let mut index = layout.json(entry["digest"].as_str().unwrap());
    let descriptor = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["platform"]["architecture"] == arch)
        .unwrap();
    let mut manifest = layout.json(descriptor["digest"].as_str().unwrap());
    let mut config = layout.json(manifest["config"]["digest"].as_str().unwrap());
    config["config"]["Env"] = serde_json::json!(env);
    (manifest["config"]["digest"], manifest["config"]["size"]) = put(&config);
    (descriptor["digest"], descriptor["size"]) = put(&manifest);
    (entry["digest"], entry["size"]) = put(&index);
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

const DPKG_LIBC: &str = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n";
const APK_MUSL: &str = "P:musl\nV:1.2.5-r0\n";

/// A lock of `demo` (a console script) and `new-only` (for Python 3.12 and later).
fn lock(sandbox: &Sandbox) {
    let demo = make_wheel(
        sandbox,
        "demo",
        &[
            ("demo/__init__.py", "def main():\n    print('demo')\n"),
            (
                "demo-1.0.dist-info/entry_points.txt",
                "[console_scripts]\ndemo = demo:main\n",
            ),
        ],
        "",
    );
    let new_only = make_wheel(sandbox, "new_only", &[("new_only.py", "X = 1\n")], "");
    sandbox.write(
        "requirements.lock",
        &format!(
            "demo==1.0 --hash=sha256:{demo}\nnew-only==1.0 ; python_version >= \"3.12\" --hash=sha256:{new_only}\n"
        ),
    );
}

fn project(sandbox: &Sandbox, base: &str, python: &str) {
    sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nbase = \"{base}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = false\n\n[[layer]]\npython = {{ lock = \"requirements.lock\", wheelhouse = \"wheels\"{python} }}\n"
        ),
    );
}

/// The target of the symbolic link at `path` in the `arch` image's layers.
fn link(sandbox: &Sandbox, out: &str, arch: &str, path: &str) -> Option<String> {
    image_entries(sandbox, out, arch).remove(path)?.link
}

fn text(files: &std::collections::BTreeMap<String, (u32, Vec<u8>)>, path: &str) -> String {
    let (_, bytes) = files
        .get(path)
        .unwrap_or_else(|| panic!("{path} in {:#?}", files.keys().collect::<Vec<_>>()));
    String::from_utf8_lossy(bytes).into_owned()
}

/// A Debian-like amd64 (`/usr/bin/python3` → `python3.11`, glibc 2.36) and an
/// Alpine-like arm64 (`/usr/bin/python3` → `python3.12`, musl 1.2) in one base with no
/// `PYTHON_VERSION`: each platform's venv, site-packages, markers and shebangs follow
/// its own interpreter, and nothing is shared between them.
#[test]
fn each_platform_gets_its_own_interpreter_found_in_its_base_files() {
    let sandbox = Sandbox::new();
    let base = two_platform_base(
        &sandbox,
        "mixed",
        &[
            ("amd64", "usr/bin/python3.11", "ELF"),
            ("amd64", "var/lib/dpkg/status", DPKG_LIBC),
            ("arm64", "usr/bin/python3.12", "ELF"),
            ("arm64", "lib/apk/db/installed", APK_MUSL),
        ],
        &[
            ("amd64", "usr/bin/python3", "python3.11"),
            ("arm64", "usr/bin/python3", "python3.12"),
        ],
    );
    lock(&sandbox);
    project(&sandbox, &base, ", venv = \"/opt/venv\"");
    build(&sandbox, "venv", &[]);
    for (arch, minor) in [("amd64", "11"), ("arm64", "12")] {
        let files = image_files(&sandbox, "venv", arch);
        let cfg = text(&files, "opt/venv/pyvenv.cfg");
        assert!(
            cfg.contains("home = /usr/bin\n") && cfg.contains(&format!("version = 3.{minor}\n")),
            "{arch}: {cfg}"
        );
        let site = format!("opt/venv/lib/python3.{minor}/site-packages");
        assert!(
            files.contains_key(&format!("{site}/demo/__init__.py")),
            "{arch}"
        );
        assert_eq!(
            files.contains_key(&format!("{site}/new_only.py")),
            minor == "12",
            "{arch}: the marker python_version >= 3.12"
        );
        assert!(text(&files, "opt/venv/bin/demo").starts_with("#!/opt/venv/bin/python\n"));
    }
    for (arch, minor) in [("amd64", "11"), ("arm64", "12")] {
        assert_eq!(
            link(&sandbox, "venv", arch, "opt/venv/bin/python").as_deref(),
            Some(format!("/usr/bin/python3.{minor}").as_str()),
            "{arch}"
        );
    }
    let [(_, amd), (_, arm)] = <[_; 2]>::try_from(layers(&sandbox, "venv")).unwrap();
    assert!(
        amd.iter().skip(1).all(|d| !arm.contains(d)),
        "interpreters differ: no Python layer is shared\n{amd:?}\n{arm:?}"
    );

    // Into the interpreter's site-packages: console scripts name each interpreter.
    project(&sandbox, &base, "");
    build(&sandbox, "plain", &[]);
    for (arch, minor) in [("amd64", "11"), ("arm64", "12")] {
        let files = image_files(&sandbox, "plain", arch);
        assert!(
            text(&files, "usr/local/bin/demo")
                .starts_with(&format!("#!/usr/bin/python3.{minor}\n")),
            "{arch}"
        );
        assert!(files.contains_key(&format!(
            "usr/local/lib/python3.{minor}/site-packages/demo/__init__.py"
        )));
    }
}

/// Each platform's own `PYTHON_VERSION` (the official images' way) and package
/// database: a base whose arm64 config says 3.12 and amd64 3.11, and whose arm64
/// glibc is too old for a manylinux_2_17 wheel, refused for arm64 alone.
#[test]
fn each_platform_gets_its_own_python_version_and_libc_from_its_config_and_packages() {
    let sandbox = Sandbox::new();
    let base = two_platform_base(
        &sandbox,
        "official",
        &[
            ("amd64", "var/lib/dpkg/status", DPKG_LIBC),
            (
                "arm64",
                "var/lib/dpkg/status",
                &DPKG_LIBC.replace("2.36", "2.12"),
            ),
        ],
        &[],
    );
    let dir = sandbox.path("official");
    set_env(&dir, "1", "amd64", &["PYTHON_VERSION=3.11.9"]);
    set_env(&dir, "1", "arm64", &["PYTHON_VERSION=3.12.1"]);
    lock(&sandbox);
    project(&sandbox, &base, ", venv = \"/opt/venv\"");
    build(&sandbox, "good", &[]);
    for (arch, version) in [("amd64", "3.11.9"), ("arm64", "3.12.1")] {
        let files = image_files(&sandbox, "good", arch);
        let cfg = text(&files, "opt/venv/pyvenv.cfg");
        assert!(
            cfg.contains(&format!("version = {version}\n"))
                && cfg.contains("home = /usr/local/bin\n"),
            "{arch}: {cfg}"
        );
        let short = &version[..4];
        assert_eq!(
            files.contains_key(&format!(
                "opt/venv/lib/python{short}/site-packages/new_only.py"
            )),
            short == "3.12",
            "{arch}"
        );
    }

    // A wheel needing glibc 2.17: amd64's 2.36 takes it, arm64's 2.12 does not.
    let native = "native-1.0-py3-none-manylinux_2_17_x86_64.manylinux_2_17_aarch64.whl";
    let hash = make_wheel(&sandbox, "native", &[("native.py", "N = 1\n")], "");
    fs::rename(
        sandbox.path("wheels/native-1.0-py3-none-any.whl"),
        sandbox.path(&format!("wheels/{native}")),
    )
    .unwrap();
    sandbox.write(
        "requirements.lock",
        &format!("native==1.0 --hash=sha256:{hash}\n"),
    );
    let err = refused(&sandbox);
    assert!(
        err.contains("native==1.0 for linux/arm64") && err.contains("glibc 2.12"),
        "{err}"
    );
    assert!(!err.contains("for linux/amd64"), "{err}");
}

/// Neither the config nor the files tell: the keys to set are named with the layer
/// (testdata/base-dpkg, a Debian-packaged busybox without Python); and with `version`
/// alone, a venv still needs `interpreter`.
#[test]
fn a_base_without_python_needs_version_and_interpreter_named() {
    let sandbox = Sandbox::new();
    lock(&sandbox);
    let base = format!("oci:{}:1.0", repo().join("testdata/base-dpkg").display());
    let write = |python: &str| {
        sandbox.write(
            "hoist.toml",
            &format!(
                "[image]\nbase = \"{base}\"\nplatforms = [\"linux/amd64\"]\nsbom = false\n\n[[layer]]\npython = {{ lock = \"requirements.lock\", wheelhouse = \"wheels\", venv = \"/opt/venv\", libc = \"glibc-2.36\"{python} }}\n"
            ),
        );
    };
    write("");
    let err = refused(&sandbox);
    assert!(
        err.contains("layer[0].python.version")
            && err.contains("PYTHON_VERSION")
            && err.contains("interpreter"),
        "{err}"
    );
    write(", version = \"3.11\"");
    let err = refused(&sandbox);
    assert!(
        err.contains("layer[0].python.interpreter") && err.contains("virtual environment"),
        "{err}"
    );
    write(", version = \"3.11\", interpreter = \"/opt/python/bin/python3.11\"");
    build(&sandbox, "out", &[]);
    let files = image_files(&sandbox, "out", "amd64");
    assert!(text(&files, "opt/venv/pyvenv.cfg").contains("home = /opt/python/bin\n"));

    // No venv, `version` and `libc` given: the base's files are not read, and the
    // console script is what needs the interpreter, named with its wheel.
    sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nbase = \"{base}\"\nplatforms = [\"linux/amd64\"]\nsbom = false\n\n[[layer]]\npython = {{ lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.11\", libc = \"glibc-2.36\" }}\n"
        ),
    );
    let err = crate::common::failure(
        sandbox
            .build()
            .arg("--output")
            .arg(format!("{}:1", sandbox.oci("scripts"))),
    );
    assert!(
        err.contains("layer[0].python.interpreter")
            && err.contains("console script demo of demo-1.0-py3-none-any.whl"),
        "{err}"
    );
}

/// Every byte of the layout at `dir` (layers decompressed) and `printed`: none holds
/// `secret`.
pub(crate) fn assert_nowhere(dir: &Path, printed: &str, secret: &str) {
    assert!(!printed.contains(secret), "printed: {printed}");
    let mut blobs = 0;
    for entry in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let bytes = fs::read(entry.unwrap().path()).unwrap();
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            crate::common::gunzip(&bytes)
        } else {
            bytes
        };
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "a blob of {} holds it",
            dir.display()
        );
        blobs += 1;
    }
    assert!(blobs > 4, "{blobs} blobs");
    assert!(
        !fs::read_to_string(dir.join("index.json"))
            .unwrap()
            .contains(secret)
    );
}

/// The real lock, and a hoist.toml installing it into a venv for amd64 and arm64 from
/// whatever index the environment names (no `index`, no wheelhouse).
pub(crate) fn index_project(sandbox: &Sandbox) {
    sandbox.write("requirements.lock", &real_lock());
    sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = true\n\n[[layer]]\npython = { lock = \"requirements.lock\", version = \"3.11\", libc = \"glibc-2.28\", interpreter = \"/usr/local/bin/python3.11\", venv = \"/opt/venv\" }\n",
    );
}

/// `hoist build` of the sandbox's project with `env`, cache `<sandbox>/<cache>`,
/// output `<sandbox>/<out>:1`.
pub(crate) fn build_env(
    sandbox: &Sandbox,
    cache: &str,
    out: &str,
    env: &[(&str, String)],
) -> std::process::Output {
    let mut command = sandbox.hoist();
    command
        .arg("build")
        .arg("--cache-dir")
        .arg(sandbox.path(cache))
        .arg("--output")
        .arg(format!("{}:1", sandbox.oci(out)));
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// stdout then stderr of `output`.
pub(crate) fn printed(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Issue 18: a layer naming no index takes the one pip's and uv's variables name
/// (`UV_DEFAULT_INDEX`, then `UV_INDEX_URL`, then `PIP_INDEX_URL`), with the
/// credentials in its URL sent to it (Basic, as the index requires), and the
/// password is in no output, SBOM, layer or error.
#[test]
fn an_index_from_pip_or_uv_variables_gets_its_credentials_and_never_shows_them() {
    let sandbox = Sandbox::new();
    let index = SimpleIndex::serve_as(&sandbox, &real_files(), Some("me:s3cret-pw"));
    let with_password = |password: &str| {
        index
            .url
            .replace("http://", &format!("http://me:{password}@"))
    };
    index_project(&sandbox);
    let build =
        |cache: &str, out: &str, env: &[(&str, String)]| build_env(&sandbox, cache, out, env);

    let output = build(
        "c1",
        "pip",
        &[("PIP_INDEX_URL", with_password("s3cret-pw"))],
    );
    assert!(output.status.success(), "{}", printed(&output));
    assert_nowhere(&sandbox.path("pip"), &printed(&output), "s3cret");
    let log = fs::read_to_string(sandbox.path("auth.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("/simple/orjson/") && l.ends_with("Basic bWU6czNjcmV0LXB3")),
        "{log}"
    );
    // The SBOM lists the lock's packages (read from the layers the index filled).
    let spdx = crate::common::Layout::open(sandbox.path("pip"));
    let documents: Vec<String> = fs::read_dir(spdx.root.join("blobs/sha256"))
        .unwrap()
        .map(|e| String::from_utf8_lossy(&fs::read(e.unwrap().path()).unwrap()).into_owned())
        .filter(|text| text.contains("\"spdxVersion\""))
        .collect();
    assert_eq!(documents.len(), 2, "one SBOM per platform");
    for document in &documents {
        assert!(document.contains("pkg:pypi/orjson@3.10.12"), "{document}");
    }

    // uv's variable wins over pip's (which names a closed port here), `name=URL` too.
    let output = build(
        "c2",
        "uv",
        &[
            (
                "UV_DEFAULT_INDEX",
                format!("private={}", with_password("s3cret-pw")),
            ),
            ("PIP_INDEX_URL", "http://127.0.0.1:9/simple".to_owned()),
        ],
    );
    assert!(output.status.success(), "{}", printed(&output));
    assert_nowhere(&sandbox.path("uv"), &printed(&output), "s3cret");

    // A wrong password: the 401 is named with the URL, and no password.
    let output = build(
        "c3",
        "wrong",
        &[("UV_INDEX_URL", with_password("wr0ng-pw"))],
    );
    assert!(!output.status.success());
    let err = printed(&output);
    assert!(err.contains("401") && err.contains(&index.url), "{err}");
    assert!(!err.contains("wr0ng") && !err.contains("me:"), "{err}");
    // Nor in a bad variable's message.
    let output = build(
        "c4",
        "bad",
        &[(
            "PIP_INDEX_URL",
            "ftp://me:s3cret-pw@127.0.0.1/simple".to_owned(),
        )],
    );
    let err = printed(&output);
    assert!(
        err.contains("PIP_INDEX_URL") && !err.contains("s3cret"),
        "{err}"
    );
}

/// The referrers of `subject` in `repo` (distribution 2.8: the fallback tag) of
/// `artifact_type`: each one's single layer, fetched.
fn referred(registry: &Registry, repo: &str, subject: &str, artifact_type: &str) -> Vec<Vec<u8>> {
    let tag = subject.replace(':', "-");
    let index: Value = serde_json::from_slice(&registry.manifest(repo, &tag)).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == artifact_type)
        .map(|m| {
            let manifest: Value =
                serde_json::from_slice(&registry.manifest(repo, m["digest"].as_str().unwrap()))
                    .unwrap();
            let blob = format!(
                "/v2/{repo}/blobs/{}",
                manifest["layers"][0]["digest"].as_str().unwrap()
            );
            registry.http_get(&blob, &[]).unwrap().body
        })
        .collect()
}

/// Issue 18 (a bug: the release's facts were read from the plan before its Python
/// layers were planned): the signed provenance of a pushed image with a Python layer
/// names the lock (by its sha256) among its inputs and numbers the other layers as
/// hoist.toml does; the SBOM attached to each platform lists the lock's packages.
/// A key pair (`cosign.key`, `cosign.pub`), a project with a Python layer (its lock
/// first) and an `app` layer, pushed to `acme/py:1.0` signed: `build --json`'s report.
fn push_signed_python(sandbox: &Sandbox, registry: &Registry) -> Value {
    let password = "correct horse battery staple";
    let mut generate = sandbox.hoist();
    generate
        .args(["key", "generate", "--output-key-prefix", "cosign"])
        .env("HOIST_KEY_PASSWORD", password)
        .env_remove("COSIGN_PASSWORD");
    crate::common::success(&mut generate);
    lock(sandbox);
    sandbox.write("app/main.py", "print('app')\n");
    sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = true\n\n[[layer]]\npython = { lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.11\", libc = \"glibc-2.28\", interpreter = \"/usr/local/bin/python3.11\", venv = \"/opt/venv\" }\n\n[[layer]]\nfrom = \"app\"\nto = \"/app\"\n",
    );
    let mut push = sandbox.build();
    push.env("HOIST_KEY_PASSWORD", password)
        .arg("--push-to")
        .arg(registry.reference("acme/py:1.0"))
        .arg("--sign-key")
        .arg(sandbox.path("cosign.key"))
        .arg("--json");
    serde_json::from_str(&crate::common::stdout(&ok(&mut push, registry))).unwrap()
}

/// The `resolvedDependencies` of the one provenance statement attached to `index` in
/// `acme/py`.
fn provenance_inputs(registry: &Registry, index: &str) -> Vec<Value> {
    use base64::Engine as _;
    let envelopes = referred(registry, "acme/py", index, "application/vnd.in-toto+json");
    assert_eq!(envelopes.len(), 1);
    let envelope: Value = serde_json::from_slice(&envelopes[0]).unwrap();
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_signed_push_of_a_python_image_names_the_lock_and_lists_its_packages() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let report = push_signed_python(&sandbox, &registry);
    let index = report["digest"].as_str().unwrap();

    let dependencies = provenance_inputs(&registry, index);
    let named = |name: &str| {
        dependencies
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {dependencies:#?}"))
    };
    let lock = fs::read(sandbox.path("requirements.lock")).unwrap();
    let python = named("layer[0].python.lock");
    assert_eq!(python["uri"], "file:requirements.lock");
    assert_eq!(
        format!("sha256:{}", python["digest"]["sha256"].as_str().unwrap()),
        digest_of(&lock)
    );
    assert_eq!(named("layer[1]")["uri"], "file:app");

    let platforms = report["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 2);
    for platform in platforms {
        let digest = platform["digest"].as_str().unwrap();
        let sboms = referred(&registry, "acme/py", digest, "application/spdx+json");
        assert_eq!(sboms.len(), 1, "{digest}");
        let text = String::from_utf8_lossy(&sboms[0]);
        assert!(text.contains("pkg:pypi/demo@1.0"), "{text}");
    }
}

/// A config error and the provenance name a layer alike (`layer[N]`, N its
/// `[[layer]]` from 0): the provenance of the pushed image names the lock
/// `layer[0].python.lock` and the app `layer[1]`; a lock that is not there, then an
/// app layer with a relative `to`, are errors naming those same layers.
#[test]
fn a_config_error_names_a_layer_as_the_provenance_does() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let report = push_signed_python(&sandbox, &registry);
    let dependencies = provenance_inputs(&registry, report["digest"].as_str().unwrap());
    let name_of = |uri: &str| {
        let found = dependencies.iter().find(|d| d["uri"] == uri);
        let name = found.and_then(|d| d["name"].as_str());
        name.unwrap_or_else(|| panic!("{uri} in {dependencies:#?}"))
            .to_string()
    };
    let lock = name_of("file:requirements.lock");
    let app = name_of("file:app");
    assert_eq!(
        (lock.as_str(), app.as_str()),
        ("layer[0].python.lock", "layer[1]")
    );
    let config = fs::read_to_string(sandbox.path("hoist.toml")).unwrap();
    for (edited, key) in [
        (
            config.replace("lock = \"requirements.lock\"", "lock = \"gone.lock\""),
            lock,
        ),
        (
            config.replace("to = \"/app\"", "to = \"app\""),
            format!("{app}.to"),
        ),
    ] {
        assert_ne!(edited, config);
        sandbox.write("hoist.toml", &edited);
        let err = refused(&sandbox);
        assert!(err.contains(&format!("{key}: ")), "no `{key}` in:\n{err}");
    }
}

/// `hoist verify --key` checks the provenance against the bytes its own rebuild read:
/// a hoist.toml or a lock that differs from what the provenance names (a comment
/// added: the same image) fails naming that input and both digests; unchanged, it
/// verifies.
#[test]
fn verify_names_the_config_or_lock_that_differs_from_the_provenance() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    push_signed_python(&sandbox, &registry);
    let config = sandbox.path("hoist.toml");
    let verify = || {
        let mut command = sandbox.hoist();
        command
            .args(["verify", &registry.reference("acme/py:1.0"), "--key"])
            .arg(sandbox.path("cosign.pub"))
            .arg("--cache-dir")
            .arg(sandbox.cache())
            .arg("--config")
            .arg(&config);
        crate::registry::run(&mut command, crate::registry::HOIST_LIMIT)
    };
    let verified = |output: &std::process::Output| {
        let printed = printed(output);
        assert_eq!(output.status.code(), Some(0), "{printed}");
        assert!(printed.contains("provenance verified: "), "{printed}");
    };
    verified(&verify());
    for (file, input) in [
        ("hoist.toml", format!("config {}", config.display())),
        ("requirements.lock", "layer[0].python.lock".to_string()),
    ] {
        let path = sandbox.path(file);
        let original = fs::read(&path).unwrap();
        let mut edited = original.clone();
        edited.extend_from_slice(b"# a comment: the same image\n");
        fs::write(&path, &edited).unwrap();
        let output = verify();
        let printed = printed(&output);
        assert_eq!(output.status.code(), Some(1), "{printed}");
        let reason = format!(
            "{input}: it names {}, the rebuild read {}",
            digest_of(&original),
            digest_of(&edited)
        );
        assert!(
            printed.contains("NOT verified") && printed.contains(&reason),
            "no `{reason}` in:\n{printed}"
        );
        fs::write(&path, &original).unwrap();
        verified(&verify());
    }
}

/// The index's credentials go to its origin only: pages on the index (which needs
/// them) link every wheel to a file host on another port of 127.0.0.1, and no request
/// to that host carries an Authorization header.
#[test]
fn index_credentials_never_reach_a_file_host_on_another_origin() {
    let sandbox = Sandbox::new();
    let files = real_files();
    let index = SimpleIndex::serve_as(&sandbox, &files, Some("me:s3cret-pw"));
    let file_host = SimpleIndex::serve_as(&sandbox, &files, Some("-"));
    let origin = file_host.url.trim_end_matches("/simple").to_owned();
    let mut pages = 0;
    for project in fs::read_dir(sandbox.path("index/simple")).unwrap() {
        let page = project.unwrap().path().join("index.html");
        let html = fs::read_to_string(&page).unwrap();
        fs::write(
            &page,
            html.replace("../../files/", &format!("{origin}/files/")),
        )
        .unwrap();
        pages += 1;
    }
    assert!(pages >= 7, "{pages} projects");
    sandbox.write("requirements.lock", &real_lock());
    let with_password = index.url.replace("http://", "http://me:s3cret-pw@");
    sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = false\n\n[[layer]]\npython = {{ lock = \"requirements.lock\", index = \"{with_password}\", version = \"3.11\", libc = \"glibc-2.28\", interpreter = \"/usr/local/bin/python3.11\", venv = \"/opt/venv\" }}\n"
        ),
    );
    build(&sandbox, "out", &[]);
    let log = fs::read_to_string(sandbox.path("auth.log")).unwrap();
    let (listings, downloads): (Vec<&str>, Vec<&str>) =
        log.lines().partition(|l| l.starts_with("/simple/"));
    assert!(
        !listings.is_empty()
            && listings
                .iter()
                .all(|l| l.ends_with("Basic bWU6czNjcmV0LXB3")),
        "{log}"
    );
    assert_eq!(
        downloads.len(),
        7,
        "five pure wheels (typing_extensions is marked out) and orjson twice:\n{log}"
    );
    assert!(downloads.iter().all(|l| l.ends_with(" None")), "{log}");
}

/// `hoist cache prune` takes downloaded wheels with the rest: after `--max-size 0`
/// the cache's `python-wheels/` is empty, an offline build names the wheels it lacks,
/// and an online one downloads them again to the same image.
#[test]
fn cache_prune_removes_downloaded_wheels() {
    let sandbox = Sandbox::new();
    let index = SimpleIndex::serve(&sandbox, &real_files());
    sandbox.write("requirements.lock", &real_lock());
    sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = false\n\n[[layer]]\npython = {{ lock = \"requirements.lock\", index = \"{}\", version = \"3.11\", libc = \"glibc-2.28\", interpreter = \"/usr/local/bin/python3.11\", venv = \"/opt/venv\" }}\n",
            index.url
        ),
    );
    let (first, _) = build(&sandbox, "one", &[]);
    let wheels = sandbox.cache().join("python-wheels");
    assert_eq!(fs::read_dir(&wheels).unwrap().count(), 7);
    let mut prune = sandbox.hoist();
    prune
        .args(["cache", "prune", "--max-size", "0", "--json", "--cache-dir"])
        .arg(sandbox.cache());
    let report: Value =
        serde_json::from_str(&crate::common::stdout(&crate::common::success(&mut prune))).unwrap();
    assert_eq!(report["remaining_entries"], 0, "{report}");
    assert_eq!(fs::read_dir(&wheels).unwrap().count(), 0);
    let err = crate::common::failure(
        sandbox
            .build()
            .arg("--offline")
            .arg("--output")
            .arg(format!("{}:1", sandbox.oci("offline"))),
    );
    assert!(
        err.contains("orjson==3.10.12") && err.contains("--offline"),
        "{err}"
    );
    let (again, _) = build(&sandbox, "two", &[]);
    assert_eq!(again, first);
}

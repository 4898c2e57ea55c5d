//! Third-party judges of the dashboard example's output: skopeo reads and copies it,
//! umoci unpacks it into a root filesystem, oci-image-tool validates every document.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::umoci_unpack;
use crate::common::{
    Layout, REF_NAME, Sandbox, copy_tree, example_dir, parse_json, str_at, tool, tool_output,
};

#[test]
fn skopeo_reads_the_same_index_bytes() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    let layout = Layout::open(sandbox.path("out"));
    let digest = str_at(&layout.entry("latest"), "/digest").to_owned();

    let raw = tool("skopeo", &["inspect", "--raw", &sandbox.oci("out:latest")]);
    crate::common::parse_json(&raw);
    assert_eq!(
        raw.as_bytes(),
        layout.blob(&digest),
        "skopeo serves the index bytes we wrote"
    );
}

/// Copies one platform out with skopeo, unpacks it with umoci and checks the root
/// filesystem: our layers applied (whiteout included) over the base's.
fn unpack_and_check(sandbox: &Sandbox, arch: &str) {
    let copy = sandbox.path(&format!("x-{arch}"));
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--override-arch",
            arch,
            &sandbox.oci("out:latest"),
            &format!("oci:{}:1", copy.display()),
        ],
    );
    let bundle = sandbox.path(&format!("bundle-{arch}"));
    umoci_unpack(&copy, "1", &bundle);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read(rootfs.join("app/main.py")).unwrap(),
        fs::read(example_dir().join("backend/main.py")).unwrap(),
        "{arch}: /app/main.py"
    );
    assert!(
        rootfs.join("usr/share/nginx/html/index.html").is_file(),
        "{arch}: index.html"
    );
    assert!(
        rootfs
            .join("usr/share/nginx/html/assets/app.1476bccc.js")
            .is_file()
    );
    let maps: Vec<_> = crate::common::files_under(&rootfs)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "map"))
        .collect();
    assert!(
        maps.is_empty(),
        "{arch}: source maps in the image: {maps:?}"
    );
    assert!(
        rootfs.join("etc/nginx/conf.d").is_dir(),
        "{arch}: the whiteout removes the file, not its directory"
    );
    assert!(
        !rootfs.join("etc/nginx/conf.d/default.conf").exists(),
        "{arch}: the whiteout must delete default.conf"
    );
    assert!(
        !rootfs.join("etc/nginx/conf.d/.wh.default.conf").exists(),
        "{arch}: the whiteout itself is not a file in the rootfs"
    );
    assert!(
        rootfs.join("bin/busybox").is_file(),
        "{arch}: base layer kept"
    );
    assert!(rootfs.join("etc/passwd").is_file());

    if arch == "amd64" && std::env::consts::ARCH == "x86_64" {
        let echoed = std::process::Command::new(rootfs.join("bin/busybox"))
            .args(["echo", "ok"])
            .output()
            .expect("running the unpacked busybox");
        assert!(echoed.status.success(), "{echoed:?}");
        assert_eq!(echoed.stdout, b"ok\n");
    }
    python_judges_the_packages(&rootfs, arch);
    let oci_config = fs::read_to_string(bundle.join("config.json")).unwrap();
    let oci_config = crate::common::parse_json(&oci_config);
    assert_eq!(
        oci_config["process"]["args"],
        json!(["python3", "/app/main.py"]),
        "{arch}: umoci's runtime config from Entrypoint + Cmd"
    );
    assert_eq!(oci_config["process"]["cwd"], "/app");
}

/// Python code run by [`python_judges_the_packages`] with the image's site-packages
/// first on `sys.path` (`SITE`, `ROOTFS` and `WHEELS` set before it): CPython imports
/// the packages from there and the app's own `main.py` finds their versions; every
/// RECORD row matches its file's sha256 and size, and every file a wheel ships is in
/// the image with the same bytes (zipfile and hashlib judge, not hoist).
const PYTHON_JUDGE: &str = r#"
import base64, hashlib, importlib.metadata, os, runpy, zipfile
import six, typing_extensions
for module in (six, typing_extensions):
    assert module.__file__.startswith(SITE), module.__file__
assert typing_extensions.TypedDict and six.PY3
app = runpy.run_path(os.path.join(ROOTFS, "app/main.py"))
print(sorted(app["PACKAGES"].items()))
for wheel in sorted(os.listdir(WHEELS)):
    members = zipfile.ZipFile(os.path.join(WHEELS, wheel))
    name = wheel.split("-")[0] + "-" + wheel.split("-")[1] + ".dist-info"
    record = open(os.path.join(SITE, name, "RECORD")).read().splitlines()
    rows = [line.rsplit(",", 2) for line in record]
    for path, hashed, size in rows:
        data = open(os.path.join(SITE, path), "rb").read()
        if path == name + "/RECORD":
            assert hashed == size == "", path
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        assert hashed == "sha256=" + digest.decode() and int(size) == len(data), path
    installed = {path for path, _, _ in rows}
    for member in members.namelist():
        if member != name + "/RECORD":
            assert member in installed, member
            assert members.read(member) == open(os.path.join(SITE, member), "rb").read(), member
    print(wheel, len(rows))
"#;

/// The host's CPython 3.11 judges the Python packages installed in the unpacked
/// `rootfs` ([`PYTHON_JUDGE`]) and `pip list --path` reads them. The wheels are pure
/// Python, so the arm64 image's are judged on this host as well.
fn python_judges_the_packages(rootfs: &Path, arch: &str) {
    let site = rootfs.join("usr/local/lib/python3.11/site-packages");
    let code = format!(
        "SITE, ROOTFS, WHEELS = {:?}, {:?}, {:?}{PYTHON_JUDGE}",
        site.display().to_string(),
        rootfs.display().to_string(),
        example_dir().join("backend/wheels").display().to_string(),
    );
    let out = crate::python::python(&site, &code);
    assert_eq!(
        out,
        "[('six', '1.17.0'), ('typing_extensions', '4.12.2')]\n\
         six-1.17.0-py2.py3-none-any.whl 8\n\
         typing_extensions-4.12.2-py3-none-any.whl 7\n",
        "{arch}"
    );
    assert_eq!(
        crate::python::pip_list(&site),
        "six==1.17.0\ntyping_extensions==4.12.2\n",
        "{arch}: pip list --path {}",
        site.display()
    );
}

#[test]
fn skopeo_and_umoci_unpack_amd64() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    unpack_and_check(&sandbox, "amd64");
}

#[test]
fn skopeo_and_umoci_unpack_arm64() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    unpack_and_check(&sandbox, "arm64");
}

#[test]
fn skopeo_copies_to_a_docker_archive() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    let archive = sandbox.path("d.tar");
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--override-arch",
            "arm64",
            &sandbox.oci("out:latest"),
            &format!("docker-archive:{}:acme/dash:1", archive.display()),
        ],
    );
    let inspected = tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", archive.display())],
    );
    let inspected = crate::common::parse_json(&inspected);
    assert_eq!(inspected["Architecture"], "arm64");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 4);
}

fn validate(kind: &str, path: &Path) {
    let out = tool(
        "oci-image-tool",
        &["validate", "--type", kind, path.to_str().unwrap()],
    );
    assert!(
        out.contains("Validation succeeded"),
        "oci-image-tool validate --type {kind} {}: {out}",
        path.display()
    );
}

#[test]
fn oci_image_tool_validates_every_document() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    let layout = Layout::open(sandbox.path("out"));
    let index_digest = str_at(&layout.entry("latest"), "/digest").to_owned();
    validate("imageIndex", &layout.blob_path(&index_digest));
    let images = layout.platforms("latest");
    for image in &images {
        validate(
            "manifest",
            &layout.blob_path(str_at(&image.descriptor, "/digest")),
        );
        validate(
            "config",
            &layout.blob_path(str_at(&image.manifest, "/config/digest")),
        );
    }

    oci_image_tool_validates(&sandbox, &layout.root);
}

/// oci-image-tool validates every platform image of the layout's `latest`, blobs
/// included. It skips a tag that names an index, so each platform manifest is listed
/// directly in a copy's index.json.
pub(crate) fn oci_image_tool_validates(sandbox: &Sandbox, layout: &Path) {
    let flat = sandbox.path(&format!(
        "flat-{}",
        layout.file_name().unwrap().to_string_lossy()
    ));
    let _ = fs::remove_dir_all(&flat);
    copy_tree(layout, &flat);
    let index_json = parse_json(&fs::read_to_string(layout.join("index.json")).unwrap());
    let latest = index_json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"][REF_NAME] == "latest")
        .expect("a latest entry");
    let index = parse_json(
        &fs::read_to_string(
            layout
                .join("blobs/sha256")
                .join(&str_at(latest, "/digest")["sha256:".len()..]),
        )
        .unwrap(),
    );
    let mut names = Vec::new();
    let manifests: Vec<Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|descriptor| {
            let name = str_at(descriptor, "/platform/architecture").to_owned();
            names.push(name.clone());
            json!({
                "mediaType": descriptor["mediaType"],
                "digest": descriptor["digest"],
                "size": descriptor["size"],
                "annotations": { REF_NAME: name },
            })
        })
        .collect();
    fs::write(
        flat.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap(),
    )
    .unwrap();
    for name in names {
        let output = tool_output(
            "oci-image-tool",
            &[
                "validate",
                "--type",
                "image",
                "--ref",
                &format!("name={name}"),
                flat.to_str().unwrap(),
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && text.contains("Validation succeeded"),
            "oci-image-tool validate --type image --ref name={name} {}: {text}",
            layout.display()
        );
    }
}

//! uv's `uv.lock`: every package of every platform with its wheels (URL, sha256, size)
//! and the dependency graph with markers. What to install for one platform is what is
//! reachable from the project's own packages (sources `virtual`, `editable`,
//! `directory`: not installed themselves) along dependencies whose markers hold, with
//! the extras those dependencies ask for. Development dependencies are left out.

use std::collections::BTreeMap;

use super::lock::{Edge, Graph, Lock, LockedPackage, LockedWheel, is_sha256, lock_error};
use super::marker::Marker;
use super::{PythonError, normalize};

#[derive(serde::Deserialize)]
struct UvLock {
    version: Option<u32>,
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(serde::Deserialize)]
struct Package {
    name: String,
    version: Option<String>,
    #[serde(default)]
    source: BTreeMap<String, toml::Value>,
    #[serde(default)]
    dependencies: Vec<Dependency>,
    #[serde(default, rename = "optional-dependencies")]
    optional: BTreeMap<String, Vec<Dependency>>,
    sdist: Option<toml::Value>,
    #[serde(default)]
    wheels: Vec<File>,
}

#[derive(serde::Deserialize)]
struct Dependency {
    name: String,
    version: Option<String>,
    marker: Option<String>,
    #[serde(default)]
    extra: Vec<String>,
}

#[derive(serde::Deserialize)]
struct File {
    url: Option<String>,
    path: Option<String>,
    filename: Option<String>,
    hash: Option<String>,
    size: Option<u64>,
}

/// Parses a `uv.lock` (`file` names it in errors).
pub fn parse_uv_lock(text: &str, file: &str) -> Result<Lock, PythonError> {
    let lock: UvLock = toml::from_str(text).map_err(|e| lock_error(file, e.to_string()))?;
    if lock.version != Some(1) {
        return Err(lock_error(
            file,
            format!("version {:?}: hoist reads uv.lock version 1", lock.version),
        ));
    }
    let mut packages = Vec::new();
    let mut roots = Vec::new();
    for (i, package) in lock.package.iter().enumerate() {
        let origin = format!("{file}: package[{i}] ({})", package.name);
        let kind = package
            .source
            .keys()
            .next()
            .map_or("registry", String::as_str);
        if matches!(kind, "virtual" | "editable" | "directory") {
            roots.push(i);
        } else if !matches!(kind, "registry" | "url" | "path") {
            return Err(lock_error(
                origin,
                format!("a `{kind}` source is not installed by hoist: only wheels"),
            ));
        }
        let wheels = package
            .wheels
            .iter()
            .enumerate()
            .map(|(j, wheel)| locked_wheel(wheel, &format!("{origin}.wheels[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        packages.push(LockedPackage {
            name: normalize(&package.name),
            version: package.version.clone().unwrap_or_default(),
            marker: None,
            hashes: wheels.iter().map(|w| w.sha256.clone()).collect(),
            wheels,
            sdist: package.sdist.is_some(),
            origin,
        });
    }
    if roots.is_empty() {
        return Err(lock_error(
            file,
            "no project package (a `virtual`, `editable` or `directory` source) to start from",
        ));
    }
    let find = |dep: &Dependency, origin: &str| -> Result<usize, PythonError> {
        let name = normalize(&dep.name);
        let matching: Vec<usize> = packages
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name == name && dep.version.as_ref().is_none_or(|v| *v == p.version))
            .map(|(i, _)| i)
            .collect();
        match matching.as_slice() {
            [one] => Ok(*one),
            [] => Err(lock_error(
                origin,
                format!("depends on {name}, which the lock does not have"),
            )),
            _ => Err(lock_error(
                origin,
                format!("depends on {name} without saying which of its versions"),
            )),
        }
    };
    let edges = |deps: &[Dependency], origin: &str| -> Result<Vec<Edge>, PythonError> {
        deps.iter()
            .map(|dep| {
                Ok(Edge {
                    to: find(dep, origin)?,
                    marker: dep
                        .marker
                        .as_deref()
                        .map(|m| Marker::parse(m).map_err(|e| lock_error(origin, e)))
                        .transpose()?,
                    extras: dep.extra.clone(),
                })
            })
            .collect()
    };
    let mut dependencies = Vec::new();
    let mut optional = Vec::new();
    for (package, locked) in lock.package.iter().zip(&packages) {
        dependencies.push(edges(&package.dependencies, &locked.origin)?);
        let mut by_extra = BTreeMap::new();
        for (extra, deps) in &package.optional {
            by_extra.insert(extra.clone(), edges(deps, &locked.origin)?);
        }
        optional.push(by_extra);
    }
    Ok(Lock {
        packages,
        graph: Some(Graph {
            roots,
            dependencies,
            optional,
        }),
    })
}

fn locked_wheel(wheel: &File, at: &str) -> Result<LockedWheel, PythonError> {
    let sha256 = wheel
        .hash
        .as_deref()
        .and_then(|h| h.strip_prefix("sha256:"))
        .filter(|h| is_sha256(h))
        .ok_or_else(|| lock_error(at, "no sha256 hash"))?;
    LockedWheel::new(
        wheel.filename.as_deref(),
        wheel.url.as_deref(),
        wheel.path.as_deref(),
        sha256,
        wheel.size,
    )
    .ok_or_else(|| lock_error(at, "neither url nor path"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::marker::Environment;

    fn wheel(name: &str, c: char) -> String {
        format!(
            "{{ url = \"https://files.example/{name}\", hash = \"sha256:{}\", size = 10 }}",
            c.to_string().repeat(64)
        )
    }

    #[test]
    fn a_uv_lock_installs_what_the_project_reaches_on_each_platform() {
        let text = format!(
            r#"version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "uvicorn", extra = ["standard"] }},
    {{ name = "colorama", marker = "sys_platform == 'win32'" }},
]

[package.dev-dependencies]
dev = [{{ name = "pytest" }}]

[[package]]
name = "colorama"
version = "0.4.6"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{colorama}]

[[package]]
name = "pytest"
version = "8.0.0"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{pytest}]

[[package]]
name = "uvicorn"
version = "0.32.1"
source = {{ registry = "https://pypi.org/simple" }}
dependencies = [{{ name = "h11" }}]
sdist = {{ url = "https://files.example/uvicorn-0.32.1.tar.gz", hash = "sha256:{d}", size = 5 }}
wheels = [{uvicorn}]

[package.optional-dependencies]
standard = [{{ name = "uvloop", marker = "platform_machine == 'x86_64'" }}]

[[package]]
name = "h11"
version = "0.14.0"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{h11}]

[[package]]
name = "uvloop"
version = "0.21.0"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{uvloop}]
"#,
            colorama = wheel("colorama-0.4.6-py2.py3-none-any.whl", 'a'),
            pytest = wheel("pytest-8.0.0-py3-none-any.whl", 'b'),
            uvicorn = wheel("uvicorn-0.32.1-py3-none-any.whl", 'c'),
            d = "d".repeat(64),
            h11 = wheel("h11-0.14.0-py3-none-any.whl", 'e'),
            uvloop = wheel("uvloop-0.21.0-cp311-cp311-manylinux_2_17_x86_64.whl", 'f'),
        );
        let lock = parse_uv_lock(&text, "uv.lock").unwrap();
        let names = |machine: &str| {
            let env = Environment {
                python_version: "3.11".into(),
                python_full_version: "3.11.10".into(),
                platform_machine: machine.into(),
            };
            let mut names: Vec<String> = lock
                .select(&env)
                .unwrap()
                .iter()
                .map(|p| p.name.clone())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names("x86_64"), ["h11", "uvicorn", "uvloop"]);
        assert_eq!(names("aarch64"), ["h11", "uvicorn"]);
        let uvicorn = &lock.packages[3];
        assert_eq!(uvicorn.wheels[0].file, "uvicorn-0.32.1-py3-none-any.whl");
        assert_eq!(uvicorn.hashes, ["c".repeat(64)]);
        assert!(uvicorn.sdist);

        let git = "version = 1\n[[package]]\nname = \"x\"\nversion = \"1\"\nsource = { git = \"https://example/x\" }\n";
        let err = parse_uv_lock(git, "uv.lock").unwrap_err().to_string();
        assert!(
            err.contains("package[0] (x)") && err.contains("`git`"),
            "{err}"
        );
        let dangling = "version = 1\n[[package]]\nname = \"app\"\nversion = \"1\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"gone\" }]\n";
        let err = parse_uv_lock(dangling, "uv.lock").unwrap_err().to_string();
        assert!(err.contains("gone"), "{err}");
    }
}

//! `[config]` edits, validated, and their application to a base image config.
//!
//! The base config is edited as JSON rather than through a typed struct so that
//! fields we do not model (Docker's `Healthcheck`, `OnBuild`, `ArgsEscaped`, vendor
//! extensions) survive untouched.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::ConfigSection;
use crate::error::{Error, Result};

/// Validated edits to the `config` object of an image config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigEdits {
    /// New entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// New cmd.
    pub cmd: Option<Vec<String>>,
    /// Environment variables to set, by name.
    pub env: BTreeMap<String, String>,
    /// New working directory.
    pub workdir: Option<String>,
    /// New user.
    pub user: Option<String>,
    /// Ports to expose, normalised to `PORT/PROTO`.
    pub ports: Vec<String>,
    /// Volumes to add.
    pub volumes: Vec<String>,
    /// Labels to set.
    pub labels: BTreeMap<String, String>,
    /// New stop signal.
    pub stop_signal: Option<String>,
    /// New health check, durations in nanoseconds as Docker stores them.
    pub healthcheck: Option<Value>,
}

impl ConfigEdits {
    /// Validates a `[config]` section; errors name the key (`config.ports[1]`, …).
    pub fn from_section(section: &ConfigSection) -> Result<ConfigEdits> {
        for key in section.env.keys() {
            if key.is_empty() || key.contains('=') {
                return Err(invalid(
                    &format!("config.env.{key}"),
                    "a variable name must be non-empty and contain no `=`",
                ));
            }
        }
        let ports = section
            .ports
            .iter()
            .enumerate()
            .map(|(i, port)| check_port(&format!("config.ports[{i}]"), port))
            .collect::<Result<Vec<_>>>()?;
        for (i, volume) in section.volumes.iter().enumerate() {
            if !volume.starts_with('/') {
                return Err(invalid(
                    &format!("config.volumes[{i}]"),
                    &format!("`{volume}` is not an absolute path"),
                ));
            }
        }
        if let Some(workdir) = &section.workdir {
            check_workdir("config.workdir", workdir)?;
        }
        if let Some(user) = &section.user {
            check_user("config.user", user)?;
        }
        if let Some(signal) = &section.stop_signal {
            let named = signal.starts_with("SIG")
                && signal.len() > 3
                && signal[3..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-');
            if !named && signal.parse::<u8>().is_err() {
                return Err(invalid(
                    "config.stop_signal",
                    &format!("`{signal}` is not a signal name (SIGTERM) or number"),
                ));
            }
        }
        let healthcheck = section
            .healthcheck
            .as_ref()
            .map(|h| {
                match h.test.first().map(String::as_str) {
                    Some("NONE") if h.test.len() == 1 => {}
                    Some("CMD" | "CMD-SHELL") if h.test.len() > 1 => {}
                    _ => {
                        return Err(invalid(
                            "config.healthcheck.test",
                            "must be [\"CMD\", args…], [\"CMD-SHELL\", \"command\"] or [\"NONE\"]",
                        ));
                    }
                }
                let mut check = Map::new();
                check.insert("Test".into(), json!(h.test));
                for (key, field, value) in [
                    ("Interval", "interval", &h.interval),
                    ("Timeout", "timeout", &h.timeout),
                    ("StartPeriod", "start_period", &h.start_period),
                    ("StartInterval", "start_interval", &h.start_interval),
                ] {
                    if let Some(text) = value {
                        let nanos = parse_duration(text)
                            .map_err(|m| invalid(&format!("config.healthcheck.{field}"), &m))?;
                        check.insert(key.into(), json!(nanos));
                    }
                }
                if let Some(retries) = h.retries {
                    check.insert("Retries".into(), json!(retries));
                }
                Ok(Value::Object(check))
            })
            .transpose()?;
        Ok(ConfigEdits {
            entrypoint: section.entrypoint.clone(),
            cmd: section.cmd.clone(),
            env: section.env.clone(),
            workdir: section.workdir.clone(),
            user: section.user.clone(),
            ports,
            volumes: section.volumes.clone(),
            labels: section.labels.clone(),
            stop_signal: section.stop_signal.clone(),
            healthcheck,
        })
    }

    /// Applies the edits to an image config document (the whole config JSON).
    pub fn apply(&self, image_config: &mut Value) {
        let root = ensure_object(image_config);
        let config = ensure_object(root.entry("config").or_insert(Value::Null));
        if let Some(entrypoint) = &self.entrypoint {
            config.insert("Entrypoint".into(), json!(entrypoint));
            // As a Dockerfile ENTRYPOINT does: the base's Cmd was arguments for the base's
            // entrypoint, not for ours.
            if self.cmd.is_none() {
                config.remove("Cmd");
            }
        }
        if let Some(cmd) = &self.cmd {
            config.insert("Cmd".into(), json!(cmd));
        }
        if !self.env.is_empty() {
            let mut env: Vec<String> = config
                .get("Env")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for (name, value) in &self.env {
                let entry = format!("{name}={value}");
                let prefix = format!("{name}=");
                match env
                    .iter_mut()
                    .find(|e| e.starts_with(&prefix) || *e == name)
                {
                    Some(existing) => *existing = entry,
                    None => env.push(entry),
                }
            }
            config.insert("Env".into(), json!(env));
        }
        set_string(config, "WorkingDir", self.workdir.as_ref());
        set_string(config, "User", self.user.as_ref());
        set_string(config, "StopSignal", self.stop_signal.as_ref());
        add_set(config, "ExposedPorts", &self.ports);
        add_set(config, "Volumes", &self.volumes);
        if !self.labels.is_empty() {
            let labels = ensure_object(config.entry("Labels").or_insert(Value::Null));
            for (key, value) in &self.labels {
                labels.insert(key.clone(), json!(value));
            }
        }
        if let Some(check) = &self.healthcheck {
            config.insert("Healthcheck".into(), check.clone());
        }
    }
}

/// A working directory must be absolute; the error names `field` (a key or a flag).
pub(crate) fn check_workdir(field: &str, workdir: &str) -> Result<()> {
    if workdir.starts_with('/') {
        Ok(())
    } else {
        Err(invalid(
            field,
            &format!("`{workdir}` is not an absolute path"),
        ))
    }
}

/// A user is `user`, `uid`, `user:group` or `uid:gid`; the error names `field`.
pub(crate) fn check_user(field: &str, user: &str) -> Result<()> {
    if user.is_empty() || user.split(':').count() > 2 || user.split(':').any(str::is_empty) {
        Err(invalid(
            field,
            &format!("`{user}` is not user, uid, user:group or uid:gid"),
        ))
    } else {
        Ok(())
    }
}

/// A port as `[config].ports` takes it (`80`, `80/tcp`, `53/udp`), normalised to
/// `PORT/PROTO`; the error names `field`.
pub(crate) fn check_port(field: &str, port: &str) -> Result<String> {
    normalise_port(port).map_err(|m| invalid(field, &m))
}

fn invalid(field: &str, message: &str) -> Error {
    Error::InvalidValue {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// Makes `value` an object (a `null` config becomes `{}`) and returns it.
fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    value.as_object_mut().expect("just made an object")
}

fn set_string(config: &mut Map<String, Value>, key: &str, value: Option<&String>) {
    if let Some(value) = value {
        config.insert(key.into(), json!(value));
    }
}

/// Docker stores sets as objects whose values are `{}`.
fn add_set(config: &mut Map<String, Value>, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let set = ensure_object(config.entry(key).or_insert(Value::Null));
    for item in items {
        set.insert(item.clone(), json!({}));
    }
}

/// `80` → `80/tcp`; checks the number and protocol.
fn normalise_port(port: &str) -> std::result::Result<String, String> {
    let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    match number.parse::<u16>() {
        Ok(n) if n > 0 => {}
        _ => return Err(format!("`{port}`: port must be a number from 1 to 65535")),
    }
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("`{port}`: protocol must be tcp, udp or sctp"));
    }
    Ok(format!("{number}/{protocol}"))
}

/// Go-style durations (`30s`, `1m30s`, `1.5s`, `500ms`) to nanoseconds.
pub fn parse_duration(text: &str) -> std::result::Result<u64, String> {
    let fail = || format!("`{text}` is not a duration like 30s, 1m30s or 500ms");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(fail());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(fail)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| fail())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(fail()),
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    // Docker stores durations as Go's int64 nanoseconds: a longer one (about 292 years)
    // would saturate to a number no runtime can read back.
    if total.round() >= i64::MAX as f64 {
        return Err(format!(
            "`{text}` is longer than a duration can be (about 292 years)"
        ));
    }
    Ok(total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSection, HealthcheckSection};

    #[test]
    fn edits_merge_over_the_base_config() {
        let mut base = json!({
            "architecture": "amd64",
            "config": {
                "Env": ["PATH=/bin", "PORT=1"],
                "Cmd": ["sh"],
                "Labels": {"keep": "me"},
                "ExposedPorts": {"22/tcp": {}},
                "OnBuild": ["kept as is"]
            }
        });
        let section = ConfigSection {
            entrypoint: Some(vec!["python3".into()]),
            env: BTreeMap::from([("PORT".into(), "8080".into()), ("A".into(), "b".into())]),
            ports: vec!["8080".into()],
            labels: BTreeMap::from([("new".into(), "label".into())]),
            healthcheck: Some(HealthcheckSection {
                test: vec!["CMD".into(), "true".into()],
                interval: Some("1m30s".into()),
                retries: Some(3),
                ..HealthcheckSection::default()
            }),
            ..ConfigSection::default()
        };
        ConfigEdits::from_section(&section)
            .unwrap()
            .apply(&mut base);
        let config = &base["config"];
        assert_eq!(config["Env"], json!(["PATH=/bin", "PORT=8080", "A=b"]));
        assert_eq!(config["Entrypoint"], json!(["python3"]));
        assert!(
            config.get("Cmd").is_none(),
            "entrypoint clears the inherited cmd"
        );
        assert_eq!(config["Labels"], json!({"keep": "me", "new": "label"}));
        assert_eq!(
            config["ExposedPorts"],
            json!({"22/tcp": {}, "8080/tcp": {}})
        );
        assert_eq!(config["OnBuild"], json!(["kept as is"]));
        assert_eq!(config["Healthcheck"]["Interval"], json!(90_000_000_000_u64));
        assert_eq!(config["Healthcheck"]["Retries"], json!(3));
    }

    #[test]
    fn null_config_becomes_an_object() {
        let mut base = json!({"config": null});
        let section = ConfigSection {
            workdir: Some("/app".into()),
            ..ConfigSection::default()
        };
        ConfigEdits::from_section(&section)
            .unwrap()
            .apply(&mut base);
        assert_eq!(base["config"], json!({"WorkingDir": "/app"}));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(ConfigSection, &str)> = vec![
            (
                ConfigSection {
                    ports: vec!["80".into(), "http".into()],
                    ..Default::default()
                },
                "config.ports[1]",
            ),
            (
                ConfigSection {
                    ports: vec!["80/xyz".into()],
                    ..Default::default()
                },
                "config.ports[0]",
            ),
            (
                ConfigSection {
                    volumes: vec!["data".into()],
                    ..Default::default()
                },
                "config.volumes[0]",
            ),
            (
                ConfigSection {
                    workdir: Some("app".into()),
                    ..Default::default()
                },
                "config.workdir",
            ),
            (
                ConfigSection {
                    user: Some("a:b:c".into()),
                    ..Default::default()
                },
                "config.user",
            ),
            (
                ConfigSection {
                    stop_signal: Some("TERM".into()),
                    ..Default::default()
                },
                "config.stop_signal",
            ),
            (
                ConfigSection {
                    env: BTreeMap::from([("A=B".into(), "x".into())]),
                    ..Default::default()
                },
                "config.env.A=B",
            ),
            (
                ConfigSection {
                    healthcheck: Some(HealthcheckSection {
                        test: vec!["CMD".into(), "x".into()],
                        timeout: Some("5 parsecs".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                "config.healthcheck.timeout",
            ),
            (
                ConfigSection {
                    healthcheck: Some(HealthcheckSection {
                        test: vec!["RUN".into()],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                "config.healthcheck.test",
            ),
        ];
        for (section, field) in cases {
            let err = ConfigEdits::from_section(&section).unwrap_err().to_string();
            assert!(err.contains(field), "expected {field} in: {err}");
        }
    }

    #[test]
    fn durations_follow_go_syntax() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000_000_000));
        for bad in ["", "30", "s", "1x", "1..5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    /// Found by tests/it/props/config_plan.rs: `99999999999h` was written as
    /// 18446744073709551615 (the saturated u64), which Go's int64 cannot read.
    #[test]
    fn durations_past_an_int64_of_nanoseconds_are_refused() {
        assert_eq!(
            parse_duration("2562047h"),
            Ok(2_562_047 * 3_600_000_000_000)
        );
        for bad in ["2562048h", "99999999999h", "9223372036854775808ns"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(bad) && err.contains("292 years"), "{err}");
        }
    }
}

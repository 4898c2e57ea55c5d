//! Progress on stderr: bars on a terminal, one plain line per layer in CI (`CI` set) or
//! when stderr is not a terminal. Stdout stays for results (the digest, or `--json`).

use std::io::IsTerminal;

use hoist::assemble::Observer;
use hoist::inspect::human_bytes;
use hoist_layers::{BuiltLayer, Progress};
use indicatif::{ProgressBar, ProgressStyle};

/// Chooses bars or plain lines for this process's stderr.
pub fn observer() -> Box<dyn Observer> {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    if !ci && std::io::stderr().is_terminal() {
        Box::new(Bars)
    } else {
        Box::new(Lines)
    }
}

struct Lines;

impl Observer for Lines {
    fn layer_started(&self, _label: &str) -> Box<dyn Progress + '_> {
        Box::new(Warnings)
    }

    fn layer_finished(&self, label: &str, layer: &BuiltLayer) {
        eprintln!("{}", finished_line(label, layer));
    }
}

fn finished_line(label: &str, layer: &BuiltLayer) -> String {
    format!(
        "{label}: {} ({}{})",
        layer.digest,
        human_bytes(layer.size),
        if layer.from_cache { ", cached" } else { "" }
    )
}

/// Only says what the user must know: a cached blob failed its check.
struct Warnings;

impl Progress for Warnings {
    fn cached_blob_rejected(&self, error: &hoist_layers::Error) {
        warn_rejected(error);
    }
}

fn warn_rejected(error: &hoist_layers::Error) {
    eprintln!("warning: the layer cache held a bad blob, deleted and rebuilt: {error}");
}

struct Bars;

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total_bytes: u64) {
        self.0.set_length(total_bytes);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn cached_blob_rejected(&self, error: &hoist_layers::Error) {
        self.0.suspend(|| warn_rejected(error));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl Observer for Bars {
    fn layer_started(&self, label: &str) -> Box<dyn Progress + '_> {
        let bar = ProgressBar::new(0).with_message(label.to_string());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Box::new(Bar(bar))
    }

    fn layer_finished(&self, label: &str, layer: &BuiltLayer) {
        eprintln!("{}", finished_line(label, layer));
    }
}

//! Progress bars on stderr for the library stages' [`Progress`] reports.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use plmscope_pipeline::Progress;

/// Draws one bar per phase: a counting bar when the phase's total is known, a spinner when not.
#[derive(Default)]
pub struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
    /// Shown before every bar, e.g. the study stage (`train/t6/topk/layer3...`).
    prefix: String,
}

impl BarProgress {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bars labelled with `prefix` (the stage of a study).
    pub fn with_prefix(prefix: &str) -> Self {
        BarProgress {
            bar: Mutex::default(),
            prefix: format!("{prefix} "),
        }
    }

    /// Shows `done` of `total` with `message`, starting a counting bar on first use (for reports
    /// that count themselves, like describe's finished units).
    pub fn show(&self, done: u64, total: u64, unit: &str, message: &str) {
        let started = self.bar.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        if !started {
            self.start("", Some(total), unit);
        }
        self.with_bar(|bar| {
            bar.set_position(done);
            bar.set_message(message.to_string());
        });
    }

    /// Prints a line above the bar, or on stderr when no bar is drawn.
    pub fn println(&self, text: &str) {
        let guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => eprintln!("{text}"),
        }
    }

    /// A study stage's bars, labelled with its id (what the study runner asks for per stage).
    pub fn for_stage(id: &str) -> Box<dyn Progress> {
        Box::new(BarProgress::with_prefix(id))
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        // A poisoned lock only means another thread panicked while drawing; keep drawing.
        let guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = guard.as_ref() {
            f(bar);
        }
    }
}

impl Progress for BarProgress {
    fn start(&self, what: &str, total: Option<u64>, unit: &str) {
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix}}[{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {unit} ({{eta}}) {{msg}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix}[{elapsed_precise}] {spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_prefix(self.prefix.clone());
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        let mut guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = guard.replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        self.with_bar(|bar| bar.inc(n));
    }

    fn message(&self, msg: &str) {
        self.with_bar(|bar| bar.set_message(msg.to_string()));
    }

    fn finish(&self) {
        let mut guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = guard.take() {
            bar.finish_and_clear();
        }
    }
}

//! Describing and scoring one unit (run on a worker thread): the explain call, the predict call,
//! the correlation. Each call goes through the log's cache and the cost budget; a reply that
//! cannot be parsed is asked for once more, then the unit is recorded as failed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::log::{sha256_hex, CallLog, LogRecord};
use super::metadata::ProteinMeta;
use super::prompts::{explain_prompt, parse_description, parse_predictions, predict_prompt, Step};
use super::provider::{CallError, Client, Price, ProviderKind, Reply, Retry};
use super::sampling::UnitSample;
use super::stats::{pearson, spearman, Correlation};

/// One unit to describe.
#[derive(Debug, Clone)]
pub struct Job {
    pub unit: u32,
    pub kind: String,
    pub index: u32,
    pub sample: UnitSample,
    /// A failed row to replace (with `retry_failed`).
    pub replaces_failure: bool,
}

impl Job {
    pub fn label(&self) -> String {
        format!("{} {}", self.kind, self.index)
    }
}

/// Spend so far and spend promised to calls in flight, against the limit.
#[derive(Debug)]
pub struct Budget {
    pub max_cost: Option<f64>,
    pub price: Option<Price>,
    state: Mutex<(f64, f64)>,
    pub exhausted: AtomicBool,
}

impl Budget {
    pub fn new(max_cost: Option<f64>, price: Option<Price>) -> Self {
        Budget {
            max_cost,
            price,
            state: Mutex::new((0.0, 0.0)),
            exhausted: AtomicBool::new(false),
        }
    }

    /// Reserves the most a call can cost (input counted as one token per 3 characters, which
    /// overestimates English and protein annotations, plus the whole reply budget); `None` when
    /// that could pass the limit.
    fn reserve(&self, prompt: &str, max_tokens: u32) -> Option<f64> {
        let price = self.price.unwrap_or(Price {
            input_per_mtok: 0.0,
            output_per_mtok: 0.0,
        });
        let estimate = price.cost(prompt.len() as u64 / 3 + 1, max_tokens as u64);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(max) = self.max_cost {
            if state.0 + state.1 + estimate > max {
                self.exhausted.store(true, Ordering::SeqCst);
                return None;
            }
        }
        state.1 += estimate;
        Some(estimate)
    }

    /// Replaces a reservation by what the call cost.
    fn settle(&self, reserved: f64, cost: f64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 = (state.1 - reserved).max(0.0);
        state.0 += cost;
    }

    pub fn spent(&self) -> f64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

/// What a worker shares with the others.
pub struct Context<'a> {
    pub client: &'a Client,
    pub log: &'a CallLog,
    pub budget: &'a Budget,
    pub meta: &'a [ProteinMeta],
    pub protocol: &'a str,
    pub include_sequence: bool,
    /// Set when the run must stop (budget, fatal error): no new call starts.
    pub stop: &'a AtomicBool,
}

/// How one unit ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Described {
        text: String,
        prompt_sha256: String,
        pearson: Option<Correlation>,
        spearman: Option<f64>,
        n_held_out: usize,
    },
    /// Recorded with its raw reply and no score.
    Failed {
        prompt_sha256: String,
        error: String,
        raw_reply: Option<String>,
    },
    /// Not finished because the run stopped (budget or another unit's fatal error); nothing
    /// is recorded, and a rerun picks it up (its answered calls come from the log).
    Stopped,
    /// The provider refused in a way that stops the run.
    Fatal(String),
}

/// A finished unit: its outcome, the calls it made and what they cost.
#[derive(Debug, Clone)]
pub struct UnitResult {
    pub job: Job,
    pub outcome: Outcome,
    pub calls: Vec<LogRecord>,
    pub cost: f64,
}

pub(crate) enum Asked {
    Reply(String),
    Unparsed { error: String, raw: Option<String> },
    Stopped,
    Fatal(String),
}

impl Context<'_> {
    pub fn run(&self, job: Job, on_retry: &mut dyn FnMut(Retry)) -> UnitResult {
        let mut result = UnitResult {
            job,
            outcome: Outcome::Stopped,
            calls: Vec::new(),
            cost: 0.0,
        };
        result.outcome = self.describe(&mut result, on_retry);
        result
    }

    fn describe(&self, result: &mut UnitResult, on_retry: &mut dyn FnMut(Retry)) -> Outcome {
        let job = result.job.clone();
        let meta = |p: u32| &self.meta[p as usize];
        let active: Vec<_> = job
            .sample
            .explain_active
            .iter()
            .map(|s| (meta(s.protein), *s))
            .collect();
        let inactive: Vec<_> = job
            .sample
            .explain_inactive
            .iter()
            .map(|s| (meta(s.protein), *s))
            .collect();
        let explain = explain_prompt(&job.label(), &active, &inactive, self.include_sequence);
        let prompt_sha256 = sha256_hex(&explain);
        let text = match self.ask(
            result,
            Step::Explain,
            &explain,
            &mut |r| parse_description(r),
            on_retry,
        ) {
            Asked::Reply(reply) => parse_description(&reply).unwrap_or(reply),
            Asked::Unparsed { error, raw } => {
                return Outcome::Failed {
                    prompt_sha256,
                    error,
                    raw_reply: raw,
                }
            }
            Asked::Stopped => return Outcome::Stopped,
            Asked::Fatal(e) => return Outcome::Fatal(e),
        };
        let held: Vec<&ProteinMeta> = job
            .sample
            .held_out
            .iter()
            .map(|s| meta(s.protein))
            .collect();
        let n = held.len();
        let predict = predict_prompt(&text, &held, self.include_sequence);
        let predictions = match self.ask(
            result,
            Step::Predict,
            &predict,
            &mut |r| parse_predictions(r, n).map(drop),
            on_retry,
        ) {
            Asked::Reply(reply) => parse_predictions(&reply, n).unwrap_or_default(),
            Asked::Unparsed { error, raw } => {
                return Outcome::Failed {
                    prompt_sha256,
                    error: format!("description {text:?}; predictions: {error}"),
                    raw_reply: raw,
                }
            }
            Asked::Stopped => return Outcome::Stopped,
            Asked::Fatal(e) => return Outcome::Fatal(e),
        };
        let truth: Vec<f64> = job.sample.held_out.iter().map(|s| s.activation).collect();
        Outcome::Described {
            text,
            prompt_sha256,
            pearson: pearson(&predictions, &truth),
            spearman: spearman(&predictions, &truth).map(|c| c.r),
            n_held_out: n,
        }
    }

    /// One prompt: from the log if answered before, else from the API; asked once more when the
    /// reply does not parse (then past the cache, which holds the unparseable reply).
    pub(crate) fn ask<T>(
        &self,
        result: &mut UnitResult,
        step: Step,
        prompt: &str,
        parse: &mut dyn FnMut(&str) -> Result<T, String>,
        on_retry: &mut dyn FnMut(Retry),
    ) -> Asked {
        let options = self.client.options();
        let max_tokens = step.max_tokens();
        let prompt_sha256 = sha256_hex(prompt);
        // Log-probabilities change the reply, so they join the key (only then, so keys of
        // earlier logs stay valid).
        let logprobs = if options.logprobs && options.kind == ProviderKind::OpenAi {
            "\0logprobs=5"
        } else {
            ""
        };
        let cache_key = sha256_hex(&format!(
            "{}\0{}\0{}\0temperature=0\0max_tokens={max_tokens}{logprobs}\0{prompt}",
            options.kind.as_str(),
            options.model,
            options.base_url.as_deref().unwrap_or("")
        ));
        let mut last_error = String::new();
        let mut last_raw = None;
        for attempt in 0..2 {
            let cached = if attempt == 0 {
                self.log.cached(&cache_key)
            } else {
                None
            };
            let (reply, was_cached, cost) = match cached {
                Some(reply) => (reply, true, 0.0),
                None => {
                    if self.stop.load(Ordering::SeqCst) {
                        return Asked::Stopped;
                    }
                    let Some(reserved) = self.budget.reserve(prompt, max_tokens) else {
                        return Asked::Stopped;
                    };
                    let called = self
                        .client
                        .call(prompt, &prompt_sha256, max_tokens, on_retry);
                    let cost = match &called {
                        Ok(r) => self
                            .budget
                            .price
                            .map_or(0.0, |p| p.cost(r.input_tokens, r.output_tokens)),
                        Err(_) => 0.0,
                    };
                    self.budget.settle(reserved, cost);
                    match called {
                        Ok(reply) => (reply, false, cost),
                        Err(CallError::Fatal(e)) => return Asked::Fatal(e),
                        // The client asked twice already; the body is kept as the raw reply.
                        Err(CallError::Malformed { error, raw }) => {
                            let garbled = Reply {
                                text: raw.clone(),
                                input_tokens: 0,
                                output_tokens: 0,
                                probabilities: None,
                            };
                            self.record(
                                result,
                                step,
                                prompt,
                                &prompt_sha256,
                                &cache_key,
                                Some(&garbled),
                                false,
                                0.0,
                                Some(error.clone()),
                            );
                            return Asked::Unparsed {
                                error,
                                raw: Some(raw),
                            };
                        }
                        Err(CallError::Failed(e)) => {
                            self.record(
                                result,
                                step,
                                prompt,
                                &prompt_sha256,
                                &cache_key,
                                None,
                                false,
                                0.0,
                                Some(e.clone()),
                            );
                            return Asked::Unparsed {
                                error: e,
                                raw: None,
                            };
                        }
                    }
                }
            };
            result.cost += cost;
            let parsed = parse(&reply.text);
            let error = parsed
                .as_ref()
                .err()
                .map(|e| format!("unparseable reply: {e}"));
            let record_reply = Reply { ..reply.clone() };
            self.record(
                result,
                step,
                prompt,
                &prompt_sha256,
                &cache_key,
                Some(&record_reply),
                was_cached,
                cost,
                error.clone(),
            );
            match error {
                None => return Asked::Reply(reply.text),
                Some(e) => {
                    last_error = e;
                    last_raw = Some(reply.text);
                }
            }
        }
        Asked::Unparsed {
            error: last_error,
            raw: last_raw,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        result: &mut UnitResult,
        step: Step,
        prompt: &str,
        prompt_sha256: &str,
        cache_key: &str,
        reply: Option<&Reply>,
        cached: bool,
        cost: f64,
        error: Option<String>,
    ) {
        let options = self.client.options();
        let record = LogRecord {
            unit: result.job.unit,
            kind: result.job.kind.clone(),
            protocol: self.protocol.to_string(),
            provider: options.kind.as_str().to_string(),
            model: options.model.clone(),
            step: step.as_str().to_string(),
            cache_key: cache_key.to_string(),
            prompt_sha256: prompt_sha256.to_string(),
            prompt: prompt.to_string(),
            reply: reply.map(|r| r.text.clone()),
            input_tokens: reply.map_or(0, |r| r.input_tokens),
            output_tokens: reply.map_or(0, |r| r.output_tokens),
            cost_usd: cost,
            cached,
            error,
            probabilities: reply.and_then(|r| r.probabilities.clone()),
        };
        // The log is the cache: a record that cannot be appended is kept in the atlas rows
        // anyway, and the worst case is one repeated call on a rerun.
        if !cached {
            let _ = self.log.append(&record);
        }
        result.calls.push(record);
    }
}

//! Calls to a language model: Anthropic's Messages API, OpenAI's chat completions (and every
//! server that speaks it: vLLM, llama.cpp, Ollama), or replay of logged replies. Temperature 0.
//! Retries: 429 (waiting `retry-after` when given), 5xx and transport errors (timeouts,
//! refused connections) with exponential backoff and jitter; 401/403/404 stop the run (a bad
//! key, model or URL fails every call alike); other 4xx fail the call without retrying.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{json, Value};

use super::error::{DescribeError, DescribeResult};

/// Which API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Anthropic,
    OpenAi,
    /// Answers from a JSONL log of earlier replies, matched by prompt hash; no network.
    Replay,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Replay => "replay",
        }
    }

    fn key_variable(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            _ => "OPENAI_API_KEY",
        }
    }
}

impl FromStr for ProviderKind {
    type Err = DescribeError;
    fn from_str(s: &str) -> DescribeResult<Self> {
        match s {
            "anthropic" => Ok(ProviderKind::Anthropic),
            "openai" => Ok(ProviderKind::OpenAi),
            "replay" => Ok(ProviderKind::Replay),
            other => Err(DescribeError::input(
                format!("unknown provider {other:?}"),
                "use anthropic, openai or replay",
            )),
        }
    }
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_mtok + output_tokens as f64 * self.output_per_mtok)
            / 1e6
    }
}

/// List prices (USD per million input / output tokens) as published by Anthropic and OpenAI in
/// late 2025; a model name matches its longest listed prefix. Override with
/// [`ProviderOptions::price`] when they change.
const PRICES: [(&str, f64, f64); 17] = [
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-3-5-haiku", 0.8, 4.0),
    ("claude-3-haiku", 0.25, 1.25),
    ("gpt-4o-mini", 0.15, 0.6),
    ("gpt-4o", 2.5, 10.0),
    ("gpt-4.1-nano", 0.1, 0.4),
    ("gpt-4.1-mini", 0.4, 1.6),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-5-nano", 0.05, 0.4),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5", 1.25, 10.0),
    ("o4-mini", 1.1, 4.4),
];

/// Everything about the calls.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    pub kind: ProviderKind,
    pub model: String,
    /// API root: `https://api.anthropic.com` / `https://api.openai.com/v1` by default; for a
    /// local server e.g. `http://localhost:8000/v1`.
    pub base_url: Option<String>,
    /// The key; `None` reads `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`.
    pub api_key: Option<String>,
    /// The JSONL log that [`ProviderKind::Replay`] answers from.
    pub replay_log: Option<PathBuf>,
    /// Overrides the price table (and the zero price of a local server).
    pub price: Option<Price>,
    pub timeout: Duration,
    pub max_retries: u32,
    /// First backoff; doubled per retry, with jitter, capped at a minute.
    pub retry_base: Duration,
    /// Ask for token log-probabilities (OpenAI's `logprobs` with the top 5 alternatives), for
    /// AUROC of yes/no answers (delphi's `log_prob`). Anthropic's API has none: ignored there.
    pub logprobs: bool,
}

impl ProviderOptions {
    pub fn new(kind: ProviderKind, model: impl Into<String>) -> Self {
        ProviderOptions {
            kind,
            model: model.into(),
            base_url: None,
            api_key: None,
            replay_log: None,
            price: None,
            timeout: Duration::from_secs(120),
            max_retries: 5,
            retry_base: Duration::from_secs(1),
            logprobs: false,
        }
    }

    /// The price per token: the override, zero for replay and local servers, else the table.
    pub fn price(&self) -> Option<Price> {
        if let Some(p) = self.price {
            return Some(p);
        }
        let free = Price {
            input_per_mtok: 0.0,
            output_per_mtok: 0.0,
        };
        if self.kind == ProviderKind::Replay || self.base_url.as_deref().is_some_and(is_local) {
            return Some(free);
        }
        PRICES
            .iter()
            .filter(|(prefix, ..)| self.model.starts_with(prefix))
            .max_by_key(|(prefix, ..)| prefix.len())
            .map(|&(_, input, output)| Price {
                input_per_mtok: input,
                output_per_mtok: output,
            })
    }
}

/// Whether a base URL points at this machine (no key needed, no cost).
pub fn is_local(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost" || host == "::1" || host == "0.0.0.0" || host.starts_with("127.")
}

/// A model's answer with its token use.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// With [`ProviderOptions::logprobs`] on an API that returns them: per answer token that
    /// contains a `0` or `1`, P(1) / (P(0) + P(1)) over its top alternatives (delphi's
    /// `_parse_logprobs`).
    pub probabilities: Option<Vec<f64>>,
}

/// Why a call produced no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No call can succeed (bad key, model or URL): the run stops.
    Fatal(String),
    /// This call gave up (retries spent, a 4xx, no logged reply): the unit is recorded failed.
    Failed(String),
    /// A 2xx body that is not the API's JSON, twice in a row: the unit is recorded failed with
    /// the body as its raw reply.
    Malformed { error: String, raw: String },
}

/// A retry about to happen: attempt number (1-based), the wait, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub attempt: u32,
    pub wait: Duration,
    pub reason: String,
}

/// A configured client; shared by the worker threads.
pub struct Client {
    options: ProviderOptions,
    agent: ureq::Agent,
    key: Option<String>,
    replay: HashMap<String, String>,
    /// The first fatal refusal (a 401, say): every later call fails with it at once, without a
    /// request, so no worker sends another after the key was refused.
    refused: std::sync::Mutex<Option<String>>,
}

impl Client {
    /// Checks the key (from the options or the environment) and loads a replay log.
    pub fn new(options: ProviderOptions) -> DescribeResult<Client> {
        Self::with_env(options, |name| std::env::var(name).ok())
    }

    /// As [`Client::new`] with the environment given as a function (for tests).
    pub fn with_env(
        options: ProviderOptions,
        env: impl Fn(&str) -> Option<String>,
    ) -> DescribeResult<Client> {
        let provider = options.kind.as_str().to_string();
        let variable = options.kind.key_variable();
        let key = options
            .api_key
            .clone()
            .or_else(|| env(variable))
            .filter(|k| !k.trim().is_empty());
        let key_required = match options.kind {
            ProviderKind::Anthropic => true,
            ProviderKind::OpenAi => options.base_url.is_none(),
            ProviderKind::Replay => false,
        };
        if key_required && key.is_none() {
            return Err(DescribeError::Provider {
                provider,
                message: format!(
                    "no API key: set {variable} (or pass a key); a local OpenAI-compatible \
                     server needs none: use --provider openai --base-url http://localhost:PORT/v1"
                ),
            });
        }
        let replay = match (options.kind, &options.replay_log) {
            (ProviderKind::Replay, Some(path)) => read_replay_log(path)?,
            (ProviderKind::Replay, None) => {
                return Err(DescribeError::input(
                    "replay without a log",
                    "pass the JSONL log of an earlier run to replay",
                ))
            }
            _ => HashMap::new(),
        };
        let agent = ureq::AgentBuilder::new().timeout(options.timeout).build();
        Ok(Client {
            options,
            agent,
            key,
            replay,
            refused: std::sync::Mutex::new(None),
        })
    }

    pub fn options(&self) -> &ProviderOptions {
        &self.options
    }

    fn endpoint(&self) -> String {
        let base = match (&self.options.base_url, self.options.kind) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, ProviderKind::Anthropic) => "https://api.anthropic.com".to_string(),
            (None, _) => "https://api.openai.com/v1".to_string(),
        };
        match self.options.kind {
            ProviderKind::Anthropic if base.ends_with("/v1") => format!("{base}/messages"),
            ProviderKind::Anthropic => format!("{base}/v1/messages"),
            _ => format!("{base}/chat/completions"),
        }
    }

    /// The JSON body sent for `prompt`.
    pub fn request_body(&self, prompt: &str, max_tokens: u32) -> Value {
        let messages = json!([{ "role": "user", "content": prompt }]);
        let model = &self.options.model;
        let mut body = match self.options.kind {
            ProviderKind::OpenAi if self.options.base_url.is_none() => json!({
                "model": model, "temperature": 0, "max_completion_tokens": max_tokens,
                "messages": messages,
            }),
            _ => json!({
                "model": model, "temperature": 0, "max_tokens": max_tokens, "messages": messages,
            }),
        };
        if self.options.logprobs && self.options.kind == ProviderKind::OpenAi {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(5);
        }
        body
    }

    /// One completion, with retries; `on_retry` hears about each wait before it happens.
    pub fn call(
        &self,
        prompt: &str,
        prompt_sha256: &str,
        max_tokens: u32,
        on_retry: &mut dyn FnMut(Retry),
    ) -> Result<Reply, CallError> {
        if self.options.kind == ProviderKind::Replay {
            return self.replay.get(prompt_sha256).map_or_else(
                || {
                    Err(CallError::Failed(format!(
                        "the replay log has no reply for prompt {prompt_sha256}"
                    )))
                },
                |text| {
                    Ok(Reply {
                        text: text.clone(),
                        input_tokens: 0,
                        output_tokens: 0,
                        probabilities: None,
                    })
                },
            );
        }
        if let Some(message) = self.refused() {
            return Err(CallError::Fatal(message));
        }
        let called = self.call_api(prompt, max_tokens, on_retry);
        if let Err(CallError::Fatal(message)) = &called {
            let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            refused.get_or_insert_with(|| message.clone());
        }
        called
    }

    /// The fatal refusal that stopped this client, if any.
    pub fn refused(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn call_api(
        &self,
        prompt: &str,
        max_tokens: u32,
        on_retry: &mut dyn FnMut(Retry),
    ) -> Result<Reply, CallError> {
        let body = self.request_body(prompt, max_tokens).to_string();
        let provider = self.options.kind.as_str();
        let mut attempt = 0;
        let mut malformed_before = false;
        loop {
            let outcome = self.send(&body);
            let (reason, retry_after) = match outcome {
                Ok(response) => {
                    let parsed = response
                        .into_string()
                        .map_err(|e| {
                            CallError::Failed(format!("{provider}: reading the reply failed: {e}"))
                        })
                        .and_then(|text| self.parse_reply(&text));
                    match parsed {
                        // A garbled body is asked for again once, then the call fails.
                        Err(CallError::Malformed { error, .. }) if !malformed_before => {
                            malformed_before = true;
                            (error, None)
                        }
                        other => return other,
                    }
                }
                Err(ureq::Error::Status(status, response)) => {
                    let retry_after = response
                        .header("retry-after")
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(|s| Duration::from_secs_f64(s.min(300.0)));
                    let body = response.into_string().unwrap_or_default();
                    let body: String = body.chars().take(400).collect();
                    match status {
                        429 | 500..=599 => (format!("HTTP {status}: {body}"), retry_after),
                        401 | 403 => {
                            return Err(CallError::Fatal(format!(
                                "HTTP {status} (the key was refused): {body}; check {}",
                                self.options.kind.key_variable()
                            )))
                        }
                        404 => {
                            return Err(CallError::Fatal(format!(
                                "HTTP 404 from {}: {body}; check the model name and base URL",
                                self.endpoint()
                            )))
                        }
                        _ => {
                            return Err(CallError::Failed(format!(
                                "{provider}: HTTP {status}: {body}"
                            )))
                        }
                    }
                }
                Err(ureq::Error::Transport(t)) => (format!("transport error: {t}"), None),
            };
            if attempt >= self.options.max_retries {
                return Err(CallError::Failed(format!(
                    "{provider}: gave up after {} attempts; last: {reason}",
                    attempt + 1
                )));
            }
            attempt += 1;
            let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
            on_retry(Retry {
                attempt,
                wait,
                reason,
            });
            std::thread::sleep(wait);
        }
    }

    // ureq's own error type; boxing it would only move the allocation.
    #[allow(clippy::result_large_err)]
    fn send(&self, body: &str) -> Result<ureq::Response, ureq::Error> {
        let mut request = self
            .agent
            .post(&self.endpoint())
            .set("content-type", "application/json");
        match self.options.kind {
            ProviderKind::Anthropic => {
                request = request
                    .set("x-api-key", self.key.as_deref().unwrap_or(""))
                    .set("anthropic-version", "2023-06-01");
            }
            _ => {
                if let Some(key) = &self.key {
                    request = request.set("authorization", &format!("Bearer {key}"));
                }
            }
        }
        request.send_string(body)
    }

    /// Exponential backoff with jitter in [0.5, 1.5) of the nominal wait, capped at a minute.
    fn backoff(&self, attempt: u32) -> Duration {
        let nominal = self.options.retry_base.as_secs_f64() * 2f64.powi(attempt as i32 - 1);
        let jitter = 0.5 + rand::random::<f64>();
        Duration::from_secs_f64((nominal * jitter).min(60.0))
    }

    /// Text and usage of a 2xx body; a body that is not the API's JSON fails the call.
    fn parse_reply(&self, body: &str) -> Result<Reply, CallError> {
        let provider = self.options.kind.as_str();
        let malformed = |what: &str| {
            let shown: String = body.chars().take(200).collect();
            CallError::Malformed {
                error: format!("{provider}: malformed reply ({what}): {shown:?}"),
                raw: body.to_string(),
            }
        };
        let value: Value = serde_json::from_str(body).map_err(|_| malformed("not JSON"))?;
        let tokens = |v: &Value| v.as_u64().unwrap_or(0);
        match self.options.kind {
            ProviderKind::Anthropic => {
                let content = value["content"]
                    .as_array()
                    .ok_or_else(|| malformed("no content"))?;
                let text: String = content
                    .iter()
                    .filter(|block| block["type"] == "text")
                    .filter_map(|block| block["text"].as_str())
                    .collect();
                Ok(Reply {
                    text,
                    input_tokens: tokens(&value["usage"]["input_tokens"]),
                    output_tokens: tokens(&value["usage"]["output_tokens"]),
                    probabilities: None,
                })
            }
            _ => {
                let text = value["choices"][0]["message"]["content"]
                    .as_str()
                    .ok_or_else(|| malformed("no choices[0].message.content"))?;
                Ok(Reply {
                    text: text.to_string(),
                    input_tokens: tokens(&value["usage"]["prompt_tokens"]),
                    output_tokens: tokens(&value["usage"]["completion_tokens"]),
                    probabilities: self
                        .options
                        .logprobs
                        .then(|| binary_probabilities(&value["choices"][0]["logprobs"]))
                        .flatten(),
                })
            }
        }
    }
}

/// Per answer token containing `0` or `1`: P(1) / (P(0) + P(1)) over its top alternatives
/// (tokens `1` and `0` after trimming), 0 when neither is among them; `None` without
/// `logprobs.content`. The rule is delphi's (`scorers/classifier/classifier.py`).
pub fn binary_probabilities(logprobs: &Value) -> Option<Vec<f64>> {
    let content = logprobs["content"].as_array()?;
    let mut probabilities = Vec::new();
    for token in content {
        let text = token["token"].as_str().unwrap_or("");
        if !(text.contains('0') || text.contains('1')) {
            continue;
        }
        let (mut p0, mut p1) = (0.0, 0.0);
        for alternative in token["top_logprobs"].as_array().into_iter().flatten() {
            let Some(logprob) = alternative["logprob"].as_f64() else {
                continue;
            };
            match alternative["token"].as_str().map(str::trim) {
                Some("0") => p0 += logprob.exp(),
                Some("1") => p1 += logprob.exp(),
                _ => {}
            }
        }
        probabilities.push(if p0 + p1 > 0.0 { p1 / (p0 + p1) } else { 0.0 });
    }
    Some(probabilities)
}

/// `prompt_sha256 → reply` from a describe JSONL log (later lines win).
fn read_replay_log(path: &PathBuf) -> DescribeResult<HashMap<String, String>> {
    let file =
        std::fs::File::open(path).map_err(DescribeError::io(path, "opening the replay log"))?;
    let mut replies = HashMap::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(DescribeError::io(path, "reading the replay log"))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line).map_err(|e| {
            DescribeError::input(
                format!("{}:{}: not JSON: {e}", path.display(), i + 1),
                "pass a JSONL log written by describe",
            )
        })?;
        if let (Some(hash), Some(reply)) =
            (value["prompt_sha256"].as_str(), value["reply"].as_str())
        {
            replies.insert(hash.to_string(), reply.to_string());
        }
    }
    Ok(replies)
}

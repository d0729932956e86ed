//! The delphi run: plan units from their residue windows, then `concurrency` workers explain
//! and score units while this thread writes each finished unit (its description row with the
//! scores and its calls) in one transaction. Calls go through the same cache, budget and
//! retries as the seed protocol ([`super::super::unit::Context::ask`]).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rusqlite::{params, Connection};

use super::super::error::{DescribeError, DescribeResult};
use super::super::log::{sha256_hex, CallLog};
use super::super::plan::unit_rng;
use super::super::prompts::{parse_description, Step};
use super::super::provider::{Client, ProviderKind};
use super::super::sampling::UnitSample;
use super::super::store::{existing_description, open_atlas, units_of_kind, Existing, RunKey};
use super::super::unit::{Asked, Budget, Context, Job, UnitResult};
use super::super::{DescribeEvent, DescribeOptions, DescribeSummary, KindCounts};
use super::prompts::{detection_prompt, explain_prompt, fuzzing_prompt, parse_binary};
use super::{
    detection_items, fuzzing_items, read_residue_windows, sample_windows, DelphiSample,
    DelphiSampled, DelphiScores, Item, ScorerResult, DELPHI,
};

struct DelphiJob {
    job: Job,
    sample: DelphiSample,
}

/// How one unit ended.
enum Ending {
    Described {
        text: String,
        prompt_sha256: String,
        scores: Box<DelphiScores>,
    },
    Failed {
        prompt_sha256: String,
        error: String,
        raw_reply: Option<String>,
    },
    Stopped,
    Fatal(String),
}

struct Finished {
    result: UnitResult,
    ending: Ending,
    n_held_out: usize,
}

enum Message {
    Event(DescribeEvent),
    Done(Box<Finished>),
}

fn plan(
    connection: &Connection,
    atlas: &Path,
    kind: &str,
    options: &DescribeOptions,
    key: &RunKey,
) -> DescribeResult<(Vec<DelphiJob>, KindCounts)> {
    let mut units = units_of_kind(connection, kind, atlas)?;
    let mut order_rng = ChaCha8Rng::seed_from_u64(options.seed);
    order_rng.set_stream(if kind == "feature" { 0 } else { u64::MAX });
    units.shuffle(&mut order_rng);
    let mut counts = KindCounts::default();
    let mut jobs = Vec::new();
    for unit in units {
        if jobs.len() + counts.already_done >= options.sample {
            break;
        }
        if unit.dead {
            counts.dead += 1;
            continue;
        }
        let existing = existing_description(connection, unit.unit, key, atlas)?;
        if existing == Existing::Described
            || (existing == Existing::Failed && !options.retry_failed)
        {
            counts.already_done += 1;
            continue;
        }
        let windows = read_residue_windows(connection, unit.unit, atlas)?.ok_or_else(|| {
            DescribeError::input(
                format!(
                    "{}: no residue windows for {kind} {} (unit {})",
                    atlas.display(),
                    unit.index,
                    unit.unit
                ),
                "protocol delphi needs residue-level units and the residue windows that \
                 `plmscope analyze --residue-windows --fasta FASTA` writes: rerun analyze so, or \
                 use --protocol gujral2025",
            )
        })?;
        let mut rng = unit_rng(options.seed, unit.unit);
        match sample_windows(&windows, &options.delphi, &mut rng) {
            DelphiSampled::Unit(sample) => jobs.push(DelphiJob {
                job: Job {
                    unit: unit.unit,
                    kind: kind.to_string(),
                    index: unit.index,
                    sample: UnitSample {
                        explain_active: Vec::new(),
                        explain_inactive: Vec::new(),
                        held_out: Vec::new(),
                    },
                    replaces_failure: existing == Existing::Failed,
                },
                sample,
            }),
            DelphiSampled::TooFewActive { .. } => counts.too_few_active += 1,
            DelphiSampled::TooFewInactive { .. } => counts.too_few_inactive += 1,
        }
    }
    counts.selected = jobs.len();
    Ok((jobs, counts))
}

fn validate(options: &DescribeOptions) -> DescribeResult<()> {
    let d = &options.delphi;
    if options.sample == 0 || options.concurrency == 0 || d.per_prompt == 0 {
        return Err(DescribeError::input(
            "sample, concurrency or windows per prompt is 0",
            "describe at least one unit with at least one worker and one window per prompt",
        ));
    }
    if d.n_quantiles == 0 || d.n_explain == 0 || d.n_test == 0 || d.n_non_activating == 0 {
        return Err(DescribeError::input(
            "a delphi count is 0",
            "give at least one quantile, explain window, test window and non-activating window",
        ));
    }
    if options.max_cost.is_some_and(|c| c.is_nan() || c < 0.0) {
        return Err(DescribeError::input(
            "negative max cost",
            "give a cost >= 0",
        ));
    }
    if options.max_cost.is_some() && options.provider.price().is_none() && !options.dry_run {
        return Err(DescribeError::input(
            format!("no list price known for model {:?}", options.provider.model),
            "give its price per million tokens (ProviderOptions::price) to use max_cost",
        ));
    }
    Ok(())
}

/// Describes and scores residue-level units of `atlas` by delphi's protocol (see the module
/// documentation of [`super`]); `describe` with `Protocol::Delphi` lands here.
pub fn describe(
    atlas: &Path,
    options: &DescribeOptions,
    progress: &mut dyn FnMut(&DescribeEvent),
) -> DescribeResult<DescribeSummary> {
    validate(options)?;
    let connection = open_atlas(atlas)?;
    let mut provider = options.provider.clone();
    provider.logprobs = options.delphi.log_probs && provider.kind == ProviderKind::OpenAi;
    let key = RunKey {
        protocol: DELPHI.to_string(),
        provider: provider.kind.as_str().to_string(),
        model: provider.model.clone(),
    };
    let mut summary = DescribeSummary {
        log: options.log_path_for(atlas),
        ..DescribeSummary::default()
    };
    let mut jobs = Vec::new();
    let mut counts: Vec<(String, KindCounts)> = Vec::new();
    for kind in options.units.kinds() {
        let (kind_jobs, kind_counts) = plan(&connection, atlas, kind, options, &key)?;
        progress(&DescribeEvent::Planned {
            kind: kind.to_string(),
            counts: kind_counts.clone(),
        });
        jobs.extend(kind_jobs);
        counts.push((kind.to_string(), kind_counts));
    }
    if options.dry_run {
        let (cost, tokens) = dry_run(&jobs, options, progress);
        summary.estimated_cost_usd = cost;
        summary.estimated_tokens = Some(tokens);
        store_counts(&mut summary, &counts);
        return Ok(summary);
    }
    let client = Client::new(provider)?;
    let log = CallLog::open(&summary.log)?;
    let budget = Budget::new(options.max_cost, options.provider.price());
    let stop = AtomicBool::new(false);
    let context = Context {
        client: &client,
        log: &log,
        budget: &budget,
        meta: &[],
        protocol: DELPHI,
        include_sequence: false,
        stop: &stop,
    };
    let total = jobs.len();
    let queue = Mutex::new(VecDeque::from(jobs));
    let mut fatal = None;
    let mut done = 0;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<Message>();
        for _ in 0..options.concurrency.min(total.max(1)) {
            let sender = sender.clone();
            let (context, queue, stop) = (&context, &queue, &stop);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(job) = next else { break };
                let unit = job.job.unit;
                let events = sender.clone();
                let finished = run_unit(context, job, options, &mut |retry| {
                    let _ = events.send(Message::Event(DescribeEvent::Retrying { unit, retry }));
                });
                if sender.send(Message::Done(Box::new(finished))).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        let mut budget_reported = false;
        for message in receiver {
            let finished = match message {
                Message::Event(event) => {
                    progress(&event);
                    continue;
                }
                Message::Done(finished) => finished,
            };
            let kind = finished.result.job.kind.clone();
            let c = counts_of(&mut counts, &kind);
            match &finished.ending {
                Ending::Stopped => c.not_finished += 1,
                Ending::Fatal(e) => {
                    c.not_finished += 1;
                    stop.store(true, Ordering::SeqCst);
                    fatal.get_or_insert_with(|| e.clone());
                }
                ending => {
                    if let Err(e) = write_unit(&connection, atlas, &key, &finished) {
                        stop.store(true, Ordering::SeqCst);
                        fatal.get_or_insert_with(|| e.to_string());
                        continue;
                    }
                    let error = match ending {
                        Ending::Failed { error, .. } => {
                            c.failed += 1;
                            Some(error.clone())
                        }
                        _ => {
                            c.described += 1;
                            None
                        }
                    };
                    done += 1;
                    progress(&DescribeEvent::UnitDone {
                        unit: finished.result.job.unit,
                        label: finished.result.job.label(),
                        done,
                        total,
                        pearson: None,
                        error,
                        spent_usd: budget.spent(),
                    });
                }
            }
            if budget.exhausted.load(Ordering::SeqCst) {
                stop.store(true, Ordering::SeqCst);
                if !budget_reported {
                    budget_reported = true;
                    progress(&DescribeEvent::BudgetReached {
                        spent_usd: budget.spent(),
                        max_cost: options.max_cost.unwrap_or(0.0),
                    });
                }
            }
        }
    });
    for job in queue.into_inner().unwrap_or_else(|e| e.into_inner()) {
        counts_of(&mut counts, &job.job.kind).not_finished += 1;
    }
    summary.spent_usd = budget.spent();
    summary.stopped_by_budget = budget.exhausted.load(Ordering::SeqCst);
    store_counts(&mut summary, &counts);
    if let Some(message) = fatal {
        return Err(DescribeError::Provider {
            provider: key.provider,
            message,
        });
    }
    Ok(summary)
}

fn counts_of<'a>(counts: &'a mut [(String, KindCounts)], kind: &str) -> &'a mut KindCounts {
    let position = counts.iter().position(|c| c.0 == kind).unwrap_or(0);
    &mut counts[position].1
}

fn store_counts(summary: &mut DescribeSummary, counts: &[(String, KindCounts)]) {
    for (kind, c) in counts {
        match kind.as_str() {
            "neuron" => summary.neurons = Some(c.clone()),
            _ => summary.features = Some(c.clone()),
        }
    }
}

/// The scorer prompts of a unit: items in batches of `per_prompt`.
fn batches(items: &[Item], per_prompt: usize) -> Vec<&[Item]> {
    items.chunks(per_prompt).collect()
}

/// Every prompt of a unit, for a dry run and its cost estimate: explain, detection, fuzzing.
fn prompts_of(job: &DelphiJob, options: &DescribeOptions, description: &str) -> Vec<String> {
    let d = &options.delphi;
    let mut rng = unit_rng(options.seed ^ 0x5c0e, job.job.unit);
    let mut prompts = vec![explain_prompt(
        &job.job.label(),
        &job.sample.explain,
        d.threshold,
    )];
    for batch in batches(&detection_items(&job.sample, &mut rng), d.per_prompt) {
        let texts: Vec<&str> = batch.iter().map(|i| i.text.as_str()).collect();
        prompts.push(detection_prompt_of(description, &texts));
    }
    for batch in batches(
        &fuzzing_items(&job.sample, d.threshold, &mut rng),
        d.per_prompt,
    ) {
        let texts: Vec<String> = batch.iter().map(|i| i.text.clone()).collect();
        prompts.push(fuzzing_prompt(description, &texts));
    }
    prompts
}

fn detection_prompt_of(description: &str, texts: &[&str]) -> String {
    let windows: Vec<super::Window> = texts
        .iter()
        .map(|t| super::Window {
            protein: 0,
            start: 0,
            residues: t.to_string(),
            activations: Vec::new(),
        })
        .collect();
    let refs: Vec<&super::Window> = windows.iter().collect();
    detection_prompt(description, &refs)
}

fn dry_run(
    jobs: &[DelphiJob],
    options: &DescribeOptions,
    progress: &mut dyn FnMut(&DescribeEvent),
) -> (Option<f64>, (u64, u64)) {
    let price = options.provider.price();
    let mut cost = 0.0;
    let (mut input, mut output) = (0u64, 0u64);
    for job in jobs {
        let prompts = prompts_of(job, options, "DESCRIPTION");
        for (i, prompt) in prompts.iter().enumerate() {
            let step = if i == 0 {
                Step::Explain
            } else {
                Step::Detection
            };
            let (tokens_in, tokens_out) = (prompt.len() as u64 / 4, step.max_tokens() as u64);
            input += tokens_in;
            output += tokens_out;
            if let Some(p) = price {
                cost += p.cost(tokens_in, tokens_out);
            }
        }
        progress(&DescribeEvent::Prompt {
            unit: job.job.unit,
            label: job.job.label(),
            prompt: prompts[0].clone(),
        });
    }
    (price.map(|_| cost), (input, output))
}

/// Explain, then score by detection and fuzzing.
fn run_unit(
    context: &Context,
    job: DelphiJob,
    options: &DescribeOptions,
    on_retry: &mut dyn FnMut(super::super::provider::Retry),
) -> Finished {
    let d = options.delphi;
    let n_held_out = job.sample.test_active.len() + job.sample.test_inactive.len();
    let mut result = UnitResult {
        job: job.job.clone(),
        outcome: super::super::unit::Outcome::Stopped,
        calls: Vec::new(),
        cost: 0.0,
    };
    let explain = explain_prompt(&job.job.label(), &job.sample.explain, d.threshold);
    let prompt_sha256 = sha256_hex(&explain);
    let text = match context.ask(
        &mut result,
        Step::Explain,
        &explain,
        &mut |r| parse_description(r),
        on_retry,
    ) {
        Asked::Reply(reply) => parse_description(&reply).unwrap_or(reply),
        Asked::Unparsed { error, raw } => {
            return Finished {
                result,
                ending: Ending::Failed {
                    prompt_sha256,
                    error,
                    raw_reply: raw,
                },
                n_held_out,
            }
        }
        Asked::Stopped => return finished(result, Ending::Stopped, n_held_out),
        Asked::Fatal(e) => return finished(result, Ending::Fatal(e), n_held_out),
    };
    // The items' order and random marks come from their own stream, so a rerun builds the same
    // prompts (and finds them in the cache).
    let mut rng = unit_rng(options.seed ^ 0x5c0e, job.job.unit);
    let detection = detection_items(&job.sample, &mut rng);
    let fuzzing = fuzzing_items(&job.sample, d.threshold, &mut rng);
    let mut scores = Vec::new();
    for (step, items) in [(Step::Detection, &detection), (Step::Fuzzing, &fuzzing)] {
        let mut answers = Vec::with_capacity(items.len());
        let mut probabilities = Vec::with_capacity(items.len());
        let mut failed_prompts = 0;
        for batch in batches(items, d.per_prompt) {
            let prompt = match step {
                Step::Detection => {
                    let texts: Vec<&str> = batch.iter().map(|i| i.text.as_str()).collect();
                    detection_prompt_of(&text, &texts)
                }
                _ => {
                    let texts: Vec<String> = batch.iter().map(|i| i.text.clone()).collect();
                    fuzzing_prompt(&text, &texts)
                }
            };
            let k = batch.len();
            match context.ask(
                &mut result,
                step,
                &prompt,
                &mut |r| parse_binary(r, k).map(drop),
                on_retry,
            ) {
                Asked::Reply(reply) => {
                    let parsed = parse_binary(&reply, k).unwrap_or_default();
                    let probs = result
                        .calls
                        .last()
                        .and_then(|c| c.probabilities.clone())
                        .filter(|p| p.len() == k);
                    for i in 0..k {
                        answers.push(parsed.get(i).copied());
                        probabilities.push(probs.as_ref().map(|p| p[i]));
                    }
                }
                // As delphi: a prompt whose reply never parses scores none of its windows.
                Asked::Unparsed { .. } => {
                    failed_prompts += 1;
                    answers.extend(std::iter::repeat_n(None, k));
                    probabilities.extend(std::iter::repeat_n(None, k));
                }
                Asked::Stopped => return finished(result, Ending::Stopped, n_held_out),
                Asked::Fatal(e) => return finished(result, Ending::Fatal(e), n_held_out),
            }
        }
        let truth: Vec<bool> = items.iter().map(|i| i.truth).collect();
        scores.push(ScorerResult::of(
            &truth,
            &answers,
            &probabilities,
            failed_prompts,
        ));
    }
    let fuzzing_scores = scores.pop().expect("two scorers");
    let detection_scores = scores.pop().expect("two scorers");
    if detection_scores.scored == 0 && fuzzing_scores.scored == 0 {
        let last = result.calls.last();
        let error = format!(
            "description {text:?}; no detection or fuzzing reply could be read{}",
            last.and_then(|c| c.error.as_deref())
                .map_or(String::new(), |e| format!(" (last: {e})"))
        );
        let raw_reply = last.and_then(|c| c.reply.clone());
        return finished(
            result,
            Ending::Failed {
                prompt_sha256,
                error,
                raw_reply,
            },
            n_held_out,
        );
    }
    let ending = Ending::Described {
        text,
        prompt_sha256,
        scores: Box::new(DelphiScores {
            detection: detection_scores,
            fuzzing: fuzzing_scores,
            n_explain: job.sample.explain.len(),
            options: d,
        }),
    };
    finished(result, ending, n_held_out)
}

fn finished(result: UnitResult, ending: Ending, n_held_out: usize) -> Finished {
    Finished {
        result,
        ending,
        n_held_out,
    }
}

/// One unit's description row and call rows, in one transaction.
fn write_unit(
    connection: &Connection,
    path: &Path,
    key: &RunKey,
    finished: &Finished,
) -> DescribeResult<()> {
    let result = &finished.result;
    let action = format!("recording unit {}", result.job.unit);
    let sql = |e| DescribeError::sqlite(path, &action)(e);
    let transaction = connection.unchecked_transaction().map_err(sql)?;
    if result.job.replaces_failure {
        transaction
            .execute(
                "DELETE FROM descriptions WHERE unit = ?1 AND protocol = ?2 AND provider = ?3 \
                 AND model = ?4 AND status <> 'ok'",
                params![result.job.unit, key.protocol, key.provider, key.model],
            )
            .map_err(sql)?;
    }
    let insert = "INSERT INTO descriptions (unit, provider, model, text, prompt_sha256, pearson, \
                  spearman, auroc, protocol, pearson_p, n_held_out, cost_usd, status, error, \
                  raw_reply, scores) VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6, ?7, NULL, ?8, \
                  ?9, ?10, ?11, ?12, ?13)";
    let unit = result.job.unit;
    let n = finished.n_held_out as u64;
    match &finished.ending {
        Ending::Described {
            text,
            prompt_sha256,
            scores,
        } => {
            let json = serde_json::to_string(scores).map_err(|e| {
                DescribeError::input(format!("unserialisable scores: {e}"), "report a bug")
            })?;
            transaction.execute(
                insert,
                params![
                    unit,
                    key.provider,
                    key.model,
                    text,
                    prompt_sha256,
                    scores.detection.auroc,
                    key.protocol,
                    n,
                    result.cost,
                    "ok",
                    Option::<String>::None,
                    Option::<String>::None,
                    json
                ],
            )
        }
        Ending::Failed {
            prompt_sha256,
            error,
            raw_reply,
        } => transaction.execute(
            insert,
            params![
                unit,
                key.provider,
                key.model,
                "",
                prompt_sha256,
                Option::<f64>::None,
                key.protocol,
                n,
                result.cost,
                "failed",
                error,
                raw_reply,
                Option::<String>::None
            ],
        ),
        _ => return Ok(()),
    }
    .map_err(sql)?;
    for call in &result.calls {
        crate::describe::store::insert_log_call(&transaction, call, &call.step).map_err(sql)?;
    }
    transaction.commit().map_err(sql)?;
    Ok(())
}

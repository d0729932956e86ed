//! The describe loop: plan, then `concurrency` worker threads describe units while this thread
//! writes each finished unit to the atlas in one transaction (its description row and its
//! calls), so an interrupted run leaves only whole units, and reports progress.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use rusqlite::{params, Connection};

use super::error::{DescribeError, DescribeResult};
use super::log::CallLog;
use super::metadata::load_protein_meta;
use super::plan::{plan_kind, Plan};
use super::prompts::{explain_prompt, predict_prompt, Step};
use super::provider::Client;
use super::store::{open_atlas, protein_count, RunKey};
use super::unit::{Budget, Context, Job, Outcome, UnitResult};
use super::{DescribeEvent, DescribeOptions, DescribeSummary, KindCounts, GUJRAL2025};

enum Message {
    Event(DescribeEvent),
    Done(Box<UnitResult>),
}

fn validate(options: &DescribeOptions) -> DescribeResult<()> {
    let s = &options.sampling;
    if options.sample == 0 || options.concurrency == 0 {
        return Err(DescribeError::input(
            "sample or concurrency is 0",
            "describe at least one unit with at least one worker",
        ));
    }
    if !(s.explain_fraction > 0.0 && s.explain_fraction < 1.0) {
        return Err(DescribeError::input(
            format!("explain fraction {}", s.explain_fraction),
            "use a fraction in (0, 1)",
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

/// Describes and scores units of the atlas at `atlas` (see the module documentation).
pub fn describe(
    atlas: &Path,
    options: &DescribeOptions,
    progress: &mut dyn FnMut(&DescribeEvent),
) -> DescribeResult<DescribeSummary> {
    if options.protocol == super::Protocol::Delphi {
        return super::delphi::describe(atlas, options, progress);
    }
    validate(options)?;
    let connection = open_atlas(atlas)?;
    let key = RunKey {
        protocol: GUJRAL2025.to_string(),
        provider: options.provider.kind.as_str().to_string(),
        model: options.provider.model.clone(),
    };
    let n_proteins = protein_count(&connection, atlas)?;
    let meta = load_protein_meta(&connection, atlas)?;
    let mut summary = DescribeSummary {
        log: options.log_path_for(atlas),
        ..DescribeSummary::default()
    };
    let mut plans: Vec<Plan> = Vec::new();
    for kind in options.units.kinds() {
        let plan = plan_kind(&connection, atlas, kind, n_proteins, options, &key)?;
        progress(&DescribeEvent::Planned {
            kind: kind.to_string(),
            counts: plan.counts.clone(),
        });
        plans.push(plan);
    }
    if options.dry_run {
        summary.estimated_cost_usd = dry_run(&plans, &meta, options, progress);
        store_counts(&mut summary, &plans);
        return Ok(summary);
    }
    let client = Client::new(options.provider.clone())?;
    let log = CallLog::open(&summary.log)?;
    let budget = Budget::new(options.max_cost, options.provider.price());
    let stop = AtomicBool::new(false);
    let context = Context {
        client: &client,
        log: &log,
        budget: &budget,
        meta: &meta,
        protocol: GUJRAL2025,
        include_sequence: options.include_sequence,
        stop: &stop,
    };
    let jobs: Vec<Job> = plans.iter().flat_map(|p| p.jobs.iter().cloned()).collect();
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
                let unit = job.unit;
                let events = sender.clone();
                let result = context.run(job, &mut |retry| {
                    let _ = events.send(Message::Event(DescribeEvent::Retrying { unit, retry }));
                });
                if sender.send(Message::Done(Box::new(result))).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        let mut budget_reported = false;
        for message in receiver {
            let result = match message {
                Message::Event(event) => {
                    progress(&event);
                    continue;
                }
                Message::Done(result) => result,
            };
            let counts = counts_of(&mut plans, &result.job.kind);
            match &result.outcome {
                Outcome::Stopped => counts.not_finished += 1,
                Outcome::Fatal(e) => {
                    counts.not_finished += 1;
                    stop.store(true, Ordering::SeqCst);
                    fatal.get_or_insert_with(|| e.clone());
                }
                outcome => {
                    if let Err(e) = write_result(&connection, atlas, &key, &result) {
                        stop.store(true, Ordering::SeqCst);
                        fatal.get_or_insert_with(|| e.to_string());
                        continue;
                    }
                    let (pearson, error) = match outcome {
                        Outcome::Described { pearson, .. } => {
                            counts.described += 1;
                            (pearson.map(|c| c.r), None)
                        }
                        Outcome::Failed { error, .. } => {
                            counts.failed += 1;
                            (None, Some(error.clone()))
                        }
                        _ => (None, None),
                    };
                    done += 1;
                    progress(&DescribeEvent::UnitDone {
                        unit: result.job.unit,
                        label: result.job.label(),
                        done,
                        total,
                        pearson,
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
        counts_of(&mut plans, &job.kind).not_finished += 1;
    }
    summary.spent_usd = budget.spent();
    summary.stopped_by_budget = budget.exhausted.load(Ordering::SeqCst);
    store_counts(&mut summary, &plans);
    if let Some(message) = fatal {
        return Err(DescribeError::Provider {
            provider: key.provider,
            message,
        });
    }
    Ok(summary)
}

fn counts_of<'a>(plans: &'a mut [Plan], kind: &str) -> &'a mut KindCounts {
    let position = plans.iter().position(|p| p.kind == kind).unwrap_or(0);
    &mut plans[position].counts
}

fn store_counts(summary: &mut DescribeSummary, plans: &[Plan]) {
    for plan in plans {
        match plan.kind.as_str() {
            "neuron" => summary.neurons = Some(plan.counts.clone()),
            _ => summary.features = Some(plan.counts.clone()),
        }
    }
}

/// Emits every explain prompt and returns the estimated cost (`None` without a known price):
/// tokens as characters / 4, the explain reply at its budget, a predict prompt built with a
/// placeholder description, and 8 tokens per predicted number.
fn dry_run(
    plans: &[Plan],
    meta: &[super::metadata::ProteinMeta],
    options: &DescribeOptions,
    progress: &mut dyn FnMut(&DescribeEvent),
) -> Option<f64> {
    let price = options.provider.price();
    let mut cost = 0.0;
    for job in plans.iter().flat_map(|p| &p.jobs) {
        let m = |p: u32| &meta[p as usize];
        let active: Vec<_> = job
            .sample
            .explain_active
            .iter()
            .map(|s| (m(s.protein), *s))
            .collect();
        let inactive: Vec<_> = job
            .sample
            .explain_inactive
            .iter()
            .map(|s| (m(s.protein), *s))
            .collect();
        let explain = explain_prompt(&job.label(), &active, &inactive, options.include_sequence);
        let held: Vec<_> = job.sample.held_out.iter().map(|s| m(s.protein)).collect();
        let placeholder = "A one-sentence description of what the unit responds to.";
        let predict = predict_prompt(placeholder, &held, options.include_sequence);
        if let Some(price) = price {
            let input = (explain.len() + predict.len()) as u64 / 4;
            let output = Step::Explain.max_tokens() as u64 + 8 * held.len() as u64;
            cost += price.cost(input, output);
        }
        progress(&DescribeEvent::Prompt {
            unit: job.unit,
            label: job.label(),
            prompt: explain,
        });
    }
    price.map(|_| cost)
}

/// One unit's description row and call rows, in one transaction.
fn write_result(
    connection: &Connection,
    path: &Path,
    key: &RunKey,
    result: &UnitResult,
) -> DescribeResult<()> {
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
                  raw_reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, ?10, ?11, ?12, \
                  ?13, ?14)";
    let unit = result.job.unit;
    match &result.outcome {
        Outcome::Described {
            text,
            prompt_sha256,
            pearson,
            spearman,
            n_held_out,
        } => transaction.execute(
            insert,
            params![
                unit,
                key.provider,
                key.model,
                text,
                prompt_sha256,
                pearson.map(|c| c.r),
                spearman,
                key.protocol,
                pearson.map(|c| c.p),
                *n_held_out as u64,
                result.cost,
                "ok",
                Option::<String>::None,
                Option::<String>::None
            ],
        ),
        Outcome::Failed {
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
                Option::<f64>::None,
                key.protocol,
                Option::<f64>::None,
                result.job.sample.held_out.len() as u64,
                result.cost,
                "failed",
                error,
                raw_reply
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

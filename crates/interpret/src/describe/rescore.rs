//! Scoring existing descriptions again (`plmscope score`), e.g. with another model.
//!
//! A rescore rebuilds each unit's sample with the seed of the describe run (the same held-out
//! proteins), asks the scoring model to predict their activations from the stored description,
//! and writes one row per unit and scorer into `description_scores`; the `descriptions` rows
//! stay as they are. When the describe run's predict prompt is in `describe_log`, the rebuilt
//! prompt must hash to it, which proves the held-out set is the one the description was first
//! scored on (a different seed or sampling is refused, not silently scored on other proteins).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use super::error::{DescribeError, DescribeResult};
use super::log::{sha256_hex, CallLog};
use super::metadata::load_protein_meta;
use super::prompts::{parse_predictions, Step};
use super::provider::Client;
use super::stats::{median, pearson, spearman};
use super::store::{open_atlas, protein_count};
use super::unit::{Asked, Budget, Context, Job, Outcome, UnitResult};
use super::unit_prompts::{prompts_for, sample_of};
use super::{DescribeEvent, DescribeOptions, GUJRAL2025};

const SCORES_TABLE: &str = r#"
CREATE TABLE IF NOT EXISTS description_scores (
    unit               INTEGER NOT NULL,
    protocol           TEXT NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    scorer_provider    TEXT NOT NULL,
    scorer_model       TEXT NOT NULL,
    seed               INTEGER NOT NULL,
    description_sha256 TEXT NOT NULL,
    pearson            REAL,
    pearson_p          REAL,
    spearman           REAL,
    n_held_out         INTEGER,
    cost_usd           REAL,
    status             TEXT NOT NULL,
    error              TEXT,
    raw_reply          TEXT,
    PRIMARY KEY (unit, protocol, provider, model, scorer_provider, scorer_model)
);
"#;

/// Which descriptions to score again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescoreFilter {
    /// Only descriptions written by this provider (`anthropic`, `openai`, `replay`).
    pub provider: Option<String>,
    /// Only descriptions written by this model.
    pub model: Option<String>,
}

/// What [`rescore`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RescoreSummary {
    /// Descriptions found to score.
    pub descriptions: usize,
    /// Scored by this scorer in an earlier run (skipped).
    pub already_scored: usize,
    pub scored: usize,
    pub failed: usize,
    pub not_finished: usize,
    pub spent_usd: f64,
    pub stopped_by_budget: bool,
    /// Median Pearson r of the new scores (all rows of this scorer).
    pub median_pearson: Option<f64>,
    /// The originals' median over the same descriptions, for comparison.
    pub original_median_pearson: Option<f64>,
}

struct Target {
    unit: u32,
    kind: String,
    index: u32,
    provider: String,
    model: String,
    text: String,
    original_pearson: Option<f64>,
}

fn targets(
    connection: &Connection,
    path: &Path,
    filter: &RescoreFilter,
    options: &DescribeOptions,
) -> DescribeResult<Vec<Target>> {
    let action = "reading descriptions to score";
    let mut statement = connection
        .prepare(
            "SELECT d.unit, u.kind, u.\"index\", d.provider, d.model, d.text, d.pearson \
             FROM descriptions d JOIN units u ON u.unit = d.unit \
             WHERE d.status = 'ok' AND d.protocol = ?1 ORDER BY d.provider, d.model, d.unit",
        )
        .map_err(DescribeError::sqlite(path, action))?;
    let rows = statement
        .query_map([GUJRAL2025], |row| {
            Ok(Target {
                unit: row.get(0)?,
                kind: row.get(1)?,
                index: row.get(2)?,
                provider: row.get(3)?,
                model: row.get(4)?,
                text: row.get(5)?,
                original_pearson: row.get(6)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DescribeError::sqlite(path, action))?;
    let kinds = options.units.kinds();
    Ok(rows
        .into_iter()
        .filter(|t| filter.provider.iter().all(|p| *p == t.provider))
        .filter(|t| filter.model.iter().all(|m| *m == t.model))
        .filter(|t| kinds.contains(&t.kind.as_str()))
        .collect())
}

/// The hash of the predict prompt the describe run sent for this description, if logged.
fn original_predict_hash(
    connection: &Connection,
    path: &Path,
    target: &Target,
) -> DescribeResult<Option<String>> {
    connection
        .query_row(
            "SELECT prompt_sha256 FROM describe_log WHERE unit = ?1 AND protocol = ?2 AND \
             provider = ?3 AND model = ?4 AND step = 'predict' AND error IS NULL \
             ORDER BY rowid DESC LIMIT 1",
            params![target.unit, GUJRAL2025, target.provider, target.model],
            |row| row.get(0),
        )
        .optional()
        .map_err(DescribeError::sqlite(path, "reading the describe log"))
}

struct Scored {
    target: usize,
    result: UnitResult,
}

/// Scores the stored gujral2025 descriptions again with `options.provider` (see the module
/// documentation). `options.seed`, `sampling` and `include_sequence` must be the describe
/// run's; `options.sample` is not used (every matching description is scored).
pub fn rescore(
    atlas: &Path,
    options: &DescribeOptions,
    filter: &RescoreFilter,
    progress: &mut dyn FnMut(&DescribeEvent),
) -> DescribeResult<RescoreSummary> {
    let connection = open_atlas(atlas)?;
    connection
        .execute_batch(SCORES_TABLE)
        .map_err(DescribeError::sqlite(atlas, "creating description_scores"))?;
    let scorer_provider = options.provider.kind.as_str().to_string();
    let scorer_model = options.provider.model.clone();
    let n_proteins = protein_count(&connection, atlas)?;
    let meta = load_protein_meta(&connection, atlas)?;
    let all = targets(&connection, atlas, filter, options)?;
    let mut summary = RescoreSummary {
        descriptions: all.len(),
        ..RescoreSummary::default()
    };
    if all.is_empty() {
        return Err(DescribeError::input(
            format!(
                "{}: no gujral2025 description to score{}",
                atlas.display(),
                match (&filter.provider, &filter.model) {
                    (None, None) => String::new(),
                    (p, m) => format!(
                        " from {} {}",
                        p.as_deref().unwrap_or("any provider"),
                        m.as_deref().unwrap_or("(any model)")
                    ),
                }
            ),
            "run `plmscope describe` on this atlas first",
        ));
    }
    let mut jobs = Vec::new();
    for (i, target) in all.iter().enumerate() {
        let status: Option<String> = connection
            .query_row(
                "SELECT status FROM description_scores WHERE unit = ?1 AND protocol = ?2 AND \
                 provider = ?3 AND model = ?4 AND scorer_provider = ?5 AND scorer_model = ?6",
                params![
                    target.unit,
                    GUJRAL2025,
                    target.provider,
                    target.model,
                    scorer_provider,
                    scorer_model
                ],
                |row| row.get(0),
            )
            .optional()
            .map_err(DescribeError::sqlite(atlas, "reading description_scores"))?;
        if status.as_deref() == Some("ok") || (status.is_some() && !options.retry_failed) {
            summary.already_scored += 1;
            continue;
        }
        let sample = sample_of(
            &connection,
            atlas,
            target.unit,
            &target.kind,
            n_proteins,
            options,
        )?
        .ok_or_else(|| {
            DescribeError::input(
                format!(
                    "{}: {} {} has a description but is too sparse for the sampling given",
                    atlas.display(),
                    target.kind,
                    target.index
                ),
                "pass the --seed (and sampling options) of the describe run",
            )
        })?;
        let label = format!("{} {}", target.kind, target.index);
        let (_, predict) = prompts_for(
            &label,
            &sample,
            &meta,
            &target.text,
            options.include_sequence,
        );
        if let Some(hash) = original_predict_hash(&connection, atlas, target)? {
            if hash != sha256_hex(&predict) {
                return Err(DescribeError::input(
                    format!(
                        "{}: the held-out proteins rebuilt for {label} with seed {} are not the \
                         ones its description was scored on",
                        atlas.display(),
                        options.seed
                    ),
                    "pass the --seed (and sampling options) of the describe run",
                ));
            }
        }
        jobs.push((
            i,
            Job {
                unit: target.unit,
                kind: target.kind.clone(),
                index: target.index,
                sample,
                replaces_failure: false,
            },
            predict,
        ));
    }
    let total = jobs.len();
    if options.dry_run {
        for (i, job, predict) in &jobs {
            progress(&DescribeEvent::Prompt {
                unit: job.unit,
                label: format!("{} {}", all[*i].kind, all[*i].index),
                prompt: predict.clone(),
            });
        }
        summary.not_finished = total;
        return Ok(summary);
    }
    let client = Client::new(options.provider.clone())?;
    let log = CallLog::open(&options.log_path_for(atlas))?;
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
    let queue = Mutex::new(VecDeque::from(jobs));
    let mut fatal: Option<String> = None;
    let mut done = 0;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<Scored>();
        for _ in 0..options.concurrency.max(1).min(total.max(1)) {
            let sender = sender.clone();
            let (context, queue, stop) = (&context, &queue, &stop);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some((target, job, predict)) = next else {
                    break;
                };
                let n = job.sample.held_out.len();
                let mut result = UnitResult {
                    job,
                    outcome: Outcome::Stopped,
                    calls: Vec::new(),
                    cost: 0.0,
                };
                let asked = context.ask(
                    &mut result,
                    Step::Predict,
                    &predict,
                    &mut |r| parse_predictions(r, n).map(drop),
                    &mut |_| {},
                );
                let prompt_sha256 = sha256_hex(&predict);
                result.outcome = match asked {
                    Asked::Reply(reply) => {
                        let predictions = parse_predictions(&reply, n).unwrap_or_default();
                        let truth: Vec<f64> = result
                            .job
                            .sample
                            .held_out
                            .iter()
                            .map(|s| s.activation)
                            .collect();
                        Outcome::Described {
                            text: String::new(),
                            prompt_sha256,
                            pearson: pearson(&predictions, &truth),
                            spearman: spearman(&predictions, &truth).map(|c| c.r),
                            n_held_out: n,
                        }
                    }
                    Asked::Unparsed { error, raw } => Outcome::Failed {
                        prompt_sha256,
                        error,
                        raw_reply: raw,
                    },
                    Asked::Stopped => Outcome::Stopped,
                    Asked::Fatal(e) => Outcome::Fatal(e),
                };
                if sender.send(Scored { target, result }).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        for Scored { target, result } in receiver {
            let t = &all[target];
            match &result.outcome {
                Outcome::Stopped => summary.not_finished += 1,
                Outcome::Fatal(e) => {
                    summary.not_finished += 1;
                    stop.store(true, Ordering::SeqCst);
                    fatal.get_or_insert_with(|| e.clone());
                }
                outcome => {
                    let written = write_score(
                        &connection,
                        atlas,
                        t,
                        (&scorer_provider, &scorer_model),
                        options.seed,
                        &result,
                    );
                    if let Err(e) = written {
                        stop.store(true, Ordering::SeqCst);
                        fatal.get_or_insert_with(|| e.to_string());
                        continue;
                    }
                    let (r, error) = match outcome {
                        Outcome::Described { pearson, .. } => {
                            summary.scored += 1;
                            (pearson.map(|c| c.r), None)
                        }
                        Outcome::Failed { error, .. } => {
                            summary.failed += 1;
                            (None, Some(error.clone()))
                        }
                        _ => (None, None),
                    };
                    done += 1;
                    progress(&DescribeEvent::UnitDone {
                        unit: t.unit,
                        label: format!("{} {}", t.kind, t.index),
                        done,
                        total,
                        pearson: r,
                        error,
                        spent_usd: budget.spent(),
                    });
                }
            }
            if budget.exhausted.load(Ordering::SeqCst) {
                stop.store(true, Ordering::SeqCst);
            }
        }
    });
    summary.not_finished += queue.into_inner().unwrap_or_else(|e| e.into_inner()).len();
    summary.spent_usd = budget.spent();
    summary.stopped_by_budget = budget.exhausted.load(Ordering::SeqCst);
    if summary.stopped_by_budget {
        progress(&DescribeEvent::BudgetReached {
            spent_usd: summary.spent_usd,
            max_cost: options.max_cost.unwrap_or(0.0),
        });
    }
    let scores: Vec<(u32, String, String, Option<f64>)> = {
        let mut statement = connection
            .prepare(
                "SELECT unit, provider, model, pearson FROM description_scores WHERE \
                 protocol = ?1 AND scorer_provider = ?2 AND scorer_model = ?3 AND status = 'ok'",
            )
            .map_err(DescribeError::sqlite(atlas, "reading description_scores"))?;
        let rows = statement
            .query_map(params![GUJRAL2025, scorer_provider, scorer_model], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(DescribeError::sqlite(atlas, "reading description_scores"))?;
        rows
    };
    let scored: Vec<&(u32, String, String, Option<f64>)> = scores
        .iter()
        .filter(|s| {
            all.iter()
                .any(|t| t.unit == s.0 && t.provider == s.1 && t.model == s.2)
        })
        .collect();
    summary.median_pearson = median(scored.iter().filter_map(|s| s.3).collect());
    summary.original_median_pearson = median(
        all.iter()
            .filter(|t| {
                scored
                    .iter()
                    .any(|s| s.0 == t.unit && s.1 == t.provider && s.2 == t.model)
            })
            .filter_map(|t| t.original_pearson)
            .collect(),
    );
    if let Some(message) = fatal {
        return Err(DescribeError::Provider {
            provider: scorer_provider,
            message,
        });
    }
    Ok(summary)
}

fn write_score(
    connection: &Connection,
    path: &Path,
    target: &Target,
    scorer: (&str, &str),
    seed: u64,
    result: &UnitResult,
) -> DescribeResult<()> {
    let action = format!("recording the score of unit {}", target.unit);
    let sql = |e| DescribeError::sqlite(path, &action)(e);
    let transaction = connection.unchecked_transaction().map_err(sql)?;
    let (status, pearson_r, pearson_p, spearman_r, error, raw) = match &result.outcome {
        Outcome::Described {
            pearson, spearman, ..
        } => (
            "ok",
            pearson.map(|c| c.r),
            pearson.map(|c| c.p),
            *spearman,
            None,
            None,
        ),
        Outcome::Failed {
            error, raw_reply, ..
        } => (
            "failed",
            None,
            None,
            None,
            Some(error.clone()),
            raw_reply.clone(),
        ),
        _ => return Ok(()),
    };
    transaction
        .execute(
            "INSERT OR REPLACE INTO description_scores (unit, protocol, provider, model, \
             scorer_provider, scorer_model, seed, description_sha256, pearson, pearson_p, \
             spearman, n_held_out, cost_usd, status, error, raw_reply) VALUES (?1, ?2, ?3, ?4, \
             ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                target.unit,
                GUJRAL2025,
                target.provider,
                target.model,
                scorer.0,
                scorer.1,
                seed as i64,
                sha256_hex(&target.text),
                pearson_r,
                pearson_p,
                spearman_r,
                result.job.sample.held_out.len() as u64,
                result.cost,
                status,
                error,
                raw
            ],
        )
        .map_err(sql)?;
    for call in &result.calls {
        crate::describe::store::insert_log_call(&transaction, call, "rescore").map_err(sql)?;
    }
    transaction.commit().map_err(sql)?;
    Ok(())
}

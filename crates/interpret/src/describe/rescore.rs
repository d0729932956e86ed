//! Scoring existing descriptions again (`plmscope score`), e.g. with another model, and the
//! per-kind figures of an atlas's descriptions (the seed paper's headline comparison: how many
//! units were described, their median score, the share with r > 0.5, features against neurons).
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
use super::metadata::{load_protein_meta, ProteinMeta};
use super::plan::unit_rng;
use super::prompts::{explain_prompt, parse_predictions, predict_prompt, Step};
use super::provider::Client;
use super::sampling::{min_max_scale, sample_unit, Sampled, UnitMode, UnitSample};
use super::stats::{pearson, spearman};
use super::store::{open_atlas, protein_count, unit_activations};
use super::unit::{Asked, Budget, Context, Job, Outcome, UnitResult};
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

/// The explain prompt and the predict prompt of one unit, as a describe run with `options`
/// builds them; the predict prompt holds `description` where the model's sentence would go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPrompts {
    pub unit: u32,
    pub kind: String,
    pub index: u32,
    pub label: String,
    pub explain: String,
    pub predict: String,
    /// Proteins the predict prompt asks about.
    pub n_held_out: usize,
}

fn unit_row(
    connection: &Connection,
    unit: u32,
    path: &Path,
) -> DescribeResult<Option<(String, u32)>> {
    connection
        .query_row(
            "SELECT kind, \"index\" FROM units WHERE unit = ?1",
            [unit],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(DescribeError::sqlite(path, format!("reading unit {unit}")))
}

/// The sample a describe run with `options` draws for one unit (`None`: the unit is too sparse
/// for the protocol).
fn sample_of(
    connection: &Connection,
    path: &Path,
    unit: u32,
    kind: &str,
    n_proteins: u32,
    options: &DescribeOptions,
) -> DescribeResult<Option<UnitSample>> {
    let values = unit_activations(connection, unit, n_proteins, path)?.ok_or_else(|| {
        DescribeError::input(
            format!(
                "{}: no per-protein activations for unit {unit}",
                path.display()
            ),
            "rerun `plmscope analyze` (it writes them) on this atlas",
        )
    })?;
    let mode = if kind == "feature" {
        UnitMode::Sparse
    } else {
        UnitMode::Dense
    };
    let mut rng = unit_rng(options.seed, unit);
    Ok(
        match sample_unit(&min_max_scale(&values), mode, &options.sampling, &mut rng) {
            Sampled::Unit(sample) => Some(sample),
            _ => None,
        },
    )
}

fn prompts_for(
    label: &str,
    sample: &UnitSample,
    meta: &[ProteinMeta],
    description: &str,
    sequence: bool,
) -> (String, String) {
    let m = |p: u32| &meta[p as usize];
    let active: Vec<_> = sample
        .explain_active
        .iter()
        .map(|s| (m(s.protein), *s))
        .collect();
    let inactive: Vec<_> = sample
        .explain_inactive
        .iter()
        .map(|s| (m(s.protein), *s))
        .collect();
    let held: Vec<&ProteinMeta> = sample.held_out.iter().map(|s| m(s.protein)).collect();
    (
        explain_prompt(label, &active, &inactive, sequence),
        predict_prompt(description, &held, sequence),
    )
}

/// The exact prompts of `units` (for `--prompts-dir`, dry-run estimates and
/// `examples/prompts/`), in the order given; units too sparse to be described are left out.
pub fn unit_prompts(
    atlas: &Path,
    options: &DescribeOptions,
    units: &[u32],
    description: &str,
) -> DescribeResult<Vec<UnitPrompts>> {
    let connection = open_atlas(atlas)?;
    let n_proteins = protein_count(&connection, atlas)?;
    let meta = load_protein_meta(&connection, atlas)?;
    let mut prompts = Vec::new();
    for &unit in units {
        let (kind, index) = unit_row(&connection, unit, atlas)?.ok_or_else(|| {
            DescribeError::input(
                format!("{}: no unit {unit}", atlas.display()),
                "name a unit of the atlas's units table",
            )
        })?;
        let Some(sample) = sample_of(&connection, atlas, unit, &kind, n_proteins, options)? else {
            continue;
        };
        let label = format!("{kind} {index}");
        let (explain, predict) = prompts_for(
            &label,
            &sample,
            &meta,
            description,
            options.include_sequence,
        );
        prompts.push(UnitPrompts {
            unit,
            kind,
            index,
            label,
            explain,
            predict,
            n_held_out: sample.held_out.len(),
        });
    }
    Ok(prompts)
}

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

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
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

/// One unit kind's descriptions by one provider and model.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct KindStats {
    /// Units with a description and a score.
    pub described: usize,
    /// Units recorded failed.
    pub failed: usize,
    pub median_pearson: Option<f64>,
    /// Share of described units with Pearson r > 0.5.
    pub share_above_half: Option<f64>,
}

/// The descriptions of one protocol, provider and model in an atlas.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DescriptionStats {
    pub protocol: String,
    pub provider: String,
    pub model: String,
    pub features: KindStats,
    pub neurons: KindStats,
}

/// Per protocol, provider and model: the described units of each kind, their median Pearson r
/// and the share with r > 0.5. Empty when the atlas holds no description. Reads only.
pub fn description_stats(atlas: &Path) -> DescribeResult<Vec<DescriptionStats>> {
    let connection = Connection::open_with_flags(atlas, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(DescribeError::sqlite(atlas, "opening"))?;
    let has_status: bool = connection
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('descriptions') WHERE name = 'status'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .unwrap_or(false);
    if !has_status {
        return Ok(Vec::new());
    }
    let action = "reading descriptions";
    let mut statement = connection
        .prepare(
            "SELECT d.protocol, d.provider, d.model, u.kind, d.status, d.pearson FROM \
             descriptions d JOIN units u ON u.unit = d.unit \
             ORDER BY d.protocol, d.provider, d.model",
        )
        .map_err(DescribeError::sqlite(atlas, action))?;
    type Row = (String, String, String, String, String, Option<f64>);
    let rows: Vec<Row> = statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DescribeError::sqlite(atlas, action))?;
    let mut groups: Vec<(DescriptionStats, [Vec<f64>; 2])> = Vec::new();
    for (protocol, provider, model, kind, status, r) in rows {
        let position = groups.iter().position(|(g, _)| {
            g.protocol == protocol && g.provider == provider && g.model == model
        });
        let position = position.unwrap_or_else(|| {
            groups.push((
                DescriptionStats {
                    protocol,
                    provider,
                    model,
                    ..DescriptionStats::default()
                },
                [Vec::new(), Vec::new()],
            ));
            groups.len() - 1
        });
        let (group, scores) = &mut groups[position];
        let (stats, scores) = if kind == "neuron" {
            (&mut group.neurons, &mut scores[1])
        } else {
            (&mut group.features, &mut scores[0])
        };
        if status == "ok" {
            stats.described += 1;
            // A constant prediction has no correlation; it counts as described, below 0.5.
            scores.push(r.unwrap_or(f64::NAN));
        } else {
            stats.failed += 1;
        }
    }
    Ok(groups
        .into_iter()
        .map(|(mut group, [features, neurons])| {
            for (stats, scores) in [
                (&mut group.features, features),
                (&mut group.neurons, neurons),
            ] {
                if !scores.is_empty() {
                    let above = scores.iter().filter(|r| **r > 0.5).count();
                    stats.share_above_half = Some(above as f64 / scores.len() as f64);
                }
                stats.median_pearson = median(scores);
            }
            group
        })
        .collect())
}

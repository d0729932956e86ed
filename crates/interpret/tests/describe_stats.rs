//! The scoring math of `describe` against scipy and scikit-learn: Pearson's r and p, Spearman's
//! rho and p (`scipy.stats.pearsonr`, `spearmanr`), AUROC with ties (`roc_auc_score`), precision,
//! recall, F1 and balanced accuracy (`precision_score`, `recall_score`, `f1_score`,
//! `balanced_accuracy_score`), on edge cases (ties, constant inputs, one class, n = 3) and
//! seeded random ones, to 1e-9.
//!
//! Regenerate the fixture from the repository root with:
//!
//!     python3 scripts/describe_stats_reference.py
//!
//! (writes crates/interpret/tests/fixtures/describe_stats_reference.json; needs scipy and
//! scikit-learn). The tests read only the committed JSON.

use plmscope_interpret::describe::stats::{auroc, pearson, spearman, Confusion};
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/describe_stats_reference.json"
);
const TOLERANCE: f64 = 1e-9;

fn fixture() -> Value {
    let text = std::fs::read_to_string(FIXTURE)
        .expect("fixture exists; see the header for how to regenerate it");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn floats(case: &Value, name: &str) -> Vec<f64> {
    case[name]
        .as_array()
        .unwrap_or_else(|| panic!("{name} in {case}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn bools(case: &Value, name: &str) -> Vec<bool> {
    case[name]
        .as_array()
        .unwrap_or_else(|| panic!("{name} in {case}"))
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect()
}

fn assert_close(name: &str, what: &str, ours: Option<f64>, expected: &Value) {
    match (ours, expected.as_f64()) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!(
            (a - b).abs() <= TOLERANCE,
            "{name}: {what} {a} vs reference {b} (diff {:e})",
            (a - b).abs()
        ),
        (a, _) => panic!("{name}: {what} {a:?} vs reference {expected}"),
    }
}

#[test]
fn pearson_and_spearman_match_scipy() {
    let data = fixture();
    let cases = data["correlation"].as_array().unwrap();
    assert!(cases.len() >= 15);
    let mut defined = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (x, y) = (floats(case, "x"), floats(case, "y"));
        let p = pearson(&x, &y);
        let s = spearman(&x, &y);
        assert_close(name, "pearson r", p.map(|c| c.r), &case["pearson_r"]);
        assert_close(name, "pearson p", p.map(|c| c.p), &case["pearson_p"]);
        assert_close(name, "spearman r", s.map(|c| c.r), &case["spearman_r"]);
        assert_close(name, "spearman p", s.map(|c| c.p), &case["spearman_p"]);
        defined += usize::from(p.is_some());
    }
    // The constant cases are the only undefined ones.
    assert_eq!(defined, cases.len() - 2);
}

#[test]
fn auroc_with_ties_matches_sklearn() {
    let data = fixture();
    let cases = data["auroc"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let ours = auroc(&floats(case, "scores"), &bools(case, "labels"));
        assert_close(name, "auroc", ours, &case["auroc"]);
    }
    let tied = cases.iter().find(|c| c["name"] == "all_tied").unwrap();
    assert_eq!(tied["auroc"].as_f64(), Some(0.5));
}

#[test]
fn precision_recall_f1_and_balanced_accuracy_match_sklearn() {
    let data = fixture();
    let cases = data["classification"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let c = Confusion::of(&bools(case, "truth"), &bools(case, "predicted"));
        assert_close(name, "precision", Some(c.precision()), &case["precision"]);
        assert_close(name, "recall", Some(c.recall()), &case["recall"]);
        assert_close(name, "f1", Some(c.f1()), &case["f1"]);
        assert_close(
            name,
            "balanced accuracy",
            Some(c.balanced_accuracy()),
            &case["balanced_accuracy"],
        );
    }
}

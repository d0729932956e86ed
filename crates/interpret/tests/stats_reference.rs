//! Parity of `hypergeom` and `multiple_testing` with scipy and statsmodels.
//!
//! Regenerate the fixture from the repository root with:
//!
//!     python3 scripts/stats_reference.py
//!
//! (writes crates/interpret/tests/fixtures/hypergeom_reference.json; needs scipy and statsmodels).

use plmscope_interpret::hypergeom::{fisher_greater_ln_p, ln_sf, sf};
use plmscope_interpret::multiple_testing::{benjamini_hochberg_ln_q, bonferroni_ln_q};
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/hypergeom_reference.json"
);
const TOLERANCE: f64 = 1e-9;

fn fixture() -> Value {
    let text = std::fs::read_to_string(FIXTURE)
        .expect("fixture exists; see the header for how to regenerate it");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn u32_field(case: &Value, name: &str) -> u32 {
    case[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {case}")) as u32
}

fn f64_list(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn assert_relative(got: f64, want: f64, what: &str) {
    let error = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
    assert!(
        error <= TOLERANCE,
        "{what}: got {got:e}, want {want:e}, relative error {error:e}"
    );
}

#[test]
fn hypergeometric_tail_matches_scipy_at_realistic_sizes() {
    let data = fixture();
    let cases = data["hypergeom_realistic"].as_array().expect("cases");
    assert!(cases.len() >= 400);
    for case in cases {
        let (k, n, kp, np) = (
            u32_field(case, "k"),
            u32_field(case, "n_study"),
            u32_field(case, "k_pop"),
            u32_field(case, "n_pop"),
        );
        let want_sf = case["sf"].as_f64().expect("sf");
        if want_sf > 1e-300 {
            assert_relative(sf(k, n, kp, np).unwrap(), want_sf, &format!("sf {case}"));
        } else {
            // Below f64's normal range scipy's sf has underflowed; compare ln p from logsf.
            let want_ln = case["ln_sf"].as_f64().expect("ln_sf");
            assert_relative(
                ln_sf(k, n, kp, np).unwrap(),
                want_ln,
                &format!("ln sf {case}"),
            );
        }
    }
}

#[test]
fn hypergeometric_tail_matches_scipy_logsf_below_1e_300() {
    let data = fixture();
    for case in data["hypergeom_extreme"].as_array().expect("cases") {
        let (k, n, kp, np) = (
            u32_field(case, "k"),
            u32_field(case, "n_study"),
            u32_field(case, "k_pop"),
            u32_field(case, "n_pop"),
        );
        let want = case["ln_sf"].as_f64().expect("ln_sf");
        assert!(want < -690.0, "fixture case is not extreme: {case}");
        assert_relative(ln_sf(k, n, kp, np).unwrap(), want, &format!("ln sf {case}"));
    }
}

#[test]
fn one_sided_fisher_matches_scipy() {
    let data = fixture();
    for case in data["fisher_greater"].as_array().expect("cases") {
        let (a, b, c, d) = (
            u32_field(case, "a"),
            u32_field(case, "b"),
            u32_field(case, "c"),
            u32_field(case, "d"),
        );
        let want = case["p"].as_f64().expect("p");
        assert_relative(
            fisher_greater_ln_p(a, b, c, d).unwrap().exp(),
            want,
            &format!("fisher {case}"),
        );
    }
}

#[test]
fn benjamini_hochberg_and_bonferroni_match_statsmodels() {
    let data = fixture();
    for case in data["bh"].as_array().expect("cases") {
        let ln_p: Vec<f64> = f64_list(&case["p"]).iter().map(|p| p.ln()).collect();
        let total = case["total_tests"].as_u64().expect("total_tests") as usize;
        let bh = benjamini_hochberg_ln_q(&ln_p, total).unwrap();
        for (got, want) in bh.iter().zip(f64_list(&case["q_bh"])) {
            assert_relative(got.exp(), want, "BH q");
        }
        let bonferroni = bonferroni_ln_q(&ln_p, total).unwrap();
        for (got, want) in bonferroni.iter().zip(f64_list(&case["q_bonferroni"])) {
            if want > 1e-300 {
                assert_relative(got.exp(), want, "Bonferroni q");
            }
        }
    }
}

#[test]
fn benjamini_hochberg_keeps_q_below_1e_300() {
    let data = fixture();
    let case = &data["bh_extreme"];
    let ln_p = f64_list(&case["ln_p"]);
    let total = case["total_tests"].as_u64().expect("total_tests") as usize;
    let got = benjamini_hochberg_ln_q(&ln_p, total).unwrap();
    for (got, want) in got.iter().zip(f64_list(&case["ln_q_bh"])) {
        assert!(want < -690.0);
        assert_relative(*got, want, "BH ln q");
    }
}

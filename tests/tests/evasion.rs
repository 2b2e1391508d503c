//! Evasion classes, measured: abusive lines rewritten by each evasion must be flagged by the
//! screening gate (offline detector + rule filter) as often as the plain lines, and benign chat
//! with emoji and text in other scripts must gain no flags. The lines were written for this
//! test, apart from the lexicons and the sample uploads; the transforms are applied in code.

use moderation_core::model::Item;
use moderation_core::stages::screen_text::{screen_messages, ScreenDeps};
use moderation_core::text::parse::ParsedMessage;
use moderation_core::text::rules::RuleFilter;
use moderation_offline::{FolderStore, OfflineDetector};

const ABUSIVE: &[&str] = &[
    "kill yourself",
    "you are a worthless idiot",
    "i will kill you",
    "shut up you stupid moron",
    "go hang yourself loser",
    "you fucking retard",
    "nobody wants you here, uninstall",
    "i know where you live",
    "send nudes",
    "free robux click here",
    "you dumb bitch",
    "i will find you and hurt you",
];

const BENIGN: &[&str] = &[
    "gg wp 🔥🔥🔥",
    "❤️ thanks for the carry",
    "👨‍👩‍👧 family stream tonight 🎮",
    "nice shot 🎯 you killed it",
    "brb 🍕",
    "🇧🇷 🇺🇸 🇯🇵 friendly match?",
    "مرحبا كيف حالك؟ لعبة رائعة",
    "שלום לכולם, משחק טוב",
    "\u{202B}שלום\u{202C} gg",
    "привет, как дела? хорошая игра",
    "こんにちは、元気？いい試合でした",
    "café, élève, año, straße — bien joué",
    "u r a legend",
    "e.g. the boss at 10:30",
    "re-enter the lobby via discord.gg/abc123",
    "😂😂 that was close",
    "ok 👍",
    "Ζεύς is my main",
    "nice shot 🔫 you carried",
    "💀💀 you're hilarious",
    "level up at noon, now we won",
    "⣿⣿⡿⠿⠛⠋⠉⣿⣿ ascii art",
];

fn map_letters(line: &str, f: impl Fn(char) -> String) -> String {
    line.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                f(c.to_ascii_lowercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn offset(c: char, base: u32) -> String {
    char::from_u32(base + (c as u32 - 'a' as u32)).map_or_else(String::new, String::from)
}

/// Put `sep` between the letters of every word.
fn between_letters(line: &str, sep: &str) -> String {
    line.split(' ')
        .map(|w| w.chars().map(String::from).collect::<Vec<_>>().join(sep))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An evasion class and how it rewrites a line.
type Evasion = (&'static str, fn(&str) -> String);

fn evasions() -> Vec<Evasion> {
    vec![
        ("emoji between letters", |l| between_letters(l, "🔥")),
        ("symbol between letters", |l| between_letters(l, "★")),
        ("dots between letters", |l| between_letters(l, ".")),
        ("repeated punctuation inside words", |l| {
            l.split(' ')
                .map(|w| match w.char_indices().nth(w.chars().count() / 2) {
                    Some((i, _)) if w.len() >= 4 => format!("{}..{}", &w[..i], &w[i..]),
                    _ => w.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        }),
        ("right-to-left override", |l| {
            format!("\u{202E}{}\u{202C}", l.chars().rev().collect::<String>())
        }),
        ("zero-width spaces", |l| between_letters(l, "\u{200B}")),
        ("variation selectors", |l| between_letters(l, "\u{FE0F}")),
        ("mathematical bold", |l| {
            map_letters(l, |c| offset(c, 0x1D41A))
        }),
        ("circled letters", |l| map_letters(l, |c| offset(c, 0x24D0))),
        ("full-width letters", |l| {
            map_letters(l, |c| offset(c, 0xFF41))
        }),
        ("regional indicators", |l| {
            map_letters(l, |c| offset(c, 0x1F1E6))
        }),
        ("Cyrillic look-alikes", |l| {
            map_letters(l, |c| {
                match c {
                    'a' => 'а',
                    'e' => 'е',
                    'o' => 'о',
                    'p' => 'р',
                    'c' => 'с',
                    'x' => 'х',
                    'y' => 'у',
                    'i' => 'і',
                    c => c,
                }
                .to_string()
            })
        }),
        ("stacked marks (Zalgo)", |l| {
            map_letters(l, |c| format!("{c}\u{0336}\u{0315}"))
        }),
        ("written backwards", |l| l.chars().rev().collect()),
        ("Braille letters", |l| {
            // Grade-1 Braille cells for a-z; the blank cell for a space.
            const CELLS: [u32; 26] = [
                0x01, 0x03, 0x09, 0x19, 0x11, 0x0B, 0x1B, 0x13, 0x0A, 0x1A, 0x05, 0x07, 0x0D, 0x1D,
                0x15, 0x0F, 0x1F, 0x17, 0x0E, 0x1E, 0x25, 0x27, 0x3A, 0x2D, 0x3D, 0x35,
            ];
            map_letters(&l.replace(' ', "\u{2800}"), |c| {
                offset('a', 0x2800 + CELLS[(c as u32 - 'a' as u32) as usize])
            })
        }),
        ("letters spelled with spaces", |l| {
            l.split(' ')
                .map(|w| w.chars().map(String::from).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("  ")
        }),
    ]
}

async fn screen(lines: &[String]) -> Vec<Item> {
    let messages = lines
        .iter()
        .enumerate()
        .map(|(i, t)| ParsedMessage {
            id: format!("line-{}", i + 1),
            text: t.clone(),
            ..Default::default()
        })
        .collect();
    screen_parsed(messages).await
}

async fn screen_parsed(messages: Vec<ParsedMessage>) -> Vec<Item> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FolderStore::new(dir.path());
    let detector = OfflineDetector::embedded().expect("detector");
    let rules = RuleFilter::default_list().expect("rules");
    let deps = ScreenDeps {
        store: &store,
        detector: &detector,
        rules: &rules,
        languages: &moderation_core::text::language::OfflineIdentifier,
        translator: None,
        known_language: None,
        progress: None,
        time_limit: None,
    };
    screen_messages(messages, &deps, 0.5, 1).await.0
}

/// Passed the gate: over the threshold or a rule hit (`verdict` is left for evaluation).
fn flagged(items: &[Item]) -> usize {
    items.iter().filter(|i| i.verdict.is_none()).count()
}

#[tokio::test]
async fn every_evasion_class_is_flagged_as_often_as_plain_text() {
    let plain: Vec<String> = ABUSIVE.iter().map(|s| s.to_string()).collect();
    let baseline = flagged(&screen(&plain).await);
    assert_eq!(baseline, ABUSIVE.len(), "the plain lines are the baseline");
    let mut misses = Vec::new();
    for (class, transform) in evasions() {
        let lines: Vec<String> = ABUSIVE.iter().map(|l| transform(l)).collect();
        let items = screen(&lines).await;
        for (item, line) in items.iter().zip(ABUSIVE) {
            if item.verdict.is_some() {
                misses.push(format!("{class}: {line:?} written {:?}", item.text));
            }
        }
        eprintln!("{class}: {}/{} flagged", flagged(&items), ABUSIVE.len());
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

#[tokio::test]
async fn benign_emoji_and_other_scripts_gain_no_flags() {
    let lines: Vec<String> = BENIGN.iter().map(|s| s.to_string()).collect();
    let items = screen(&lines).await;
    let flags: Vec<_> = items
        .iter()
        .filter(|i| i.verdict.is_none() || i.revealed.is_some())
        .map(|i| (&i.text, &i.revealed, i.toxicity))
        .collect();
    assert!(flags.is_empty(), "{flags:#?}");
}

#[tokio::test]
async fn a_threat_split_over_one_players_lines_is_read_whole_and_a_weapon_emoji_is_a_threat() {
    let said = |id: usize, user: &str, text: &str| ParsedMessage {
        id: format!("line-{id}"),
        text: text.into(),
        user: Some(user.into()),
        ..Default::default()
    };
    let items = screen_parsed(vec![
        said(1, "ana", "gl hf"),
        said(2, "bob", "i am going to"),
        said(3, "bob", "kill"),
        said(4, "bob", "you"),
        said(5, "ana", "🔫💀 you're next"),
        said(6, "cy", "nice shot 🔫 you carried"),
    ])
    .await;
    let joined = items[3].revealed.as_ref().expect("the run is read whole");
    assert_eq!(joined.text, "i am going to kill you");
    assert_eq!(joined.lines, ["line-2", "line-3", "line-4"]);
    assert!(items[3].verdict.is_none(), "{:?}", items[3]);
    assert!(items[4].verdict.is_none(), "{:?}", items[4]);
    assert!(items[4]
        .rule_hits
        .iter()
        .any(|h| h.rule == moderation_core::text::threat_emoji::RULE));
    assert!(items[5].rule_hits.is_empty() && items[5].verdict.is_some());
    assert!(items[..3].iter().all(|i| i.revealed.is_none()));
}

/// The reveal classes added for round three (text written backwards, Braille, a weapon emoji
/// aimed at the reader) on every benign line of the held-out detector sets, which were not
/// read while writing them: none may change how a benign line reads.
#[test]
fn benign_held_out_lines_gain_no_reversed_braille_or_weapon_reading() {
    let rules = RuleFilter::default_list().expect("rules");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut benign = 0;
    let mut changed = Vec::new();
    for file in [
        "detector-eval.tsv",
        "detector-eval-2.tsv",
        "detector-eval-3.tsv",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).expect("eval set");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut cols = line.split('\t');
            let (Some("none"), Some(msg)) = (cols.next(), cols.next()) else {
                continue;
            };
            benign += 1;
            let revealed = moderation_core::text::evasion::reveal(msg);
            let new_class = revealed.as_ref().is_some_and(|r| {
                r.evasions.iter().any(|e| {
                    e == moderation_core::text::evasion::REVERSED
                        || e == moderation_core::text::evasion::BRAILLE
                })
            });
            let weapon = rules
                .scan(msg)
                .iter()
                .any(|h| h.rule == moderation_core::text::threat_emoji::RULE);
            if new_class || weapon {
                changed.push(msg.to_string());
            }
        }
    }
    assert!(benign > 300, "{benign} benign lines");
    assert!(changed.is_empty(), "{changed:#?}");
}

//! A threat typed over several short messages ("i am going to" / "kill" / "you"): each line
//! alone reads as nothing. A run of consecutive short messages by one user in one
//! conversation is joined and read as one; the reading is attached to the run's last line,
//! as a revealed reading that names the lines joined, and scored and rule-scanned with it.

use crate::text::words::{is_abusive_term, SECOND_PERSON};

/// The evasion class a joined reading carries.
pub const SPLIT: &str = "split_across_messages";
/// A message of at most this many words, and characters, is short enough to be a fragment.
const MAX_WORDS: usize = 4;
const MAX_CHARS: usize = 40;
/// At most this many messages are joined.
const MAX_RUN: usize = 6;
/// Words that make a joined run worth a second reading (with the second-person words and the
/// forbidden terms): without one, joining "gg" / "wp" / "ez" would only cost a detector call.
const CUES: &[&str] = &[
    "kill", "die", "dead", "hurt", "shoot", "stab", "rape", "hang", "murder", "rope", "slit",
    "burn", "bomb", "beat", "find", "choke", "drown", "suicide", "kys", "neck", "unalive", "end",
];

/// One message as the join sees it: its reading (revealed when there is one) and who wrote
/// it where.
pub struct Line<'a> {
    pub id: &'a str,
    pub text: &'a str,
    pub user: Option<&'a str>,
    pub conversation: Option<&'a str>,
}

/// A run's joined reading and the ids of the lines in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub text: String,
    pub lines: Vec<String>,
}

fn is_short(text: &str) -> bool {
    text.chars().count() <= MAX_CHARS && text.split_whitespace().count() <= MAX_WORDS
}

fn worth_reading(text: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(str::to_lowercase)
        .any(|w| {
            SECOND_PERSON.contains(&w.as_str()) || CUES.contains(&w.as_str()) || is_abusive_term(&w)
        })
}

/// For each line, the joined reading of the run it ends, if it ends one worth reading.
pub fn joined_runs(lines: &[Line<'_>]) -> Vec<Option<Joined>> {
    let mut out = vec![None; lines.len()];
    let mut start = 0;
    while start < lines.len() {
        let first = &lines[start];
        let mut end = start;
        // Lines with no author (a plain text log) may be anyone's: they are never joined.
        while first.user.is_some()
            && end < lines.len()
            && end - start < MAX_RUN
            && is_short(lines[end].text)
            && lines[end].user == first.user
            && lines[end].conversation == first.conversation
        {
            end += 1;
        }
        if end - start >= 2 {
            let run = &lines[start..end];
            let text = run
                .iter()
                .map(|l| l.text.trim())
                .collect::<Vec<_>>()
                .join(" ");
            if worth_reading(&text) {
                out[end - 1] = Some(Joined {
                    text,
                    lines: run.iter().map(|l| l.id.to_string()).collect(),
                });
            }
        }
        start = end.max(start + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines<'a>(rows: &'a [(&'a str, &'a str)]) -> Vec<Line<'a>> {
        rows.iter()
            .enumerate()
            .map(|(i, (user, text))| Line {
                id: [
                    "line-1", "line-2", "line-3", "line-4", "line-5", "line-6", "line-7",
                ][i],
                text,
                user: Some(user),
                conversation: None,
            })
            .collect()
    }

    #[test]
    fn a_threat_split_over_one_users_lines_is_joined_on_the_last() {
        let rows = [
            ("ana", "gl hf"),
            ("bob", "i am going to"),
            ("bob", "kill"),
            ("bob", "you"),
            ("ana", "what"),
        ];
        let got = joined_runs(&lines(&rows));
        assert_eq!(
            got[3],
            Some(Joined {
                text: "i am going to kill you".into(),
                lines: vec!["line-2".into(), "line-3".into(), "line-4".into()],
            })
        );
        assert!(got.iter().enumerate().all(|(i, j)| i == 3 || j.is_none()));
    }

    #[test]
    fn other_users_long_lines_and_harmless_runs_are_not_joined() {
        let interleaved = [("bob", "i will"), ("ana", "lol"), ("bob", "kill you")];
        assert!(joined_runs(&lines(&interleaved))
            .iter()
            .all(Option::is_none));
        let long = [
            ("bob", "i am going to the shop later today"),
            ("bob", "kill"),
        ];
        assert!(joined_runs(&lines(&long)).iter().all(Option::is_none));
        let banter = [("bob", "gg"), ("bob", "wp"), ("bob", "ez")];
        assert!(joined_runs(&lines(&banter)).iter().all(Option::is_none));
        let anyone: Vec<Line> = ["i will", "kill", "you"]
            .iter()
            .map(|text| Line {
                id: "line-1",
                text,
                user: None,
                conversation: None,
            })
            .collect();
        assert!(joined_runs(&anyone).iter().all(Option::is_none));
    }

    #[test]
    fn runs_stop_at_six_lines() {
        let rows = [
            ("b", "a"),
            ("b", "b"),
            ("b", "c"),
            ("b", "d"),
            ("b", "e"),
            ("b", "you"),
            ("b", "die"),
        ];
        let got = joined_runs(&lines(&rows));
        assert_eq!(got[5].as_ref().map(|j| j.lines.len()), Some(6));
        assert_eq!(got[6], None);
    }
}

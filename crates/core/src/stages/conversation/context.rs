//! The user context a game exports (`USER_CONTEXT_URI`): age band, account age and earlier
//! strikes per user, as CSV (`user,age_band,account_age_days,prior_strikes`) or JSONL.
//! Never logged: it describes children.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::UserContext;

/// Users' context by user id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserContexts {
    by_user: HashMap<String, UserContext>,
}

const USER_KEYS: &[&str] = &["user", "user_id", "username"];

impl UserContexts {
    pub fn get(&self, user: &str) -> Option<&UserContext> {
        self.by_user.get(user)
    }

    pub fn len(&self) -> usize {
        self.by_user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    /// Parse a file by its name: `.jsonl`/`.json` as JSON lines, anything else as CSV. Errors
    /// name the file's line and never quote a value.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Self> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| bad(name, 0, &format!("not UTF-8 ({e})")))?;
        if name.ends_with(".jsonl") || name.ends_with(".json") {
            parse_jsonl(name, text)
        } else {
            parse_csv(name, text)
        }
    }
}

fn bad(name: &str, line: usize, why: &str) -> Error {
    if line == 0 {
        Error::Config(format!("user context {name}: {why}"))
    } else {
        Error::Config(format!("user context {name} line {line}: {why}"))
    }
}

fn number(name: &str, line: usize, field: &str, value: &str) -> Result<Option<u32>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| bad(name, line, &format!("{field} is not a whole number")))
}

fn parse_csv(name: &str, text: &str) -> Result<UserContexts> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| bad(name, 1, &format!("unreadable header ({e})")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let user_col = col(USER_KEYS)
        .ok_or_else(|| bad(name, 1, "the header has no user column (user, user_id)"))?;
    let (band, days, strikes) = (
        col(&["age_band"]),
        col(&["account_age_days"]),
        col(&["prior_strikes"]),
    );
    let mut out = UserContexts::default();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| bad(name, line, &format!("unreadable row ({e})")))?;
        let field = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
        let user = field(Some(user_col)).trim();
        if user.is_empty() {
            return Err(bad(name, line, "no user"));
        }
        let ctx = UserContext {
            age_band: Some(field(band).trim().to_string()).filter(|b| !b.is_empty()),
            account_age_days: number(name, line, "account_age_days", field(days))?,
            prior_strikes: number(name, line, "prior_strikes", field(strikes))?,
        };
        out.by_user.insert(user.to_string(), ctx);
    }
    Ok(out)
}

fn parse_jsonl(name: &str, text: &str) -> Result<UserContexts> {
    let mut out = UserContexts::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| bad(name, line, &format!("not JSON ({e})")))?;
        let user = USER_KEYS
            .iter()
            .find_map(|k| value.get(*k))
            .and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.trim().to_string()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|u| !u.is_empty())
            .ok_or_else(|| bad(name, line, "no user"))?;
        // Field by field: serde's messages would quote the value.
        let whole = |field: &str| match value.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| bad(name, line, &format!("{field} is not a whole number"))),
        };
        let age_band = match value.get("age_band") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => {
                Some(s.trim().to_string()).filter(|s| !s.is_empty())
            }
            Some(_) => return Err(bad(name, line, "age_band is not text")),
        };
        let ctx = UserContext {
            age_band,
            account_age_days: whole("account_age_days")?,
            prior_strikes: whole("prior_strikes")?,
        };
        out.by_user.insert(user, ctx);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_jsonl_give_the_same_context() {
        let csv = UserContexts::parse(
            "users.csv",
            b"user,age_band,account_age_days,prior_strikes\nu-1,13-15,400,0\nu-2,18+,3,2\nu-3,,,\n",
        )
        .expect("csv");
        let jsonl = UserContexts::parse(
            "users.jsonl",
            b"{\"user\":\"u-1\",\"age_band\":\"13-15\",\"account_age_days\":400,\"prior_strikes\":0}\n\n{\"user_id\":\"u-2\",\"age_band\":\"18+\",\"account_age_days\":3,\"prior_strikes\":2}\n{\"user\":\"u-3\"}\n",
        )
        .expect("jsonl");
        assert_eq!(csv, jsonl);
        assert_eq!(csv.len(), 3);
        assert_eq!(csv.get("u-2").and_then(|c| c.prior_strikes), Some(2));
    }

    #[test]
    fn bad_files_name_the_line_and_not_the_value() {
        for (name, body, want) in [
            (
                "u.csv",
                "age_band\n13-15\n",
                "line 1: the header has no user column",
            ),
            (
                "u.csv",
                "user,account_age_days\nu-1,lots\n",
                "line 2: account_age_days",
            ),
            ("u.csv", "user,age_band\n,13-15\n", "line 2: no user"),
            ("u.jsonl", "{\"user\":\"u-1\"}\nnope\n", "line 2: not JSON"),
            ("u.jsonl", "{\"age_band\":\"13-15\"}\n", "line 1: no user"),
            (
                "u.jsonl",
                "{\"user\":\"u\",\"prior_strikes\":\"secret-9\"}\n",
                "line 1",
            ),
        ] {
            let m = UserContexts::parse(name, body.as_bytes())
                .expect_err(body)
                .to_string();
            assert!(m.contains(want), "{m}");
            assert!(!m.contains("lots") && !m.contains("secret-9"), "{m}");
        }
    }
}

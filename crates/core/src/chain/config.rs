//! Environment configuration helpers: every error names the variable and what was wrong with
//! it, and the lookup is injectable so configuration is tested without touching the process env.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::model::SourceKind;

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// A source of variables: the process environment, or a map in tests. It remembers every
/// name it was asked for, so a test can prove the deployment template sets them all.
pub struct Vars<'a> {
    lookup: Lookup<'a>,
    read: RefCell<BTreeSet<String>>,
}

impl<'a> Vars<'a> {
    pub fn from_env() -> Vars<'static> {
        Vars {
            lookup: Box::new(|k| std::env::var(k).ok()),
            read: RefCell::default(),
        }
    }

    pub fn from_pairs(pairs: &'a [(&'a str, &'a str)]) -> Vars<'a> {
        Vars {
            lookup: Box::new(move |k| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            }),
            read: RefCell::default(),
        }
    }

    /// These values in place of the source's: a command-line flag over the environment.
    pub fn overriding(self, values: Vec<(String, String)>) -> Vars<'a> {
        let inner = self.lookup;
        Vars {
            lookup: Box::new(move |k| find(&values, k).or_else(|| inner(k))),
            read: self.read,
        }
    }

    /// These values where the source has none (or a blank one): a command-line tool's own
    /// defaults, which may differ from a deployed function's.
    pub fn defaulting(self, values: Vec<(String, String)>) -> Vars<'a> {
        let inner = self.lookup;
        Vars {
            lookup: Box::new(move |k| {
                inner(k)
                    .filter(|v| !v.trim().is_empty())
                    .or_else(|| find(&values, k))
            }),
            read: self.read,
        }
    }

    /// The value, with empty strings treated as unset.
    pub fn get(&self, var: &str) -> Option<String> {
        self.read.borrow_mut().insert(var.to_string());
        (self.lookup)(var).filter(|v| !v.trim().is_empty())
    }

    /// Every variable name looked up so far.
    pub fn names_read(&self) -> Vec<String> {
        self.read.borrow().iter().cloned().collect()
    }

    pub fn required(&self, var: &str) -> Result<String> {
        self.get(var).ok_or_else(|| Error::MissingVar {
            var: var.to_string(),
        })
    }

    pub fn or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or_else(|| default.to_string())
    }

    pub fn parsed<T: FromStr>(&self, var: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| Error::InvalidVar {
                var: var.to_string(),
                value: v.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// A positive count such as a concurrency limit.
    pub fn count(&self, var: &str, default: usize) -> Result<usize> {
        let n: usize = self.parsed(var, default)?;
        if n == 0 {
            return Err(Error::InvalidVar {
                var: var.to_string(),
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(n)
    }

    /// A request rate for client-side pacing (`COMPREHEND_TPS` …): unset or empty is no
    /// pacing; otherwise a finite number of requests a second above 0.
    pub fn rate(&self, var: &str) -> Result<Option<f64>> {
        let Some(raw) = self.get(var).filter(|r| !r.trim().is_empty()) else {
            return Ok(None);
        };
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.001 => Ok(Some(v)),
            _ => Err(Error::InvalidVar {
                var: var.to_string(),
                value: raw,
                reason: "expected requests per second, at least 0.001 (e.g. 20 or 0.5)".into(),
            }),
        }
    }

    /// One instance's rate for a service: the account's quota `<SERVICE>_TPS` divided by
    /// `QUOTA_SHARES` (the most instances of this function at once; the template passes its
    /// queue's maximum concurrency; 1 when unset, as for `modctl`).
    pub fn instance_rate(&self, service: &str) -> Result<Option<f64>> {
        let Some(quota) = self.rate(&format!("{service}_TPS"))? else {
            return Ok(None);
        };
        let shares = self.count("QUOTA_SHARES", 1)?;
        Ok(Some(quota / shares as f64))
    }

    /// [`Self::sdk_settings`] with the pacing rates of the services a function calls
    /// (`COMPREHEND`, `REKOGNITION`, `CONVERSE`, `RETRIEVE`).
    pub fn sdk_settings_paced(&self, services: &[&str]) -> Result<SdkSettings> {
        let mut s = self.sdk_settings()?;
        for &service in services {
            let rate = self.instance_rate(service)?;
            match service {
                "COMPREHEND" => s.rates.comprehend = rate,
                "REKOGNITION" => s.rates.rekognition = rate,
                "CONVERSE" => s.rates.converse = rate,
                "RETRIEVE" => s.rates.retrieve = rate,
                other => return Err(Error::Config(format!("no pacing for service {other:?}"))),
            }
        }
        Ok(s)
    }

    /// A score in [0, 1].
    pub fn score(&self, var: &str) -> Result<Option<f64>> {
        let Some(raw) = self.get(var) else {
            return Ok(None);
        };
        let v: f64 = self.parsed(var, 0.0)?;
        if !(0.0..=1.0).contains(&v) {
            return Err(Error::InvalidVar {
                var: var.to_string(),
                value: raw,
                reason: "must be between 0 and 1".into(),
            });
        }
        Ok(Some(v))
    }

    /// `TOXICITY_THRESHOLD` (default 0.5) with `TOXICITY_THRESHOLD_TEXT` / `_AUDIO` overrides.
    pub fn thresholds(&self) -> Result<Thresholds> {
        Ok(Thresholds {
            default: self.score("TOXICITY_THRESHOLD")?.unwrap_or(0.5),
            text: self.score("TOXICITY_THRESHOLD_TEXT")?,
            audio: self.score("TOXICITY_THRESHOLD_AUDIO")?,
        })
    }

    /// `AUDIO_LANGUAGES` (default `en-US`, with toxicity detection): one Transcribe language
    /// code, or several for Transcribe to identify among.
    pub fn speech_languages(&self) -> Result<crate::ports::SpeechLanguages> {
        let list = self.or("AUDIO_LANGUAGES", "en-US");
        crate::ports::SpeechLanguages::parse(&list)
            .map_err(|e| crate::Error::Config(format!("AUDIO_LANGUAGES={list:?}: {e}")))
    }

    /// `AWS_MAX_ATTEMPTS` (default 5) and `AWS_ATTEMPT_TIMEOUT_SECS` (default 60).
    pub fn sdk_settings(&self) -> Result<SdkSettings> {
        Ok(SdkSettings {
            max_attempts: self.count_u32("AWS_MAX_ATTEMPTS", 5)?,
            attempt_timeout: std::time::Duration::from_secs(
                self.count("AWS_ATTEMPT_TIMEOUT_SECS", 60)? as u64,
            ),
            rates: Rates::default(),
        })
    }

    /// `MAX_RECEIVE_COUNT` (default 3; the template sets it from `MaxReceiveCount`, default 5):
    /// must equal the queue's `maxReceiveCount`, so the last delivery of a failing message
    /// writes its dead letter.
    pub fn failure_policy(&self) -> Result<crate::chain::delivery::FailurePolicy> {
        Ok(crate::chain::delivery::FailurePolicy {
            max_receive_count: self.count_u32("MAX_RECEIVE_COUNT", 3)?,
        })
    }

    fn count_u32(&self, var: &str, default: u32) -> Result<u32> {
        let n = self.count(var, default as usize)?;
        u32::try_from(n).map_err(|e| Error::InvalidVar {
            var: var.to_string(),
            value: n.to_string(),
            reason: e.to_string(),
        })
    }

    pub fn backend(&self) -> Result<Backend> {
        self.backend_or(Backend::Aws)
    }

    pub fn backend_or(&self, default: Backend) -> Result<Backend> {
        match self.get("MODERATION_BACKEND").as_deref().map(str::trim) {
            None => Ok(default),
            Some("aws") => Ok(Backend::Aws),
            Some("offline") => Ok(Backend::Offline {
                root: self.required("MODERATION_OFFLINE_ROOT")?,
            }),
            Some(other) => Err(Error::InvalidVar {
                var: "MODERATION_BACKEND".into(),
                value: other.to_string(),
                reason: "expected `aws` or `offline`".into(),
            }),
        }
    }
}

fn find(values: &[(String, String)], var: &str) -> Option<String> {
    values
        .iter()
        .find(|(name, _)| name == var)
        .map(|(_, v)| v.clone())
}

/// How the AWS SDK clients retry and time out (adaptive retry, per-attempt timeout), and the
/// rates they are paced to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SdkSettings {
    pub max_attempts: u32,
    pub attempt_timeout: std::time::Duration,
    pub rates: Rates,
}

/// Client-side pacing, requests a second per function instance: the account's quota
/// (`COMPREHEND_TPS`, `REKOGNITION_TPS`, `CONVERSE_TPS`, `RETRIEVE_TPS`) divided by
/// `QUOTA_SHARES`; `None` is unpaced.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    /// `DetectToxicContent`.
    pub comprehend: Option<f64>,
    /// `DetectModerationLabels` and `DetectText` together.
    pub rekognition: Option<f64>,
    /// Bedrock `Converse`.
    pub converse: Option<f64>,
    /// Bedrock knowledge base `Retrieve`.
    pub retrieve: Option<f64>,
}

impl Rates {
    pub fn any(&self) -> bool {
        [
            self.comprehend,
            self.rekognition,
            self.converse,
            self.retrieve,
        ]
        .iter()
        .any(Option::is_some)
    }

    /// A pacer for one service, shared by the calls of one function instance.
    pub fn pacer(
        rate: Option<f64>,
        service: &'static str,
    ) -> Option<std::sync::Arc<crate::chain::pace::Pacer>> {
        rate.map(|r| std::sync::Arc::new(crate::chain::pace::Pacer::new(service, r)))
    }
}

/// Which adapters a function uses (docs/configuration.md; a contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Aws,
    /// A folder stands in for the bucket: `s3://b/k` is `<root>/b/k`.
    Offline {
        root: String,
    },
}

/// The error for `MODERATION_BACKEND=aws` in a build without the AWS adapters (modctl built
/// for the offline demo): named, so it is never mistaken for a service failure.
pub fn aws_not_built() -> Error {
    Error::Config(
        "MODERATION_BACKEND=aws: this build has no AWS adapters (build with feature `aws`)".into(),
    )
}

/// Toxicity thresholds, overridable per source kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub default: f64,
    pub text: Option<f64>,
    pub audio: Option<f64>,
}

impl Thresholds {
    pub fn uniform(t: f64) -> Self {
        Thresholds {
            default: t,
            text: None,
            audio: None,
        }
    }

    pub fn for_kind(&self, kind: SourceKind) -> f64 {
        match kind {
            SourceKind::Text => self.text.unwrap_or(self.default),
            SourceKind::Audio => self.audio.unwrap_or(self.default),
            SourceKind::Image => self.default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_defaults_fill_only_what_is_unset() {
        let v = Vars::from_pairs(&[("A", "env"), ("B", " "), ("C", "env")])
            .overriding(vec![("A".into(), "flag".into())])
            .defaulting(vec![
                ("B".into(), "tool".into()),
                ("C".into(), "tool".into()),
            ]);
        assert_eq!(v.get("A").as_deref(), Some("flag"));
        assert_eq!(v.get("B").as_deref(), Some("tool"));
        assert_eq!(v.get("C").as_deref(), Some("env"));
        assert_eq!(v.get("D"), None);
        assert_eq!(v.names_read(), ["A", "B", "C", "D"]);
    }

    #[test]
    fn rates_are_positive_numbers_or_unset() {
        let v = Vars::from_pairs(&[
            ("COMPREHEND_TPS", "12.5"),
            ("CONVERSE_TPS", ""),
            ("REKOGNITION_TPS", "0"),
            ("RETRIEVE_TPS", "fast"),
        ]);
        assert_eq!(v.rate("COMPREHEND_TPS").expect("ok"), Some(12.5));
        assert_eq!(v.rate("CONVERSE_TPS").expect("ok"), None);
        assert_eq!(v.rate("UNSET_TPS").expect("ok"), None);
        for var in ["REKOGNITION_TPS", "RETRIEVE_TPS"] {
            let e = v.rate(var).expect_err("invalid");
            assert!(e.to_string().contains(var), "{e}");
        }
    }

    #[test]
    fn a_quota_is_shared_by_the_instances_and_an_instance_rate_wins() {
        let v = Vars::from_pairs(&[
            ("COMPREHEND_TPS", "100"),
            ("QUOTA_SHARES", "8"),
            ("CONVERSE_TPS", "10"),
            ("RETRIEVE_TPS", ""),
            ("REKOGNITION_TPS", "50"),
        ]);
        let all = ["COMPREHEND", "REKOGNITION", "CONVERSE", "RETRIEVE"];
        let r = v.sdk_settings_paced(&all).expect("ok").rates;
        assert_eq!(r.comprehend, Some(12.5));
        assert_eq!(r.converse, Some(1.25));
        assert_eq!(r.retrieve, None);
        assert!(r.any());
        // A function paces only the services it calls.
        let r = v.sdk_settings_paced(&["CONVERSE"]).expect("ok").rates;
        assert_eq!((r.comprehend, r.rekognition), (None, None));
        assert!(!v.sdk_settings().expect("ok").rates.any());
        assert!(v.sdk_settings_paced(&["TRANSLATE"]).is_err());
    }

    #[test]
    fn errors_name_the_variable() {
        let pairs = [("TOXICITY_THRESHOLD", "high"), ("LLM_CONCURRENCY", "0")];
        let v = Vars::from_pairs(&pairs);
        let e = v.thresholds().expect_err("bad threshold");
        assert!(e.to_string().contains("TOXICITY_THRESHOLD=\"high\""), "{e}");
        let e = v.count("LLM_CONCURRENCY", 4).expect_err("zero");
        assert!(e.to_string().contains("LLM_CONCURRENCY"), "{e}");
        let e = v.required("KNOWLEDGE_BASE_ID").expect_err("missing");
        assert_eq!(
            e.to_string(),
            "environment variable KNOWLEDGE_BASE_ID is not set"
        );
    }

    #[test]
    fn thresholds_default_and_override_per_kind() {
        let pairs = [("TOXICITY_THRESHOLD_AUDIO", "0.7")];
        let t = Vars::from_pairs(&pairs).thresholds().expect("valid");
        assert_eq!(t.for_kind(crate::model::SourceKind::Text), 0.5);
        assert_eq!(t.for_kind(crate::model::SourceKind::Audio), 0.7);
        let pairs = [("TOXICITY_THRESHOLD", "1.5")];
        assert!(Vars::from_pairs(&pairs).thresholds().is_err());
    }

    #[test]
    fn audio_languages_choose_toxicity_detection_a_fixed_language_or_identification() {
        use crate::ports::SpeechLanguages;
        let langs = |v: &str| Vars::from_pairs(&[("AUDIO_LANGUAGES", v)]).speech_languages();
        assert_eq!(
            Vars::from_pairs(&[]).speech_languages().expect("default"),
            SpeechLanguages::UsEnglish
        );
        assert_eq!(langs(" en-US ").expect("valid"), SpeechLanguages::UsEnglish);
        assert_eq!(
            langs("pt-BR").expect("valid"),
            SpeechLanguages::Fixed("pt-BR".into())
        );
        let many = langs("es-US, en-US,es-US,de-DE").expect("valid");
        assert_eq!(
            many,
            SpeechLanguages::Identify(vec!["es-US".into(), "en-US".into(), "de-DE".into()])
        );
        assert!(many.allows_us_english());
        assert_eq!(many.to_string(), "es-US,en-US,de-DE");
        for bad in [" , ", "english", "es_US", "EN-us", "es-US,fr"] {
            let e = langs(bad).expect_err(bad).to_string();
            assert!(e.contains("AUDIO_LANGUAGES"), "{bad}: {e}");
        }
    }

    #[test]
    fn backend_selection() {
        assert_eq!(Vars::from_pairs(&[]).backend().expect("ok"), Backend::Aws);
        let pairs = [("MODERATION_BACKEND", "offline")];
        let e = Vars::from_pairs(&pairs).backend().expect_err("needs root");
        assert!(e.to_string().contains("MODERATION_OFFLINE_ROOT"));
        let pairs = [
            ("MODERATION_BACKEND", "offline"),
            ("MODERATION_OFFLINE_ROOT", "/tmp/x"),
        ];
        assert_eq!(
            Vars::from_pairs(&pairs).backend().expect("ok"),
            Backend::Offline {
                root: "/tmp/x".into()
            }
        );
        let pairs = [("MODERATION_BACKEND", "gcp")];
        assert!(Vars::from_pairs(&pairs).backend().is_err());
    }
}

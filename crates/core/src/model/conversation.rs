//! Conversation-level risk: what a thread shows that no single line does (grooming arcs), the
//! signals found in its messages, the age context of its users and the verdict on the whole.

use serde::{Deserialize, Serialize};

use super::*;

/// A kind of behaviour that, together with others, makes a conversation risky for a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Asking how old someone is, what grade they are in.
    AgeProbe,
    /// Asking to keep the talk from parents or others, deleting messages.
    Secrecy,
    /// Cutting a player off from the people around them, checking they are alone.
    Isolation,
    /// Offering gifts, currency, skins or favours.
    Gift,
    /// Moving the talk to another app or a private channel.
    OffPlatform,
    /// Asking to meet in person.
    MeetingRequest,
    /// Asking for pictures, video or the camera.
    ImageRequest,
    /// Sexual talk or questions about the body.
    Sexual,
    /// Asking for an address, school, phone number or real name.
    PersonalInfo,
}

impl SignalKind {
    pub const ALL: [SignalKind; 9] = [
        SignalKind::AgeProbe,
        SignalKind::Secrecy,
        SignalKind::Isolation,
        SignalKind::Gift,
        SignalKind::OffPlatform,
        SignalKind::MeetingRequest,
        SignalKind::ImageRequest,
        SignalKind::Sexual,
        SignalKind::PersonalInfo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::AgeProbe => "age_probe",
            SignalKind::Secrecy => "secrecy",
            SignalKind::Isolation => "isolation",
            SignalKind::Gift => "gift",
            SignalKind::OffPlatform => "off_platform",
            SignalKind::MeetingRequest => "meeting_request",
            SignalKind::ImageRequest => "image_request",
            SignalKind::Sexual => "sexual",
            SignalKind::PersonalInfo => "personal_info",
        }
    }

    pub fn parse(s: &str) -> Option<SignalKind> {
        SignalKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Secrecy, isolation, sexualisation and requests for pictures mark grooming; asking an
    /// age, a gift, another app or a meeting are ordinary between friends and team-mates, and
    /// only add to a conversation that shows one of the others.
    pub fn is_strong(self) -> bool {
        matches!(
            self,
            SignalKind::Secrecy
                | SignalKind::Isolation
                | SignalKind::ImageRequest
                | SignalKind::Sexual
        )
    }
}

/// A signal found in one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSignal {
    pub name: String,
    /// The item it was found in.
    pub item: String,
}

/// What the game says about a user: never logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_band: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_age_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_strikes: Option<u32>,
}

/// Whether an age band (`13-15`, `16-17`, `18+`, `under-13`, `9-12`) is a child's, an
/// adult's, or cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeGroup {
    Minor,
    Adult,
    Unknown,
}

impl AgeGroup {
    pub fn of_band(band: Option<&str>) -> AgeGroup {
        let Some(band) = band.map(|b| b.trim().to_ascii_lowercase()) else {
            return AgeGroup::Unknown;
        };
        let numbers: Vec<u32> = band
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        let under = band.starts_with("under") || band.starts_with('<') || band.starts_with("u1");
        match (numbers.first(), numbers.get(1)) {
            (Some(n), _) if under => {
                if *n <= 18 {
                    AgeGroup::Minor
                } else {
                    AgeGroup::Unknown
                }
            }
            (Some(lo), _) if *lo >= 18 => AgeGroup::Adult,
            (Some(_), Some(hi)) if *hi < 18 => AgeGroup::Minor,
            (Some(lo), None) if band.ends_with('+') => {
                if *lo >= 18 {
                    AgeGroup::Adult
                } else {
                    AgeGroup::Unknown
                }
            }
            (Some(n), None) if *n < 18 => AgeGroup::Minor,
            _ => match band.as_str() {
                "adult" => AgeGroup::Adult,
                "minor" | "child" | "teen" => AgeGroup::Minor,
                _ => AgeGroup::Unknown,
            },
        }
    }
}

/// A conversation whose risk passed the conversation gate, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub users: Vec<String>,
    /// 0..1, from the signals of its messages weighted by the ages of its users.
    pub risk: f64,
    /// `None` until the policy check answers; then as for items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    pub signals: Vec<ConversationSignal>,
    /// The items that carry the signals, in conversation order.
    pub evidence: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// The user whose messages carry the signals (the one the risk is about), when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Each user's age band, where the upload or the user context gave one.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ages: std::collections::BTreeMap<String, String>,
    /// The messages the risk was computed over (the last window), bounded, for the report's
    /// conversation view and the policy check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thread: Vec<ThreadLine>,
}

impl Conversation {
    /// The kinds of signal found in it, each once, in name order: the prompt, the offline
    /// judge's analysis and the page all name them so.
    pub fn signal_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.signals.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// One message of a conversation's thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadLine {
    pub item: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub text: String,
}

/// Conversations looked at and how many passed the gate, for the report's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationCount {
    pub assessed: u64,
    pub over_threshold: u64,
    /// Of those over the gate, judged to violate the policy, and held for a person.
    #[serde(default)]
    pub violations: u64,
    #[serde(default)]
    pub needs_review: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_bands_read_as_groups() {
        for (band, group) in [
            ("13-15", AgeGroup::Minor),
            ("16-17", AgeGroup::Minor),
            ("under-13", AgeGroup::Minor),
            ("<13", AgeGroup::Minor),
            ("9-12", AgeGroup::Minor),
            ("18+", AgeGroup::Adult),
            ("18-24", AgeGroup::Adult),
            ("25+", AgeGroup::Adult),
            ("adult", AgeGroup::Adult),
            ("13+", AgeGroup::Unknown),
            ("unknown", AgeGroup::Unknown),
            ("", AgeGroup::Unknown),
        ] {
            assert_eq!(AgeGroup::of_band(Some(band)), group, "{band}");
        }
        assert_eq!(AgeGroup::of_band(None), AgeGroup::Unknown);
    }

    #[test]
    fn signal_names_round_trip_and_strength_is_the_grooming_markers() {
        for k in SignalKind::ALL {
            assert_eq!(SignalKind::parse(k.as_str()), Some(k));
        }
        let strong: Vec<_> = SignalKind::ALL.iter().filter(|k| k.is_strong()).collect();
        assert_eq!(strong.len(), 4);
        assert!(!SignalKind::AgeProbe.is_strong());
    }
}

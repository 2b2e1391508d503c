//! How risky one user's part of a conversation is: the kinds of signal in their messages,
//! weighted, and the ages of who is talking to whom.

use std::collections::BTreeMap;

use crate::model::{AgeGroup, SignalKind, UserContext};

/// Where the signals do not add up to an arc a conversation stays under the default gate
/// however heavy they are: asking an age, a discord link and a meet-up time are a tournament
/// organiser's whole job, and one "don't tell mom" is as often a brother's as a groomer's.
pub const WEAK_ONLY_CAP: f64 = 0.45;

/// The factor from which an adult's (or unknown person's) talk is to a known child.
const TOWARDS_A_CHILD: f64 = 0.85;

/// How much one kind of signal adds to a user's score.
pub fn weight(kind: SignalKind) -> f64 {
    match kind {
        SignalKind::Secrecy | SignalKind::Sexual => 1.0,
        SignalKind::Isolation | SignalKind::ImageRequest => 0.9,
        SignalKind::MeetingRequest => 0.5,
        SignalKind::PersonalInfo => 0.45,
        SignalKind::OffPlatform => 0.4,
        SignalKind::AgeProbe | SignalKind::Gift => 0.35,
    }
}

/// How much the ages of the writer and the others make the writer's signals count: an adult
/// (or someone of unknown age) with a child present counts most, two children least.
pub fn age_factor(writer: AgeGroup, others: &[AgeGroup]) -> f64 {
    use AgeGroup::*;
    let child_present = others.contains(&Minor);
    let unknown_present = others.is_empty() || others.contains(&Unknown);
    match (writer, child_present, unknown_present) {
        (Minor, _, _) => 0.3,
        (Adult, true, _) => 1.0,
        (Unknown, true, _) => 0.85,
        (Adult, false, true) => 0.7,
        (Unknown, false, true) => 0.6,
        (Adult, false, false) => 0.35,
        (Unknown, false, false) => 0.45,
    }
}

/// A little more for a writer the game already knows: an account days old, earlier strikes.
pub fn history_factor(ctx: Option<&UserContext>) -> f64 {
    let Some(ctx) = ctx else { return 1.0 };
    let mut f = 1.0;
    if ctx.account_age_days.is_some_and(|d| d < 30) {
        f *= 1.1;
    }
    if ctx.prior_strikes.is_some_and(|s| s > 0) {
        f *= 1.15;
    }
    f
}

/// 0..1 from how often each kind was seen (a repeat adds a quarter, twice at most) and the
/// factors: `1 - exp(-score)`, capped when only weak kinds were seen.
pub fn risk(kinds: &BTreeMap<SignalKind, u32>, factor: f64) -> f64 {
    let score: f64 = kinds
        .iter()
        .map(|(k, n)| weight(*k) * (1.0 + 0.25 * f64::from(n.saturating_sub(1).min(2))))
        .sum();
    let r = 1.0 - (-score * factor).exp();
    if is_arc(kinds, factor) {
        r
    } else {
        r.min(WEAK_ONLY_CAP)
    }
}

/// Signals that add up to an arc: a strong marker with another signal (or the same strong
/// marker again), or, towards a known child, three different ordinary ones.
pub fn is_arc(kinds: &BTreeMap<SignalKind, u32>, factor: f64) -> bool {
    let strong: u32 = kinds
        .iter()
        .filter(|(k, _)| k.is_strong())
        .map(|(_, n)| *n)
        .sum();
    (strong >= 1 && (kinds.len() >= 2 || strong >= 2))
        || (kinds.len() >= 3 && factor >= TOWARDS_A_CHILD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgeGroup::*;
    use SignalKind::*;

    fn kinds(list: &[SignalKind]) -> BTreeMap<SignalKind, u32> {
        let mut m = BTreeMap::new();
        for k in list {
            *m.entry(*k).or_insert(0) += 1;
        }
        m
    }

    #[test]
    fn an_adult_asking_a_child_for_secrecy_passes_the_default_gate_two_children_do_not() {
        let secret = kinds(&[Secrecy, AgeProbe]);
        assert!(risk(&secret, age_factor(Adult, &[Minor])) >= 0.5);
        assert!(risk(&secret, age_factor(Minor, &[Minor])) < 0.5);
        // Unknown ages: one marker is not enough, two are.
        assert!(risk(&kinds(&[Secrecy]), age_factor(Unknown, &[Unknown])) < 0.5);
        let two = kinds(&[Secrecy, ImageRequest]);
        assert!(risk(&two, age_factor(Unknown, &[Unknown])) >= 0.5);
    }

    #[test]
    fn ordinary_markers_stay_under_the_cap_unless_three_kinds_go_to_a_child() {
        let organiser = kinds(&[AgeProbe, OffPlatform]);
        assert_eq!(risk(&organiser, age_factor(Adult, &[Minor])), WEAK_ONLY_CAP);
        let three = kinds(&[Gift, OffPlatform, PersonalInfo]);
        assert!(risk(&three, age_factor(Adult, &[Minor])) > 0.5);
        assert_eq!(risk(&three, age_factor(Adult, &[Unknown])), WEAK_ONLY_CAP);
        // One "don't tell mom" from an adult to a child, and nothing else: a brother's too.
        assert_eq!(risk(&kinds(&[Secrecy]), 1.0), WEAK_ONLY_CAP);
        assert!(risk(&kinds(&[Secrecy, Secrecy]), 1.0) > 0.5);
    }

    #[test]
    fn the_same_signals_weigh_more_the_younger_the_others_and_repeats_add() {
        let s = kinds(&[Secrecy, Gift]);
        let adults = risk(&s, age_factor(Adult, &[Adult]));
        let unknown = risk(&s, age_factor(Adult, &[Unknown]));
        let child = risk(&s, age_factor(Adult, &[Minor]));
        assert!(
            adults < unknown && unknown < child,
            "{adults} {unknown} {child}"
        );
        let again = kinds(&[Secrecy, Secrecy, Gift]);
        assert!(risk(&again, 1.0) > risk(&s, 1.0));
        let many = kinds(&[Secrecy, Secrecy, Secrecy, Secrecy, Secrecy]);
        let thrice = kinds(&[Secrecy, Secrecy, Secrecy]);
        assert_eq!(risk(&many, 1.0), risk(&thrice, 1.0));
    }

    #[test]
    fn history_nudges_up() {
        let fresh = UserContext {
            account_age_days: Some(3),
            prior_strikes: Some(2),
            ..Default::default()
        };
        assert!(history_factor(Some(&fresh)) > 1.2);
        assert_eq!(history_factor(None), 1.0);
        assert_eq!(history_factor(Some(&UserContext::default())), 1.0);
    }
}

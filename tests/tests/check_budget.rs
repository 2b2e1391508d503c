//! The real-time text check's time budget under a slow policy check: what the judge has not
//! answered in time is `review` with the reason, never `allow`; a judge that answers in time
//! gives the chain's verdict; a failing one is `review` too.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moderation_core::ports::{JudgeRequest, Judgement, PolicyJudge};
use moderation_core::stages::check::text::{TextDecision, TextRequest};
use moderation_http::Checker;
use moderation_offline::policy::RulesJudge;
use moderation_tests::Apps;

/// The rules judge, after `delay`; or an error when `fail`.
struct SlowJudge {
    delay: Duration,
    fail: bool,
}

#[async_trait]
impl PolicyJudge for SlowJudge {
    fn model(&self) -> &str {
        moderation_offline::policy::RULES_MODEL
    }
    async fn judge(&self, req: &JudgeRequest<'_>) -> moderation_core::Result<Judgement> {
        tokio::time::sleep(self.delay).await;
        if self.fail {
            return Err(moderation_core::Error::service(
                "bedrock-runtime",
                moderation_core::error::ServiceErrorKind::Unavailable,
                "InternalServerException: injected",
            ));
        }
        RulesJudge.judge(req).await
    }
}

async fn check(judge: SlowJudge, budget: Duration) -> Vec<(TextDecision, Vec<String>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = Apps::offline(dir.path()).await;
    let evaluate = apps.evaluate.map_judge(|_| Arc::new(judge));
    // The check API's own composition, as the Lambda function and modctl serve build it.
    let service = check_api::Service::new(
        Arc::new(apps.image),
        Arc::new(evaluate),
        check_api::negative_prompts(None).expect("the built-in list"),
        budget,
        Err("no image model in this test".into()),
    );
    let requests = [
        TextRequest {
            text: "i know where you live and i will hurt you".into(),
            ..Default::default()
        },
        TextRequest {
            text: "nice shot, gg".into(),
            ..Default::default()
        },
    ];
    service
        .check_texts(&requests)
        .await
        .into_iter()
        .map(|c| (c.decision, c.reasons))
        .collect()
}

#[tokio::test]
async fn a_judge_slower_than_the_budget_leaves_the_flagged_message_for_review() {
    let got = check(
        SlowJudge {
            delay: Duration::from_secs(5),
            fail: false,
        },
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(got[0].0, TextDecision::Review, "{got:?}");
    assert!(
        got[0]
            .1
            .iter()
            .any(|r| r.contains("did not finish within 200 ms")),
        "{got:?}"
    );
    // Below the gate nothing waits for the judge.
    assert_eq!(got[1].0, TextDecision::Allow, "{got:?}");
}

#[tokio::test]
async fn a_judge_within_the_budget_decides_and_a_failing_one_is_review() {
    let quick = SlowJudge {
        delay: Duration::from_millis(10),
        fail: false,
    };
    let got = check(quick, Duration::from_secs(5)).await;
    assert_eq!(got[0].0, TextDecision::Block, "{got:?}");
    assert_eq!(got[1].0, TextDecision::Allow, "{got:?}");
    let failing = SlowJudge {
        delay: Duration::ZERO,
        fail: true,
    };
    let got = check(failing, Duration::from_secs(5)).await;
    assert_eq!(got[0].0, TextDecision::Review, "{got:?}");
    assert_eq!(got[1].0, TextDecision::Allow, "{got:?}");
}

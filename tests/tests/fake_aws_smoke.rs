//! The fake AWS answers each operation through the real SDK adapters.

use std::time::Duration;

use moderation_core::ports::{ChatModel, PolicyRetriever, ToxicityDetector};
use moderation_tests::fake_aws::{sdk_config, FakeAws, Faults};

#[tokio::test]
async fn each_operation_round_trips_through_the_sdk() {
    let fake = FakeAws::start(Faults::default(), 7).await;
    let sdk = sdk_config(&fake.url(), Duration::from_millis(500)).await;
    let detector = moderation_aws::ComprehendDetector::from_sdk_config(&sdk);
    let scores = tokio::time::timeout(
        Duration::from_secs(10),
        detector.detect(&["you idiot".into(), "nice shot".into()]),
    )
    .await
    .expect("no hang")
    .expect("detects");
    assert!(scores[0].categories.insult > 0.8, "{scores:?}");
    let kb = moderation_aws::KnowledgeBaseRetriever::from_sdk_config(&sdk, "KBFAKE0001");
    let passages = kb
        .retrieve("threats violence harm", 2)
        .await
        .expect("retrieves");
    assert!(
        passages[0]
            .uri
            .starts_with("s3://policy-bucket/community-policy.md#"),
        "{passages:?}"
    );
    let llm = moderation_aws::ConverseModel::from_sdk_config(&sdk, "fake-model");
    let reply = llm
        .complete("system", "x\nScreening signals: insult 0.90\ny")
        .await
        .expect("converses");
    assert!(reply.text.ends_with("<answer>Y</answer>"), "{reply:?}");
    assert!(reply.input_tokens > 0);
    assert_eq!(fake.ok_calls("DetectToxicContent"), 1);
}

#[tokio::test]
async fn languages_and_translation_round_trip_through_the_sdk() {
    use moderation_core::ports::{LanguageIdentifier, Translator};
    let fake = FakeAws::start(Faults::default(), 7).await;
    let sdk = sdk_config(&fake.url(), Duration::from_millis(500)).await;
    let ids = moderation_aws::ComprehendLanguages::from_sdk_config(&sdk);
    let got = ids
        .identify(&["du bist so schlecht, hör einfach auf zu spielen".into()])
        .await
        .expect("identifies");
    assert!(
        matches!(&got[0], moderation_core::ports::Answer::Other(i) if i.code == "de"),
        "{got:?}"
    );
    let t = moderation_aws::TranslateToEnglish::from_sdk_config(&sdk);
    let english = t
        .to_english("buenas noches, nos vemos mañana", "es")
        .await
        .expect("translates");
    assert_eq!(english, "good night, see you tomorrow");
}

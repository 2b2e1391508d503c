//! The knowledge base the template creates when `KnowledgeBaseId` is empty, and sync-policies,
//! which re-indexes it after each policy edit: template drift, and the handler driven with its
//! `events/` fixture through the real SDK adapter against the loopback fake.

use std::sync::Arc;
use std::time::Duration;

use moderation_core::chain::keys;
use moderation_tests::fake_aws::{sdk_config, FakeAws, Faults};
use moderation_tests::infra::{tag_of, template, untag};
use moderation_tests::{event, fixture};
use serde_yaml_ng::Value;

/// Resources that exist only when the template creates the knowledge base.
const CREATED: &[&str] = &[
    "PolicyVectorBucket",
    "PolicyVectorIndex",
    "KnowledgeBaseRole",
    "PolicyKnowledgeBase",
    "PolicyDataSource",
    "SyncPoliciesDeadLetterQueue",
    "SyncPoliciesQueue",
    "SyncPoliciesRule",
    "SyncPoliciesQueuePolicy",
    "SyncPoliciesFunction",
    "SyncPoliciesLogGroup",
    "SyncPoliciesDeadLettersAlarm",
];

fn seq(v: &Value) -> Vec<Value> {
    untag(v).as_sequence().cloned().unwrap_or_default()
}

/// `!If [CreateKnowledgeBase, !Ref PolicyKnowledgeBase, !Ref KnowledgeBaseId]`.
fn is_created_or_given_id(v: &Value) -> bool {
    let arms = seq(v);
    tag_of(v).as_deref() == Some("If")
        && arms.len() == 3
        && arms[0].as_str() == Some("CreateKnowledgeBase")
        && untag(&arms[1]).as_str() == Some("PolicyKnowledgeBase")
        && untag(&arms[2]).as_str() == Some("KnowledgeBaseId")
}

#[test]
fn the_knowledge_base_is_created_when_no_id_is_given_and_absent_when_one_is() {
    let t = template();
    let param = &t["Parameters"]["KnowledgeBaseId"];
    assert_eq!(param["Default"].as_str(), Some(""));
    let cond = seq(&t["Conditions"]["CreateKnowledgeBase"]);
    assert_eq!(
        tag_of(&t["Conditions"]["CreateKnowledgeBase"]).as_deref(),
        Some("Equals")
    );
    assert_eq!(untag(&cond[0]).as_str(), Some("KnowledgeBaseId"));
    assert_eq!(cond[1].as_str(), Some(""));
    let r = &t["Resources"];
    for name in CREATED {
        assert_eq!(
            r[*name]["Condition"].as_str(),
            Some("CreateKnowledgeBase"),
            "{name} must exist only when the template creates the knowledge base"
        );
    }
    for (name, res) in r.as_mapping().expect("Resources") {
        let kind = res["Type"].as_str().unwrap_or_default();
        if kind.starts_with("AWS::S3Vectors::") || kind.starts_with("AWS::Bedrock::") {
            let name = name.as_str().unwrap_or_default();
            assert!(CREATED.contains(&name), "{name} ({kind}) is not in CREATED");
        }
    }
    // evaluate-policy searches the created knowledge base, or the given one.
    let f = &r["EvaluatePolicyFunction"]["Properties"];
    assert!(is_created_or_given_id(
        &f["Environment"]["Variables"]["KNOWLEDGE_BASE_ID"]
    ));
    let retrieve = f["Policies"][0]["Statement"]
        .as_sequence()
        .expect("statements")
        .iter()
        .find(|st| st["Action"].as_str() == Some("bedrock:Retrieve"))
        .expect("a Retrieve grant");
    let sub = seq(&retrieve["Resource"]);
    assert!(sub[0]
        .as_str()
        .is_some_and(|s| s.ends_with("knowledge-base/${Kb}")));
    assert!(is_created_or_given_id(&sub[1]["Kb"]));
}

#[test]
fn the_index_fits_the_embedding_model_and_the_data_source_reads_policies() {
    let t = template();
    let r = &t["Resources"];
    let index = &r["PolicyVectorIndex"]["Properties"];
    let kb = &r["PolicyKnowledgeBase"]["Properties"];
    let model = untag(
        &kb["KnowledgeBaseConfiguration"]["VectorKnowledgeBaseConfiguration"]["EmbeddingModelArn"],
    );
    // Titan Text Embeddings v2 writes 1,024 dimensions by default; another size is refused
    // at the first ingestion.
    assert!(model
        .as_str()
        .is_some_and(|m| m.ends_with("amazon.titan-embed-text-v2:0")));
    assert_eq!(index["Dimension"].as_u64(), Some(1024));
    assert_eq!(index["DistanceMetric"].as_str(), Some("cosine"));
    let non_filterable = seq(&index["MetadataConfiguration"]["NonFilterableMetadataKeys"]);
    assert!(non_filterable
        .iter()
        .any(|k| k.as_str() == Some("AMAZON_BEDROCK_TEXT")));
    let storage = &kb["StorageConfiguration"];
    assert_eq!(storage["Type"].as_str(), Some("S3_VECTORS"));
    assert_eq!(
        untag(&storage["S3VectorsConfiguration"]["IndexArn"]).as_str(),
        Some("PolicyVectorIndex.IndexArn")
    );
    let source = &r["PolicyDataSource"]["Properties"]["DataSourceConfiguration"];
    let prefixes = seq(&source["S3Configuration"]["InclusionPrefixes"]);
    assert_eq!(prefixes, [Value::from(keys::POLICIES)]);
}

#[test]
fn edits_and_deletions_under_policies_reach_sync_policies_and_its_dead_letters_alarm() {
    let t = template();
    let r = &t["Resources"];
    let pattern = &r["SyncPoliciesRule"]["Properties"]["EventPattern"];
    let kinds: Vec<_> = seq(&pattern["detail-type"]);
    assert!(kinds.contains(&Value::from("Object Created")));
    assert!(
        kinds.contains(&Value::from("Object Deleted")),
        "a deleted policy must be unindexed"
    );
    assert_eq!(
        pattern["detail"]["object"]["key"][0]["prefix"].as_str(),
        Some(keys::POLICIES)
    );
    let f = &r["SyncPoliciesFunction"]["Properties"];
    let vars = &f["Environment"]["Variables"];
    assert_eq!(
        untag(&vars["KNOWLEDGE_BASE_ID"]).as_str(),
        Some("PolicyKnowledgeBase")
    );
    assert_eq!(
        untag(&vars["POLICY_DATA_SOURCE_ID"]).as_str(),
        Some("PolicyDataSource.DataSourceId")
    );
    let grant = &f["Policies"][0]["Statement"][0];
    let actions = seq(&grant["Action"]);
    for action in ["bedrock:StartIngestionJob", "bedrock:ListIngestionJobs"] {
        assert!(actions.contains(&Value::from(action)), "{action}");
    }
    let alarm = &r["SyncPoliciesDeadLettersAlarm"]["Properties"]["Dimensions"][0]["Value"];
    assert_eq!(
        untag(alarm).as_str(),
        Some("SyncPoliciesDeadLetterQueue.QueueName")
    );
}

fn failures(response: &serde_json::Value) -> usize {
    response["batchItemFailures"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn one_job_per_batch_a_running_job_defers_the_next_and_it_starts_once_done() {
    let fake = FakeAws::start(Faults::default(), 3).await;
    let sdk = sdk_config(&fake.url(), Duration::from_millis(500)).await;
    let index =
        moderation_aws::KnowledgeBaseSync::from_sdk_config(&sdk, "KBEXAMPLE1", "DSEXAMPLE1");
    let app = sync_policies::App::from_index(Arc::new(index));
    let payload = fixture("sqs-policies-changed.json");

    let out = sync_policies::handler(event(payload.clone()), &app)
        .await
        .expect("handled");
    assert_eq!(failures(&out), 0, "{out}");
    let jobs = fake.ingestion_jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert!(jobs[0].contains("3 changed"), "{jobs:?}");

    // An edit while that job runs comes back later rather than being lost.
    let out = sync_policies::handler(event(payload.clone()), &app)
        .await
        .expect("handled");
    assert_eq!(failures(&out), 3, "{out}");
    assert_eq!(fake.ingestion_jobs().len(), 1);

    fake.finish_ingestion();
    let out = sync_policies::handler(event(payload), &app)
        .await
        .expect("handled");
    assert_eq!(failures(&out), 0, "{out}");
    assert_eq!(fake.ingestion_jobs().len(), 2);
}

#[tokio::test]
async fn offline_the_fixture_is_read_and_acknowledged() {
    let vars = moderation_core::chain::config::Vars::from_pairs(&[
        ("MODERATION_BACKEND", "offline"),
        ("MODERATION_OFFLINE_ROOT", "/tmp"),
    ]);
    let config = sync_policies::Config::from_vars(&vars).expect("config");
    let app = sync_policies::App::build(config).await.expect("builds");
    let out = sync_policies::handler(event(fixture("sqs-policies-changed.json")), &app)
        .await
        .expect("handled");
    assert_eq!(failures(&out), 0, "{out}");
}

#[test]
fn on_aws_both_ids_are_required_and_named() {
    let vars =
        moderation_core::chain::config::Vars::from_pairs(&[("KNOWLEDGE_BASE_ID", "KB00000001")]);
    let e = sync_policies::Config::from_vars(&vars).expect_err("no data source");
    assert!(e.to_string().contains("POLICY_DATA_SOURCE_ID"), "{e}");
}

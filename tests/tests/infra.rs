//! Drift between the code and `infra/template.yaml`: every function in the workspace is
//! deployed, every environment variable a function reads is set, and the template routes each
//! S3 prefix to the stage the code's routing table names.

use std::collections::{BTreeMap, BTreeSet};

use moderation_core::chain::config::Vars;
use moderation_core::chain::keys::{self, ROUTES};
use moderation_tests::infra::{template, untag};
use moderation_tests::workspace_root;
use serde_yaml_ng::Value;

fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The variables a function's configuration reads, with the AWS backend selected.
fn vars_read_by(function: &str) -> Vec<String> {
    let pairs = [
        ("MODERATION_BACKEND", "aws"),
        ("KNOWLEDGE_BASE_ID", "KB12345678"),
        ("POLICY_DATA_SOURCE_ID", "DS12345678"),
        ("MODERATION_BUCKET", "b"),
        ("DECISION_BUS_NAME", "reports-bus"),
    ];
    let vars = Vars::from_pairs(&pairs);
    match function {
        "transcribe-audio" => drop(transcribe_audio::Config::from_vars(&vars).expect("config")),
        "screen-text" => drop(screen_text::Config::from_vars(&vars).expect("config")),
        "evaluate-policy" => drop(evaluate_policy::Config::from_vars(&vars).expect("config")),
        "write-report" => drop(write_report::Config::from_vars(&vars).expect("config")),
        "screen-image" => drop(screen_image::Config::from_vars(&vars).expect("config")),
        "sync-policies" => drop(sync_policies::Config::from_vars(&vars).expect("config")),
        "check-api" => drop(check_api::Config::from_vars(&vars).expect("config")),
        "review-api" => drop(review_api::Config::from_vars(&vars).expect("config")),
        other => panic!("function {other} is new: add its Config to this drift test"),
    }
    let mut read = vars.names_read();
    read.push("LOG_LEVEL".into()); // read by telemetry::init_json_logs
    read
}

struct Deployed {
    env: BTreeSet<String>,
    queues: Vec<String>,
    props: Value,
}

fn deployed_functions(t: &Value) -> BTreeMap<String, Deployed> {
    let globals = keys_of(&t["Globals"]["Function"]["Environment"]["Variables"]);
    let mut out = BTreeMap::new();
    for (_, res) in t["Resources"].as_mapping().expect("Resources") {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("every function names its cargo binary")
            .to_string();
        assert_eq!(
            res["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
        let props = res["Properties"].clone();
        let mut env = globals.clone();
        env.extend(keys_of(&props["Environment"]["Variables"]));
        let queues = props["Events"]
            .as_mapping()
            .map(|events| {
                events
                    .values()
                    .filter(|e| e["Type"].as_str() == Some("SQS"))
                    .filter_map(|e| {
                        untag(&e["Properties"]["Queue"])
                            .as_str()
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert(binary, Deployed { env, queues, props });
    }
    out
}

#[test]
fn every_workspace_function_is_deployed_with_every_variable_it_reads() {
    let t = template();
    let deployed = deployed_functions(&t);
    let dir = workspace_root().join("crates/functions");
    let workspace: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("crates/functions")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        workspace,
        deployed.keys().cloned().collect::<BTreeSet<_>>(),
        "functions in crates/functions vs AWS::Serverless::Function resources in infra/template.yaml"
    );
    for (name, f) in &deployed {
        let missing: Vec<String> = vars_read_by(name)
            .into_iter()
            .filter(|v| !f.env.contains(v))
            .collect();
        assert!(
            missing.is_empty(),
            "{name} reads {missing:?} but the template does not set them"
        );
        // check-api has no events (its Function URL calls it); review-api's are HTTP routes.
        for event in f.props["Events"]
            .as_mapping()
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|e| e["Type"].as_str() == Some("SQS"))
        {
            let types = &event["Properties"]["FunctionResponseTypes"];
            assert_eq!(
                types
                    .as_sequence()
                    .and_then(|s| s.first())
                    .and_then(Value::as_str),
                Some("ReportBatchItemFailures"),
                "{name}: SQS events must report partial batch failures"
            );
        }
    }
    let arch = &t["Globals"]["Function"]["Architectures"][0];
    assert_eq!(
        untag(arch).as_str(),
        Some("Architecture"),
        "architectures follow the parameter"
    );
}

#[test]
fn the_template_routes_prefixes_like_the_routing_table() {
    let t = template();
    let deployed = deployed_functions(&t);
    let mut routed = BTreeSet::new();
    for (name, res) in t["Resources"].as_mapping().expect("Resources") {
        if res["Type"].as_str() != Some("AWS::Events::Rule") {
            continue;
        }
        let pattern = &res["Properties"]["EventPattern"];
        let Some(patterns) = pattern["detail"]["object"]["key"].as_sequence() else {
            continue;
        };
        let target = untag(&res["Properties"]["Targets"][0]["Arn"])
            .as_str()
            .expect("rule target is !GetAtt <queue>.Arn")
            .to_string();
        let (function, _) = deployed
            .iter()
            .find(|(_, f)| f.queues.contains(&target))
            .unwrap_or_else(|| panic!("rule {name:?} targets {target}, which feeds no function"));
        for p in patterns {
            let prefix = p["prefix"].as_str().expect("key patterns are prefixes");
            let stage = keys::route(prefix).unwrap_or_else(|| panic!("{prefix} is not in ROUTES"));
            assert_eq!(
                stage.name(),
                function,
                "rule {name:?}: {prefix} goes to the wrong stage"
            );
            routed.insert(prefix.to_string());
        }
    }
    for (prefix, stage) in ROUTES {
        if deployed.contains_key(stage.name()) {
            assert!(
                routed.contains(*prefix),
                "no rule routes {prefix} to {}",
                stage.name()
            );
        }
    }
}

#[test]
fn every_stage_queue_has_a_dead_letter_queue() {
    let t = template();
    for (name, res) in t["Resources"].as_mapping().expect("Resources") {
        let name = name.as_str().unwrap_or_default();
        if res["Type"].as_str() == Some("AWS::SQS::Queue") && !name.contains("DeadLetter") {
            let redrive = &res["Properties"]["RedrivePolicy"];
            assert!(
                !redrive["deadLetterTargetArn"].is_null(),
                "{name} has no dead-letter queue"
            );
        }
    }
}

/// The rule whose pattern has `source: [<source>]`, and the function its queue feeds.
fn rule_for_source<'a>(t: &'a Value, source: &str) -> (&'a Value, String) {
    let deployed = deployed_functions(t);
    let rule = t["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .find(|r| {
            r["Type"].as_str() == Some("AWS::Events::Rule")
                && r["Properties"]["EventPattern"]["source"][0].as_str() == Some(source)
        })
        .unwrap_or_else(|| panic!("no rule for {source} events"));
    let target = untag(&rule["Properties"]["Targets"][0]["Arn"])
        .as_str()
        .expect("target")
        .to_string();
    let function = deployed
        .iter()
        .find(|(_, f)| f.queues.contains(&target))
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| panic!("the {source} rule feeds no function"));
    (rule, function)
}

#[test]
fn failed_transcribe_jobs_and_user_reports_reach_transcribe_audio() {
    let t = template();
    let (rule, function) = rule_for_source(&t, "aws.transcribe");
    assert_eq!(function, "transcribe-audio");
    let p = &rule["Properties"]["EventPattern"];
    assert_eq!(
        p["detail-type"][0].as_str(),
        Some(moderation_core::chain::event::TRANSCRIBE_DETAIL_TYPE)
    );
    assert_eq!(
        p["detail"]["TranscriptionJobStatus"][0].as_str(),
        Some("FAILED")
    );
    assert_eq!(
        p["detail"]["TranscriptionJobName"][0]["prefix"].as_str(),
        Some(keys::JOB_PREFIX),
        "only this chain's jobs"
    );
    let (rule, function) = rule_for_source(&t, moderation_core::chain::event::USER_REPORT_SOURCE);
    assert_eq!(function, "transcribe-audio");
    assert_eq!(
        rule["Properties"]["EventPattern"]["detail-type"][0].as_str(),
        Some(moderation_core::chain::event::USER_REPORT_DETAIL_TYPE)
    );
    assert!(
        !rule["Properties"]["EventBusName"].is_null(),
        "user reports come on their own (or a named) bus"
    );
}

#[test]
fn lambda_binaries_link_no_ml_framework() {
    // Feature unification is per build: each function alone, as `make build` and SAM build it.
    for function in [
        "transcribe-audio",
        "screen-text",
        "screen-image",
        "evaluate-policy",
        "write-report",
    ] {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                function,
            ])
            .current_dir(workspace_root())
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        for heavy in [
            "candle-core",
            "tokenizers",
            "symphonia",
            "rubato",
            "safetensors",
            "tract-onnx",
        ] {
            assert!(
                !tree.lines().any(|l| l.starts_with(&format!("{heavy} "))),
                "{function} links {heavy}"
            );
        }
    }
}

/// Every string inside `v`, through tags (`!Sub`, `!If`) and sequences.
fn strings(v: &Value, out: &mut Vec<String>) {
    match untag(v) {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(seq) => seq.iter().for_each(|x| strings(x, out)),
        Value::Mapping(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Whether a function's policies allow `action` on keys under `prefix`.
fn allows(props: &Value, action: &str, prefix: &str) -> bool {
    statements(props).any(|st| {
        let mut resources = Vec::new();
        strings(&st["Resource"], &mut resources);
        actions(st).iter().any(|a| a == action)
            && resources
                .iter()
                .any(|r| r.ends_with(&format!("/{prefix}*")))
    })
}

/// The IAM statements of one resource's `Policies`.
fn statements(props: &Value) -> impl Iterator<Item = &Value> {
    props["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
}

/// A statement's actions, one or a list.
fn actions(statement: &Value) -> Vec<String> {
    let mut out = Vec::new();
    strings(&statement["Action"], &mut out);
    out
}

#[test]
fn stages_that_write_screened_documents_can_read_them() {
    // `superseded` reads the previous screened document to drop a late, older event; without
    // s3:GetObject the read fails (AccessDenied) and the check never fires.
    let t = template();
    let deployed = deployed_functions(&t);
    for stage in [
        keys::Stage::ScreenText,
        keys::Stage::ScreenImage,
        keys::Stage::TranscribeAudio,
    ] {
        let f = &deployed[stage.name()];
        assert!(
            allows(&f.props, "s3:GetObject", keys::SCREENED),
            "{} cannot read {}",
            stage.name(),
            keys::SCREENED
        );
        assert!(allows(&f.props, "s3:PutObject", keys::SCREENED));
    }
}

#[test]
fn the_picture_check_reads_the_prepared_copies_and_nothing_else() {
    // Screening keeps the prepared picture under pictures/ (screen-image, and transcribe-audio
    // for a reported screenshot); evaluate-policy sends that copy to the multimodal model.
    // Without these grants every picture check ends in AccessDenied.
    let t = template();
    let deployed = deployed_functions(&t);
    for stage in [keys::Stage::ScreenImage, keys::Stage::TranscribeAudio] {
        assert!(stage.writes().contains(&keys::PICTURES));
        let f = &deployed[stage.name()];
        assert!(
            allows(&f.props, "s3:PutObject", keys::PICTURES),
            "{} cannot write {}",
            stage.name(),
            keys::PICTURES
        );
    }
    let f = &deployed[keys::Stage::EvaluatePolicy.name()];
    assert!(allows(&f.props, "s3:GetObject", keys::PICTURES));
    // …and never the uploads or the recordings themselves.
    assert!(!allows(&f.props, "s3:GetObject", keys::INCOMING_IMAGE));
    let mut all = Vec::new();
    strings(&f.props["Policies"], &mut all);
    assert!(!all
        .iter()
        .any(|r| r.contains(&format!("/{}", keys::RECORDINGS))));
}

/// A function that GETs keys which may not exist needs s3:ListBucket with no s3:prefix
/// condition, or S3 answers 403 instead of 404. write-report reads its index marker
/// (`reports/index/ids/<id>`, missing for every new report) and the index head.
#[test]
fn functions_that_read_missing_keys_may_list_the_bucket_unconditionally() {
    let t = template();
    let deployed = deployed_functions(&t);
    for stage in [keys::Stage::WriteReport, keys::Stage::EvaluatePolicy] {
        let f = &deployed[stage.name()];
        let unconditioned = statements(&f.props).any(|st| {
            actions(st).iter().any(|a| a == "s3:ListBucket") && st["Condition"].is_null()
        });
        assert!(
            unconditioned,
            "{} has no unconditioned s3:ListBucket",
            stage.name()
        );
    }
}

/// The log groups whose metric filter counts lines where `field` is true, the metric they
/// count into, and whether that metric has an alarm that notifies.
fn counted_with_alarm(field: &str) -> (BTreeSet<String>, String, bool) {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("Resources");
    let pattern = format!("{{ $.fields.{field} IS TRUE }}");
    let mut counted = BTreeSet::new();
    let mut metric = None;
    for (_, res) in resources {
        let props = &res["Properties"];
        if res["Type"].as_str() == Some("AWS::Logs::MetricFilter")
            && props["FilterPattern"].as_str() == Some(pattern.as_str())
        {
            counted.insert(
                untag(&props["LogGroupName"])
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            metric = props["MetricTransformations"][0]["MetricName"]
                .as_str()
                .map(str::to_string);
        }
    }
    let metric = metric.unwrap_or_else(|| panic!("no metric filter counts {field}"));
    let alarmed = resources.values().any(|res| {
        res["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
            && res["Properties"]["MetricName"].as_str() == Some(metric.as_str())
            && !res["Properties"]["AlarmActions"].is_null()
    });
    (counted, metric, alarmed)
}

#[test]
fn uploads_cut_short_by_the_time_limit_alarm() {
    // screen-text logs `time_limit: true` (tests/tests/streaming.rs checks the line); both
    // functions that screen chat logs count it, and the count has an alarm.
    let (counted, metric, alarmed) =
        counted_with_alarm(moderation_core::chain::telemetry::TIME_LIMIT);
    assert_eq!(
        counted,
        BTreeSet::from([
            "ScreenTextLogGroup".to_string(),
            "TranscribeAudioLogGroup".to_string()
        ])
    );
    assert!(alarmed, "no alarm on {metric}");
}

#[test]
fn permanent_failures_of_every_function_alarm() {
    // Dead letters are acknowledged: no DLQ and no Lambda error sees them.
    let (counted, metric, alarmed) =
        counted_with_alarm(moderation_core::chain::telemetry::DEAD_LETTER);
    use keys::Stage::*;
    let groups: BTreeSet<String> = [
        TranscribeAudio,
        ScreenText,
        ScreenImage,
        EvaluatePolicy,
        WriteReport,
    ]
    .iter()
    .map(|s| format!("{}LogGroup", camel(s.name())))
    .collect();
    assert_eq!(counted, groups);
    assert!(alarmed, "no alarm on {metric}");
}

/// `screen-text` as `ScreenText`.
fn camel(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn transcription_jobs_are_granted_on_the_only_resource_iam_matches() {
    // StartTranscriptionJob has no resource type: a narrower Resource refuses every job.
    let t = template();
    let starts: Vec<(String, Value)> = t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .flat_map(|(name, res)| {
            let name = name.as_str().unwrap_or_default().to_string();
            statements(&res["Properties"]).map(move |st| (name.clone(), st.clone()))
        })
        .filter(|(_, st)| {
            actions(st)
                .iter()
                .any(|a| a == "transcribe:StartTranscriptionJob")
        })
        .collect();
    assert!(!starts.is_empty());
    for (function, st) in starts {
        assert_eq!(st["Resource"].as_str(), Some("*"), "{function}: {st:?}");
        let condition = &st["Condition"];
        assert!(
            !condition["StringEquals"]["transcribe:OutputBucketName"].is_null()
                && condition["StringLike"]["transcribe:OutputKey"].as_str()
                    == Some("transcripts/*"),
            "{function}: jobs are not narrowed to this bucket's transcripts/: {condition:?}"
        );
    }
}

#[test]
fn alarms_can_reach_their_topic_and_functions_have_the_memory_they_decode_with() {
    let t = template();
    let r = &t["Resources"];
    // CloudWatch alarms cannot use the AWS-managed SNS key.
    let key = untag(&r["AlarmTopic"]["Properties"]["KmsMasterKeyId"]);
    assert_ne!(key.as_str(), Some("alias/aws/sns"));
    assert_eq!(key.as_str(), Some("AlarmTopicKey"));
    let grants = r["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence()
        .expect("key policy")
        .iter()
        .any(|st| {
            st["Principal"]["Service"].as_str() == Some("cloudwatch.amazonaws.com")
                && actions(st).contains(&"kms:Decrypt".to_string())
                && actions(st).contains(&"kms:GenerateDataKey*".to_string())
        });
    assert!(
        grants,
        "the alarm topic's key does not let CloudWatch publish"
    );
    // Both functions that decode pictures (uploads, and a user report's screenshots).
    for function in ["ScreenImageFunction", "TranscribeAudioFunction"] {
        let memory = r[function]["Properties"]["MemorySize"].as_u64();
        assert!(memory >= Some(1024), "{function}: {memory:?} MB");
    }
    let receives = t["Parameters"]["MaxReceiveCount"]["Default"].as_u64();
    assert!(receives >= Some(5), "MaxReceiveCount {receives:?}");
}

/// Every `!Sub` string under `v`, with the `!If` branches taken to reach it.
fn subs_with_branches(
    v: &Value,
    path: &mut Vec<(String, bool)>,
    out: &mut Vec<(String, Vec<(String, bool)>)>,
) {
    match v {
        Value::Tagged(t) if t.tag == "If" => {
            let arms = t.value.as_sequence().expect("!If [condition, yes, no]");
            let cond = arms[0].as_str().unwrap_or_default().to_string();
            for (arm, taken) in [(&arms[1], true), (&arms[2], false)] {
                path.push((cond.clone(), taken));
                subs_with_branches(arm, path, out);
                path.pop();
            }
        }
        Value::Tagged(t) if t.tag == "Sub" => {
            let text = match &t.value {
                Value::Sequence(s) => s.first().and_then(Value::as_str),
                other => other.as_str(),
            };
            out.push((text.unwrap_or_default().to_string(), path.clone()));
            if let Value::Sequence(s) = &t.value {
                s.iter()
                    .skip(1)
                    .for_each(|x| subs_with_branches(x, path, out));
            }
        }
        Value::Tagged(t) => subs_with_branches(&t.value, path, out),
        Value::Sequence(s) => s.iter().for_each(|x| subs_with_branches(x, path, out)),
        Value::Mapping(m) => m.values().for_each(|x| subs_with_branches(x, path, out)),
        _ => {}
    }
}

/// Whether `v` is `!Ref name`, alone or in a one-element list.
fn is_ref_to(v: &Value, name: &str) -> bool {
    match v {
        Value::Tagged(t) => t.tag == "Ref" && t.value.as_str() == Some(name),
        Value::Sequence(s) => s.len() == 1 && is_ref_to(&s[0], name),
        _ => false,
    }
}

/// Every `!If [condition, yes, _]` under `v`: the yes arms.
fn if_yes_arms<'a>(v: &'a Value, condition: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Tagged(t) => {
            if t.tag == "If" {
                let arms = t.value.as_sequence().expect("!If [condition, yes, no]");
                if arms[0].as_str() == Some(condition) {
                    out.push(&arms[1]);
                }
            }
            if_yes_arms(&t.value, condition, out);
        }
        Value::Sequence(s) => s.iter().for_each(|x| if_yes_arms(x, condition, out)),
        Value::Mapping(m) => m.values().for_each(|x| if_yes_arms(x, condition, out)),
        _ => {}
    }
}

/// Whether `cond` is `!Equals [!Select [0, !Split [":", !Ref param]], "arn"]`.
fn tests_arn_prefix(cond: &Value, param: &str) -> Option<bool> {
    let Value::Tagged(eq) = cond else { return None };
    let args = eq.value.as_sequence()?;
    let Value::Tagged(select) = args.first()? else {
        return None;
    };
    let sel = select.value.as_sequence()?;
    let Value::Tagged(split) = sel.get(1)? else {
        return None;
    };
    let spl = split.value.as_sequence()?;
    Some(
        eq.tag == "Equals"
            && args.get(1)?.as_str() == Some("arn")
            && select.tag == "Select"
            && sel.first()?.as_u64() == Some(0)
            && split.tag == "Split"
            && spl.first()?.as_str() == Some(":")
            && is_ref_to(spl.get(1)?, param),
    )
}

/// What is wrong with how `resources` grant Bedrock models named by `param` (a model id, an
/// inference profile id or a full ARN), `is_arn` being the condition that tells an ARN.
fn model_grant_problems(
    conditions: &Value,
    resources: &Value,
    param: &str,
    is_arn: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    // is_arn: !Equals [!Select [0, !Split [":", !Ref param]], "arn"]
    let cond = &conditions[is_arn];
    let tells_arn = tests_arn_prefix(cond, param).unwrap_or(false);
    if !tells_arn {
        problems.push(format!(
            "condition {is_arn} does not test whether {param} starts with arn: ({cond:?})"
        ));
    }
    let mut subs = Vec::new();
    subs_with_branches(resources, &mut Vec::new(), &mut subs);
    let built: Vec<_> = subs
        .iter()
        .filter(|(s, _)| s.contains(&format!("/${{{param}}}")))
        .collect();
    if built.is_empty() {
        problems.push(format!("no ARN is built from {param}"));
    }
    for (s, path) in built {
        if !path.contains(&(is_arn.to_string(), false)) {
            problems.push(format!(
                "{s} is built even when {param} is an ARN (not under !If [{is_arn}, …, this])"
            ));
        }
    }
    let mut yes = Vec::new();
    if_yes_arms(resources, is_arn, &mut yes);
    if yes.is_empty() {
        problems.push(format!("nothing grants {param} itself when it is an ARN"));
    }
    for arm in yes {
        if !is_ref_to(arm, param) {
            problems.push(format!(
                "when {param} is an ARN the grant is {arm:?}, not the ARN itself"
            ));
        }
    }
    problems
}

#[test]
fn bedrock_grants_fit_a_model_id_a_profile_id_and_an_arn() {
    // retrieve_and_generate takes an inference profile's ARN as ModelId (so does ImageModelId):
    // `inference-profile/${ModelId}` then reads `inference-profile/arn:aws:bedrock:…`, which
    // matches nothing. (infra/check_iam.py resolves each form against IAM's data in make lint.)
    let t = template();
    for (param, is_arn) in [
        ("ModelId", "ModelIdIsArn"),
        ("ImageModelId", "ImageModelIdIsArn"),
    ] {
        let problems = model_grant_problems(&t["Conditions"], &t["Resources"], param, is_arn);
        assert!(problems.is_empty(), "{problems:#?}");
    }
    // The check bites on the grant as it was (ids only).
    let before: Value = serde_yaml_ng::from_str(
        r#"
Conditions:
  ModelIdIsArn: !Equals [!Select [0, !Split [":", !Ref ModelId]], "arn"]
Resources:
  F:
    Properties:
      Policies:
        - Statement:
            - Action: bedrock:InvokeModel
              Resource:
                - !Sub "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/${ModelId}"
                - !Sub "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/${ModelId}"
"#,
    )
    .expect("yaml");
    let problems = model_grant_problems(
        &before["Conditions"],
        &before["Resources"],
        "ModelId",
        "ModelIdIsArn",
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

#[test]
fn the_check_api_can_call_a_sagemaker_endpoint_granted_by_its_lower_case_arn() {
    let t = template();
    let p = &t["Parameters"]["ImageGenerationEndpoint"];
    assert_eq!(p["Default"].as_str(), Some(""), "optional");
    // IAM compares the lower-case ARN SageMaker writes; InvokeEndpoint wants the name as is.
    let pattern = p["AllowedPattern"].as_str().expect("a pattern");
    assert!(
        pattern.contains("[a-z0-9]") && !pattern.contains("A-Z"),
        "{pattern}"
    );
    assert_eq!(p["MaxLength"].as_u64(), Some(63));
    let props = &t["Resources"]["CheckApiFunction"]["Properties"];
    let mut policies = Vec::new();
    strings(&props["Policies"], &mut policies);
    assert!(
        policies.iter().any(|s| s == "sagemaker:InvokeEndpoint"),
        "the check API's role may invoke the endpoint"
    );
    assert!(
        policies
            .iter()
            .any(|s| s.ends_with(":endpoint/${ImageGenerationEndpoint}")),
        "granted on that endpoint only: {policies:?}"
    );
    let env = &props["Environment"]["Variables"];
    assert!(!env["IMAGE_GENERATION_ENDPOINT"].is_null());
    assert!(!env["IMAGE_GENERATION_ENDPOINT_FORMAT"].is_null());
    // Both models set would stop the function at start-up, every route with it.
    let mut rule = Vec::new();
    strings(&t["Rules"]["OneImageGenerationModel"], &mut rule);
    assert!(
        rule.contains(&"ImageGenerationModelId".to_string())
            && rule.contains(&"ImageGenerationEndpoint".to_string()),
        "{rule:?}"
    );
}

//! The pure steps of starting a job.

use super::*;

#[test]
fn only_supported_recordings_within_the_size_limit_are_sent() {
    let mut obj = ObjectRef::new("b", "incoming/audio/c/clip.wav");
    assert_eq!(unusable_recording(&obj, "wav", 100), None);
    let why = unusable_recording(&obj, "txt", 100).expect("refused");
    assert!(
        why.starts_with("incoming/audio/c/clip.wav: unsupported audio file type \"txt\""),
        "{why}"
    );
    obj.size = Some(101);
    let why = unusable_recording(&obj, "wav", 100).expect("too big");
    assert!(
        why.contains("the recording is 101 bytes, over the 100 byte limit"),
        "{why}"
    );
    obj.size = Some(100);
    assert_eq!(unusable_recording(&obj, "wav", 100), None);
}

#[test]
fn a_started_job_leaves_its_record_and_a_finished_one_its_transcript() {
    let record = || "jobs/j.json".to_string();
    assert_eq!(
        job_outcome("j", record(), JobStart::Started),
        Ok(Outcome::Wrote(vec![record()]))
    );
    assert_eq!(
        job_outcome("j", record(), JobStart::AlreadyExists),
        Ok(Outcome::Wrote(vec![record()]))
    );
    let done = JobStart::Completed {
        transcript_key: "transcripts/j.json".into(),
    };
    assert_eq!(
        job_outcome("j", record(), done),
        Ok(Outcome::Wrote(vec![record(), "transcripts/j.json".into()]))
    );
    assert_eq!(
        job_outcome("j", record(), JobStart::Failed("bad media".into())),
        Err("bad media".to_string())
    );
}

#[test]
fn the_request_writes_the_transcript_beside_the_recording() {
    let obj = ObjectRef::new("b", "incoming/audio/c/clip.mp3");
    let cfg = AudioConfig {
        output_kms_key_id: Some("k".into()),
        ..Default::default()
    };
    let req = transcription_request(&obj, "moderation-j", "mp3".into(), &cfg);
    assert_eq!(
        (req.media_bucket.as_str(), req.media_key.as_str()),
        ("b", "incoming/audio/c/clip.mp3")
    );
    assert_eq!(req.output_key, keys::transcript_key("moderation-j"));
    assert_eq!(req.output_bucket, "b");
    assert_eq!(req.output_kms_key_id.as_deref(), Some("k"));
    let record = new_job_record(&obj, "id-1", "moderation-j", &Trigger::upload());
    assert_eq!(
        (record.job_name.as_str(), record.id.as_str()),
        ("moderation-j", "id-1")
    );
    assert_eq!(record.source.uri, obj.uri());
}

#[test]
fn only_failed_jobs_of_this_chain_are_handled() {
    let ours = format!("{}clip-0011-aabbccdd", keys::JOB_PREFIX);
    assert_eq!(not_a_failure_of_ours(&ours, "FAILED"), None);
    let done = not_a_failure_of_ours(&ours, "COMPLETED").expect("ignored");
    assert!(done.contains("only FAILED jobs"), "{done}");
    let theirs = not_a_failure_of_ours("someone-elses-job", "FAILED").expect("ignored");
    assert!(theirs.contains("was not started by this chain"), "{theirs}");
}

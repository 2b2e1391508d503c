use super::*;

#[test]
fn one_message_or_a_batch_and_the_answer_keeps_the_shape() {
    let one = parse_text_body(
        br#"{"text":"gg","user":"u-9","conversation":"match-42","age_band":"13-15","context":["hi"]}"#,
    )
    .expect("one");
    assert!(!one.batch);
    assert_eq!(one.requests.len(), 1);
    assert_eq!(one.requests[0].conversation.as_deref(), Some("match-42"));
    assert_eq!(one.requests[0].context, ["hi"]);
    let batch = parse_text_body(br#"{"messages":[{"text":"a"},{"text":"b"}]}"#).expect("batch");
    assert!(batch.batch);
    assert_eq!(batch.requests.len(), 2);
}

fn refused(body: &[u8]) -> String {
    let e = parse_text_body(body).expect_err("refused");
    assert_eq!(e.code, Code::BadRequest);
    e.message
}

#[test]
fn malformed_bodies_are_named() {
    assert!(refused(b"{\"text\":").contains("not JSON"));
    assert!(refused(br#"{"txt":"hi"}"#).contains("does not fit"));
    assert!(refused(br#"{"text":42}"#).contains("does not fit"));
    assert!(refused(br#"{"messages":[]}"#).contains("send 1 to 25"));
    let many = format!(
        r#"{{"messages":[{}]}}"#,
        vec![r#"{"text":"x"}"#; 26].join(",")
    );
    assert!(refused(many.as_bytes()).contains("26 messages"));
    let m = refused(br#"{"messages":[{"text":"ok"},{"text":"x","age_band":"<script>"}]}"#);
    assert!(m.starts_with("messages[1]: \"age_band\""), "{m}");
    let context = format!(
        r#"{{"text":"x","context":[{}]}}"#,
        vec![r#""l""#; 21].join(",")
    );
    assert!(refused(context.as_bytes()).contains("21 lines"));
}

#[test]
fn the_negative_prompt_is_the_list_then_the_callers_own() {
    let list = ["nudity".to_string(), "gore".to_string()];
    assert_eq!(negative_prompt(&list, None), "nudity, gore");
    assert_eq!(
        negative_prompt(&list, Some("  blurry ")),
        "nudity, gore, blurry"
    );
    assert_eq!(negative_prompt(&list, Some(" ")), "nudity, gore");
    assert!(parse_prompt_body(br#"{"prompt":"a castle","extra":1}"#).is_err());
}

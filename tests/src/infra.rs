//! Reading `infra/template.yaml` in drift tests: the template parsed, and its intrinsics looked
//! through.

use serde_yaml_ng::Value;

use crate::workspace_root;

/// The SAM template, parsed (intrinsics such as `!Ref` stay tagged values).
pub fn template() -> Value {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `!GetAtt X.Arn` and friends parse as tagged values; look through the tag.
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

/// The tag of an intrinsic (`"Ref"`, `"If"`, `"GetAtt"`…), if `v` is one.
pub fn tag_of(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string().trim_start_matches('!').to_string()),
        _ => None,
    }
}

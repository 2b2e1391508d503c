#!/usr/bin/env python3
"""`make deploy`: sam build + sam deploy from infra/, with the parameters of samconfig.toml
merged with the ones given on the command line instead of replaced by them.

`sam deploy --parameter-overrides X=1` replaces samconfig.toml's whole parameter_overrides
list, so a committed KnowledgeBaseId would be dropped. This script reads that list (with the
SAM CLI's own parser), lays the overrides over it and passes the merged whole to both
`sam build` and `sam deploy`. Settings, from the environment (the Makefile sets them):

  ARCH_OVERRIDE    Architecture=<it>, only when `make deploy ARCH=...` was given explicitly
  PARAMS           more overrides, "Key=Value Key2=Value2" (quote values with spaces: K="a b")
  GUIDED=1         sam deploy --guided (also when infra/samconfig.toml does not exist)
  SAM_DEPLOY_ARGS  extra sam deploy arguments, e.g. --no-confirm-changeset
  CONFIG_ENV       the samconfig.toml environment (default: default)
  POLICY_BUCKET    with your own knowledge base (KnowledgeBaseId set): upload
                   infra/policies/*.md to s3://<it>/policies/ (you sync that data source)

After the deploy it uploads infra/policies/*.md to the stack's policies/ prefix when the stack
created the knowledge base (sync-policies then re-indexes it), and prints the stack's outputs,
what the stack holds, and the next step.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

INFRA = Path(__file__).resolve().parent
ROOT = INFRA.parent
SAMCONFIG = INFRA / "samconfig.toml"
PLACEHOLDER_KB = "REPLACEME1"


def parse_overrides(values) -> dict[str, str]:
    """Parse parameter overrides exactly as the SAM CLI does (list, string or mapping)."""
    from samcli.cli.types import CfnParameterOverridesType  # the venv's pinned SAM CLI

    if values in (None, "", [], {}):
        return {}
    return dict(CfnParameterOverridesType().convert(values, None, None))


def section(config: dict, env: str, command: str) -> dict:
    return config.get(env, {}).get(command, {}).get("parameters", {})


def main() -> int:
    env = os.environ.get("CONFIG_ENV", "default")
    guided = os.environ.get("GUIDED", "") not in ("", "0") or not SAMCONFIG.exists()
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8")) if SAMCONFIG.exists() else {}
    deploy_cfg = {**section(config, env, "global"), **section(config, env, "deploy")}

    params = parse_overrides(deploy_cfg.get("parameter_overrides"))
    from_config = dict(params)
    given = {}
    if os.environ.get("ARCH_OVERRIDE"):
        given["Architecture"] = os.environ["ARCH_OVERRIDE"]
    given.update(parse_overrides(os.environ.get("PARAMS", "").strip() or None))
    params.update(given)

    where = f"{SAMCONFIG.relative_to(ROOT)} [{env}]" if SAMCONFIG.exists() else "no samconfig.toml"
    print(f"Parameters ({where}, overridden by ARCH/PARAMS where given):")
    for k, v in params.items():
        note = " (ARCH/PARAMS)" if k in given and from_config.get(k) != v else ""
        print(f"  {k}={v}{note}")

    if params.get("KnowledgeBaseId") == PLACEHOLDER_KB:
        print(
            f"KnowledgeBaseId is the old example's {PLACEHOLDER_KB}: leave it empty ('KnowledgeBaseId=\"\"' "
            "in infra/samconfig.toml) and the stack creates the knowledge base, or give your own id.",
            file=sys.stderr,
        )
        return 2

    arch = params.get("Architecture", "arm64")
    if arch == "arm64" and shutil.which("rustup"):
        installed = subprocess.run(
            ["rustup", "target", "list", "--installed"], capture_output=True, text=True, check=False
        ).stdout
        if "aarch64-unknown-linux-gnu" not in installed:
            print(
                "Architecture=arm64 needs the aarch64-unknown-linux-gnu standard library "
                "(rustup target add aarch64-unknown-linux-gnu); where it cannot be installed, "
                "run `make deploy ARCH=x86_64`.",
                file=sys.stderr,
            )
            return 2

    with tempfile.TemporaryDirectory(prefix="moderation-deploy-") as tmp:
        # JSON is YAML: `file://` takes a mapping, so values with spaces need no quoting.
        overrides = Path(tmp) / "parameter-overrides.yaml"
        overrides.write_text(json.dumps(params, indent=1), encoding="utf-8")
        override_arg = ["--parameter-overrides", f"file://{overrides}"] if params else []
        run(["sam", "build", "--beta-features", *override_arg])
        deploy = ["sam", "deploy", *override_arg, "--no-fail-on-empty-changeset"]
        if guided:
            deploy.insert(2, "--guided")
        deploy += shlex.split(os.environ.get("SAM_DEPLOY_ARGS", ""))
        run(deploy)

    # Guided mode may have written a new samconfig.toml with another stack name or region.
    if SAMCONFIG.exists():
        config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
        deploy_cfg = {**section(config, env, "global"), **section(config, env, "deploy")}
    session, outputs = summarize(
        deploy_cfg.get("stack_name", "chat-moderation"), deploy_cfg.get("region"), deploy_cfg.get("profile")
    )
    return upload_policies(session, outputs)


def run(cmd: list[str]) -> None:
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, cwd=INFRA, check=True)


def summarize(stack: str, region: str | None, profile: str | None):
    """What the stack created and the next step (best effort: the deploy itself succeeded).
    Returns the boto3 session and the stack's outputs (None when they could not be read)."""
    try:
        import boto3

        session = boto3.session.Session(region_name=region, profile_name=profile)
        cfn = session.client("cloudformation")
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        kinds = collections.Counter()
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
            kinds.update(r["ResourceType"] for r in page["StackResourceSummaries"])
    except Exception as e:  # noqa: BLE001 - a summary, never a failed deploy
        print(f"Deployed. (Could not describe stack {stack}: {e})")
        return None, None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    print(f"\nStack {stack} ({described['StackStatus']}, {session.region_name}) holds:")
    for kind, n in sorted(kinds.items()):
        print(f"  {n:3d} {kind}")
    print("Outputs:")
    for k, v in outputs.items():
        print(f"  {k}: {v}")
    bucket = outputs.get("BucketName", "<bucket>")
    policy = outputs.get("PolicyDocuments")
    sync = (
        f"  2. Edit your policy under {policy}: each change is re-indexed within minutes.\n"
        if policy
        else "  2. Sync your knowledge base's data source whenever your policy changes\n"
        "     (make deploy POLICY_BUCKET=<kb bucket> uploads infra/policies/*.md to it).\n"
    )
    print(
        "\nNext:\n"
        "  1. If this account has never called the model: see docs/deploy.md (Before the first\n"
        "     model call): an administrator invokes it once, and Anthropic's use-case form.\n"
        f"{sync}"
        f"  3. Upload a chat log:  aws s3 cp events/uploads/lobby-chat.txt s3://{bucket}/incoming/text/\n"
        f"  4. Read the reports:   s3://{bucket}/reports/index.html (presigned links inside)"
    )
    return session, outputs


def policy_target(outputs: dict | None, policy_bucket: str) -> tuple[str, str] | None:
    """(bucket, prefix) to upload infra/policies/ to: the stack's own policies/ when it created
    the knowledge base, else POLICY_BUCKET's policies/ when given, else nowhere."""
    location = (outputs or {}).get("PolicyDocuments", "")
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        return bucket, prefix
    if policy_bucket:
        return policy_bucket, "policies/"
    return None


def upload_policies(session, outputs: dict | None) -> int:
    target = policy_target(outputs, os.environ.get("POLICY_BUCKET", "").strip())
    if target is None:
        return 0
    bucket, prefix = target
    files = sorted((INFRA / "policies").glob("*.md"))
    try:
        if session is None:  # the stack could not be described; boto3 comes with the SAM CLI
            import boto3

            session = boto3.session.Session()
        s3 = session.client("s3")
        for path in files:
            s3.upload_file(str(path), bucket, prefix + path.name)
            print(f"uploaded {path.relative_to(ROOT)} -> s3://{bucket}/{prefix}{path.name}")
    except Exception as e:  # noqa: BLE001 - the stack is deployed; say what is left to do
        print(f"deploy: the policy upload to s3://{bucket}/{prefix} failed: {e}", file=sys.stderr)
        return 1
    if outputs and outputs.get("PolicyDocuments"):
        print("sync-policies re-indexes the knowledge base from them within a few minutes.")
    else:
        print(f"Now sync your knowledge base's data source (s3://{bucket}/{prefix}).")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as e:
        print(f"deploy: {' '.join(e.cmd[:2])} failed (exit {e.returncode})", file=sys.stderr)
        sys.exit(e.returncode or 1)

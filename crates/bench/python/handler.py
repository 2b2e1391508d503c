"""The Python boto3 baseline that `make bench` starts next to the Rust functions.

Init does what the Rust `main()` does before it polls for the first event: import the SDK and
create the same clients (screen-text: S3 and Comprehend; evaluate-policy: S3, Bedrock Agent
Runtime and Bedrock Runtime). The screen-text handler does the same I/O as the Rust handler on
an upload -- S3 GetObject, Comprehend DetectToxicContent in batches of 10, S3 PutObject of the
scores -- but none of its other work (rule filter, chunking, threshold gate, report document),
so it is a generous baseline. Keys outside the function's prefix are ignored, as in Rust.
"""

import csv
import io
import json
import os
import urllib.parse

import boto3

FUNCTION = os.environ.get("BENCH_FUNCTION", "screen-text")
s3 = boto3.client("s3")
if FUNCTION == "screen-text":
    PREFIX = "incoming/text/"
    comprehend = boto3.client("comprehend")
else:
    PREFIX = "screened/"
    agent_runtime = boto3.client("bedrock-agent-runtime")
    bedrock_runtime = boto3.client("bedrock-runtime")


def texts_of(key, body):
    if key.endswith(".csv"):
        rows = csv.DictReader(io.StringIO(body))
        return [r.get("message") or r.get("text") or r.get("content") or "" for r in rows]
    if key.endswith(".jsonl"):
        out = []
        for line in body.splitlines():
            if line.strip():
                doc = json.loads(line)
                out.append(doc.get("message") or doc.get("text") or doc.get("content") or "")
        return out
    return [line for line in body.splitlines() if line.strip()]


def screen(bucket, key):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
    texts = [t for t in texts_of(key, body) if t.strip()]
    items = []
    for i in range(0, len(texts), 10):
        batch = texts[i : i + 10]
        out = comprehend.detect_toxic_content(
            TextSegments=[{"Text": t} for t in batch], LanguageCode="en"
        )
        for text, result in zip(batch, out["ResultList"]):
            categories = {l["Name"].lower(): l["Score"] for l in result.get("Labels", [])}
            items.append({"text": text, "toxicity": result.get("Toxicity", 0.0), "categories": categories})
    out_key = "screened/" + key.rsplit("/", 1)[-1] + ".json"
    s3.put_object(
        Bucket=bucket,
        Key=out_key,
        Body=json.dumps({"items": items}).encode(),
        ContentType="application/json",
    )
    return out_key


def handler(event, context):
    written = []
    for record in event.get("Records", []):
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        if not key.startswith(PREFIX):
            continue
        if FUNCTION == "screen-text":
            written.append(screen(bucket, key))
    return {"written": written}

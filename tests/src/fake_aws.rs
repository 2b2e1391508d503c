//! A fault-injecting fake of the AWS services the chain calls, for tests on loopback only.
//!
//! It speaks the wire protocols the SDK clients use — Comprehend `DetectToxicContent` and
//! `BatchDetectDominantLanguage` (awsJson1.1), Translate `TranslateText` (Smithy RPC v2 CBOR), Bedrock Runtime `Converse` and `InvokeModel` (image models), an OpenAI-compatible `/v1/images/generations`, Bedrock Agent Runtime `Retrieve` and Bedrock Agent `StartIngestionJob` / `ListIngestionJobs` (restJson1) —
//! so the real adapters, with their real retry and timeout handling, are exercised through the
//! SDK's endpoint override. Answers are deterministic: toxicity from the offline detector,
//! passages from the offline policy index, and a verdict from the prompt's screening signals,
//! so a run with faults can be compared item by item with a run without.
//!
//! Knobs: latency, the share of requests answered with throttling, a 5xx, or a hang longer
//! than the client's attempt timeout, and a requests-per-second cap per operation (a service
//! quota: requests over it are throttled, the way Comprehend answers past its TPS limit).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moderation_core::model::Category;
use moderation_offline::{OfflineDetector, PolicyIndex};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

mod images;
mod ingestion;

pub use images::draw as draw_picture;

/// What share of requests fail, and how.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Throttling: 400 `TooManyRequestsException` (Comprehend) or 429 `ThrottlingException`.
    pub throttle: f64,
    /// 500 `InternalServerException`.
    pub server_error: f64,
    /// No answer for `hang`: the client's attempt timeout fires first.
    pub timeout: f64,
    /// Added to every answer.
    pub latency: Duration,
    pub hang: Duration,
    /// A TPS cap per operation; `None` (the default) admits everything.
    pub rate_limit: Option<RateLimit>,
    /// Inject throttling, 5xx and timeouts into this operation only (e.g. `TranslateText`);
    /// `None`: all. Latency and the rate limit apply to every operation.
    pub only: Option<&'static str>,
}

/// A token bucket per operation: `per_second` tokens a second, at most `burst` saved up. A
/// request that finds no token is throttled at once (no added latency, as a service's front
/// door rejects before doing the work) with the same error as injected throttling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl RateLimit {
    /// A cap of `per_second` with one second's worth of burst.
    pub fn per_second(per_second: f64) -> Self {
        RateLimit {
            per_second,
            burst: per_second.max(1.0),
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn admit(&mut self, limit: RateLimit, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * limit.per_second;
        self.tokens = (self.tokens + refill).min(limit.burst.max(1.0));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the fake served, per operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests: HashMap<String, u64>,
    pub ok: HashMap<String, u64>,
    pub faults: u64,
    /// Requests throttled by [`Faults::rate_limit`] (not counted in `faults`).
    pub capped: u64,
    /// When the first and the last successful answer of each operation were made: the
    /// window a sustained rate is measured over.
    pub ok_window: HashMap<String, (Instant, Instant)>,
}

impl Stats {
    /// Successful answers a second between the first and the last, `None` under two.
    pub fn sustained_ok_per_s(&self, op: &str) -> Option<f64> {
        let ok = *self.ok.get(op)?;
        let (first, last) = *self.ok_window.get(op)?;
        let span = last.duration_since(first).as_secs_f64();
        (ok >= 2 && span > 0.0).then(|| (ok - 1) as f64 / span)
    }
}

struct State {
    faults: Faults,
    detector: OfflineDetector,
    policy: PolicyIndex,
    /// Replaces every Converse answer when set (hostile-LLM tests).
    converse_reply: Mutex<Option<String>>,
    stats: Mutex<Stats>,
    buckets: Mutex<HashMap<String, Bucket>>,
    ingestion: Mutex<ingestion::Jobs>,
    counter: AtomicU64,
    seed: u64,
}

pub struct FakeAws {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for FakeAws {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAws {
    /// Start on an ephemeral loopback port.
    pub async fn start(faults: Faults, seed: u64) -> FakeAws {
        let policy = PolicyIndex::load_dir(&crate::workspace_root().join("infra/policies"))
            .expect("sample policy indexes");
        let state = Arc::new(State {
            faults,
            detector: OfflineDetector::embedded().expect("embedded detector"),
            policy,
            converse_reply: Mutex::new(None),
            stats: Mutex::new(Stats::default()),
            buckets: Mutex::new(HashMap::new()),
            ingestion: Mutex::new(ingestion::Jobs::default()),
            counter: AtomicU64::new(0),
            seed,
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, s.clone()));
            }
        });
        FakeAws { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> Stats {
        self.state
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Requests that reached an operation and were answered successfully.
    pub fn ok_calls(&self, op: &str) -> u64 {
        self.stats().ok.get(op).copied().unwrap_or(0)
    }

    /// Every ingestion job started so far finishes.
    pub fn finish_ingestion(&self) {
        if let Ok(mut jobs) = self.state.ingestion.lock() {
            jobs.finish_all();
        }
    }

    /// The descriptions of the ingestion jobs started, in order.
    pub fn ingestion_jobs(&self) -> Vec<String> {
        self.state
            .ingestion
            .lock()
            .map(|j| j.descriptions())
            .unwrap_or_default()
    }

    pub fn set_converse_reply(&self, reply: Option<String>) {
        if let Ok(mut r) = self.state.converse_reply.lock() {
            *r = reply;
        }
    }
}

/// splitmix64: a deterministic stream of draws per (seed, request number).
fn draw(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// An HTTP/1.1 request line and headers (names lower-cased); `None` when the client closed the
/// connection or sent garbage. The loopback servers of the tests and the benchmarks share it.
pub async fn read_request_head<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> Option<(String, String, HashMap<String, String>)> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some((method, target, headers))
}

async fn read_request(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Request> {
    let (method, path, headers) = read_request_head(r).await?;
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

struct Response {
    status: u16,
    content_type: &'static str,
    error_type: Option<&'static str>,
    body: Vec<u8>,
}

async fn serve(stream: TcpStream, state: Arc<State>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    while let Some(req) = read_request(&mut reader).await {
        let resp = handle(&req, &state).await;
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
            resp.status,
            resp.content_type,
            resp.body.len()
        );
        if let Some(t) = resp.error_type {
            head.push_str(&format!("x-amzn-errortype: {t}\r\n"));
        }
        if resp.content_type == CBOR {
            head.push_str("smithy-protocol: rpc-v2-cbor\r\n");
        }
        head.push_str("\r\n");
        // One write: a separate small body write can sit out Nagle + delayed ACK (~40 ms),
        // which would add to the configured latency.
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&resp.body);
        if write.write_all(&bytes).await.is_err() {
            return; // the client gave up (attempt timeout)
        }
    }
}

const CBOR: &str = "application/cbor";

fn operation(req: &Request) -> String {
    if let Some(target) = req.headers.get("x-amz-target") {
        return target.rsplit('.').next().unwrap_or_default().to_string();
    }
    // Smithy RPC v2 (Translate): POST /service/<service>/operation/<operation>.
    if let Some((_, op)) = req.path.split_once("/operation/") {
        return op.to_string();
    }
    if let Some(op) = ingestion::operation(req) {
        return op.into();
    }
    if req.method == "POST" && req.path.ends_with("/converse") {
        return "Converse".into();
    }
    if req.method == "POST" && req.path.ends_with("/retrieve") {
        return "Retrieve".into();
    }
    if req.method == "POST" && req.path == "/retrieveAndGenerate" {
        return "RetrieveAndGenerate".into();
    }
    if req.method == "POST" && req.path.ends_with("/chat/completions") {
        return "ChatCompletions".into();
    }
    if req.method == "POST" && req.path.starts_with("/model/") && req.path.ends_with("/invoke") {
        return "InvokeModel".into();
    }
    if req.method == "POST" && req.path.ends_with("/images/generations") {
        return "ImageGenerations".into();
    }
    if req.method == "POST"
        && req.path.starts_with("/endpoints/")
        && req.path.ends_with("/invocations")
    {
        return "InvokeEndpoint".into();
    }
    format!("{} {}", req.method, req.path)
}

/// RPC v2 CBOR requests (Translate) are answered like awsJson ones, then re-encoded in CBOR.
async fn handle(req: &Request, state: &State) -> Response {
    let cbor = req.headers.get("content-type").map(String::as_str) == Some(CBOR);
    let mut resp = handle_decoded(req, state, cbor).await;
    if cbor {
        let value: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        let mut out = Vec::new();
        if ciborium::into_writer(&value, &mut out).is_ok() {
            resp.body = out;
            resp.content_type = CBOR;
        }
    }
    resp
}

async fn handle_decoded(req: &Request, state: &State, cbor: bool) -> Response {
    let op = operation(req);
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut s) = state.stats.lock() {
        *s.requests.entry(op.clone()).or_default() += 1;
    }
    let f = state.faults;
    let json_1_1 = cbor
        || matches!(
            op.as_str(),
            "DetectToxicContent"
                | "BatchDetectDominantLanguage"
                | "DetectModerationLabels"
                | "DetectText"
        );
    if let Some(limit) = f.rate_limit {
        let now = Instant::now();
        let admitted = match state.buckets.lock() {
            Ok(mut buckets) => buckets
                .entry(op.clone())
                .or_insert_with(|| Bucket {
                    tokens: limit.burst.max(1.0),
                    last: now,
                })
                .admit(limit, now),
            Err(_) => true,
        };
        if !admitted {
            if let Ok(mut s) = state.stats.lock() {
                s.capped += 1;
            }
            return throttled(json_1_1);
        }
    }
    if !f.latency.is_zero() {
        tokio::time::sleep(f.latency).await;
    }
    let r = if f.only.is_none_or(|o| o == op) {
        draw(state.seed, n)
    } else {
        1.0
    };
    let fault = if r < f.throttle {
        Some(throttled(json_1_1))
    } else if r < f.throttle + f.server_error {
        Some(error(
            500,
            json_1_1,
            "InternalServerException",
            "injected failure",
        ))
    } else if r < f.throttle + f.server_error + f.timeout {
        tokio::time::sleep(f.hang).await;
        Some(error(
            500,
            json_1_1,
            "InternalServerException",
            "answered too late",
        ))
    } else {
        None
    };
    if let Some(resp) = fault {
        if let Ok(mut s) = state.stats.lock() {
            s.faults += 1;
        }
        return resp;
    }
    let body: Value = if cbor {
        ciborium::from_reader(req.body.as_slice()).unwrap_or(Value::Null)
    } else {
        serde_json::from_slice(&req.body).unwrap_or(Value::Null)
    };
    let resp = match op.as_str() {
        "DetectToxicContent" => detect(&body, state),
        "BatchDetectDominantLanguage" => dominant_language(&body),
        "TranslateText" => translate(&body),
        "DetectModerationLabels" => moderation_labels(&body),
        "DetectText" => detect_text(&body),
        "Retrieve" => retrieve(&body, state),
        "Converse" => converse(&body, state),
        "ChatCompletions" => chat_completions(&body, state),
        "RetrieveAndGenerate" => retrieve_and_generate(&body, state),
        "InvokeModel" => images::invoke_model(&req.path, &body),
        "ImageGenerations" => images::generations(&body),
        "InvokeEndpoint" => images::invoke_endpoint(&body),
        "StartIngestionJob" => ingestion::start(req, &body, &state.ingestion),
        "ListIngestionJobs" => ingestion::list(req, &body, &state.ingestion),
        _ => error(404, false, "UnknownOperationException", &op),
    };
    if (200..300).contains(&resp.status) {
        if let Ok(mut s) = state.stats.lock() {
            let now = Instant::now();
            s.ok_window
                .entry(op.clone())
                .and_modify(|w| w.1 = now)
                .or_insert((now, now));
            *s.ok.entry(op).or_default() += 1;
        }
    }
    resp
}

/// Comprehend's throttling answer (awsJson1.1), or the REST services' 429.
fn throttled(json_1_1: bool) -> Response {
    if json_1_1 {
        error(400, json_1_1, "TooManyRequestsException", "Rate exceeded")
    } else {
        error(429, json_1_1, "ThrottlingException", "Too many requests")
    }
}

fn error(status: u16, json_1_1: bool, code: &'static str, message: &str) -> Response {
    if json_1_1 {
        Response {
            status,
            content_type: "application/x-amz-json-1.1",
            error_type: None,
            body: json!({"__type": code, "Message": message})
                .to_string()
                .into_bytes(),
        }
    } else {
        Response {
            status,
            content_type: "application/json",
            error_type: Some(code),
            body: json!({"message": message}).to_string().into_bytes(),
        }
    }
}

fn ok(content_type: &'static str, body: Value) -> Response {
    Response {
        status: 200,
        content_type,
        error_type: None,
        body: body.to_string().into_bytes(),
    }
}

fn label(c: Category) -> &'static str {
    match c {
        Category::Profanity => "PROFANITY",
        Category::HateSpeech => "HATE_SPEECH",
        Category::Sexual => "SEXUAL",
        Category::Insult => "INSULT",
        Category::ViolenceOrThreat => "VIOLENCE_OR_THREAT",
        Category::Graphic => "GRAPHIC",
        Category::HarassmentOrAbuse => "HARASSMENT_OR_ABUSE",
    }
}

fn detect(body: &Value, state: &State) -> Response {
    let segments = body["TextSegments"].as_array().cloned().unwrap_or_default();
    let bytes: usize = segments
        .iter()
        .map(|s| s["Text"].as_str().map_or(0, str::len))
        .sum();
    if segments.is_empty() || segments.len() > 10 || bytes > 10 * 1024 {
        return error(
            400,
            true,
            "TextSizeLimitExceededException",
            "request too large",
        );
    }
    let mut results = Vec::new();
    for s in segments {
        let text = s["Text"].as_str().unwrap_or_default();
        if text.is_empty() || text.len() > 1024 {
            return error(400, true, "TextSizeLimitExceededException", "segment size");
        }
        let score = state.detector.score(text);
        let labels: Vec<Value> = Category::ALL
            .iter()
            .map(|c| json!({"Name": label(*c), "Score": score.categories.get(*c)}))
            .collect();
        results.push(json!({"Labels": labels, "Toxicity": score.toxicity}));
    }
    ok(
        "application/x-amz-json-1.1",
        json!({ "ResultList": results }),
    )
}

/// Languages from the offline identifier (the trigram model), with Comprehend's limits.
fn dominant_language(body: &Value) -> Response {
    let docs = body["TextList"].as_array().cloned().unwrap_or_default();
    if docs.is_empty() || docs.len() > 25 {
        return error(
            400,
            true,
            "BatchSizeLimitExceededException",
            "1 to 25 documents",
        );
    }
    let mut results = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let text = d.as_str().unwrap_or_default();
        if text.len() >= 5_000 {
            return error(400, true, "TextSizeLimitExceededException", "document size");
        }
        let (code, score) = moderation_core::text::language::identify_text(text)
            .map_or(("en".to_string(), 0.5), |l| (l.code, l.confidence.max(0.5)));
        results.push(json!({"Index": i, "Languages": [{"LanguageCode": code, "Score": score}]}));
    }
    ok(
        "application/x-amz-json-1.1",
        json!({"ResultList": results, "ErrorList": []}),
    )
}

/// A phrasebook stand-in for Translate: known sentences, otherwise the text marked untranslated.
fn translate(body: &Value) -> Response {
    let text = body["Text"].as_str().unwrap_or_default();
    let source = body["SourceLanguageCode"].as_str().unwrap_or_default();
    if text.len() > 10_000 {
        return error(400, true, "TextSizeLimitExceededException", "text size");
    }
    if body["TargetLanguageCode"] != "en" {
        return error(400, true, "UnsupportedLanguagePairException", "target");
    }
    const PHRASEBOOK: &[(&str, &str)] = &[
        (
            "te voy a encontrar y te voy a matar, sé dónde vives",
            "I'm going to find you and I'm going to kill you, I know where you live",
        ),
        (
            "hola a todos, alguien para la mazmorra?",
            "hi everyone, anyone for the dungeon?",
        ),
        (
            "buenas noches, nos vemos mañana",
            "good night, see you tomorrow",
        ),
    ];
    // Transcripts capitalise and punctuate the same sentences.
    let plain = |t: &str| t.trim_end_matches(['.', '!']).to_lowercase();
    let english = PHRASEBOOK
        .iter()
        .find(|(from, _)| plain(from) == plain(text))
        .map_or_else(
            || format!("[untranslated] {text}"),
            |(_, to)| to.to_string(),
        );
    ok(
        "application/x-amz-json-1.1",
        json!({"TranslatedText": english, "SourceLanguageCode": source, "TargetLanguageCode": "en"}),
    )
}

fn retrieve(body: &Value, state: &State) -> Response {
    let query = body["retrievalQuery"]["text"].as_str().unwrap_or_default();
    let k = body["retrievalConfiguration"]["vectorSearchConfiguration"]["numberOfResults"]
        .as_u64()
        .unwrap_or(5) as usize;
    let results: Vec<Value> = state
        .policy
        .search(query, k)
        .into_iter()
        .map(|p| {
            json!({"content": {"text": p.text, "type": "TEXT"},
                   "location": {"type": "S3", "s3Location": {"uri": format!("s3://policy-bucket/{}", p.uri)}},
                   "score": p.score})
        })
        .collect();
    ok("application/json", json!({ "retrievalResults": results }))
}

/// A stand-in model: "Y" when the screening signals name anything but profanity.
fn converse(body: &Value, state: &State) -> Response {
    let content = body["messages"][0]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let prompt = content
        .iter()
        .find_map(|c| c["text"].as_str())
        .unwrap_or_default();
    let image = content.iter().find(|c| c.get("image").is_some());
    let reply = match image {
        Some(block) => {
            let bytes = block["image"]["source"]["bytes"]
                .as_str()
                .unwrap_or_default();
            match vision_reply(prompt, bytes, state) {
                Ok(r) => r,
                Err(why) => return error(400, false, "ValidationException", &why),
            }
        }
        None => model_reply(prompt, state),
    };
    let tokens = (prompt.len() / 4) as u64;
    ok(
        "application/json",
        json!({"output": {"message": {"role": "assistant", "content": [{"text": reply}]}},
               "stopReason": "end_turn",
               "usage": {"inputTokens": tokens, "outputTokens": 20, "totalTokens": tokens + 20},
               "metrics": {"latencyMs": 1}}),
    )
}

/// The same stand-in model behind the OpenAI chat-completions API (a local LLM server).
fn chat_completions(body: &Value, state: &State) -> Response {
    let system_first = body["messages"][0]["role"] == "system";
    let prompt = body["messages"][1]["content"].as_str().unwrap_or_default();
    if !system_first || body["messages"][1]["role"] != "user" {
        return error(
            400,
            false,
            "BadRequest",
            "expected a system then a user message",
        );
    }
    let parts = body["messages"][1]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reply = match parts.iter().find(|p| p["type"] == "image_url") {
        Some(part) => {
            let text = parts
                .iter()
                .find_map(|p| p["text"].as_str())
                .unwrap_or_default();
            let url = part["image_url"]["url"].as_str().unwrap_or_default();
            let Some((_, b64)) = url.split_once(";base64,") else {
                return error(
                    400,
                    false,
                    "BadRequest",
                    "image_url is not a base64 data URL",
                );
            };
            match vision_reply(text, b64, state) {
                Ok(r) => r,
                Err(why) => return error(400, false, "BadRequest", &why),
            }
        }
        None => model_reply(prompt, state),
    };
    ok(
        "application/json",
        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": reply}}],
               "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": 20}}),
    )
}

/// RetrieveAndGenerate: search with the query, fill the caller's template, answer from it.
fn retrieve_and_generate(body: &Value, state: &State) -> Response {
    let query = body["input"]["text"].as_str().unwrap_or_default();
    let kb = &body["retrieveAndGenerateConfiguration"]["knowledgeBaseConfiguration"];
    let template = kb["generationConfiguration"]["promptTemplate"]["textPromptTemplate"]
        .as_str()
        .unwrap_or_default();
    if !template.contains("$search_results$") {
        return error(
            400,
            false,
            "ValidationException",
            "template lacks $search_results$",
        );
    }
    let k = kb["retrievalConfiguration"]["vectorSearchConfiguration"]["numberOfResults"]
        .as_u64()
        .unwrap_or(5) as usize;
    let passages = state.policy.search(query, k);
    let results: String = passages.iter().map(|p| format!("{}\n", p.text)).collect();
    let prompt = template
        .replace("$search_results$", &results)
        .replace("$query$", query);
    let reply = model_reply(&prompt, state);
    let refs: Vec<Value> = passages
        .iter()
        .map(|p| {
            json!({"content": {"text": p.text},
                   "location": {"type": "S3", "s3Location": {"uri": format!("s3://policy-bucket/{}", p.uri)}}})
        })
        .collect();
    ok(
        "application/json",
        json!({"sessionId": "session-1", "output": {"text": reply},
               "citations": [{"generatedResponsePart": {"textResponsePart": {"text": reply}},
                              "retrievedReferences": refs}]}),
    )
}

/// The image bytes of a Rekognition request, decoded; an answer naming the problem otherwise.
fn rekognition_image(body: &Value) -> Result<image::DynamicImage, Response> {
    use base64::Engine;
    let b64 = body["Image"]["Bytes"].as_str().ok_or_else(|| {
        error(
            400,
            true,
            "InvalidParameterException",
            "Image.Bytes is required",
        )
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| error(400, true, "InvalidImageFormatException", "not base64"))?;
    if bytes.len() > 5 * 1024 * 1024 {
        return Err(error(400, true, "ImageTooLargeException", "over 5 MB"));
    }
    let img = image::load_from_memory(&bytes).map_err(|_| {
        error(
            400,
            true,
            "InvalidImageFormatException",
            "not a PNG or JPEG",
        )
    })?;
    if img.width() < 80 || img.height() < 80 {
        return Err(error(400, true, "InvalidParameterException", "under 80 px"));
    }
    Ok(img)
}

/// DetectModerationLabels: a mostly red picture is "Graphic Violence" (92 %) under "Violence",
/// anything else has no label; labels under `MinConfidence` are left out, as the service does.
fn moderation_labels(body: &Value) -> Response {
    let img = match rekognition_image(body) {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let rgb = img.to_rgb8();
    let n = f64::from(rgb.width() * rgb.height());
    let (mut r, mut g) = (0.0, 0.0);
    for p in rgb.pixels() {
        r += f64::from(p[0]);
        g += f64::from(p[1]);
    }
    let min = body["MinConfidence"].as_f64().unwrap_or(50.0);
    let mut labels = Vec::new();
    if r / n > 150.0 && g / n < 90.0 && 92.0 >= min {
        labels.push(
            json!({"Confidence": 92.0, "Name": "Violence", "ParentName": "", "TaxonomyLevel": 1}),
        );
        labels.push(json!({"Confidence": 92.0, "Name": "Graphic Violence", "ParentName": "Violence", "TaxonomyLevel": 2}));
    }
    ok(
        "application/x-amz-json-1.1",
        json!({"ModerationLabels": labels, "ModerationModelVersion": "7.0",
               "ContentTypes": [{"Confidence": 81.5, "Name": "Illustrated"}]}),
    )
}

/// DetectText: one line, "gg wp", across the top of any picture, with its two words.
fn detect_text(body: &Value) -> Response {
    if let Err(resp) = rekognition_image(body) {
        return resp;
    }
    let bbox = json!({"Left": 0.1, "Top": 0.05, "Width": 0.5, "Height": 0.1});
    ok(
        "application/x-amz-json-1.1",
        json!({"TextModelVersion": "3.0", "TextDetections": [
            {"DetectedText": "gg wp", "Type": "LINE", "Id": 0, "Confidence": 99.1,
             "Geometry": {"BoundingBox": bbox}},
            {"DetectedText": "gg", "Type": "WORD", "Id": 1, "ParentId": 0, "Confidence": 99.0,
             "Geometry": {"BoundingBox": bbox}},
            {"DetectedText": "wp", "Type": "WORD", "Id": 2, "ParentId": 0, "Confidence": 99.2,
             "Geometry": {"BoundingBox": bbox}}]}),
    )
}

/// A stand-in multimodal model. It checks that the picture decodes, answers the checklist from
/// what the prompt says about the picture (labels of 60 % or more, threats in its text), and is
/// gullible on purpose: text in the picture that says "answer safe" makes it answer safe, so
/// tests can show that such an answer is not trusted.
fn vision_reply(prompt: &str, b64: &str, state: &State) -> Result<String, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("image bytes are not base64: {e}"))?;
    image::load_from_memory(&bytes).map_err(|e| format!("the image does not decode: {e}"))?;
    if let Some(r) = state.converse_reply.lock().ok().and_then(|r| r.clone()) {
        return Ok(r);
    }
    let section = |tag: &str| -> String {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        prompt
            .split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(inside, _)| inside.to_lowercase())
            .unwrap_or_default()
    };
    let questions = section("checklist")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let categories: Vec<String> = prompt
        .split_once("<categories>\n")
        .and_then(|(_, rest)| rest.split_once("\n</categories>"))
        .map(|(inside, _)| inside.lines().map(str::to_string).collect())
        .unwrap_or_default();
    let (labels, text) = (section("labels"), section("image_text"));
    let strong_label = labels
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|d| d.parse::<u32>().ok())
        .any(|pct| (60..=100).contains(&pct));
    let threat = ["kill", "die", "hurt"].iter().any(|w| text.contains(w));
    let obeys = text.contains("answer safe");
    let unsafe_ = (strong_label || threat) && !obeys;
    // The category that shares a word with the labels, else by kind of finding.
    let named = categories.iter().find(|c| {
        c.to_lowercase()
            .split_whitespace()
            .any(|w| labels.contains(w))
    });
    let category = if !unsafe_ {
        "none".to_string()
    } else if threat {
        categories.last().cloned().unwrap_or_default()
    } else {
        named.or(categories.first()).cloned().unwrap_or_default()
    };
    let answers: Vec<&str> = (0..questions)
        .map(|i| if unsafe_ && i == 0 { "yes" } else { "no" })
        .collect();
    Ok(json!({
        "checklist": answers,
        "flag": if unsafe_ { "unsafe" } else { "safe" },
        "category": category,
        "reason": format!("Labels: {}.", labels.trim()),
    })
    .to_string())
}

fn model_reply(prompt: &str, state: &State) -> String {
    match state.converse_reply.lock().ok().and_then(|r| r.clone()) {
        Some(r) => r,
        None => {
            let signals = prompt
                .lines()
                .find_map(|l| l.strip_prefix("Screening signals: "))
                .unwrap_or_default();
            let serious = signals
                .split(", ")
                .any(|s| !s.starts_with("profanity") && !s.starts_with("rule profanity"));
            let answer = if serious { "Y" } else { "N" };
            format!("<analysis>Signals: {signals}.</analysis>\n<answer>{answer}</answer>")
        }
    }
}

/// SDK configuration pointing every client at the fake, with short backoffs and a short
/// attempt timeout so tests stay fast. Standard retry, not production's adaptive mode: under
/// 30 % throttling adaptive mode's client-side rate limiter slows a 200-message run from 1 s
/// to over a minute, which is its job in production but would measure the limiter here.
pub async fn sdk_config(url: &str, attempt_timeout: Duration) -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_comprehend::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "fake-aws",
        ))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(40)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_bucket_admits_the_burst_then_the_rate() {
        let limit = RateLimit::per_second(20.0);
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: limit.burst,
            last: t0,
        };
        let burst = (0..100).filter(|_| b.admit(limit, t0)).count();
        assert_eq!(burst, 20, "one second's worth at once");
        // Then 20 a second: one every 50 ms, whatever the demand (here 80 a second).
        let admitted = (1..=20u64)
            .flat_map(|step| [step; 4])
            .filter(|step| b.admit(limit, t0 + Duration::from_millis(50 * step)))
            .count();
        assert_eq!(admitted, 20, "1 s of demand at 80/s");
    }
}

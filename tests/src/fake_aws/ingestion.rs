//! Bedrock Agent `StartIngestionJob` and `ListIngestionJobs` (restJson1): one job per data
//! source at a time, as Bedrock runs them. A started job stays running until the test calls
//! [`super::FakeAws::finish_ingestion`]; starting another meanwhile is a 409 conflict.

use std::sync::Mutex;

use serde_json::{json, Value};

use super::{error, ok, Request, Response};

/// The jobs the fake has started, the last one possibly still running.
#[derive(Debug, Default)]
pub(super) struct Jobs {
    started: Vec<Job>,
}

#[derive(Debug, Clone)]
struct Job {
    knowledge_base: String,
    data_source: String,
    id: String,
    running: bool,
    description: Option<String>,
}

/// `(knowledge base, data source)` of a `/knowledgebases/<kb>/datasources/<ds>/ingestionjobs/`
/// path, for `PUT` (start) and `POST` (list).
pub(super) fn operation(req: &Request) -> Option<&'static str> {
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("PUT", ["knowledgebases", _, "datasources", _, "ingestionjobs"]) => {
            Some("StartIngestionJob")
        }
        ("POST", ["knowledgebases", _, "datasources", _, "ingestionjobs"]) => {
            Some("ListIngestionJobs")
        }
        _ => None,
    }
}

fn ids(req: &Request) -> (String, String) {
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    (
        parts.get(1).copied().unwrap_or_default().to_string(),
        parts.get(3).copied().unwrap_or_default().to_string(),
    )
}

fn summary(job: &Job) -> Value {
    json!({
        "knowledgeBaseId": job.knowledge_base,
        "dataSourceId": job.data_source,
        "ingestionJobId": job.id,
        "status": if job.running { "IN_PROGRESS" } else { "COMPLETE" },
        "startedAt": "2026-12-07T10:00:00Z",
        "updatedAt": "2026-12-07T10:00:01Z",
    })
}

pub(super) fn start(req: &Request, body: &Value, jobs: &Mutex<Jobs>) -> Response {
    let Ok(mut jobs) = jobs.lock() else {
        return error(500, false, "InternalServerException", "lock poisoned");
    };
    let (knowledge_base, data_source) = ids(req);
    if jobs
        .started
        .iter()
        .any(|j| j.running && j.data_source == data_source)
    {
        return error(
            409,
            false,
            "ConflictException",
            "an ingestion job is already running",
        );
    }
    let job = Job {
        knowledge_base,
        data_source,
        id: format!("JOB{:07}", jobs.started.len() + 1),
        running: true,
        description: body["description"].as_str().map(str::to_string),
    };
    let answer = json!({ "ingestionJob": summary(&job) });
    jobs.started.push(job);
    Response {
        status: 202,
        ..ok("application/json", answer)
    }
}

pub(super) fn list(req: &Request, body: &Value, jobs: &Mutex<Jobs>) -> Response {
    let Ok(jobs) = jobs.lock() else {
        return error(500, false, "InternalServerException", "lock poisoned");
    };
    let (_, data_source) = ids(req);
    let wanted: Vec<&str> = body["filters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["attribute"] == "STATUS")
        .flat_map(|f| f["values"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    let summaries: Vec<Value> = jobs
        .started
        .iter()
        .filter(|j| j.data_source == data_source)
        .map(summary)
        .filter(|s| {
            wanted.is_empty() || s["status"].as_str().is_some_and(|st| wanted.contains(&st))
        })
        .collect();
    ok(
        "application/json",
        json!({ "ingestionJobSummaries": summaries }),
    )
}

impl Jobs {
    pub(super) fn finish_all(&mut self) {
        for job in &mut self.started {
            job.running = false;
        }
    }

    pub(super) fn descriptions(&self) -> Vec<String> {
        self.started
            .iter()
            .map(|j| j.description.clone().unwrap_or_default())
            .collect()
    }
}

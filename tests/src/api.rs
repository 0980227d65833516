//! The master's HTTP API as the tests use it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use burst_master::model::{Build, BuildId, Instance, SubmitRequest, SubmitResponse, WorkerView};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::master::Master;
use crate::wait;

impl Master {
    /// GETs `path` (e.g. `/api/v1/workers`); a non-2xx answer is an error.
    pub async fn api_get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.get_bytes(path).await?;
        serde_json::from_slice(&body)
            .with_context(|| format!("GET {path}: bad JSON {}", String::from_utf8_lossy(&body)))
    }

    /// GETs a UI page (`/builds/1`, `/sources`) with the admin token as a
    /// bearer: its HTML.
    pub async fn ui_get(&self, path: &str) -> anyhow::Result<String> {
        Ok(String::from_utf8_lossy(&self.get_bytes(path).await?).into_owned())
    }

    /// GETs `path` with the admin token; the body of a 2xx answer.
    async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.url());
        let resp = self
            .http
            .get(&url)
            .bearer_auth(self.admin_token())
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.with_context(|| format!("GET {url}"))?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes.to_vec())
    }

    /// POSTs JSON to `path`; returns the status and the JSON answer.
    pub async fn api_post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.url());
        let resp = self
            .http
            .post(&url)
            .bearer_auth(self.admin_token())
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.with_context(|| format!("POST {url}"))?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, json))
    }

    /// Any request as an arbitrary caller: `token` (None: no Authorization
    /// header), extra `headers`, an optional JSON body. Returns the status
    /// and the answer (JSON, else its text as a string).
    pub async fn api_request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.url());
        let mut rb = self.http.request(method.clone(), &url);
        if let Some(token) = token {
            rb = rb.bearer_auth(token);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(body) = body {
            rb = rb.json(body);
        }
        let resp = rb.send().await.with_context(|| format!("{method} {url}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, json))
    }

    /// `GET /metrics` as the admin: the Prometheus text exposition.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let bytes = self.get_bytes("/metrics").await?;
        String::from_utf8(bytes).context("GET /metrics: not UTF-8")
    }

    /// `GET /readyz` without a token: the status and the text.
    pub async fn readyz(&self) -> anyhow::Result<(u16, String)> {
        let url = format!("{}/readyz", self.url());
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        Ok((
            status,
            resp.text().await.with_context(|| format!("GET {url}"))?,
        ))
    }

    /// Creates an API token as admin; its value.
    pub async fn create_token(&self, name: &str, role: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({ "name": name, "role": role });
        let (status, answer) = self.api_post("/api/v1/tokens", &body).await?;
        if status != 201 {
            bail!("create token {name}: HTTP {status}: {answer}");
        }
        answer["token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("create token {name}: no token in {answer}"))
    }

    /// Submits `builder` with `params`; the ids of the builds it created.
    pub async fn submit(
        &self,
        builder: &str,
        params: &[(&str, &str)],
    ) -> anyhow::Result<Vec<BuildId>> {
        let req = SubmitRequest {
            builder: builder.to_owned(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        };
        let (status, body) = self
            .api_post("/api/v1/builds", &serde_json::to_value(&req)?)
            .await?;
        if status != 201 {
            bail!("submit {builder}: HTTP {status}: {body}");
        }
        let resp: SubmitResponse = serde_json::from_value(body)?;
        Ok(resp.builds)
    }

    pub async fn build(&self, id: BuildId) -> anyhow::Result<Build> {
        self.api_get(&format!("/api/v1/builds/{id}")).await
    }

    /// Waits for build `id` to finish, at most `timeout`.
    pub async fn wait_build(&self, id: BuildId, timeout: Duration) -> anyhow::Result<Build> {
        wait::until_seen(
            &format!("build {id} to finish"),
            timeout,
            || self.build(id),
            |b| b.state.is_finished(),
        )
        .await
    }

    /// Build `id` as the API's JSON, for tests that look at its fields.
    pub async fn build_json(&self, id: BuildId) -> anyhow::Result<Value> {
        self.api_get(&format!("/api/v1/builds/{id}")).await
    }

    /// Waits until `done` holds for build `id`'s JSON; the error names
    /// `what` and shows the build as last seen.
    pub async fn wait_build_json(
        &self,
        id: BuildId,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        wait::until_seen(
            &format!("build {id}: {what}"),
            timeout,
            || self.build_json(id),
            done,
        )
        .await
    }

    /// Waits for build `id` to finish, whatever its outcome; its JSON.
    pub async fn finished_json(&self, id: BuildId, timeout: Duration) -> anyhow::Result<Value> {
        self.wait_build_json(id, timeout, "a final state", |b| {
            !matches!(b["state"].as_str(), Some("queued" | "running"))
        })
        .await
    }

    /// Every ledger row as JSON, newest first.
    pub async fn instances_json(&self) -> anyhow::Result<Vec<Value>> {
        self.api_get("/api/v1/instances?limit=1000").await
    }

    /// The ledger row of `worker_id` as JSON.
    pub async fn instance_json(&self, worker_id: &str) -> anyhow::Result<Value> {
        self.instances_json()
            .await?
            .into_iter()
            .find(|r| r["worker_id"] == worker_id)
            .with_context(|| format!("no ledger row for {worker_id}"))
    }

    /// Asks the master to cancel build `id`.
    pub async fn cancel(&self, id: BuildId) -> anyhow::Result<()> {
        let (status, body) = self
            .api_post(&format!("/api/v1/builds/{id}/cancel"), &Value::Null)
            .await?;
        // 409: it finished first, which is what a cleanup cancel wants too.
        if !(200..300).contains(&status) && status != 409 {
            bail!("cancel build {id}: HTTP {status}: {body}");
        }
        Ok(())
    }

    /// Waits until build `id`'s step `index` of its latest attempt runs.
    pub async fn wait_step_running(
        &self,
        id: BuildId,
        index: u32,
        timeout: Duration,
    ) -> anyhow::Result<Build> {
        use burst_master::model::StepState;
        wait::until(
            &format!("build {id} step {index} to run"),
            timeout,
            || async move {
                let b = self.build(id).await?;
                if b.state.is_finished() {
                    bail!(
                        "build {id} finished ({:?}) before step {index} ran: {b:?}",
                        b.state
                    );
                }
                let running = b.attempts.last().is_some_and(|a| {
                    a.steps
                        .iter()
                        .any(|s| s.index == index && s.state == StepState::Running)
                });
                Ok(running.then_some(b))
            },
        )
        .await
    }

    /// `GET /api/v1/workers`: the scheduler's live view.
    pub async fn workers(&self) -> anyhow::Result<Vec<WorkerView>> {
        self.api_get("/api/v1/workers").await
    }

    /// `GET /api/v1/instances`: the whole ledger, newest first.
    pub async fn instances(&self) -> anyhow::Result<Vec<Instance>> {
        self.api_get("/api/v1/instances").await
    }

    /// `GET /api/v1/instances?live=true`.
    pub async fn live_instances(&self) -> anyhow::Result<Vec<Instance>> {
        self.api_get("/api/v1/instances?live=true").await
    }

    /// The whole log of build `id`, as `burst logs` prints it.
    pub async fn log_text(&self, id: BuildId) -> anyhow::Result<String> {
        Ok(String::from_utf8_lossy(&self.log_bytes(id).await?).into_owned())
    }

    /// The whole log of build `id`, bytes as the steps printed them.
    pub async fn log_bytes(&self, id: BuildId) -> anyhow::Result<Vec<u8>> {
        self.get_bytes(&format!("/api/v1/builds/{id}/log")).await
    }

    /// `GET /api/v1/builds/{id}/log?follow=true`: the live log, read with
    /// `chunk()` as the master sends it.
    pub async fn follow_log(&self, id: BuildId) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}/api/v1/builds/{id}/log?follow=true", self.url());
        // Its own client: the shared one times out whole requests.
        let resp = reqwest::Client::new()
            .get(&url)
            .bearer_auth(self.admin_token())
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !resp.status().is_success() {
            bail!("GET {url}: {}", resp.status());
        }
        Ok(resp)
    }

    /// Waits until build `id`'s step logs are compressed (the master does
    /// it once the finished build is saved); their paths.
    pub async fn wait_logs_compressed(
        &self,
        id: BuildId,
        timeout: Duration,
    ) -> anyhow::Result<Vec<std::path::PathBuf>> {
        let dir = self.state_dir().join("logs").join(id.to_string());
        wait::until(
            &format!("the logs of build {id} to be compressed"),
            timeout,
            || {
                let dir = dir.clone();
                async move {
                    let names: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
                        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                        .unwrap_or_default();
                    let plain = names.iter().any(|p| {
                        p.extension()
                            .is_some_and(|e| e == "log" || e == "offset" || e == "tmp")
                    });
                    let packed: Vec<_> = names
                        .into_iter()
                        .filter(|p| p.extension().is_some_and(|e| e == "zst"))
                        .collect();
                    Ok((!plain && !packed.is_empty()).then_some(packed))
                }
            },
        )
        .await
    }

    /// Waits until at least `n` workers are idle.
    pub async fn wait_idle_workers(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<WorkerView>> {
        wait::until(&format!("{n} idle workers"), timeout, || async move {
            let workers = self.workers().await?;
            let idle = workers.iter().filter(|w| w.state == "idle").count();
            Ok((idle >= n).then_some(workers))
        })
        .await
    }
}

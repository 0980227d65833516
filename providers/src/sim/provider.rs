//! The sim provider: each call is one request to the fleet simulator.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::wire::{Reply, Request, MAX_LINE};
use crate::{Health, LaunchSpec, Launched, ListedInstance, Provider, ProviderError};

/// A simulator that does not answer in this long is treated as down.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct SimProvider {
    socket: PathBuf,
}

impl SimProvider {
    pub fn new(socket: PathBuf) -> Self {
        Self { socket }
    }

    async fn ask(&self, request: &Request) -> Result<Reply, ProviderError> {
        let socket = self.socket.display().to_string();
        let asked = async {
            let mut stream = UnixStream::connect(&self.socket).await?;
            let mut line = serde_json::to_vec(request)?;
            line.push(b'\n');
            stream.write_all(&line).await?;
            let mut answer = String::new();
            BufReader::new(stream)
                .take(MAX_LINE as u64)
                .read_line(&mut answer)
                .await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, asked)
            .await
            .map_err(|_| {
                ProviderError::transient(format!(
                    "failed to hear from the fleet simulator at {socket} within {ANSWER_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| {
                ProviderError::transient(format!(
                    "failed to reach the fleet simulator at {socket}: {e}"
                ))
                .with_source(e)
            })?;
        let reply: Reply = serde_json::from_str(&answer).map_err(|e| {
            ProviderError::transient(format!(
                "failed to read the fleet simulator's answer {answer:?}: {e}"
            ))
            .with_source(e)
        })?;
        match reply.error {
            Some(error) => Err(ProviderError::transient(format!(
                "the fleet simulator refused: {error}"
            ))),
            None => Ok(reply),
        }
    }
}

#[async_trait]
impl Provider for SimProvider {
    fn kind(&self) -> &'static str {
        "sim"
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, ProviderError> {
        if spec.master_pin.is_some() {
            return Err(ProviderError::permanent(
                "failed to launch a simulated worker: the fleet simulator speaks plaintext only",
            ));
        }
        self.ask(&Request::Launch {
            worker_id: spec.worker_id.clone(),
            master_url: spec.master_url.clone(),
            token: spec.token.clone(),
            labels: spec.labels.clone(),
        })
        .await?;
        Ok(Launched {
            provider_id: spec.worker_id.clone(),
            details: serde_json::Value::Null,
        })
    }

    async fn terminate(&self, worker_id: &str, _provider_id: &str) -> Result<(), ProviderError> {
        self.ask(&Request::Terminate {
            worker_id: worker_id.to_owned(),
        })
        .await
        .map(drop)
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        let reply = self.ask(&Request::List).await?;
        Ok(reply
            .workers
            .into_iter()
            .map(|worker_id| ListedInstance {
                provider_id: worker_id.clone(),
                worker_id,
            })
            .collect())
    }

    async fn health(&self, worker_id: &str, _provider_id: &str) -> Result<Health, ProviderError> {
        let reply = self
            .ask(&Request::Health {
                worker_id: worker_id.to_owned(),
            })
            .await?;
        Ok(if reply.running {
            Health::Running
        } else {
            Health::Exited {
                detail: "the simulated session ended".to_owned(),
            }
        })
    }
}

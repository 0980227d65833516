//! A fake worker speaking the real protocol (burst-proto's generated
//! client), for tests that play an attacker: it says hello with whatever
//! token it was given and, once welcomed, sends whatever the test says.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use burst_proto::worker_service_client::WorkerServiceClient;
use burst_proto::{master_message, worker_message, Hello, MasterMessage, Platform, WorkerMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// How the master answered a hello.
#[derive(Debug)]
pub enum Answer {
    /// Welcomed: the session stays open for [`Session::send`].
    Welcomed(Box<Session>),
    /// `Refused` with this reason.
    Refused(String),
    /// The session failed outright (a gRPC status).
    Failed(String),
}

/// An open fake-worker session.
#[derive(Debug)]
pub struct Session {
    tx: mpsc::Sender<WorkerMessage>,
    inbound: tonic::Streaming<MasterMessage>,
}

impl Session {
    pub async fn send(&self, msg: worker_message::Msg) -> Result<()> {
        self.tx
            .send(WorkerMessage { msg: Some(msg) })
            .await
            .context("failed to send on the fake session")
    }

    /// The next message from the master, within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<master_message::Msg>> {
        let msg = tokio::time::timeout(timeout, self.inbound.message())
            .await
            .context("no message from the master in time")??;
        Ok(msg.and_then(|m| m.msg))
    }
}

/// A hello as a Linux worker would say it.
pub fn hello(worker_id: &str, token: &str) -> Hello {
    Hello {
        worker_id: worker_id.to_owned(),
        token: token.to_owned(),
        protocol_version: burst_proto::PROTOCOL_VERSION,
        platform: Some(Platform {
            os: "linux".into(),
            arch: "x86_64".into(),
            default_shell: "sh".into(),
        }),
        labels: vec![],
        capacity: 1,
        version: "fake".into(),
        running_steps: vec![],
        finished_steps: vec![],
    }
}

/// Dials `worker_url` and says `hello`.
pub async fn connect(worker_url: &str, hello: Hello) -> Result<Answer> {
    let mut client = WorkerServiceClient::connect(worker_url.to_owned()).await?;
    let (tx, rx) = mpsc::channel(16);
    tx.send(WorkerMessage {
        msg: Some(worker_message::Msg::Hello(hello)),
    })
    .await?;
    let mut inbound = match client.session(ReceiverStream::new(rx)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Ok(Answer::Failed(status.message().to_owned())),
    };
    let first = tokio::time::timeout(Duration::from_secs(30), inbound.message())
        .await
        .context("no answer to the hello in time")?;
    match first.map(|m| m.and_then(|m| m.msg)) {
        Ok(Some(master_message::Msg::Welcome(_))) => {
            Ok(Answer::Welcomed(Box::new(Session { tx, inbound })))
        }
        Ok(Some(master_message::Msg::Refused(r))) => Ok(Answer::Refused(r.reason)),
        Ok(other) => bail!("the master answered a hello with {other:?}"),
        Err(status) => Ok(Answer::Failed(status.message().to_owned())),
    }
}

/// A local pool's `command` that plays a worker which never connects: it
/// takes the launch token from stdin, as burst-worker does, writes it to
/// `capture` for the test, and sleeps. The test can then say hello in its
/// place.
pub fn token_capturing_command(capture: &Path) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        "IFS= read -r t; printf '%s\\n' \"$t\" > \"$0\"; exec sleep 600".into(),
        capture.display().to_string(),
    ]
}

/// A local pool whose one "worker" never dials in (`sleep 1000`): a real
/// worker id stays launching with a token only the master knows, for tests
/// that start or fake workers by hand. Builder `hello` runs on it.
pub const SLEEPING_POOL: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1
min_idle = 1
start_timeout = "120s"

[pools.local.local]
command = ["sleep", "1000"]

[[builders]]
name = "hello"
labels = ["linux"]

[[builders.steps]]
name = "greet"
run = "echo hi"
"#;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use burst_common::error_chain::Chain;
use burst_proto::worker_service_server::WorkerServiceServer;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use super::reload::{PoolContext, Reloader};
use super::{listen, signals};
use crate::api::{self, AppState};
use crate::artifacts::ArtifactStore;
use crate::caches::{CacheKeys, CacheStore};
use crate::config::{Config, LiveConfig};
use crate::grpc::{CacheService, WorkerGrpc};
use crate::identity;
use crate::janitor::{BuildData, Janitor};
use crate::logging::LogFormat;
use crate::logs::{LogStore, Mask};
use crate::metrics::{MeteredProvider, MeteredStore, Metrics};
use crate::scheduler::{PoolSpec, Scheduler, SchedulerSettings, WallClock};
use crate::store::{SqliteStore, Store};
use burst_providers::config::Context as ProviderContext;

/// Largest message a worker may send (output messages carry up to 512 KiB).
const GRPC_MAX_MESSAGE: usize = 1024 * 1024;
/// HTTP/2 receive windows for worker connections: a step's output flows
/// without waiting for window updates every 64 KiB (h2's default). Credit,
/// not memory: the session reader still awaits each write.
const GRPC_STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const GRPC_CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;
/// Largest HTTP/2 frame a worker may send: a 512 KiB output message goes in
/// one or two frames, not 32 of h2's default 16 KiB.
const GRPC_MAX_FRAME: u32 = 1024 * 1024;
/// Streams one worker connection may open at once (it uses one).
const GRPC_STREAMS_PER_CONNECTION: u32 = 4;

/// Written to `<state_dir>/run.json` once the master listens, so scripts and
/// tests find the real addresses (ports may be 0 in the config).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub pid: u32,
    pub master_id: String,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub advertise_url: String,
    /// The admin token's file, when it is in one; the CLI reads it to talk
    /// to a local master without BURST_TOKEN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
    /// Set when the master serves TLS (both endpoints are then https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RunTls>,
}

/// What a client of a TLS master trusts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunTls {
    /// The pin workers are given (`sha256:…`).
    pub pin: String,
    /// The generated CA (self-signed masters), which a CLI on this machine
    /// trusts for this master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl RunInfo {
    /// The API's base URL, `https://` when the master serves TLS; an
    /// unspecified listen address (`0.0.0.0`) is reached on loopback.
    pub fn api_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut addr = self.http;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("{scheme}://{addr}")
    }
}

/// Runs the master until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let state_dir = config.master.state_dir.clone();
    let source = config_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "embedded defaults".into());
    tracing::info!(config = %source, state_dir = %state_dir.display(), "starting burst master");
    super::binding::check(&config)?;

    let nofile = listen::raise_nofile_limit();
    // Owner-only: the database, logs and worker directories are in here.
    std::fs::create_dir_all(&state_dir)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o700))
        })
        .with_context(|| format!("failed to make {} private", state_dir.display()))?;
    let known_id = identity::known(config.master.id.as_deref(), &state_dir)
        .context("failed to find this master's id")?;
    let store = match SqliteStore::open(&state_dir).await {
        Ok(store) => store,
        Err(e) => {
            // Refuse to run on it, but first reap what the last run left at
            // the providers: nobody else would.
            match &known_id {
                Some(id) => super::reap::reap_listed(&config, id, &state_dir).await,
                None => tracing::error!(
                    "no master id in the config or {}; workers of a previous run cannot be found",
                    state_dir.join(identity::ID_FILE).display()
                ),
            }
            return Err(anyhow::Error::new(e).context("failed to open the store"));
        }
    };
    let master_id = match known_id {
        Some(id) => id,
        None => {
            // First start, or a state dir from before `master.id`: keep the
            // id the database holds, in a file that outlives it.
            let id = store
                .master_id()
                .await
                .context("failed to read the master id")?;
            identity::remember(&state_dir, &id).context("failed to save the master id")?;
            id
        }
    };
    let metrics = Arc::new(Metrics::new());
    let sqlite = store.clone();
    let store: Arc<dyn Store> = MeteredStore::wrap(Arc::new(store), metrics.clone());
    let admin_token = super::admin_token::install(&config, store.as_ref())
        .await
        .context("failed to set up the admin token")?;
    let mask =
        Mask::new(config.secret_values.values()).context("failed to set up secret masking")?;
    let logs = Arc::new(
        LogStore::new(&state_dir)
            .with_limit(config.master.step_log_limit.as_u64())
            .with_mask(mask),
    );

    let artifacts = Arc::new(
        ArtifactStore::from_config(&config.artifacts, &state_dir)
            .context("failed to set up the artifact store ([artifacts])")?,
    );

    let caches = Arc::new(CacheStore::new(artifacts.objects().clone()));

    let grpc_listener = TcpListener::bind(config.master.grpc_listen)
        .await
        .with_context(|| {
            format!(
                "failed to listen for workers on {}",
                config.master.grpc_listen
            )
        })?;
    let http_listener = TcpListener::bind(config.master.http_listen)
        .await
        .with_context(|| {
            format!(
                "failed to listen for the API on {}",
                config.master.http_listen
            )
        })?;
    let grpc_addr = grpc_listener
        .local_addr()
        .context("failed to read the worker endpoint's address")?;
    let http_addr = http_listener
        .local_addr()
        .context("failed to read the API's address")?;
    let scheme = config.master.scheme();
    let advertise_url = config
        .master
        .advertise_url
        .as_ref()
        .map_or_else(|| format!("{scheme}://{grpc_addr}"), ToString::to_string);
    let tls = match &config.master.tls {
        Some(tls) => {
            let names = crate::tls::server_names(&config, http_addr, grpc_addr);
            let loaded = crate::tls::ServerTls::load(tls, &state_dir, &names)
                .context("failed to set up TLS (master.tls)")?;
            tracing::info!(pin = %loaded.pin, "serving TLS; workers are given this certificate pin");
            Some(loaded)
        }
        None => None,
    };

    let mut pools = pool_specs(&config, &master_id, &state_dir, &advertise_url, grpc_addr)?;
    for pool in &mut pools {
        pool.provider = MeteredProvider::wrap(pool.provider.clone(), &pool.name, metrics.clone());
    }
    let volume_pools: Vec<(String, Arc<dyn burst_providers::Provider>)> = pools
        .iter()
        .filter(|p| p.provider.kind() == "docker")
        .map(|p| (p.name.clone(), p.provider.clone()))
        .collect();
    let cache_keys = CacheKeys::default();
    let settings = SchedulerSettings {
        master_id: master_id.clone(),
        advertise_url: advertise_url.clone(),
        master_pin: tls.as_ref().map(|t| t.pin.to_string()),
        heartbeat_interval: config.master.heartbeat_interval.get(),
        heartbeat_misses: config.master.heartbeat_misses.get(),
        step_lease: config.master.step_lease.get(),
        shutdown_grace: config.master.shutdown_grace,
        health_interval: Duration::from_secs(1),
        secrets: config.secret_values.clone(),
        clock: WallClock::System,
        artifact_limit: config.artifacts.max_build_bytes.as_u64(),
        cache_keys: cache_keys.clone(),
        budget: config.budget.clone(),
    };
    let (scheduler, handle) = Scheduler::new(settings, pools, store.clone(), logs.clone());
    let scheduler = scheduler.with_metrics(metrics.clone());
    let live = LiveConfig::new(Arc::new(config.clone()));
    let runners =
        super::github::runner_manager(&live, store.clone(), handle.clone(), metrics.clone())?;
    let scheduler = match &runners {
        Some(m) => scheduler.with_runner_configs(m.clone()),
        None => scheduler,
    };
    let scheduler_task = tokio::spawn(scheduler.run());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cap = listen::connection_cap(config.master.max_connections, nofile);
    let grpc = {
        // Output chunks are 32 KiB; nothing a worker sends needs more, and
        // tonic's 4 MB default would let a hello carry a 3 MB worker id.
        let workers = WorkerGrpc::new(
            handle.clone(),
            logs.clone(),
            artifacts.clone(),
            CacheService {
                store: caches.clone(),
                keys: cache_keys.clone(),
                logs: logs.clone(),
                metrics: metrics.clone(),
                max_bytes: config.artifacts.max_cache_bytes.as_u64(),
            },
        )
        .with_metrics(metrics.clone());
        let service = WorkerServiceServer::new(workers).max_decoding_message_size(GRPC_MAX_MESSAGE);
        let mut stop = stop_rx.clone();
        tokio::spawn(
            tonic::transport::Server::builder()
                // A worker whose connection silently died is noticed.
                .http2_keepalive_interval(Some(Duration::from_secs(20)))
                .http2_keepalive_timeout(Some(Duration::from_secs(20)))
                // A worker opens one session stream at a time.
                .max_concurrent_streams(Some(GRPC_STREAMS_PER_CONNECTION))
                .initial_stream_window_size(Some(GRPC_STREAM_WINDOW))
                .initial_connection_window_size(Some(GRPC_CONNECTION_WINDOW))
                .max_frame_size(Some(GRPC_MAX_FRAME))
                .add_service(service)
                .serve_with_incoming_shutdown(
                    listen::grpc_incoming(grpc_listener, cap, tls.as_ref().map(|t| t.grpc.clone())),
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                ),
        )
    };
    let reloader = Arc::new(Reloader::new(
        config_path.clone(),
        live.clone(),
        handle.clone(),
        PoolContext {
            master_id: master_id.clone(),
            state_dir: state_dir.clone(),
            advertise_url: advertise_url.clone(),
            grpc_addr,
            metrics: metrics.clone(),
        },
    ));
    let sighup = super::reload::on_sighup(reloader.clone(), stop_rx.clone());
    let janitor = Arc::new(
        Janitor::new(store.clone(), live.clone())
            .with_data(logs.clone() as Arc<dyn BuildData>)
            .with_data(artifacts.clone() as Arc<dyn BuildData>)
            .with_volume_pools(volume_pools)
            .with_caches(caches.clone()),
    );
    let janitor_task = crate::janitor::spawn(janitor.clone(), live.clone(), stop_rx.clone());
    let super::triggers::Started {
        mut hooks,
        tasks: mut trigger_tasks,
    } = super::triggers::start(
        live.clone(),
        store.clone(),
        handle.clone(),
        metrics.clone(),
        format!("{scheme}://{http_addr}"),
        stop_rx.clone(),
    )?;
    if let Some(m) = &runners {
        trigger_tasks.push(tokio::spawn(m.clone().run(stop_rx.clone())));
    }
    hooks.runners = runners;
    let http = {
        let state = AppState {
            config: live,
            reloader,
            janitor,
            store,
            scheduler: handle.clone(),
            logs,
            artifacts,
            metrics,
            sessions: Default::default(),
        };
        let app = api::router(state).layer(axum::Extension(hooks));
        let acceptor = tls.as_ref().map(|t| t.http.clone());
        tokio::spawn(listen::serve_http(
            http_listener,
            app,
            cap,
            acceptor,
            stop_rx.clone(),
        ))
    };

    let info = RunInfo {
        pid: std::process::id(),
        master_id: master_id.clone(),
        http: http_addr,
        grpc: grpc_addr,
        advertise_url,
        admin_token_file: match admin_token {
            super::admin_token::Source::File(path) => Some(path),
            super::admin_token::Source::Env(_) => None,
        },
        tls: tls.as_ref().map(|t| RunTls {
            pin: t.pin.to_string(),
            ca_file: t.ca_file.clone(),
        }),
    };
    write_run_info(&state_dir, &info).await;
    tracing::info!(
        master_id = %master_id,
        api = %info.api_url(),
        workers = %info.advertise_url,
        "burst master ready"
    );
    // JSON logs stay pure JSON; the line above says the same.
    if config.master.log_format == LogFormat::Text {
        eprintln!(
            "burst master {master_id} ready: API {}, workers dial {}",
            info.api_url(),
            info.advertise_url
        );
    }

    super::notify::ready(&format!("API {}", info.api_url()));

    signals::terminate().await;
    super::notify::stopping();
    tracing::info!("stopping: finishing running builds, then terminating every worker");
    if let Err(e) = handle.shutdown().await {
        tracing::warn!(error = %e, "scheduler stopped before shutdown completed");
    }
    let _ = stop_tx.send(true);
    let _ = scheduler_task.await;
    // Pollers and reporters saw the stop; the hub holds nothing unsaved
    // but tree-stable timers, which promised no build.
    for task in trigger_tasks {
        task.abort();
    }
    // Both saw the stop; a pass in flight is cut short (what it deleted
    // stays deleted, the rest waits for the next start).
    sighup.abort();
    janitor_task.abort();
    // Followers of live logs may hold the API open; do not wait for ever.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = grpc.await;
        let _ = http.await;
    })
    .await;
    // Bounded like the listeners: a connection still held cannot stall the exit.
    if tokio::time::timeout(Duration::from_secs(5), sqlite.close())
        .await
        .is_err()
    {
        tracing::warn!("the database did not close within 5s");
    }
    let _ = tokio::fs::remove_file(state_dir.join("run.json")).await;
    tracing::info!("burst master stopped");
    Ok(())
}

/// Builds each pool's provider through the registry.
pub(super) fn pool_specs(
    config: &Config,
    master_id: &str,
    state_dir: &std::path::Path,
    advertise_url: &str,
    grpc_listen: SocketAddr,
) -> anyhow::Result<Vec<PoolSpec>> {
    let mut pools = Vec::new();
    for (name, pool) in &config.pools {
        let ctx = ProviderContext {
            pool: name.clone(),
            master_id: master_id.to_owned(),
            state_dir: state_dir.to_path_buf(),
            advertise_url: advertise_url.to_owned(),
            grpc_listen,
            min_idle: pool.min_idle,
            backoff_min: pool.backoff_min.get(),
            backoff_max: pool.backoff_max,
            cache_volumes: crate::config::cache_volumes(config, name),
        };
        let provider = pool
            .provider
            .build(&ctx)
            .with_context(|| format!("failed to set up pool {name}"))?;
        pools.push(PoolSpec {
            name: name.clone(),
            config: pool.clone(),
            provider,
        });
    }
    Ok(pools)
}

async fn write_run_info(state_dir: &std::path::Path, info: &RunInfo) {
    let path = state_dir.join("run.json");
    match serde_json::to_vec_pretty(info) {
        Ok(json) => {
            if let Err(e) = tokio::fs::write(&path, json).await {
                tracing::warn!(path = %path.display(), error = %Chain(&e), "failed to write run info");
            }
        }
        Err(e) => tracing::warn!(error = %Chain(&e), "failed to encode run info"),
    }
}

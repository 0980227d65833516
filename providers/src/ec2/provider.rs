//! The EC2 [`Provider`]: launch, terminate, list and health over the EC2 API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{Instance, InstanceStateName};
use aws_sdk_ec2::Client;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use super::errors::from_sdk;
use super::launch::{self, candidates, Request, Started};
use super::pricing::Pricing;
use super::retry::with_retries;
use super::settings::Ec2Settings;
use super::tags::{pool_filters, tag_specifications, tag_value, worker_filter, worker_tags};
use super::userdata::{render_user_data, UserDataValues};
use super::{client, contract};
use crate::{Health, LaunchSpec, Launched, ListedInstance, Provider, ProviderError};

/// Health answers are shared by every starting worker of the pool: one
/// DescribeInstances per period, however many workers are starting.
const HEALTH_TTL: Duration = Duration::from_millis(900);

/// What health needs to know about one instance.
#[derive(Debug, Clone)]
struct Seen {
    state: InstanceStateName,
    reason: Option<String>,
}

pub struct Ec2Provider {
    settings: Ec2Settings,
    client: OnceCell<Client>,
    /// Root device name of the AMI, looked up once when the root volume is
    /// resized and no device name was given.
    root_device: OnceCell<Option<String>>,
    /// Diversified launches start at the next type each time.
    turn: AtomicUsize,
    pricing: Pricing,
    health: Mutex<Option<(Instant, HashMap<String, Seen>)>>,
}

impl Ec2Provider {
    pub fn new(settings: Ec2Settings) -> Result<Self, ProviderError> {
        if settings.ami.is_none() && settings.launch_template.is_none() {
            return Err(ProviderError::permanent(
                "failed to configure the ec2 provider: set an AMI or a launch template",
            ));
        }
        if settings.instance_types.is_empty() && settings.launch_template.is_none() {
            return Err(ProviderError::permanent(
                "failed to configure the ec2 provider: list at least one instance type",
            ));
        }
        let pricing = Pricing::new(settings.price_per_hour.clone(), settings.platform);
        Ok(Self {
            settings,
            client: OnceCell::new(),
            root_device: OnceCell::new(),
            turn: AtomicUsize::new(0),
            pricing,
            health: Mutex::new(None),
        })
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| {
                client::build(&self.settings.region, self.settings.endpoint_url.as_deref())
            })
            .await
    }

    async fn root_device(&self) -> Result<Option<String>, ProviderError> {
        let root = &self.settings.root_volume;
        if root.size_gib.is_none() && root.volume_type.is_none() {
            return Ok(None);
        }
        if let Some(device) = &root.device_name {
            return Ok(Some(device.clone()));
        }
        let Some(ami) = &self.settings.ami else {
            return Err(ProviderError::permanent(
                "failed to size the root volume: set root_device_name when the AMI comes from the launch template",
            ));
        };
        let client = self.client().await;
        self.root_device
            .get_or_try_init(|| async {
                let out = with_retries(&self.settings.retry, "DescribeImages", || async {
                    client
                        .describe_images()
                        .image_ids(ami)
                        .send()
                        .await
                        .map_err(|e| from_sdk(&format!("describe AMI {ami}"), e))
                })
                .await?;
                let device = out
                    .images()
                    .first()
                    .and_then(|i| i.root_device_name())
                    .map(str::to_owned);
                match device {
                    Some(d) => Ok(Some(d)),
                    None => Err(ProviderError::permanent(format!(
                        "failed to find the root device of AMI {ami}: set root_device_name"
                    ))),
                }
            })
            .await
            .cloned()
    }

    /// Instances of this pool (live ones only, or in any state).
    async fn describe(&self, live_only: bool) -> Result<Vec<Instance>, ProviderError> {
        let s = &self.settings;
        let client = self.client().await;
        with_retries(&s.retry, "DescribeInstances", || async {
            let pages = client
                .describe_instances()
                .set_filters(Some(pool_filters(&s.master_id, &s.pool, live_only)))
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| from_sdk("list instances", e))?;
            Ok(pages
                .iter()
                .flat_map(|p| p.reservations())
                .flat_map(|r| r.instances())
                .cloned()
                .collect())
        })
        .await
    }

    /// Best effort after a launch whose outcome is unknown (a timeout after
    /// the request went out): whatever carries this worker's tag goes.
    async fn sweep_worker(&self, worker_id: &str) {
        let client = self.client().await;
        let found = client
            .describe_instances()
            .set_filters(Some(
                [
                    pool_filters(&self.settings.master_id, &self.settings.pool, true),
                    vec![worker_filter(worker_id)],
                ]
                .concat(),
            ))
            .send()
            .await;
        let ids: Vec<String> = match found {
            Ok(out) => out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.instance_id().map(str::to_owned))
                .collect(),
            Err(e) => {
                tracing::warn!(worker = worker_id, error = %from_sdk("look for a half-launched instance", e), "sweep failed");
                return;
            }
        };
        for id in ids {
            tracing::warn!(worker = worker_id, instance = %id, "terminating an instance from a failed launch");
            if let Err(e) = self.terminate(worker_id, &id).await {
                tracing::warn!(worker = worker_id, instance = %id, error = %e, "sweep failed");
            }
        }
    }

    async fn details(&self, started: &Started) -> serde_json::Value {
        let i = &started.instance;
        let instance_type = i.instance_type().map(|t| t.as_str().to_owned());
        let az = i
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_owned);
        let price = match (&instance_type, &az) {
            (Some(t), Some(az)) => {
                self.pricing
                    .price(
                        self.client().await,
                        &self.settings.retry,
                        started.spot,
                        t,
                        az,
                    )
                    .await
            }
            (Some(t), None) if !started.spot => {
                self.pricing
                    .price(self.client().await, &self.settings.retry, false, t, "")
                    .await
            }
            _ => None,
        };
        serde_json::json!({
            "instance_type": instance_type,
            "market": if started.spot { "spot" } else { "on-demand" },
            "az": az,
            "region": self.settings.region,
            "price_per_hour": price.map(|p| p.per_hour),
            "price_source": price.map(|p| p.source),
            "fell_back_on": started.fell_back_on,
            "image_id": i.image_id(),
            "subnet_id": i.subnet_id(),
            "private_ip": i.private_ip_address(),
            "launch_time": i.launch_time().map(|t| t.to_string()),
        })
    }
}

#[async_trait]
impl Provider for Ec2Provider {
    fn kind(&self) -> &'static str {
        "ec2"
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, ProviderError> {
        let s = &self.settings;
        let user_data = render_user_data(
            s.platform,
            &UserDataValues {
                master_url: &spec.master_url,
                worker_id: &spec.worker_id,
                token: &spec.token,
                labels: &spec.labels,
                imds_url: &s.imds_url,
                master_pin: spec.master_pin.as_deref().unwrap_or_default(),
            },
        )?;
        let user_data_b64 = aws_smithy_types::base64::encode(user_data.as_bytes());
        let tags = tag_specifications(&worker_tags(
            &s.tags,
            &spec.master_id,
            &spec.pool,
            &spec.worker_id,
        ));
        let root_device = self.root_device().await?;
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let cands = candidates(&s.instance_types, &s.subnets, s.type_strategy, turn);
        let req = Request {
            settings: s,
            worker_id: &spec.worker_id,
            user_data_b64: &user_data_b64,
            tags: &tags,
            root_device: root_device.as_deref(),
        };
        let started = match launch::launch(self.client().await, &req, &cands).await {
            Ok(started) => started,
            Err(e) => {
                // No code: the call may have reached EC2 before it failed.
                if e.code.is_none() && !e.is_permanent() {
                    self.sweep_worker(&spec.worker_id).await;
                }
                return Err(e);
            }
        };
        let provider_id = started
            .instance
            .instance_id()
            .ok_or_else(|| ProviderError::transient("failed to launch: no instance id returned"))?
            .to_owned();
        let details = self.details(&started).await;
        tracing::info!(worker = %spec.worker_id, instance = %provider_id, %details, "launched EC2 instance");
        Ok(Launched {
            provider_id,
            details,
        })
    }

    async fn terminate(&self, worker_id: &str, provider_id: &str) -> Result<(), ProviderError> {
        if provider_id.is_empty() {
            self.sweep_worker(worker_id).await;
            return Ok(());
        }
        let client = self.client().await;
        let result = with_retries(&self.settings.retry, "TerminateInstances", || async {
            client
                .terminate_instances()
                .instance_ids(provider_id)
                .send()
                .await
                .map_err(|e| from_sdk(&format!("terminate instance {provider_id}"), e))
        })
        .await;
        match result {
            Ok(_) => Ok(()),
            // Already gone is success.
            Err(e) if e.code.as_deref() == Some("InvalidInstanceID.NotFound") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        Ok(self
            .describe(true)
            .await?
            .iter()
            .filter_map(|i| {
                Some(ListedInstance {
                    worker_id: tag_value(i.tags(), contract::TAG_WORKER)?.to_owned(),
                    provider_id: i.instance_id()?.to_owned(),
                })
            })
            .collect())
    }

    async fn health(&self, _worker_id: &str, provider_id: &str) -> Result<Health, ProviderError> {
        let mut cache = self.health.lock().await;
        let fresh = cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < HEALTH_TTL);
        if !fresh {
            let seen = self
                .describe(false)
                .await?
                .iter()
                .filter_map(|i| {
                    Some((
                        i.instance_id()?.to_owned(),
                        Seen {
                            state: i.state()?.name()?.clone(),
                            reason: i
                                .state_reason()
                                .and_then(|r| r.message().or(r.code()))
                                .map(str::to_owned),
                        },
                    ))
                })
                .collect();
            *cache = Some((Instant::now(), seen));
        }
        let seen = cache.as_ref().and_then(|(_, m)| m.get(provider_id));
        // Not listed yet: DescribeInstances is eventually consistent.
        let Some(seen) = seen else {
            return Ok(Health::Running);
        };
        Ok(match seen.state {
            InstanceStateName::Pending | InstanceStateName::Running => Health::Running,
            ref state => Health::Exited {
                detail: format!(
                    "instance {provider_id} is {}{}",
                    state.as_str(),
                    seen.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            },
        })
    }
}

impl std::fmt::Debug for Ec2Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Provider")
            .field("pool", &self.settings.pool)
            .field("region", &self.settings.region)
            .field("market", &self.settings.market)
            .finish()
    }
}

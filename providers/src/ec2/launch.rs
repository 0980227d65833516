//! One launch: spot and/or on-demand over the candidate instance types and
//! subnets, falling back from spot to on-demand on the configured codes.

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification, Instance,
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceType, LaunchTemplateSpecification, MarketType,
    ShutdownBehavior, SpotInstanceType, SpotMarketOptions, TagSpecification, VolumeType,
};
use aws_sdk_ec2::Client;

use super::errors::{code_class, from_sdk, CodeClass};
use super::retry::with_retries;
use super::settings::{Ec2Settings, LaunchTemplateRef, Market, TypeStrategy};
use crate::ProviderError;

/// Most RunInstances attempts per market in one launch: bounds the calls a
/// capacity shortage can cost.
const MAX_CANDIDATES: usize = 12;

/// Where to try one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// None: the launch template's type.
    pub instance_type: Option<String>,
    /// None: the default subnet (or the launch template's).
    pub subnet: Option<String>,
}

/// The candidates of one launch, type-major: every subnet of the first type
/// before the next type. `turn` rotates the start when diversified.
pub fn candidates(
    types: &[String],
    subnets: &[String],
    strategy: TypeStrategy,
    turn: usize,
) -> Vec<Candidate> {
    fn rotated(items: &[String], by: usize) -> Vec<Option<String>> {
        if items.is_empty() {
            return vec![None];
        }
        let by = by % items.len();
        items[by..]
            .iter()
            .chain(&items[..by])
            .cloned()
            .map(Some)
            .collect()
    }
    let by = match strategy {
        TypeStrategy::InOrder => 0,
        TypeStrategy::Diversified => turn,
    };
    let mut out = Vec::new();
    for instance_type in rotated(types, by) {
        for subnet in rotated(subnets, by) {
            out.push(Candidate {
                instance_type: instance_type.clone(),
                subnet,
            });
        }
    }
    out.truncate(MAX_CANDIDATES);
    out
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Try the next candidate. `allows_fallback`: the failure was a spot
    /// failure on a fallback code, so on-demand may take over once every
    /// spot candidate failed that way.
    NextCandidate { allows_fallback: bool },
    /// Give up with this error.
    Fail,
}

/// The fallback decision for one failed attempt.
pub fn next_step(spot: bool, err: &ProviderError, fallback_codes: &[String]) -> NextStep {
    let code = err.code.as_deref();
    if spot && code.is_some_and(|c| fallback_codes.iter().any(|f| f == c)) {
        return NextStep::NextCandidate {
            allows_fallback: true,
        };
    }
    if code_class(err) == Some(CodeClass::Capacity) {
        return NextStep::NextCandidate {
            allows_fallback: false,
        };
    }
    NextStep::Fail
}

/// Everything one RunInstances call needs besides the candidate.
pub struct Request<'a> {
    pub settings: &'a Ec2Settings,
    pub worker_id: &'a str,
    pub user_data_b64: &'a str,
    pub tags: &'a [TagSpecification],
    pub root_device: Option<&'a str>,
}

/// A running instance and how it was bought.
pub struct Started {
    pub instance: Instance,
    pub spot: bool,
    /// The spot error that sent this launch to on-demand.
    pub fell_back_on: Option<String>,
}

/// Launches one instance, trying markets and candidates as configured.
pub async fn launch(
    client: &Client,
    req: &Request<'_>,
    cands: &[Candidate],
) -> Result<Started, ProviderError> {
    let s = req.settings;
    let mut fell_back_on = None;
    if matches!(s.market, Market::Spot | Market::SpotWithFallback) {
        let mut all_fallback = true;
        let mut last = None;
        for (i, cand) in cands.iter().enumerate() {
            match run_one(client, req, cand, true, i).await {
                Ok(instance) => {
                    return Ok(Started {
                        instance,
                        spot: true,
                        fell_back_on: None,
                    })
                }
                Err(e) => match next_step(true, &e, &s.fallback_codes) {
                    NextStep::NextCandidate { allows_fallback } => {
                        tracing::info!(worker = req.worker_id, ?cand, error = %e, "spot launch failed; trying the next option");
                        all_fallback &= allows_fallback;
                        last = Some(e);
                    }
                    NextStep::Fail => return Err(e),
                },
            }
        }
        let Some(last) = last else {
            return Err(ProviderError::permanent(
                "failed to launch: no instance type or subnet to try",
            ));
        };
        if s.market == Market::Spot || !all_fallback {
            return Err(last);
        }
        tracing::info!(worker = req.worker_id, error = %last, "no spot capacity; falling back to on-demand");
        fell_back_on = last.code;
    }
    let mut last = None;
    for (i, cand) in cands.iter().enumerate() {
        match run_one(client, req, cand, false, i).await {
            Ok(instance) => {
                return Ok(Started {
                    instance,
                    spot: false,
                    fell_back_on,
                })
            }
            Err(e) => match next_step(false, &e, &s.fallback_codes) {
                NextStep::NextCandidate { .. } => {
                    tracing::info!(worker = req.worker_id, ?cand, error = %e, "on-demand launch failed; trying the next option");
                    last = Some(e);
                }
                NextStep::Fail => return Err(e),
            },
        }
    }
    Err(last.unwrap_or_else(|| {
        ProviderError::permanent("failed to launch: no instance type or subnet to try")
    }))
}

/// An idempotency token per worker, market and candidate: a retried call
/// that did reach EC2 returns the same instance instead of a second one.
fn client_token(worker_id: &str, spot: bool, index: usize) -> String {
    let token = format!("{worker_id}.{}{index}", if spot { 's' } else { 'o' });
    // EC2 allows 64 ASCII characters; the worker id ends in its random part.
    let skip = token.len().saturating_sub(64);
    token[skip..].to_owned()
}

async fn run_one(
    client: &Client,
    req: &Request<'_>,
    cand: &Candidate,
    spot: bool,
    index: usize,
) -> Result<Instance, ProviderError> {
    let s = req.settings;
    let token = client_token(req.worker_id, spot, index);
    let what = if spot { "spot" } else { "on-demand" };
    let out = with_retries(&s.retry, "RunInstances", || async {
        build(client, req, cand, spot, &token)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("launch a {what} instance"), e))
    })
    .await?;
    out.instances().first().cloned().ok_or_else(|| {
        ProviderError::transient("failed to launch: RunInstances returned no instance")
    })
}

fn build(
    client: &Client,
    req: &Request<'_>,
    cand: &Candidate,
    spot: bool,
    token: &str,
) -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder {
    let s = req.settings;
    let metadata = InstanceMetadataOptionsRequest::builder()
        .http_endpoint(InstanceMetadataEndpointState::Enabled)
        .http_tokens(HttpTokensState::Required)
        .http_put_response_hop_limit(1)
        .build();
    let mut call = client
        .run_instances()
        .min_count(1)
        .max_count(1)
        .client_token(token)
        .user_data(req.user_data_b64)
        .metadata_options(metadata)
        // An instance that powers itself off (an orphaned worker does) is gone.
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .set_tag_specifications(Some(req.tags.to_vec()))
        .set_image_id(s.ami.clone())
        .set_instance_type(cand.instance_type.as_deref().map(InstanceType::from))
        .set_subnet_id(cand.subnet.clone())
        .set_key_name(s.key_name.clone());
    if !s.security_groups.is_empty() {
        call = call.set_security_group_ids(Some(s.security_groups.clone()));
    }
    if let Some(lt) = &s.launch_template {
        let spec = match lt {
            LaunchTemplateRef::Id { id, version } => LaunchTemplateSpecification::builder()
                .launch_template_id(id)
                .set_version(version.clone()),
            LaunchTemplateRef::Name { name, version } => LaunchTemplateSpecification::builder()
                .launch_template_name(name)
                .set_version(version.clone()),
        };
        call = call.launch_template(spec.build());
    }
    if let Some(profile) = &s.instance_profile {
        let spec = if profile.starts_with("arn:") {
            IamInstanceProfileSpecification::builder().arn(profile)
        } else {
            IamInstanceProfileSpecification::builder().name(profile)
        };
        call = call.iam_instance_profile(spec.build());
    }
    let root = &s.root_volume;
    if let (Some(device), true) = (
        req.root_device,
        root.size_gib.is_some() || root.volume_type.is_some(),
    ) {
        let ebs = EbsBlockDevice::builder()
            .set_volume_size(root.size_gib)
            .set_volume_type(root.volume_type.as_deref().map(VolumeType::from))
            .delete_on_termination(true)
            .build();
        call = call.block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(device)
                .ebs(ebs)
                .build(),
        );
    }
    if spot {
        let options = SpotMarketOptions::builder()
            .spot_instance_type(SpotInstanceType::OneTime)
            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
            .set_max_price(s.spot_max_price.clone())
            .build();
        call = call.instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(options)
                .build(),
        );
    }
    call
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn defaults() -> Vec<String> {
        strings(super::super::settings::DEFAULT_FALLBACK_CODES)
    }

    #[test]
    fn spot_capacity_errors_allow_fallback() {
        for code in super::super::settings::DEFAULT_FALLBACK_CODES {
            let e = ProviderError::transient("no room").with_code(*code);
            assert_eq!(
                next_step(true, &e, &defaults()),
                NextStep::NextCandidate {
                    allows_fallback: true
                },
                "{code}"
            );
        }
    }

    #[test]
    fn fallback_codes_are_configurable() {
        let e = ProviderError::transient("quota").with_code("VcpuLimitExceeded");
        // Capacity but not a fallback code: next candidate, no on-demand.
        assert_eq!(
            next_step(true, &e, &defaults()),
            NextStep::NextCandidate {
                allows_fallback: false
            }
        );
        assert_eq!(
            next_step(true, &e, &strings(&["VcpuLimitExceeded"])),
            NextStep::NextCandidate {
                allows_fallback: true
            }
        );
        let e = ProviderError::transient("no room").with_code("InsufficientInstanceCapacity");
        assert_eq!(
            next_step(true, &e, &[]),
            NextStep::NextCandidate {
                allows_fallback: false
            }
        );
    }

    #[test]
    fn permanent_and_throttling_errors_stop() {
        let bad = ProviderError::permanent("bad ami").with_code("InvalidAMIID.NotFound");
        assert_eq!(next_step(true, &bad, &defaults()), NextStep::Fail);
        assert_eq!(next_step(false, &bad, &defaults()), NextStep::Fail);
        // Throttling was already retried; another type would be throttled too.
        let slow = ProviderError::transient("slow").with_code("RequestLimitExceeded");
        assert_eq!(next_step(true, &slow, &defaults()), NextStep::Fail);
        let net = ProviderError::transient("connection refused");
        assert_eq!(next_step(false, &net, &defaults()), NextStep::Fail);
    }

    #[test]
    fn on_demand_moves_on_without_fallback() {
        let e = ProviderError::transient("no room").with_code("InsufficientInstanceCapacity");
        assert_eq!(
            next_step(false, &e, &defaults()),
            NextStep::NextCandidate {
                allows_fallback: false
            }
        );
        // SpotMaxPriceTooLow means nothing on-demand... but it is capacity-class.
        let e = ProviderError::transient("price").with_code("SpotMaxPriceTooLow");
        assert!(matches!(
            next_step(false, &e, &defaults()),
            NextStep::NextCandidate { .. }
        ));
    }

    #[test]
    fn candidates_in_order_and_diversified() {
        let types = strings(&["a", "b", "c"]);
        let subnets = strings(&["s1", "s2"]);
        let names = |c: Vec<Candidate>| -> Vec<String> {
            c.into_iter()
                .map(|c| {
                    format!(
                        "{}/{}",
                        c.instance_type.unwrap_or_default(),
                        c.subnet.unwrap_or_default()
                    )
                })
                .collect()
        };
        assert_eq!(
            names(candidates(&types, &subnets, TypeStrategy::InOrder, 5)),
            ["a/s1", "a/s2", "b/s1", "b/s2", "c/s1", "c/s2"]
        );
        assert_eq!(
            names(candidates(&types, &subnets, TypeStrategy::Diversified, 1)),
            ["b/s2", "b/s1", "c/s2", "c/s1", "a/s2", "a/s1"]
        );
        assert_eq!(
            names(candidates(&[], &[], TypeStrategy::Diversified, 3)),
            ["/"]
        );
        let many: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        assert_eq!(
            candidates(&many, &subnets, TypeStrategy::InOrder, 0).len(),
            MAX_CANDIDATES
        );
    }

    #[test]
    fn client_tokens_fit_and_differ() {
        let long = "p".repeat(80);
        let t = client_token(&long, true, 3);
        assert_eq!(t.len(), 64);
        assert!(t.ends_with(".s3"));
        assert_ne!(client_token("w", true, 0), client_token("w", false, 0));
    }
}

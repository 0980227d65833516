//! Checks of a `[pools.NAME.ec2]` section: what EC2 would refuse at the
//! first launch, and typos that would silently cost money.

use std::collections::BTreeSet;

use super::config::Ec2PoolConfig;
use super::settings::Market;
use crate::config::{AwsId, AwsIdKind, Check, Path, Problems};

const VOLUME_TYPES: &[&str] = &["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"];

/// Every problem of the section, at `ec2.…` in the pool.
pub(super) fn check(e: &Ec2PoolConfig, out: &mut Problems) {
    let path = Path::root().key("ec2");
    if e.region.is_empty()
        || !e
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        out.push(
            &path.key("region"),
            format!(
                "must be a region name like \"us-east-1\" (got {:?})",
                e.region
            ),
        );
    }
    out.check(&path.key("endpoint_url"), &e.endpoint_url);
    out.check(&path.key("ami"), &e.ami);
    match &e.launch_template {
        None if e.ami.is_none() => out.push(
            &path,
            "set ami or launch_template: there is nothing to launch",
        ),
        None => {}
        Some(lt) => {
            let lt_path = path.key("launch_template");
            match (&lt.id, &lt.name) {
                (Some(id), None) => out.check(&lt_path.key("id"), id),
                (None, Some(name)) if name.is_empty() => {
                    out.push(&lt_path.key("name"), "must not be empty")
                }
                (None, Some(_)) => {}
                _ => out.push(&lt_path, "set exactly one of id and name"),
            }
            if lt.version.as_deref() == Some("") {
                out.push(&lt_path.key("version"), "must not be empty");
            }
        }
    }
    let types = path.key("instance_types");
    if e.instance_types.is_empty() && e.launch_template.is_none() {
        out.push(
            &types,
            "list at least one instance type, e.g. [\"t3.small\"] (or set launch_template)",
        );
    }
    for i in distinct(&types, e.instance_types.iter().map(String::as_str), out) {
        let t = &e.instance_types[i];
        if !t.contains('.') {
            out.push(
                &types.index(i),
                format!("{t:?} is not an instance type like \"t3.small\""),
            );
        }
    }
    id_list(&path.key("subnets"), &e.subnets, out);
    id_list(&path.key("security_groups"), &e.security_groups, out);
    if e.instance_profile.as_deref() == Some("") {
        out.push(&path.key("instance_profile"), "must not be empty");
    }
    if e.key_name.as_deref() == Some("") {
        out.push(&path.key("key_name"), "must not be empty");
    }
    if let Some(size) = e.root_volume_size {
        if !(1..=65536).contains(&size) {
            out.push(
                &path.key("root_volume_size"),
                format!("must be 1 to 65536 GiB (got {size})"),
            );
        }
    }
    if let Some(t) = &e.root_volume_type {
        if !VOLUME_TYPES.contains(&t.as_str()) {
            out.push(
                &path.key("root_volume_type"),
                format!(
                    "unknown volume type {t:?} (one of {})",
                    VOLUME_TYPES.join(", ")
                ),
            );
        }
    }
    let resizes = e.root_volume_size.is_some() || e.root_volume_type.is_some();
    if resizes && e.ami.is_none() && e.root_device_name.is_none() {
        out.push(
            &path.key("root_device_name"),
            "is required to size the root volume when the AMI comes from the launch template",
        );
    }
    if let Some(dev) = &e.root_device_name {
        if !dev.starts_with("/dev/") && !dev.starts_with("xvd") {
            out.push(
                &path.key("root_device_name"),
                format!("must be a device name like \"/dev/xvda\" (got {dev:?})"),
            );
        }
    }
    // EC2 allows 50 tags; burst adds four.
    if e.tags.len() > 46 {
        out.push(
            &path.key("tags"),
            format!("at most 46 extra tags (got {})", e.tags.len()),
        );
    }
    for (key, value) in &e.tags {
        let tag = path.key("tags").key(key);
        if key.is_empty() || key.len() > 128 {
            out.push(&tag, "tag key must be 1 to 128 characters");
        } else if key.starts_with("aws:") || key.starts_with("burst:") {
            out.push(
                &tag,
                format!("tag key {key:?} is reserved (aws: and burst: prefixes)"),
            );
        }
        if value.len() > 256 {
            out.push(&tag, "tag value must be at most 256 characters");
        }
    }
    if let Some(price) = e.spot_max_price {
        if e.market == Market::OnDemand {
            out.push(
                &path.key("spot_max_price"),
                "only applies when market is spot or spot_with_fallback",
            );
        } else if !(price.is_finite() && price > 0.0) {
            out.push(
                &path.key("spot_max_price"),
                format!("must be a positive price in USD per hour (got {price})"),
            );
        }
    }
    for (i, code) in e.fallback_on.iter().enumerate() {
        if code.is_empty() {
            out.push(&path.key("fallback_on").index(i), "must not be empty");
        }
    }
    if !e.imds_url.starts_with("http://") {
        out.push(
            &path.key("imds_url"),
            format!(
                "must start with http:// (the worker polls it over plain HTTP; got {:?})",
                e.imds_url
            ),
        );
    }
    for (t, price) in &e.price_per_hour {
        let key = path.key("price_per_hour").key(t);
        if !(price.is_finite() && *price >= 0.0) {
            out.push(
                &key,
                format!("must be a price in USD per hour (got {price})"),
            );
        } else if !e.instance_types.is_empty() && !e.instance_types.contains(t) {
            out.push(
                &key,
                format!(
                    "{t:?} is not one of instance_types ({})",
                    e.instance_types.join(", ")
                ),
            );
        }
    }
    out.check(&path.key("api_retry_min"), &e.api_retry_min);
    if e.api_retry_min.get() > e.api_retry_max {
        out.push(
            &path.key("api_retry_min"),
            format!(
                "must not exceed api_retry_max (got {} > {})",
                humantime::format_duration(e.api_retry_min.get()),
                humantime::format_duration(e.api_retry_max)
            ),
        );
    }
}

/// Reports empty and repeated entries; returns the indexes of the others.
fn distinct<'a>(
    path: &Path,
    values: impl Iterator<Item = &'a str>,
    out: &mut Problems,
) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut fine = Vec::new();
    for (i, value) in values.enumerate() {
        if value.is_empty() {
            out.push(&path.index(i), "must not be empty");
        } else if !seen.insert(value) {
            out.push(&path.index(i), format!("duplicate entry {value:?}"));
        } else {
            fine.push(i);
        }
    }
    fine
}

/// Non-empty, unique ids, each with its kind's prefix.
fn id_list<K: AwsIdKind>(path: &Path, ids: &[AwsId<K>], out: &mut Problems) {
    for i in distinct(path, ids.iter().map(AwsId::as_str), out) {
        if let Some(why) = ids[i].problem() {
            out.push(&path.index(i), why);
        }
    }
}

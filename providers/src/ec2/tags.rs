//! Tags: every instance carries its master, pool and worker id from the
//! moment it exists (TagSpecifications), so `list` finds it after a crash.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use super::contract::{TAG_MASTER, TAG_POOL, TAG_WORKER};

/// The states `list` reports: anything that may still cost money.
pub const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped"];

/// All tags of one worker's instance, extra tags first so the burst ones win.
pub fn worker_tags(
    extra: &BTreeMap<String, String>,
    master_id: &str,
    pool: &str,
    worker_id: &str,
) -> Vec<(String, String)> {
    let mut tags: BTreeMap<String, String> = extra.clone();
    tags.entry("Name".to_owned())
        .or_insert_with(|| format!("burst-{worker_id}"));
    tags.insert(TAG_MASTER.to_owned(), master_id.to_owned());
    tags.insert(TAG_POOL.to_owned(), pool.to_owned());
    tags.insert(TAG_WORKER.to_owned(), worker_id.to_owned());
    tags.into_iter().collect()
}

/// Tag specifications for the instance and its volumes.
pub fn tag_specifications(tags: &[(String, String)]) -> Vec<TagSpecification> {
    let tags: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    [ResourceType::Instance, ResourceType::Volume]
        .into_iter()
        .map(|rt| {
            TagSpecification::builder()
                .resource_type(rt)
                .set_tags(Some(tags.clone()))
                .build()
        })
        .collect()
}

/// DescribeInstances filters for this master's and pool's workers.
pub fn pool_filters(master_id: &str, pool: &str, live_only: bool) -> Vec<Filter> {
    let mut filters = vec![
        tag_filter(TAG_MASTER, master_id),
        tag_filter(TAG_POOL, pool),
    ];
    if live_only {
        filters.push(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.iter().map(|s| (*s).to_owned()).collect()))
                .build(),
        );
    }
    filters
}

/// A filter for one worker's instances.
pub fn worker_filter(worker_id: &str) -> Filter {
    tag_filter(TAG_WORKER, worker_id)
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// The value of tag `key` among `tags`.
pub fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_tags_win_over_extra_tags() {
        let extra = BTreeMap::from([
            (TAG_WORKER.to_owned(), "spoofed".to_owned()),
            ("team".to_owned(), "ci".to_owned()),
        ]);
        let tags = worker_tags(&extra, "m1", "ec2", "ec2-1");
        let map: BTreeMap<_, _> = tags.into_iter().collect();
        assert_eq!(map[TAG_WORKER], "ec2-1");
        assert_eq!(map[TAG_MASTER], "m1");
        assert_eq!(map[TAG_POOL], "ec2");
        assert_eq!(map["team"], "ci");
        assert_eq!(map["Name"], "burst-ec2-1");
    }

    #[test]
    fn specifications_cover_instance_and_volume() {
        let specs = tag_specifications(&worker_tags(&BTreeMap::new(), "m", "p", "w"));
        let types: Vec<_> = specs.iter().filter_map(|s| s.resource_type()).collect();
        assert_eq!(types, [&ResourceType::Instance, &ResourceType::Volume]);
        assert!(specs
            .iter()
            .all(|s| tag_value(s.tags(), TAG_WORKER) == Some("w")));
    }

    #[test]
    fn list_filters_by_master_pool_and_live_state() {
        let filters = pool_filters("m", "p", true);
        let names: Vec<_> = filters.iter().filter_map(|f| f.name()).collect();
        assert_eq!(
            names,
            ["tag:burst:master", "tag:burst:pool", "instance-state-name"]
        );
        assert_eq!(filters[2].values(), LIVE_STATES);
    }
}

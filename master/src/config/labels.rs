//! Builder labels: `{axis}` placeholders, and which pool serves a label set.
//! Validation and submit expansion share these so they cannot disagree.

use std::collections::BTreeMap;

use super::schema::Config;

/// The first pool, in name order, whose labels include all of `labels`.
pub fn pool_for_labels<'a>(config: &'a Config, labels: &[String]) -> Option<&'a str> {
    config
        .pools
        .iter()
        .find(|(_, pool)| labels.iter().all(|l| pool.labels.contains(l)))
        .map(|(name, _)| name.as_str())
}

/// A label split into literal text and `{axis}` references.
enum Part<'a> {
    Text(&'a str),
    Axis(&'a str),
}

fn parts(label: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = label;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("label {label:?} has a '}}' without a '{{'"));
        }
        parts.push(Part::Text(&rest[..open]));
        let after = &rest[open + 1..];
        let Some(close) = after.find(['{', '}']) else {
            return Err(format!("label {label:?} has an unclosed '{{'"));
        };
        if after[close..].starts_with('{') {
            return Err(format!("label {label:?} has a nested '{{'"));
        }
        parts.push(Part::Axis(&after[..close]));
        rest = &after[close + 1..];
    }
    parts.push(Part::Text(rest));
    Ok(parts)
}

/// The axis names a label refers to as `{axis}`.
pub(crate) fn placeholders(label: &str) -> Result<Vec<&str>, String> {
    Ok(parts(label)?
        .into_iter()
        .filter_map(|p| match p {
            Part::Axis(name) => Some(name),
            Part::Text(_) => None,
        })
        .collect())
}

/// `label` with each `{axis}` replaced by the cell's value (in one pass, so
/// a value that looks like a placeholder is left alone).
pub(crate) fn substitute(label: &str, cell: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(label.len());
    for part in parts(label)? {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Axis(name) => match cell.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    return Err(format!(
                        "label {label:?} refers to {{{name}}}, which is not a matrix axis"
                    ))
                }
            },
        }
    }
    Ok(out)
}

/// A build's labels for one matrix cell: substituted, sorted, deduplicated.
pub(crate) fn cell_labels(
    labels: &[String],
    cell: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut out = labels
        .iter()
        .map(|l| substitute(l, cell))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// A matrix cell and its labels (or why they cannot be made).
pub(crate) type LabelledCell = (BTreeMap<String, String>, Result<Vec<String>, String>);

/// The matrix cells that can give `b` different labels: only the axes its
/// labels mention.
pub(crate) fn label_cells(b: &super::schema::BuilderConfig) -> Vec<LabelledCell> {
    let used: std::collections::BTreeSet<&str> = b
        .labels
        .iter()
        .flat_map(|l| placeholders(l).unwrap_or_default())
        .collect();
    let sub: super::matrix::Matrix = b
        .matrix
        .iter()
        .filter(|(a, _)| used.contains(a.as_str()))
        .map(|(a, v)| (a.clone(), v.clone()))
        .collect();
    super::matrix::cells(&sub)
        .into_iter()
        .map(|cell| {
            let labels = cell_labels(&b.labels, &cell);
            (cell, labels)
        })
        .collect()
}

/// Every pool with its labels, for messages about unserved labels.
pub(crate) fn pool_summary(config: &Config) -> Vec<(String, Vec<String>)> {
    config
        .pools
        .iter()
        .map(|(name, pool)| (name.clone(), pool.labels.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_placeholders() {
        assert_eq!(placeholders("plain"), Ok(vec![]));
        assert_eq!(placeholders("{os}-{arch}"), Ok(vec!["os", "arch"]));
        assert!(placeholders("{os").is_err());
        assert!(placeholders("os}").is_err());
        assert!(placeholders("{{os}}").is_err());
    }

    #[test]
    fn substitutes_cells() {
        let c = cell(&[("os", "linux"), ("arch", "arm64")]);
        assert_eq!(substitute("{os}-{arch}", &c), Ok("linux-arm64".into()));
        assert_eq!(substitute("{os}{os}", &c), Ok("linuxlinux".into()));
        assert!(substitute("{cpu}", &c).is_err());
        let tricky = cell(&[("os", "{arch}"), ("arch", "x")]);
        assert_eq!(substitute("{os}-{arch}", &tricky), Ok("{arch}-x".into()));
        let labels = vec!["{os}".to_string(), "linux".to_string(), "a".to_string()];
        assert_eq!(
            cell_labels(&labels, &c),
            Ok(vec!["a".into(), "linux".into()])
        );
    }
}

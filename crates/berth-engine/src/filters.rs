//! docker's filters shared by the engine's lists and prunes: labels (`key` or
//! `key=value`), how several filters combine, and the prune filters.

use std::collections::BTreeMap;

/// A filter docker would refuse: its message says which and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// docker's way of combining filters: every `label` must match (they are ANDed), any
/// one value of each other key will do, and every key must be satisfied.
pub fn filters_match(filters: &[(String, String)], keep: impl Fn(&str, &str) -> bool) -> bool {
    let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().all(|key| {
        let mut values = filters.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str());
        if key == "label" {
            values.all(|v| keep(key, v))
        } else {
            values.any(|v| keep(key, v))
        }
    })
}

/// docker's label filter, `key` (present) or `key=value`, against `get` (a label's value).
pub fn label_matches<'a>(filter: &str, get: impl Fn(&str) -> Option<&'a str>) -> bool {
    match filter.split_once('=') {
        Some((key, value)) => get(key) == Some(value),
        None => get(filter).is_some(),
    }
}

/// Whether `labels` satisfy every `label` filter (`key`, or `key=value`).
pub fn labels_match(labels: &BTreeMap<String, String>, filters: &[String]) -> bool {
    filters.iter().all(|filter| label_matches(filter, |k| labels.get(k).map(String::as_str)))
}

/// docker's prune filters, for containers and images alike: `label=k[=v]` (all must
/// match), `label!=k[=v]` (none may) and `until` (created before a time, or a duration
/// ago); another key is refused. The test takes an object's labels and its creation
/// time (RFC 3339).
pub fn prune_filter(filters: &[(String, String)]) -> Result<impl Fn(&std::collections::BTreeMap<String, String>, &str) -> bool + '_, FilterError> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let mut until = None;
    for (key, value) in filters {
        match key.as_str() {
            "label" | "label!" => {}
            "until" => {
                let at = crate::time::parse_time(value, now).ok_or_else(|| FilterError(format!("invalid until filter value {value:?}")))?;
                until = Some(until.map_or(at, |u: i64| u.min(at)));
            }
            other => return Err(FilterError(format!("invalid filter '{other}'"))),
        }
    }
    Ok(move |labels: &std::collections::BTreeMap<String, String>, created: &str| {
        let has = |filter: &str| label_matches(filter, |k| labels.get(k).map(String::as_str));
        filters.iter().all(|(key, value)| match key.as_str() {
            "label" => has(value),
            "label!" => !has(value),
            _ => true,
        }) && until.is_none_or(|until| chrono::DateTime::parse_from_rfc3339(created).ok().and_then(|t| t.timestamp_nanos_opt()).is_some_and(|t| t < until))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn prune_filters_read_like_docker() {
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> { pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect() };
        let labels: BTreeMap<String, String> = [("keep".to_owned(), "yes".to_owned())].into_iter().collect();
        let created = "2020-06-01T00:00:00.000000000Z";
        let filters = f(&[("label!", "keep=yes")]);
        assert!(!super::prune_filter(&filters).expect("valid")(&labels, created));
        let filters = f(&[("label", "keep")]);
        assert!(super::prune_filter(&filters).expect("valid")(&labels, created));
        let filters = f(&[("until", "2021-01-01T00:00:00Z")]);
        assert!(super::prune_filter(&filters).expect("valid")(&labels, created));
        let filters = f(&[("until", "2019-01-01T00:00:00Z")]);
        assert!(!super::prune_filter(&filters).expect("valid")(&labels, created));
        // A duration ago: 2020 is more than an hour ago.
        let filters = f(&[("until", "1h")]);
        assert!(super::prune_filter(&filters).expect("valid")(&labels, created));
        assert!(super::prune_filter(&f(&[("until", "soon")])).is_err());
        assert!(super::prune_filter(&f(&[("bogus", "1")])).is_err());
    }
}

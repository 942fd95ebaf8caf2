//! Merging several compose files, in order, as the spec's merge rules say: mappings
//! merge key by key; `environment`, `labels`, `args` (list or map) merge by variable;
//! `ports`, `expose`, `dns`, `dns_search`, `tmpfs` are concatenated without repeats;
//! `volumes` of a service merge by target; any other value of a later file replaces
//! the earlier one.

use serde_norway::{Mapping, Value};

const BY_KEY: &[&str] = &["environment", "labels", "args"];
const APPENDED: &[&str] = &["ports", "expose", "dns", "dns_search", "tmpfs", "cap_add", "cap_drop"];

/// Merges `over` into `base`.
pub fn merge(base: &mut Value, over: Value) {
    merge_at(base, over, "");
}

fn merge_at(base: &mut Value, over: Value, key: &str) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let name = k.as_str().unwrap_or("").to_owned();
                match b.get_mut(&k) {
                    Some(existing) => merge_at(existing, v, &name),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) if BY_KEY.contains(&key) => {
            let mut merged = as_map(b);
            for (k, v) in as_map(&o) {
                merged.insert(k, v);
            }
            *b = Value::Mapping(merged);
        }
        (Value::Sequence(b), Value::Sequence(o)) if APPENDED.contains(&key) => {
            for item in o {
                if !b.contains(&item) {
                    b.push(item);
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) if key == "volumes" => {
            for item in o {
                let target = volume_target(&item);
                match b.iter_mut().find(|existing| target.is_some() && volume_target(existing) == target) {
                    Some(existing) => *existing = item,
                    None => b.push(item),
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// A list of `KEY=VALUE` or a mapping, as a mapping.
fn as_map(value: &Value) -> Mapping {
    match value {
        Value::Mapping(m) => m.clone(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(|s| match s.split_once('=') {
                Some((k, v)) => (Value::String(k.to_owned()), Value::String(v.to_owned())),
                None => (Value::String(s.to_owned()), Value::Null),
            })
            .collect(),
        _ => Mapping::new(),
    }
}

fn volume_target(item: &Value) -> Option<String> {
    match item {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [t] => Some((*t).to_owned()),
                [_, t] | [_, t, _] => Some((*t).to_owned()),
                _ => None,
            }
        }
        Value::Mapping(m) => m.get("target").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).expect("yaml")
    }

    #[test]
    fn later_files_win_by_the_spec_rules() {
        let mut base = yaml(
            "services:\n  web:\n    image: a\n    command: [x]\n    environment: [A=1, B=2]\n    ports: ['80:80']\n    volumes: ['data:/data', '/cache']\n",
        );
        merge(
            &mut base,
            yaml("services:\n  web:\n    image: b\n    command: [y]\n    environment: {B: '3', C: '4'}\n    ports: ['80:80', '443:443']\n    volumes: ['other:/data']\n  db:\n    image: pg\n"),
        );
        let web = &base["services"]["web"];
        assert_eq!(web["image"], Value::String("b".into()));
        assert_eq!(web["command"], yaml("[y]"));
        assert_eq!(web["environment"], yaml("{A: '1', B: '3', C: '4'}"));
        assert_eq!(web["ports"], yaml("['80:80', '443:443']"));
        assert_eq!(web["volumes"], yaml("['other:/data', '/cache']"));
        assert_eq!(base["services"]["db"]["image"], Value::String("pg".into()));
    }
}

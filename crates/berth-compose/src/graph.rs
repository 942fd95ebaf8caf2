//! The services' dependency graph (`depends_on` and `links`, plus `network_mode:
//! service:x` and `volumes_from` once they exist): the start order, and cycles refused with the cycle
//! named.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::ComposeFile;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("dependency cycle detected: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("service {service} depends on undefined service {missing}")]
    Undefined { service: String, missing: String },
}

/// Services in an order that starts every dependency before its dependents (ties by
/// name, so the order is stable). Stopping goes in the reverse order.
pub fn start_order(file: &ComposeFile) -> Result<Vec<String>, GraphError> {
    let deps: BTreeMap<&str, BTreeSet<&str>> = file
        .services
        .iter()
        .map(|(name, service)| {
            // Links to the project's services order them too (others are outside it).
            let linked = service.links.iter().map(|l| l.split(':').next().unwrap_or(l)).filter(|l| file.services.contains_key(*l));
            (name.as_str(), service.depends_on.keys().map(String::as_str).chain(linked).collect())
        })
        .collect();
    for (service, wanted) in &deps {
        for missing in wanted.iter().filter(|d| !deps.contains_key(*d)) {
            let required = file.services[*service].depends_on[*missing].required;
            if required {
                return Err(GraphError::Undefined { service: (*service).to_owned(), missing: (*missing).to_owned() });
            }
        }
    }
    // Depth-first, reporting the first cycle as the path that closes it.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        deps: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) -> Result<(), GraphError> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = path.iter().position(|p| *p == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| (*s).to_owned()).collect();
                cycle.push(name.to_owned());
                return Err(GraphError::Cycle(cycle));
            }
            None => {}
        }
        marks.insert(name, Mark::Visiting);
        path.push(name);
        for dep in deps.get(name).into_iter().flatten().filter(|d| deps.contains_key(*d)) {
            visit(dep, deps, marks, path, order)?;
        }
        path.pop();
        marks.insert(name, Mark::Done);
        order.push(name.to_owned());
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut order = Vec::new();
    for name in deps.keys() {
        visit(name, &deps, &mut marks, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> ComposeFile {
        let value = crate::load::load_str(text, "compose.yaml", &|_| None).expect("load");
        crate::model::from_value(value, "compose.yaml").expect("model")
    }

    #[test]
    fn dependencies_start_first() {
        let f = file("services:\n  web: {image: a, depends_on: [app]}\n  app: {image: a, depends_on: {db: {condition: service_healthy}}}\n  db: {image: a}\n  cache: {image: a}\n");
        let order = start_order(&f).expect("order");
        let at = |n: &str| order.iter().position(|s| s == n).expect("present");
        assert!(at("db") < at("app") && at("app") < at("web"), "{order:?}");
        assert_eq!(order.len(), 4);
    }

    #[test]
    fn cycles_are_named_and_undefined_services_refused() {
        let f = file("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [a]}\n");
        assert_eq!(start_order(&f).expect_err("cycle").to_string(), "dependency cycle detected: a -> b -> c -> a");
        let f = file("services:\n  a: {image: x, depends_on: [ghost]}\n");
        assert_eq!(start_order(&f).expect_err("undefined").to_string(), "service a depends on undefined service ghost");
        let f = file("services:\n  a: {image: x, depends_on: {ghost: {required: false}}}\n");
        assert_eq!(start_order(&f).expect("optional"), vec!["a".to_owned()]);
    }
}

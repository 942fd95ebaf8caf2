//! The trust policy: which repositories must carry a signature by which keys.
//!
//! A rule's scope is a registry (`localhost:5000`), a namespace in one
//! (`registry.example.com/team`) or one repository (`docker.io/library/alpine`); it
//! covers a repository when it is its name or a leading part of it ending at a `/`. The
//! longest scope that covers a repository decides, so a team's rule can name other keys
//! than its registry's. A repository no rule covers needs no signature, unless the
//! caller requires one (`DOCKER_CONTENT_TRUST=1`): then any key of the policy will do.

use serde::{Deserialize, Serialize};

use crate::PublicKey;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// A registry, namespace or repository, as `registry/path`.
    pub scope: String,
    /// Public keys as PEM text: a signature by any one of them is enough.
    pub keys: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the trust policy is not valid JSON: {0}")]
    Json(String),
    #[error("trust policy scope {0:?}: expected a registry, namespace or repository such as localhost:5000/app, with no tag or digest")]
    Scope(String),
    #[error("trust policy scope {scope:?}: key {index}: {detail}")]
    Key { scope: String, index: usize, detail: String },
    #[error("trust policy scope {0:?} names no key")]
    NoKeys(String),
    #[error("trust policy scope {0:?} is given twice")]
    Duplicate(String),
}

/// What the policy asks of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing: no rule covers it and no signature was asked for.
    None,
    /// A signature by one of these keys; `scope` says which rule asked (`None` when the
    /// caller asked for a signature and no rule covers the repository).
    Signed { scope: Option<String>, keys: Vec<PublicKey> },
}

impl Policy {
    pub fn parse(bytes: &[u8]) -> Result<Policy, PolicyError> {
        let policy: Policy = serde_json::from_slice(bytes).map_err(|e| PolicyError::Json(e.to_string()))?;
        policy.check()?;
        Ok(policy)
    }

    /// Every scope well formed and given once, every key a P-256 public key.
    pub fn check(&self) -> Result<(), PolicyError> {
        let mut seen = std::collections::BTreeSet::new();
        for rule in &self.rules {
            check_scope(&rule.scope)?;
            if !seen.insert(rule.scope.as_str()) {
                return Err(PolicyError::Duplicate(rule.scope.clone()));
            }
            if rule.keys.is_empty() {
                return Err(PolicyError::NoKeys(rule.scope.clone()));
            }
            for (index, key) in rule.keys.iter().enumerate() {
                PublicKey::from_pem(key).map_err(|e| PolicyError::Key { scope: rule.scope.clone(), index, detail: e.to_string() })?;
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("plain JSON")
    }

    /// The rule whose scope covers `repository` (`registry/path`) most closely.
    pub fn rule_for(&self, repository: &str) -> Option<&Rule> {
        self.rules.iter().filter(|r| covers(&r.scope, repository)).max_by_key(|r| r.scope.len())
    }

    /// Every key any rule names, once each.
    pub fn all_keys(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = Vec::new();
        for key in self.rules.iter().flat_map(|r| &r.keys).filter_map(|k| PublicKey::from_pem(k).ok()) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// What `repository` needs; `required` is the caller asking for a signature whatever
    /// the rules say.
    pub fn requirement(&self, repository: &str, required: bool) -> Requirement {
        match self.rule_for(repository) {
            Some(rule) => Requirement::Signed { scope: Some(rule.scope.clone()), keys: rule.keys.iter().filter_map(|k| PublicKey::from_pem(k).ok()).collect() },
            None if required => Requirement::Signed { scope: None, keys: self.all_keys() },
            None => Requirement::None,
        }
    }

    /// Sets the keys of `scope`, adding the rule if it is new.
    pub fn set(&mut self, scope: &str, keys: Vec<String>) -> Result<(), PolicyError> {
        let mut next = self.clone();
        match next.rules.iter_mut().find(|r| r.scope == scope) {
            Some(rule) => rule.keys = keys,
            None => next.rules.push(Rule { scope: scope.to_owned(), keys }),
        }
        next.check()?;
        *self = next;
        Ok(())
    }

    /// Removes `scope`'s rule; whether there was one.
    pub fn remove(&mut self, scope: &str) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.scope != scope);
        self.rules.len() != before
    }
}

fn covers(scope: &str, repository: &str) -> bool {
    repository == scope || repository.strip_prefix(scope).is_some_and(|rest| rest.starts_with('/'))
}

fn check_scope(scope: &str) -> Result<(), PolicyError> {
    let bad = || PolicyError::Scope(scope.to_owned());
    if scope.is_empty() || scope.contains('@') || scope.ends_with('/') || scope.starts_with('/') || scope.contains("//") {
        return Err(bad());
    }
    // A tag is a colon after the last slash; a port is a colon in the registry part.
    if let Some((_, last)) = scope.rsplit_once('/') {
        if last.contains(':') {
            return Err(bad());
        }
    }
    if scope.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase()) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrivateKey;

    fn pem() -> String {
        PrivateKey::generate().public().to_pem()
    }

    #[test]
    fn the_closest_scope_decides() {
        let (a, b) = (pem(), pem());
        let mut policy = Policy::default();
        policy.set("localhost:5000", vec![a.clone()]).unwrap();
        policy.set("localhost:5000/team", vec![b.clone()]).unwrap();
        assert_eq!(policy.rule_for("localhost:5000/team/app").unwrap().keys[0], b);
        assert_eq!(policy.rule_for("localhost:5000/team").unwrap().keys[0], b);
        assert_eq!(policy.rule_for("localhost:5000/teamwork").unwrap().keys[0], a);
        assert_eq!(policy.rule_for("localhost:5000/other").unwrap().keys[0], a);
        assert!(policy.rule_for("localhost:50001/app").is_none());
        assert!(policy.rule_for("docker.io/library/alpine").is_none());
        assert_eq!(policy.requirement("docker.io/library/alpine", false), Requirement::None);
        match policy.requirement("docker.io/library/alpine", true) {
            Requirement::Signed { scope: None, keys } => assert_eq!(keys.len(), 2),
            other => panic!("{other:?}"),
        }
        match policy.requirement("localhost:5000/x", false) {
            Requirement::Signed { scope: Some(s), keys } => assert_eq!((s.as_str(), keys.len()), ("localhost:5000", 1)),
            other => panic!("{other:?}"),
        }
        assert!(policy.remove("localhost:5000"));
        assert!(!policy.remove("localhost:5000"));
        assert!(policy.rule_for("localhost:5000/other").is_none());
    }

    #[test]
    fn bad_policies_are_refused_and_change_nothing() {
        let mut policy = Policy::default();
        for scope in ["", "a/b:tag", "a@sha256:00", "a/", "/a", "A/b", "a b"] {
            assert!(matches!(policy.set(scope, vec![pem()]), Err(PolicyError::Scope(_))), "{scope}");
        }
        assert!(matches!(policy.set("a", vec![]), Err(PolicyError::NoKeys(_))));
        assert!(matches!(policy.set("a", vec!["nope".into()]), Err(PolicyError::Key { index: 0, .. })));
        assert!(policy.rules.is_empty());
        policy.set("localhost:5000/a", vec![pem()]).unwrap();
        let bytes = policy.to_bytes();
        assert_eq!(Policy::parse(&bytes).unwrap(), policy);
        let twice = format!(r#"{{"rules":[{0},{0}]}}"#, serde_json::to_string(&policy.rules[0]).unwrap());
        assert!(matches!(Policy::parse(twice.as_bytes()), Err(PolicyError::Duplicate(_))));
        assert!(matches!(Policy::parse(b"{"), Err(PolicyError::Json(_))));
    }
}

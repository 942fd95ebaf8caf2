//! `docker search`: a term looked up in a registry's search API (Docker Hub's index, or
//! any registry that serves `/v1/search`), and, for a registry without one (the CNCF
//! distribution registry most private registries run), its catalog (`/v2/_catalog`)
//! filtered by the term.

use serde::Serialize;

use super::{Credentials, Reference, RegistryClient, RegistryError, DOCKER_HUB};

/// One result, in the Docker API's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchResult {
    pub name: String,
    pub description: String,
    pub star_count: u64,
    pub is_official: bool,
    pub is_automated: bool,
}

/// A catalog page (the distribution registry's largest), and the most pages read.
const CATALOG_PAGE: usize = 1000;
const CATALOG_PAGES: usize = 20;

/// Where a search term looks: `host[:port]/words` searches that registry for `words`;
/// anything else searches Docker Hub. (The same rule names an image's registry: the
/// builder picks a base image's login with it.)
pub fn split_term(term: &str) -> (String, String) {
    match term.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first.to_owned(), rest.to_owned()),
        _ => (DOCKER_HUB.to_owned(), term.to_owned()),
    }
}

impl RegistryClient {
    /// Searches for `term` (see [`split_term`]), at most `limit` results (1 to 100).
    pub async fn search(&self, term: &str, limit: usize, creds: Option<&Credentials>) -> Result<Vec<SearchResult>, RegistryError> {
        let (registry, query) = split_term(term);
        let limit = limit.clamp(1, 100);
        let reference = Reference { registry: registry.clone(), repository: String::new(), tag: None, digest: None };
        let host = if registry == DOCKER_HUB { "index.docker.io" } else { registry.as_str() };
        let base = format!("{}://{}", self.config.scheme(host), self.config.connect_host(host));
        let encoded: String = url_encode(&query);
        let url = format!("{base}/v1/search?q={encoded}&n={limit}");
        let response = self.get(&reference, &url, Some("application/json"), creds).await?;
        let status = response.status();
        if status.is_success() {
            let body: serde_json::Value = response.json().await.map_err(|e| unexpected(&registry, e.to_string()))?;
            let results = body["results"].as_array().cloned().unwrap_or_default();
            // Names as the index gives them, as dockerd returns them (Docker Hub's
            // official images without `library/`).
            return Ok(results
                .iter()
                .take(limit)
                .map(|r| SearchResult {
                    name: r["name"].as_str().unwrap_or_default().to_owned(),
                    description: r["description"].as_str().unwrap_or_default().to_owned(),
                    star_count: r["star_count"].as_u64().unwrap_or(0),
                    is_official: r["is_official"].as_bool().unwrap_or(false),
                    is_automated: r["is_automated"].as_bool().unwrap_or(false),
                })
                .collect());
        }
        if registry == DOCKER_HUB || status != reqwest::StatusCode::NOT_FOUND {
            return Err(unexpected(&registry, format!("the search answered {status}")));
        }
        // No search API: the catalog, page by page (its `Link` header names the next),
        // filtered.
        let wanted = query.to_ascii_lowercase();
        let mut found = Vec::new();
        let mut url = format!("{base}/v2/_catalog?n={CATALOG_PAGE}");
        for _ in 0..CATALOG_PAGES {
            let response = self.get(&reference, &url, Some("application/json"), creds).await?;
            let status = response.status();
            if !status.is_success() {
                return Err(unexpected(&registry, format!("it has no search API, and its catalog answered {status}")));
            }
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|link| link.split_once('<')?.1.split_once('>').map(|(path, _)| path.to_owned()));
            let body: serde_json::Value = response.json().await.map_err(|e| unexpected(&registry, e.to_string()))?;
            found.extend(
                body["repositories"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str())
                    .filter(|name| name.to_ascii_lowercase().contains(&wanted))
                    .map(|name| SearchResult {
                        name: format!("{registry}/{name}"),
                        description: String::new(),
                        star_count: 0,
                        is_official: false,
                        is_automated: false,
                    }),
            );
            match next {
                Some(path) if found.len() < limit => url = if path.starts_with('/') { format!("{base}{path}") } else { path },
                _ => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}

/// `docker search --filter`: `is-official`, `is-automated` (true or false) and `stars`
/// (at least that many).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilters {
    pub official: Option<bool>,
    pub automated: Option<bool>,
    pub stars: u64,
}

impl SearchFilters {
    /// From `key=value` pairs; an unknown key or a bad value is an error in dockerd's words.
    pub fn parse(pairs: &[(String, String)]) -> Result<SearchFilters, String> {
        let mut filters = SearchFilters::default();
        let boolean = |key: &str, value: &str| match value {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("invalid filter '{key}={value}'")),
        };
        for (key, value) in pairs {
            match key.as_str() {
                "is-official" => filters.official = Some(boolean(key, value)?),
                "is-automated" => filters.automated = Some(boolean(key, value)?),
                "stars" => filters.stars = value.parse().map_err(|_| format!("invalid filter 'stars={value}'"))?,
                _ => return Err(format!("invalid filter '{key}'")),
            }
        }
        Ok(filters)
    }

    pub fn matches(&self, result: &SearchResult) -> bool {
        self.official.is_none_or(|o| o == result.is_official) && self.automated.is_none_or(|a| a == result.is_automated) && result.star_count >= self.stars
    }
}

fn unexpected(registry: &str, detail: String) -> RegistryError {
    RegistryError::Unreachable { registry: registry.to_owned(), detail: super::auth::without_secrets(&format!("search: {detail}")) }
}

/// A query string's value, percent-encoded.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_name_their_registry() {
        assert_eq!(split_term("busybox"), (DOCKER_HUB.to_owned(), "busybox".to_owned()));
        assert_eq!(split_term("user/app"), (DOCKER_HUB.to_owned(), "user/app".to_owned()));
        assert_eq!(split_term("127.0.0.1:5000/suite"), ("127.0.0.1:5000".to_owned(), "suite".to_owned()));
        assert_eq!(split_term("localhost/x"), ("localhost".to_owned(), "x".to_owned()));
        assert_eq!(url_encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn filters_as_dockerd_reads_them() {
        let pairs = |list: &[(&str, &str)]| list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        let f = SearchFilters::parse(&pairs(&[("is-official", "true"), ("stars", "3")])).expect("valid");
        let result = SearchResult { name: "x".into(), description: String::new(), star_count: 5, is_official: true, is_automated: false };
        assert!(f.matches(&result));
        assert!(!f.matches(&SearchResult { star_count: 2, ..result.clone() }));
        assert!(!f.matches(&SearchResult { is_official: false, ..result }));
        assert_eq!(SearchFilters::parse(&pairs(&[("color", "red")])).expect_err("unknown"), "invalid filter 'color'");
        assert!(SearchFilters::parse(&pairs(&[("stars", "many")])).is_err());
    }
}

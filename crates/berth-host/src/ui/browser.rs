//! What the window may open in the user's browser: a published port on this machine,
//! nothing else (no files, no other hosts, no other schemes).

use super::UiError;

/// `url` if it is http(s) to localhost, 127.0.0.1 or [::1] with a port.
pub fn local_url(url: &str) -> Result<String, UiError> {
    let refused = || UiError::invalid(format!("{url}: only a published port on this machine opens in the browser"));
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).ok_or_else(refused)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = authority.rsplit_once(':').ok_or_else(refused)?;
    if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(refused());
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::local_url;

    #[test]
    fn only_local_published_ports_open() {
        for ok in ["http://localhost:8080/", "http://127.0.0.1:80", "https://[::1]:8443/x?y#z"] {
            assert_eq!(local_url(ok).as_deref(), Ok(ok), "{ok}");
        }
        for refused in [
            "file:///etc/passwd",
            "http://example.com:80/",
            "http://localhost/",
            "http://localhost:0/",
            "http://localhost:99999/",
            "http://localhost.evil.com:80/",
            "http://user@localhost:80/",
            "javascript:alert(1)",
        ] {
            assert!(local_url(refused).is_err(), "{refused} was accepted");
        }
    }
}

//! Which hosts the session talks to, and what each may see.
//!
//! The server is trusted with access data, not with the device: a URL it
//! hands out (a photo's `Url=`, an UPGRADE `url=`, a redirect) is resolved
//! against the server's own origin (scheme, host and port of `server.url`).
//! A URL to another origin is refused, unless the config names its host in
//! `[server] allowed_download_hosts`; even then the token cookie is not
//! sent to it and its `Date` never touches the clock. Hosts are compared
//! as the HTTP client parses them (`ureq::http::Uri`), so userinfo tricks
//! (`http://server@other/`) name the host that would really be contacted.

use ureq::http::Uri;

/// Scheme, host and port: what makes two URLs the same server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute `http://` or `https://` URL.
    pub fn of(url: &str) -> Option<Origin> {
        let uri: Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let host = uri.host()?.to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        Some(Origin {
            port: uri.port_u16().unwrap_or(default_port),
            scheme,
            host,
        })
    }

    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

pub use crate::link::UrlRefused;

/// Where a resolved URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Absolute URL to request.
    pub url: String,
    /// The server's own origin: the token goes along and `Date` is trusted.
    pub same_origin: bool,
}

/// The server's origin and the other hosts the config allows downloads from.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    origin: Option<Origin>,
    /// `server.url` without a trailing slash; relative URLs are appended.
    base: String,
    /// Lower-case `host` or `host:port` entries.
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub fn new(base: &str, allowed_hosts: &[String]) -> OriginPolicy {
        let base = base.trim().trim_end_matches('/').to_owned();
        OriginPolicy {
            origin: Origin::of(&base),
            base,
            allowed: allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// `server.url` without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Resolves a URL the server gave: relative ones against the server
    /// base, absolute ones checked against the origin and the allowed hosts.
    pub fn resolve(&self, url: &str) -> Result<Resolved, UrlRefused> {
        self.resolve_from(&self.base, url)
    }

    /// Resolves `url` as found in an answer from `current` (a redirect's
    /// `Location`): a path is relative to `current`'s origin.
    pub fn resolve_redirect(&self, current: &str, url: &str) -> Result<Resolved, UrlRefused> {
        let origin_of_current = Origin::of(current)
            .map(|o| format!("{}://{}", o.scheme, o.authority()))
            .ok_or_else(|| UrlRefused::Malformed(current.to_owned()))?;
        self.resolve_from(&origin_of_current, url)
    }

    fn resolve_from(&self, base: &str, url: &str) -> Result<Resolved, UrlRefused> {
        let url = url.trim();
        let malformed = || UrlRefused::Malformed(url.chars().take(200).collect());
        if url.is_empty() || url.chars().any(|c| c.is_control() || c == ' ' || c == '\\') {
            return Err(malformed());
        }
        let absolute = if let Some(rest) = url.strip_prefix("//") {
            // Scheme-relative: another host with the server's scheme.
            let scheme = base.split("://").next().unwrap_or("http");
            format!("{scheme}://{rest}")
        } else if has_scheme(url) {
            url.to_owned()
        } else if url.starts_with('/') {
            format!("{base}{url}")
        } else {
            format!("{base}/{url}")
        };
        let target = Origin::of(&absolute).ok_or_else(malformed)?;
        if self.origin.as_ref() == Some(&target) {
            return Ok(Resolved {
                url: absolute,
                same_origin: true,
            });
        }
        let allowed = self
            .allowed
            .iter()
            .any(|a| *a == target.host || *a == target.authority());
        if allowed {
            Ok(Resolved {
                url: absolute,
                same_origin: false,
            })
        } else {
            Err(UrlRefused::ForeignOrigin {
                url: url.chars().take(200).collect(),
                origin: self.base.clone(),
            })
        }
    }
}

/// Whether `url` starts with `<scheme>:` (RFC 3986: a letter, then letters,
/// digits, `+`, `-`, `.`), as opposed to a path.
fn has_scheme(url: &str) -> bool {
    match url.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> OriginPolicy {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        OriginPolicy::new("http://Push.Example:8088/", &allowed)
    }

    #[test]
    fn relative_urls_stay_on_the_server() {
        let p = policy(&[]);
        let r = p.resolve("/upload/2.jpg").unwrap();
        assert_eq!(r.url, "http://Push.Example:8088/upload/2.jpg");
        assert!(r.same_origin);
        assert_eq!(
            p.resolve("upload/2.jpg").unwrap().url,
            "http://Push.Example:8088/upload/2.jpg"
        );
        // The same origin written differently is still the server.
        assert!(p.resolve("HTTP://push.example:8088/x").unwrap().same_origin);
    }

    #[test]
    fn other_origins_are_refused() {
        let p = policy(&[]);
        for url in [
            "http://other/secret",
            "http://push.example/x",                 // another port (80)
            "https://push.example:8088/x",           // another scheme
            "//other/secret",                        // scheme-relative
            "http://push.example:8088@other/secret", // userinfo: the host is `other`
            "http://127.0.0.1:8088/x",
        ] {
            assert!(
                matches!(p.resolve(url), Err(UrlRefused::ForeignOrigin { .. })),
                "{url}: {:?}",
                p.resolve(url)
            );
        }
        for url in [
            "",
            "ftp://push.example:8088/x",
            "http://",
            "/a b",
            "file:///etc/passwd",
        ] {
            assert!(p.resolve(url).is_err(), "{url}");
        }
    }

    #[test]
    fn allowed_hosts_are_fetched_but_never_as_the_server() {
        let p = policy(&["CDN.example", "files.example:9000"]);
        let r = p.resolve("http://cdn.example/face.jpg").unwrap();
        assert!(!r.same_origin);
        assert!(p.resolve("https://cdn.example:8443/face.jpg").is_ok());
        assert!(p.resolve("http://files.example:9000/a").is_ok());
        assert!(p.resolve("http://files.example/a").is_err());
        assert!(p.resolve("http://evil.example/a").is_err());
    }

    #[test]
    fn a_redirect_path_is_relative_to_the_answering_host() {
        let p = policy(&["cdn.example"]);
        let r = p
            .resolve_redirect("http://cdn.example/a/b.jpg", "/c.jpg")
            .unwrap();
        assert_eq!(r.url, "http://cdn.example:80/c.jpg");
        assert!(!r.same_origin);
        let r = p
            .resolve_redirect("http://push.example:8088/x", "/y")
            .unwrap();
        assert!(r.same_origin);
        assert!(p
            .resolve_redirect("http://push.example:8088/x", "http://other/y")
            .is_err());
    }
}

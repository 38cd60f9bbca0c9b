//! Name resolution for the server link, resolved once and remembered.
//!
//! ureq's own resolver looks the server's name up again for every request,
//! and with a timeout set it starts a thread to do so. A controller polls
//! every few seconds and posts one result per command, so that was a thread
//! (and, for a host name, a DNS query) per request: hundreds during one bulk
//! sync. This resolver answers IP literals without any lookup and keeps a
//! looked-up name for [`NAME_TTL`], or until [`ResolverCache::forget`] is
//! called after a connection failure, so a server that moved is found again.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a looked-up name is trusted.
pub const NAME_TTL: Duration = Duration::from_secs(300);

/// The shared cache; clones see the same entries.
#[derive(Debug, Clone, Default)]
pub struct ResolverCache {
    entries: Arc<Mutex<HashMap<String, (ResolvedSocketAddrs, Instant)>>>,
}

impl ResolverCache {
    /// Drops every remembered name (after a failed connection).
    pub fn forget(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    fn get(&self, key: &str, now: Instant) -> Option<ResolvedSocketAddrs> {
        let entries = self.entries.lock().ok()?;
        let (addrs, at) = entries.get(key)?;
        (now.duration_since(*at) < NAME_TTL).then(|| addrs.clone())
    }

    fn put(&self, key: String, addrs: ResolvedSocketAddrs, now: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key, (addrs, now));
        }
    }

    /// How many names are remembered (for tests).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The resolver handed to the ureq agent.
#[derive(Debug, Default)]
pub struct CachingResolver {
    cache: ResolverCache,
    lookup: DefaultResolver,
}

impl CachingResolver {
    pub fn new(cache: ResolverCache) -> Self {
        CachingResolver {
            cache,
            lookup: DefaultResolver::default(),
        }
    }
}

/// An IP literal's address, or `None` for a name that needs a lookup.
fn literal(uri: &Uri) -> Option<SocketAddr> {
    let authority = uri.authority()?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    let port = authority.port_u16().or_else(|| match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    })?;
    Some(SocketAddr::new(ip, port))
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = literal(uri) {
            let mut addrs = self.empty();
            addrs.push(addr);
            return Ok(addrs);
        }
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        );
        let now = Instant::now();
        if let Some(addrs) = self.cache.get(&key, now) {
            return Ok(addrs);
        }
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        self.cache.put(key, addrs.clone(), now);
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(r: &CachingResolver, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().unwrap();
        let config = Config::default();
        r.resolve(
            &uri,
            &config,
            NextTimeout {
                after: Duration::from_secs(2).into(),
                reason: ureq::Timeout::Resolve,
                per_read: None,
                per_write: None,
            },
        )
        .map(|a| a.iter().copied().collect())
    }

    #[test]
    fn ip_literals_need_no_lookup_and_no_cache() {
        let cache = ResolverCache::default();
        let r = CachingResolver::new(cache.clone());
        assert_eq!(
            resolve(&r, "http://127.0.0.1:8081/iclock/cdata").unwrap(),
            vec!["127.0.0.1:8081".parse().unwrap()]
        );
        assert_eq!(
            resolve(&r, "https://[::1]/x").unwrap(),
            vec!["[::1]:443".parse().unwrap()]
        );
        assert_eq!(
            resolve(&r, "http://10.0.0.7/x").unwrap(),
            vec!["10.0.0.7:80".parse().unwrap()]
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn a_name_is_looked_up_once_and_forgotten_on_demand() {
        let cache = ResolverCache::default();
        let r = CachingResolver::new(cache.clone());
        let first = resolve(&r, "http://localhost:8081/x").unwrap();
        assert!(!first.is_empty());
        assert!(first.iter().all(|a| a.port() == 8081));
        assert_eq!(cache.len(), 1);
        assert_eq!(resolve(&r, "http://localhost:8081/y").unwrap(), first);
        assert_eq!(cache.len(), 1);
        cache.forget();
        assert!(cache.is_empty());
        assert_eq!(resolve(&r, "http://localhost:8081/z").unwrap(), first);
    }

    #[test]
    fn an_unknown_name_is_an_error_and_not_remembered() {
        let cache = ResolverCache::default();
        let r = CachingResolver::new(cache.clone());
        assert!(resolve(&r, "http://no-such-host.invalid:80/x").is_err());
        assert!(cache.is_empty());
    }
}

//! Firmware versions as packages and the running firmware name them, and
//! their order (a package older than the running firmware is refused).
//! Pure: text in, ordered values out.

use std::fmt;
use std::str::FromStr;

/// A firmware version: dot-separated numbers with an optional `-pre` part and an
/// ignored `+build` part (semver-ish). `1.2` equals `1.2.0`; a pre-release sorts
/// before its release (`1.3.0-rc1 < 1.3.0`).
#[derive(Debug, Clone)]
pub struct FirmwareVersion {
    numbers: Vec<u64>,
    pre: Option<String>,
    text: String,
}

impl FirmwareVersion {
    /// `0`, older than anything.
    pub fn zero() -> Self {
        FirmwareVersion {
            numbers: vec![0],
            pre: None,
            text: "0".to_owned(),
        }
    }

    fn number_at(&self, i: usize) -> u64 {
        self.numbers.get(i).copied().unwrap_or(0)
    }
}

/// Error from parsing a [`FirmwareVersion`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid firmware version {0:?} (expected e.g. 1.4.2 or 1.5.0-rc1)")]
pub struct VersionParseError(pub String);

impl FromStr for FirmwareVersion {
    type Err = VersionParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionParseError(s.to_owned());
        let text = s.trim();
        let body = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        let body = body.split_once('+').map_or(body, |(v, _build)| v);
        let (core, pre) = match body.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (body, None),
        };
        let numbers = core
            .split('.')
            .map(|n| {
                if n.is_empty() || n.len() > 18 || !n.bytes().all(|b| b.is_ascii_digit()) {
                    Err(err())
                } else {
                    n.parse::<u64>().map_err(|_| err())
                }
            })
            .collect::<Result<Vec<u64>, _>>()?;
        if numbers.is_empty() || numbers.len() > 8 {
            return Err(err());
        }
        if let Some(pre) = pre {
            let ok = !pre.is_empty()
                && pre
                    .split('.')
                    .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()));
            if !ok {
                return Err(err());
            }
        }
        Ok(FirmwareVersion {
            numbers,
            pre: pre.map(str::to_owned),
            text: text.to_owned(),
        })
    }
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for FirmwareVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let len = self.numbers.len().max(other.numbers.len());
        for i in 0..len {
            match self.number_at(i).cmp(&other.number_at(i)) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => compare_pre_release(a, b),
        }
    }
}

/// Semver precedence of pre-release identifiers: numeric ones compare as numbers
/// and sort before alphanumeric ones; a shorter list sorts first.
fn compare_pre_release(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let mut ai = a.split('.');
    let mut bi = b.split('.');
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

impl PartialOrd for FirmwareVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for FirmwareVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for FirmwareVersion {}

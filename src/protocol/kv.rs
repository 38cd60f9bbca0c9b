//! `key=value` lists: the LF-separated configuration blocks servers answer
//! (7.1, 7.5) and the comma-separated capability and options lines (7.4, 7.6).

/// An ordered list of `key=value` pairs with case-insensitive lookup. Servers
/// spell keys inconsistently (`PushProtVer` / `PushVersion`, `Pin` / `PIN`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValues(pub Vec<(String, String)>);

impl KeyValues {
    /// Parses a configuration reply: one `key=value` per line, any line ending,
    /// blank lines skipped. Lines without `=` (like a bare `OK`) are kept as a
    /// key with an empty value so callers can see them.
    pub fn parse_lines(body: &str) -> Self {
        KeyValues(
            super::lines(body)
                .map(|line| split_pair(line.trim()))
                .collect(),
        )
    }

    /// Parses a comma-separated list such as `IPAddress=1.2.3.4,NetMask=...`.
    pub fn parse_comma(text: &str) -> Self {
        KeyValues(
            text.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(split_pair)
                .collect(),
        )
    }

    /// The last value given for `key`, compared ASCII-case-insensitively.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Joins as `k=v,k=v` (the capability and options line format).
    pub fn to_comma_line(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn split_pair(item: &str) -> (String, String) {
    match item.split_once('=') {
        Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
        None => (item.trim().to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_block_with_mixed_endings_and_case() {
        let kv =
            KeyValues::parse_lines("registry=ok\r\nRegistryCode=Uy47\nPushVersion=3.0.1\r\n\r\n");
        assert_eq!(kv.get("registrycode"), Some("Uy47"));
        assert_eq!(kv.get("PUSHVERSION"), Some("3.0.1"));
        assert_eq!(kv.get("missing"), None);
    }

    #[test]
    fn comma_line_round_trips_and_keeps_empty_values() {
        let kv = KeyValues::parse_comma("A=1, ~B=x y ,C=");
        assert_eq!(kv.get("~b"), Some("x y"));
        assert_eq!(kv.get("C"), Some(""));
        assert_eq!(kv.to_comma_line(), "A=1,~B=x y,C=");
    }

    #[test]
    fn values_may_contain_equals_signs() {
        let kv = KeyValues::parse_lines("QRCodeDecryptKey=abc==");
        assert_eq!(kv.get("QRCodeDecryptKey"), Some("abc=="));
    }
}

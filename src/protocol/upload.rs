//! Classification of the server's answer to an upload (interop.md,
//! "Upload replies"): `OK`, `OK: N`, or `<table>=<count>` mean accepted.

/// What a 2xx answer to an upload said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadAck {
    /// Accepted; `count` is the number the server claims to have taken, if it said one.
    Accepted { count: Option<u64> },
    /// A 2xx whose body is an error text: not accepted, try again later.
    Rejected(String),
}

/// Classifies a 2xx body. An empty body is taken as acceptance: some servers
/// answer uploads with nothing but a status line.
pub fn classify(body: &str) -> UploadAck {
    let text = body.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let first = text.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return UploadAck::Accepted { count: None };
    }
    if first.eq_ignore_ascii_case("ok") {
        return UploadAck::Accepted { count: None };
    }
    let upper = first.to_ascii_uppercase();
    if let Some(rest) = upper
        .strip_prefix("OK:")
        .or_else(|| upper.strip_prefix("OK "))
    {
        if let Ok(n) = rest.trim().parse() {
            return UploadAck::Accepted { count: Some(n) };
        }
    }
    if let Some((k, v)) = first.split_once('=') {
        let k = k.trim();
        if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            if let Ok(n) = v.trim().parse() {
                return UploadAck::Accepted { count: Some(n) };
            }
        }
    }
    UploadAck::Rejected(first.chars().take(120).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_acknowledgement_form_is_accepted() {
        assert_eq!(classify("OK"), UploadAck::Accepted { count: None });
        assert_eq!(classify("ok\r\n"), UploadAck::Accepted { count: None });
        assert_eq!(classify("OK: 12"), UploadAck::Accepted { count: Some(12) });
        assert_eq!(classify("user=3"), UploadAck::Accepted { count: Some(3) });
        assert_eq!(classify(""), UploadAck::Accepted { count: None });
    }

    #[test]
    fn error_text_is_rejected() {
        assert!(matches!(
            classify("ERROR: db locked"),
            UploadAck::Rejected(_)
        ));
        assert!(matches!(
            classify("<html>500</html>"),
            UploadAck::Rejected(_)
        ));
        assert!(matches!(classify("user=abc"), UploadAck::Rejected(_)));
    }
}

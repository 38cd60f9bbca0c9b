//! The session token of sections 7.5/7.6: hex MD5 of RegistryCode + SN + SessionID.

use md5::{Digest, Md5};

/// Computes the `token` cookie value. Always called with the latest
/// RegistryCode and SessionID, because servers rotate both (interop.md).
pub fn token(registry_code: &str, serial: &str, session_id: &str) -> String {
    md5_hex(&[registry_code, serial, session_id])
}

/// Lower-case hex MD5 of the concatenated parts.
pub fn md5_hex(parts: &[&str]) -> String {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_lowercase_hex_md5_of_the_concatenation() {
        // md5("abc") = 900150983cd24fb0d6963f7d28e17f72
        assert_eq!(token("a", "b", "c"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(token("", "", "").len(), 32);
    }
}

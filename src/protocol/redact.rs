//! The one redaction of secrets in text meant for a log: values of
//! `key=value` (or `key: value`, or `key="value"`) pairs whose key names a
//! secret, and PEM private keys. Every log line of the firmware passes
//! through it (`logging::RedactingLogger`), so a request, body or command
//! printed anywhere cannot leak what the server and the device share.
//!
//! `Pin` is not among the keys: in this protocol it is the user's number.
//! The keypad PIN of a user is the `Password` field.

use std::borrow::Cow;

/// Keys whose values are secrets, compared without regard to case.
pub const SECRET_KEYS: &[&str] = &[
    "RegistryCode",
    "SessionID",
    "JSESSIONID",
    "token",
    "ComPwd",
    "CommPwd",
    "authKey",
    "Password",
    "Passwd",
    "Pwd",
    "PersonalPwd",
    "QRCodeDecryptKey",
    "Factors",
    "SessionKey",
];

/// What a secret value is replaced by.
pub const MASK: &str = "***";

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Bytes that end an unquoted value: the protocol's separators and the
/// escapes of a Debug-printed string.
fn ends_value(b: u8) -> bool {
    matches!(
        b,
        b'\t'
            | b'\n'
            | b'\r'
            | b'&'
            | b','
            | b';'
            | b' '
            | b'"'
            | b'\''
            | b'\\'
            | b')'
            | b']'
            | b'}'
    )
}

/// Where the value of a secret key starting at `at` lies, if one does.
fn secret_value(text: &[u8], at: usize) -> Option<(usize, usize)> {
    if at > 0 && is_word(text[at - 1]) {
        return None;
    }
    let key_len = SECRET_KEYS.iter().find_map(|k| {
        let end = at + k.len();
        (end <= text.len()
            && text[at..end].eq_ignore_ascii_case(k.as_bytes())
            && text.get(end).is_none_or(|b| !is_word(*b)))
        .then_some(k.len())
    })?;
    let mut i = at + key_len;
    while text.get(i) == Some(&b' ') {
        i += 1;
    }
    if !matches!(text.get(i), Some(b'=') | Some(b':')) {
        return None;
    }
    i += 1;
    while text.get(i) == Some(&b' ') {
        i += 1;
    }
    if text.get(i) == Some(&b'"') {
        let start = i + 1;
        let end = text[start..]
            .iter()
            .position(|b| *b == b'"')
            .map_or(text.len(), |p| start + p);
        return Some((start, end));
    }
    let end = text[i..]
        .iter()
        .position(|b| ends_value(*b))
        .map_or(text.len(), |p| i + p);
    (end > i).then_some((i, end))
}

/// `text` with every secret value masked; borrowed when there was none.
pub fn redact(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(end) = private_key_block(text, i) {
            let o = out.get_or_insert_with(String::new);
            o.push_str(&text[copied..i]);
            o.push_str("[private key]");
            copied = end;
            i = end;
            continue;
        }
        match secret_value(bytes, i) {
            Some((start, end)) => {
                let o = out.get_or_insert_with(String::new);
                o.push_str(&text[copied..start]);
                o.push_str(MASK);
                copied = end;
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// The end of a PEM private key block starting at `at`.
fn private_key_block(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at..)?;
    if !rest.starts_with("-----BEGIN")
        || !rest[..rest.find('\n').unwrap_or(rest.len())].contains("PRIVATE KEY")
    {
        return None;
    }
    const END: &str = "PRIVATE KEY-----";
    let close = rest.find("-----END")?;
    let tail = rest[close..].find(END)? + close + END.len();
    Some(at + tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_in_every_form_the_protocol_writes() {
        let cases = [
            (
                "RegistryCode=abc123\nSessionID=S9",
                "RegistryCode=***\nSessionID=***",
            ),
            (
                "Cookie: token=0f1e; JSESSIONID=77",
                "Cookie: token=***; JSESSIONID=***",
            ),
            (
                "DATA UPDATE user Pin=1\tPassword=4711\tName=Ann",
                "DATA UPDATE user Pin=1\tPassword=***\tName=Ann",
            ),
            ("ComPwd=\"12 34\": bad value", "ComPwd=\"***\": bad value"),
            (
                "Orphan(\"x passwd=9\\tName=B\")",
                "Orphan(\"x passwd=***\\tName=B\")",
            ),
            (
                "SET OPTIONS authKey=k1,ComPwd=2",
                "SET OPTIONS authKey=***,ComPwd=***",
            ),
            ("registrycode: zz, ok", "registrycode: ***, ok"),
            ("Factors=QUJD\n", "Factors=***\n"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text:?}");
        }
    }

    #[test]
    fn other_text_is_left_alone_and_borrowed() {
        for text in [
            "Pin=1\tCardNo=123\tName=Password",
            "MyPassword=1 tokenizer=2 Passwords are nice",
            "session with http://h:8088: timed out",
            "token",
            "",
        ] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text:?}");
        }
    }

    #[test]
    fn private_keys_are_replaced_whole() {
        let text = "key: -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- done";
        assert_eq!(redact(text), "key: [private key] done");
        let public = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----";
        assert_eq!(redact(public), public);
    }
}

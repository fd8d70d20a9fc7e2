//! Identifier formats, pure so they are tested natively.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Formats 16 random bytes as a version 4 UUID (RFC 9562): the version
/// and variant bits are set here.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// The value of cookie `name` in a `document.cookie` string, if set.
pub fn cookie<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then_some(v.trim())
    })
}

/// An id as Segment's libraries stored it: plain, or JSON-encoded
/// (`"abc"`), either of them URI-encoded (`%22abc%22`). `None` for empty.
pub fn stored_id(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    if let Some(inner) = s.strip_prefix("%22").and_then(|r| r.strip_suffix("%22")) {
        s = inner;
    }
    if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        s = inner;
    }
    (!s.is_empty() && s != "null" && s != "undefined").then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_sets_version_and_variant() {
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4([
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
            0xde, 0xf0,
        ]);
        assert_eq!(id, "12345678-9abc-4ef0-9234-56789abcdef0");
    }

    #[test]
    fn cookie_lookup() {
        let jar = "a=1; ajs_anonymous_id=abc; ajs_user_id=%22u1%22";
        assert_eq!(cookie(jar, "ajs_anonymous_id"), Some("abc"));
        assert_eq!(cookie(jar, "ajs_user_id"), Some("%22u1%22"));
        assert_eq!(cookie(jar, "ajs"), None);
        assert_eq!(cookie("", "a"), None);
        assert_eq!(cookie("novalue; a=2", "a"), Some("2"));
    }

    #[test]
    fn stored_ids_in_every_encoding_segment_used() {
        for (raw, want) in [
            ("abc", Some("abc")),
            ("\"abc\"", Some("abc")),
            ("%22abc%22", Some("abc")),
            ("", None),
            ("\"\"", None),
            ("null", None),
            ("undefined", None),
        ] {
            assert_eq!(stored_id(raw).as_deref(), want, "{raw}");
        }
    }
}

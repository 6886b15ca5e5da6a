//! What the server's tests share.

// Each test binary uses what it needs of these.
#![allow(dead_code)]

/// A quoted-printable message part decoded (soft line breaks joined, `=XX` bytes read), so
/// a test can find the links a sent email holds.
pub fn unquote(eml: &str) -> String {
    let joined = eml.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

//! Percent-encoding of a value placed in a URL query or an `application/x-www-form-urlencoded` body: every
//! byte but RFC 3986's unreserved characters escaped (so a space is `%20`, which both forms accept).

/// `value` with every byte outside `A–Z a–z 0–9 - . _ ~` written as `%XX`.
pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_stay_as_they_are() {
        assert_eq!(percent_encode("https://ml.a.run.app"), "https%3A%2F%2Fml.a.run.app");
        assert_eq!(percent_encode("a b&c=é~"), "a%20b%26c%3D%C3%A9~");
    }
}

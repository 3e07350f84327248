//! URI encoding as SigV4 defines it, and RFC 3986 dot-segment removal.
//!
//! SigV4 does not use `application/x-www-form-urlencoded`: a space is `%20`, never `+`, and
//! escapes are upper-case. Only the unreserved set `A-Z a-z 0-9 - . _ ~` is left as is.

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn encode_into(out: &mut String, input: &str, keep_slash: bool) {
    for &b in input.as_bytes() {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }
}

/// Encodes every byte outside the unreserved set, `/` included (query keys and values).
pub fn encode_component(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    encode_into(&mut out, input, false);
    out
}

/// Encodes every byte outside the unreserved set but keeps `/` (object keys in paths).
pub fn encode_path(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    encode_into(&mut out, input, true);
    out
}

/// Appends the component encoding of `input` to `out`.
pub fn encode_component_into(out: &mut String, input: &str) {
    encode_into(out, input, false);
}

/// Appends the path encoding of `input` to `out`.
pub fn push_encoded_path(out: &mut String, input: &str) {
    encode_into(out, input, true);
}

/// Removes `.` and `..` segments and collapses empty segments, as the generic AWS
/// services (not S3) do before signing. The result always starts with `/` and keeps a
/// trailing `/` when the input had one.
pub fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let ends_in_dir = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || (ends_in_dir && !segments.is_empty()) {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_encoding_uses_the_unreserved_set_only() {
        assert_eq!(encode_component("a b+c/d~e_f.g-h"), "a%20b%2Bc%2Fd~e_f.g-h");
        assert_eq!(encode_component("ሴ"), "%E1%88%B4");
        assert_eq!(encode_component("%"), "%25");
    }

    #[test]
    fn path_encoding_keeps_slashes() {
        assert_eq!(
            encode_path("/bucket/a b/(1)!.txt"),
            "/bucket/a%20b/%281%29%21.txt"
        );
        assert_eq!(encode_path("test$file.text"), "test%24file.text");
    }

    #[test]
    fn normalization_follows_rfc3986() {
        assert_eq!(normalize_path("/example/.."), "/");
        assert_eq!(normalize_path("/example1/example2/../.."), "/");
        assert_eq!(normalize_path("/./"), "/");
        assert_eq!(normalize_path("/./example"), "/example");
        assert_eq!(normalize_path("//"), "/");
        assert_eq!(normalize_path("//example//"), "/example/");
        assert_eq!(normalize_path("/a/b/../c/"), "/a/c/");
        assert_eq!(normalize_path(""), "/");
    }
}

//! The JSON nesting check transports run before parsing: one pass over the bytes, no allocation.

/// `true` when no object or array in `json` nests deeper than `max_depth` (`{}` is depth 1). Brackets
/// inside strings (escapes included) do not count. The input is not otherwise validated — the parser that
/// runs next does that — so malformed input may pass this check and then fail to parse.
pub fn json_depth_ok(json: &[u8], max_depth: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::json_depth_ok;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn counts_objects_and_arrays() {
        assert!(json_depth_ok(b"1", 0));
        assert!(!json_depth_ok(b"{}", 0));
        assert!(json_depth_ok(b"{}", 1));
        assert!(json_depth_ok(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(!json_depth_ok(br#"{"a":[1,{"b":2}]}"#, 2));
        assert!(json_depth_ok(nested(64).as_bytes(), 64));
        assert!(!json_depth_ok(nested(65).as_bytes(), 64));
    }

    #[test]
    fn siblings_do_not_add_up() {
        let siblings = format!("[{}]", vec!["[[1]]"; 1000].join(","));
        assert!(json_depth_ok(siblings.as_bytes(), 3));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert!(json_depth_ok(br#"{"note":"[[[[{{{{"}"#, 1));
        assert!(json_depth_ok(br#"{"note":"quote \" then [[[["}"#, 1));
        assert!(json_depth_ok(br#"{"note":"backslash \\","x":1}"#, 1));
        assert!(!json_depth_ok(br#"{"note":"backslash \\","x":[1]}"#, 1));
    }
}

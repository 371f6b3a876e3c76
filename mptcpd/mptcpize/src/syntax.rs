//! Values written into a drop-in, escaped as systemd.syntax(7) and systemd.service(5) say, so
//! that a path is read back as the same path and can never add a directive.

use std::ffi::OsStr;

/// Where in a drop-in a value goes: each place has its own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// The program of an `Exec*=` line: taken literally (no `$` expansion), and systemd refuses
    /// quotes and backslashes in it.
    Executable,
    /// A later word of an `Exec*=` line: `$NAME` is expanded there, so `$` is doubled.
    Argument,
    /// One `NAME=VALUE` word of `Environment=`.
    Assignment,
}

/// `value` as one word of `field`, quoted where needed; the error says why it cannot be.
pub(super) fn quote(value: &OsStr, field: Field) -> Result<String, &'static str> {
    let text = value
        .to_str()
        .ok_or("it is not UTF-8, which unit files must be")?;
    if text.chars().any(char::is_control) {
        return Err("it contains a control character (a newline would add directives)");
    }
    if field == Field::Executable && text.contains(['"', '\'', '\\']) {
        return Err("systemd refuses quotes and backslashes in a command's path");
    }
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            // Specifiers (%n, %i, ...) are expanded everywhere.
            '%' => out.push_str("%%"),
            '$' if field == Field::Argument => out.push_str("$$"),
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    let plain = !text.is_empty()
        && text != ";"
        && !text.contains(|c: char| c.is_whitespace() || "\"'\\".contains(c));
    Ok(if plain { out } else { format!("\"{out}\"") })
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::{Field, quote};

    fn q(value: &str, field: Field) -> Result<String, &'static str> {
        quote(OsStr::new(value), field)
    }

    #[test]
    fn plain_values_stay_as_they_are() {
        for field in [Field::Executable, Field::Argument, Field::Assignment] {
            assert_eq!(q("/usr/bin/mptcpize", field).unwrap(), "/usr/bin/mptcpize");
        }
    }

    #[test]
    fn specifiers_dollars_quotes_and_backslashes_are_escaped() {
        assert_eq!(q("/a b/x%i", Field::Executable).unwrap(), "\"/a b/x%%i\"");
        // The program's path is literal: `$` is not expanded there.
        assert_eq!(q("/a$b", Field::Executable).unwrap(), "/a$b");
        assert_eq!(q("/a$b", Field::Argument).unwrap(), "/a$$b");
        assert_eq!(
            q(r#"/p "q"\r%"#, Field::Argument).unwrap(),
            r#""/p \"q\"\\r%%""#
        );
        assert_eq!(
            q("LD_PRELOAD=/a b/l.so", Field::Assignment).unwrap(),
            "\"LD_PRELOAD=/a b/l.so\""
        );
        assert_eq!(q("A=$x", Field::Assignment).unwrap(), "A=$x");
        assert_eq!(q(";", Field::Argument).unwrap(), "\";\"");
        assert_eq!(q("", Field::Argument).unwrap(), "\"\"");
    }

    #[test]
    fn control_characters_and_unusable_paths_are_refused() {
        for field in [Field::Executable, Field::Argument, Field::Assignment] {
            let err = q("/sys/fs/bpf/x\nExecStartPre=/bin/sh", field).unwrap_err();
            assert!(err.contains("control character"), "{err}");
            assert!(q("/a\tb", field).is_err());
            assert!(q("/a\u{7f}", field).is_err());
        }
        for bad in ["/a\"b", "/a'b", "/a\\b"] {
            assert!(q(bad, Field::Executable).is_err(), "{bad}");
        }
        let not_utf8 = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/a\xff");
        assert!(quote(not_utf8, Field::Argument).is_err());
    }
}

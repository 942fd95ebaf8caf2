//! Variable interpolation as the Compose Specification defines it: `$VAR`, `${VAR}`,
//! `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:?error}`,
//! `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}`, and `$$` for a
//! literal `$`. Defaults and replacements may themselves hold interpolations.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR:?message}` or `${VAR?message}` with VAR missing.
    #[error("required variable {name} is missing a value: {message}")]
    Required { name: String, message: String },
    #[error("invalid interpolation format for {text:?}: {reason}")]
    Syntax { text: String, reason: String },
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// How deeply defaults may nest (`${a:-${b:-...}}`): far more than any real file, and
/// few enough that a hostile one cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// Interpolates `text`, looking variables up with `lookup`.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolateError> {
    interpolate_at(text, lookup, 0)
}

fn interpolate_at(text: &str, lookup: &dyn Fn(&str) -> Option<String>, depth: usize) -> Result<String, InterpolateError> {
    if depth > MAX_DEPTH {
        return Err(InterpolateError::Syntax { text: text.chars().take(80).collect(), reason: format!("interpolations nest more than {MAX_DEPTH} deep") });
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                // Find the matching brace (braces nest in defaults).
                let mut open = 0;
                let mut end = None;
                for (j, ch) in chars.iter().enumerate().skip(i + 1) {
                    match ch {
                        '{' => open += 1,
                        '}' => {
                            open -= 1;
                            if open == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let Some(end) = end else {
                    return Err(InterpolateError::Syntax { text: text.to_owned(), reason: "a ${ without its }".into() });
                };
                let inner: String = chars[i + 2..end].iter().collect();
                out.push_str(&braced(&inner, text, lookup, depth)?);
                i = end + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&lookup(&name).unwrap_or_default());
                i = j;
            }
            _ => {
                // A lone `$` stays as it is.
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The inside of `${...}`.
fn braced(inner: &str, whole: &str, lookup: &dyn Fn(&str) -> Option<String>, depth: usize) -> Result<String, InterpolateError> {
    let name_len = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
    let name = &inner[..name_len];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(InterpolateError::Syntax { text: whole.to_owned(), reason: format!("bad variable name in ${{{inner}}}") });
    }
    let rest = &inner[name_len..];
    let value = lookup(name);
    let set = value.is_some();
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let nested = |t: &str| interpolate_at(t, lookup, depth + 1);
    let (op, arg) = if rest.is_empty() {
        ("", "")
    } else if let Some(arg) = rest.strip_prefix(":-") {
        (":-", arg)
    } else if let Some(arg) = rest.strip_prefix(":?") {
        (":?", arg)
    } else if let Some(arg) = rest.strip_prefix(":+") {
        (":+", arg)
    } else if let Some(arg) = rest.strip_prefix('-') {
        ("-", arg)
    } else if let Some(arg) = rest.strip_prefix('?') {
        ("?", arg)
    } else if let Some(arg) = rest.strip_prefix('+') {
        ("+", arg)
    } else {
        return Err(InterpolateError::Syntax { text: whole.to_owned(), reason: format!("unknown operator in ${{{inner}}}") });
    };
    Ok(match op {
        "" => value.unwrap_or_default(),
        ":-" if set_nonempty => value.unwrap_or_default(),
        ":-" => nested(arg)?,
        "-" if set => value.unwrap_or_default(),
        "-" => nested(arg)?,
        ":?" | "?" => {
            let ok = if op == ":?" { set_nonempty } else { set };
            if !ok {
                return Err(InterpolateError::Required { name: name.to_owned(), message: nested(arg)? });
            }
            value.unwrap_or_default()
        }
        ":+" if set_nonempty => nested(arg)?,
        "+" if set => nested(arg)?,
        _ => String::new(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn nesting_is_bounded() {
        let none = |_: &str| None;
        let deep = format!("{}x{}", "${A:-".repeat(20), "}".repeat(20));
        assert_eq!(super::interpolate(&deep, &none).expect("20 deep is fine"), "x");
        let hostile = format!("{}x{}", "${A:-".repeat(100_000), "}".repeat(100_000));
        let err = super::interpolate(&hostile, &none).expect_err("100000 deep");
        assert!(err.to_string().contains("nest more than 32 deep"), "{err}");
    }

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            "OTHER" => Some("other".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, InterpolateError> {
        interpolate(text, &env)
    }

    #[test]
    fn every_form_of_the_spec() {
        assert_eq!(run("$SET and ${SET}").as_deref(), Ok("value and value"));
        assert_eq!(run("${UNSET:-d} ${EMPTY:-d} ${SET:-d}").as_deref(), Ok("d d value"));
        assert_eq!(run("${UNSET-d} ${EMPTY-d} ${SET-d}").as_deref(), Ok("d  value"));
        assert_eq!(run("${SET:+alt} ${EMPTY:+alt} ${EMPTY+alt} ${UNSET+alt}").as_deref(), Ok("alt  alt "));
        assert_eq!(run("$$SET costs $$5").as_deref(), Ok("$SET costs $5"));
        assert_eq!(run("${UNSET:-${OTHER}}").as_deref(), Ok("other"));
        assert_eq!(run("${UNSET:-${ALSO_UNSET:-deep}}").as_deref(), Ok("deep"));
        assert_eq!(run("$UNSET.").as_deref(), Ok("."));
        assert_eq!(run("100$ and $1").as_deref(), Ok("100$ and $1"));
    }

    #[test]
    fn required_variables_and_bad_syntax_are_errors() {
        assert_eq!(
            run("${UNSET:?the db needs a password}"),
            Err(InterpolateError::Required { name: "UNSET".into(), message: "the db needs a password".into() })
        );
        assert!(run("${EMPTY:?empty}").is_err());
        assert_eq!(run("${EMPTY?empty}").as_deref(), Ok(""));
        assert!(matches!(run("${SET"), Err(InterpolateError::Syntax { .. })));
        assert!(matches!(run("${1BAD}"), Err(InterpolateError::Syntax { .. })));
        assert!(matches!(run("${SET!x}"), Err(InterpolateError::Syntax { .. })));
        let message = run("${UNSET?must be set}").expect_err("required").to_string();
        assert_eq!(message, "required variable UNSET is missing a value: must be set");
    }
}

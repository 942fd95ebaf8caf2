//! `import --change`: the Dockerfile instructions docker lets an import set on the new
//! image's config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR,
//! STOPSIGNAL), applied to its `config` object.

use serde_json::{json, Map, Value};

/// Applies each change (`INSTRUCTION arguments`) to `config` (the image config's
/// `config` object); the first that is not one docker takes is the error.
pub fn apply(config: &mut Map<String, Value>, changes: &[String]) -> Result<(), String> {
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (instruction, args) = change.split_once(char::is_whitespace).map_or((change, ""), |(i, a)| (i, a.trim()));
        match instruction.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.insert("Cmd".into(), command(args));
            }
            "ENTRYPOINT" => {
                config.insert("Entrypoint".into(), command(args));
            }
            "ENV" => {
                let mut env: Vec<String> =
                    config.get("Env").and_then(Value::as_array).map(|l| l.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect()).unwrap_or_default();
                for (key, value) in pairs(args, "ENV")? {
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                    env.push(format!("{key}={value}"));
                }
                config.insert("Env".into(), json!(env));
            }
            "LABEL" => {
                let labels = config.entry("Labels").or_insert_with(|| json!({}));
                if !labels.is_object() {
                    *labels = json!({});
                }
                for (key, value) in pairs(args, "LABEL")? {
                    labels[key] = Value::String(value);
                }
            }
            "EXPOSE" => {
                let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
                for port in args.split_whitespace() {
                    let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
                    if number.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                        return Err(format!("invalid port in EXPOSE: {port:?}"));
                    }
                    ports[format!("{number}/{proto}")] = json!({});
                }
            }
            "VOLUME" => {
                let volumes = config.entry("Volumes").or_insert_with(|| json!({}));
                let paths: Vec<String> = match serde_json::from_str::<Vec<String>>(args) {
                    Ok(list) => list,
                    Err(_) => args.split_whitespace().map(str::to_owned).collect(),
                };
                for path in paths {
                    volumes[path] = json!({});
                }
            }
            "USER" => {
                config.insert("User".into(), Value::String(args.to_owned()));
            }
            "WORKDIR" => {
                config.insert("WorkingDir".into(), Value::String(args.to_owned()));
            }
            "STOPSIGNAL" => {
                config.insert("StopSignal".into(), Value::String(args.to_owned()));
            }
            other => return Err(format!("{other} is not a valid change command")),
        }
    }
    Ok(())
}

/// CMD and ENTRYPOINT: a JSON array (exec form), else the shell form.
fn command(args: &str) -> Value {
    match serde_json::from_str::<Vec<String>>(args) {
        Ok(list) => json!(list),
        Err(_) => json!(["/bin/sh", "-c", args]),
    }
}

/// `k=v k2="v 2"` (or the old `k v` form): the pairs, quotes taken off.
fn pairs(args: &str, instruction: &str) -> Result<Vec<(String, String)>, String> {
    let words = split_words(args);
    if words.is_empty() {
        return Err(format!("{instruction} needs arguments"));
    }
    if !words[0].contains('=') {
        // The old form: one key, the rest is its value.
        let (key, value) = args.split_once(char::is_whitespace).ok_or_else(|| format!("{instruction} {args:?} has no value"))?;
        return Ok(vec![(key.to_owned(), unquote(value.trim()))]);
    }
    words
        .into_iter()
        .map(|word| word.split_once('=').map(|(k, v)| (k.to_owned(), unquote(v))).ok_or_else(|| format!("{instruction}: {word:?} is not key=value")))
        .collect()
}

/// Splits on whitespace outside double quotes.
fn split_words(args: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in args.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn unquote(value: &str) -> String {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instruction_sets_its_field() {
        let mut config = Map::new();
        let changes: Vec<String> = [
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/run",
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "LABEL k=v team=\"a b\"",
            "EXPOSE 80 53/udp",
            "VOLUME /data",
            "USER app",
            "WORKDIR /srv",
            "STOPSIGNAL SIGINT",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        apply(&mut config, &changes).expect("valid changes");
        assert_eq!(config["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(config["Entrypoint"], json!(["/bin/sh", "-c", "/bin/run"]));
        assert_eq!(config["Env"], json!(["B=two words", "A=3"]));
        assert_eq!(config["Labels"], json!({"k": "v", "team": "a b"}));
        assert_eq!(config["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(config["Volumes"], json!({"/data": {}}));
        assert_eq!((config["User"].as_str(), config["WorkingDir"].as_str(), config["StopSignal"].as_str()), (Some("app"), Some("/srv"), Some("SIGINT")));
        assert!(apply(&mut config, &["RUN rm -rf /".to_owned()]).is_err());
        assert!(apply(&mut config, &["EXPOSE http".to_owned()]).is_err());
    }
}

//! `berth compose config`: the real binary reading compose files (no engine needed).

use std::process::Command;

fn config(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(berth_tests::bin("berth"));
    command.arg("compose").args(args).current_dir(dir).env_remove("COMPOSE_PROJECT_NAME").env_remove("COMPOSE_FILE");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("berth compose");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn config_resolves_files_variables_and_the_project_name() {
    let dir = berth_tests::temp_home("compose-config").join("Shop Front");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("compose.yaml"), "version: '3'\nservices:\n  web:\n    image: \"nginx:${TAG:-latest}\"\n    ports: ['8080:80']\n  db:\n    image: postgres\n    environment: [\"PASSWORD=${PW:?the database needs PW}\"]\n").expect("write");
    std::fs::write(dir.join("prod.yaml"), "services:\n  web:\n    ports: ['8443:443']\n").expect("write");
    std::fs::write(dir.join(".env"), "TAG=1.25\nPW=from-dotenv\n").expect("write");
    std::fs::write(dir.join("other.env"), "PW=from-env-file\n").expect("write");

    let (ok, out, err) = config(&dir, &["config", "--format", "json"], &[]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["name"], "shopfront");
    assert_eq!(json["services"]["web"]["image"], "nginx:1.25");
    assert!(json.get("version").is_none());

    let (ok, out, err) = config(&dir, &["-f", "compose.yaml", "-f", "prod.yaml", "-p", "shop", "--env-file", "other.env", "config", "--format", "json"], &[("TAG", "2")]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["name"], "shop");
    assert_eq!(json["services"]["web"]["image"], "nginx:2");
    assert_eq!(json["services"]["web"]["ports"], serde_json::json!(["8080:80", "8443:443"]));
    assert_eq!(json["services"]["db"]["environment"], serde_json::json!(["PASSWORD=from-env-file"]));

    std::fs::write(dir.join("broken.yaml"), "services:\n  web:\n    imgae: nginx\n").expect("write");
    let (ok, _, err) = config(&dir, &["-f", "broken.yaml", "config"], &[]);
    assert!(!ok);
    assert!(err.contains("broken.yaml: services.web.imgae: unknown key"), "{err}");
    std::fs::write(dir.join("missing.yaml"), "services:\n  db:\n    image: pg\n    environment: [\"PASSWORD=${NOPE:?needs NOPE}\"]\n").expect("write");
    let (ok, _, err) = config(&dir, &["-f", "missing.yaml", "config"], &[]);
    assert!(!ok);
    assert!(err.contains("required variable NOPE is missing a value: needs NOPE"), "{err}");
    std::fs::write(dir.join("cycle.yaml"), "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n").expect("write");
    let (ok, _, err) = config(&dir, &["-f", "cycle.yaml", "config"], &[]);
    assert!(!ok);
    assert!(err.contains("dependency cycle detected: a -> b -> a"), "{err}");
    let _ = std::fs::remove_dir_all(dir.parent().expect("home"));
}

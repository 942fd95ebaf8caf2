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

    let (ok, out, err) =
        config(&dir, &["-f", "compose.yaml", "-f", "prod.yaml", "-p", "shop", "--env-file", "other.env", "config", "--format", "json"], &[("TAG", "2")]);
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

/// tests/compose-corpus: every `NAME.yaml` either resolves to `NAME.json` (what
/// `config --format json` prints) or fails with a message holding each line of
/// `NAME.err` and naming the file.
#[test]
fn the_corpus_resolves_or_fails_with_its_messages() {
    let corpus = berth_tests::root().join("tests/compose-corpus");
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(&corpus).expect("corpus").flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is incomplete: {files:?}");
    for file in files {
        let name = file.file_name().expect("name").to_string_lossy().into_owned();
        let (ok, out, err) = config(&corpus, &["-p", "corpus", "-f", &name, "config", "--format", "json"], &[("TAG", "1.0"), ("EMPTY", "")]);
        let expected_json = file.with_extension("json");
        let expected_err = file.with_extension("err");
        if expected_json.exists() {
            assert!(ok, "{name}: {err}");
            let got: serde_json::Value = serde_json::from_str(&out).expect("json");
            let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&expected_json).expect("read")).expect("expected json");
            assert_eq!(got, want, "{name}: the resolved project differs from {}", expected_json.display());
        } else if expected_err.exists() {
            assert!(!ok, "{name} should be refused: {out}");
            assert!(err.contains(&name), "{name}: the error does not name the file: {err}");
            for line in std::fs::read_to_string(&expected_err).expect("read").lines().filter(|l| !l.is_empty()) {
                assert!(err.contains(line), "{name}: expected {line:?} in: {err}");
            }
        } else {
            panic!("{name} has neither a .json nor an .err expectation");
        }
    }
}

mod stack {
    //! A 3-service stack on the native engine (inside a network namespace the test
    //! made): a web service publishing a port, an app service that waits for a healthy
    //! db service, a named volume and user networks with an alias.

    use std::collections::BTreeSet;

    use berth_tests::fixtures;
    use berth_tests::native::NativeEngine;

    const IMAGE: &str = "berth.test/busybox:compose";

    const STACK: &str = r#"
services:
  web:
    image: berth.test/busybox:compose
    command: ["busybox", "httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["8080:80"]
    init: true
    volumes: ["./www:/www:ro"]
    environment: {GREETING: "${GREETING:-hello}"}
    networks: [front, back]
    depends_on: [app]
  app:
    image: berth.test/busybox:compose
    command: ["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]
    init: true
    networks:
      back:
        aliases: [api]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: berth.test/busybox:compose
    command: ["sh", "-c", "echo ready > /data/state; exec sleep 3600"]
    init: true
    volumes: ["dbdata:/data", "scratch:/scratch"]
    networks: [back]
    healthcheck:
      test: ["CMD", "cat", "/data/state"]
      interval: 200ms
      retries: 50
networks:
  front: {}
  back: {}
volumes:
  dbdata: {}
  scratch:
    driver_opts: {type: tmpfs, device: tmpfs, o: "size=1m"}
"#;

    fn compose(engine: &NativeEngine, dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let mut command = std::process::Command::new(berth_tests::bin("berth"));
        command.arg("compose").args(args).current_dir(dir).env("BERTH_HOME", &engine.home).env_remove("BERTH_HOST");
        command.env_remove("COMPOSE_PROJECT_NAME").env_remove("COMPOSE_FILE").env_remove("GREETING");
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().expect("berth compose");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn ok(engine: &NativeEngine, dir: &std::path::Path, args: &[&str]) -> String {
        let (done, out, err) = compose(engine, dir, args, &[]);
        assert!(done, "compose {args:?}: {err}");
        out
    }

    fn ids(engine: &NativeEngine, dir: &std::path::Path) -> BTreeSet<String> {
        ok(engine, dir, &["ps", "-q"]).lines().map(str::to_owned).collect()
    }

    fn service_ids(engine: &NativeEngine, dir: &std::path::Path, service: &str) -> BTreeSet<String> {
        ok(engine, dir, &["ps", "-q", service]).lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_three_service_stack_comes_up_scales_updates_and_goes_down_without_a_trace() {
        // `init: true` needs a static init (the native tier builds berth-monitor for musl).
        let init = berth_tests::root().join("target/x86_64-unknown-linux-musl/debug/berth-monitor");
        let engine = NativeEngine::start_isolated_with("compose-stack", &[("BERTH_INIT", &init.display().to_string())]);
        let archive = engine.home.join("image.tar");
        std::fs::write(&archive, fixtures::oci_archive(&fixtures::container_image(serde_json::json!({})), IMAGE)).expect("archive");
        assert!(engine.berth(&["load", "-i", &archive.display().to_string()]).status.success());
        // The default bridge, made once, stays (like docker0): the baseline includes it.
        assert!(engine.berth(&["run", "--rm", IMAGE, "true"]).status.success());
        // The kernel frees an ended namespace (and so its veth pair) a moment later.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while engine.network_footprint().contains("veth") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let baseline = engine.network_footprint();
        let dir = engine.home.join("shop");
        std::fs::create_dir_all(dir.join("www")).expect("dir");
        std::fs::write(dir.join("compose.yaml"), STACK).expect("write");
        std::fs::write(dir.join("www/index.html"), "hello from the stack\n").expect("write");

        let (done, _, err) = compose(&engine, &dir, &["up", "-d"], &[]);
        assert!(done, "{err}");
        // db became healthy before app was created.
        let db_healthy = err.find("Healthy").expect("waited for db's health");
        let app_created = err.find("Container shop-app-1  Creating").expect("app created");
        assert!(db_healthy < app_created, "{err}");
        // The published port answers on the namespace's loopback.
        let (got, page) = engine.in_netns(&["busybox", "wget", "-qO-", "http://127.0.0.1:8080/"]);
        assert!(got, "{page}");
        assert_eq!(page, "hello from the stack\n");
        // Service names and aliases resolve on the shared network.
        let app_id = service_ids(&engine, &dir, "app").into_iter().next().expect("app");
        let by_name = ok(&engine, &dir, &["exec", "-T", "web", "busybox", "wget", "-qO-", "http://app/hostname"]);
        assert_eq!(by_name.trim(), &app_id[..12]);
        let by_alias = ok(&engine, &dir, &["exec", "-T", "web", "busybox", "wget", "-qO-", "http://api/hostname"]);
        assert_eq!(by_alias.trim(), &app_id[..12]);
        // docker compose's labels.
        let inspect: serde_json::Value = serde_json::from_slice(&engine.berth(&["inspect", "shop-db-1"]).stdout).expect("json");
        let labels = &inspect[0]["Config"]["Labels"];
        assert_eq!(labels["com.docker.compose.project"], "shop");
        assert_eq!(labels["com.docker.compose.service"], "db");
        assert_eq!(labels["com.docker.compose.container-number"], "1");
        assert_eq!(labels["com.docker.compose.oneoff"], "False");
        assert_eq!(labels["com.docker.compose.config-hash"].as_str().map(str::len), Some(64));
        assert_eq!(inspect[0]["Mounts"][0]["Name"], "shop_dbdata");
        // driver_opts reach the volume: a tmpfs.
        let scratch = ok(&engine, &dir, &["exec", "-T", "db", "sh", "-c", "grep ' /scratch ' /proc/mounts | cut -d' ' -f3"]);
        assert_eq!(scratch.trim(), "tmpfs");

        // Idempotent: nothing changed, nothing recreated.
        let before = ids(&engine, &dir);
        ok(&engine, &dir, &["up", "-d"]);
        assert_eq!(ids(&engine, &dir), before);

        // Three app replicas behind one name.
        ok(&engine, &dir, &["up", "-d", "--scale", "app=3"]);
        assert_eq!(service_ids(&engine, &dir, "app").len(), 3);
        let answers = ok(&engine, &dir, &["exec", "-T", "web", "busybox", "nslookup", "app"]);
        assert_eq!(answers.matches("Name:").count(), 3, "{answers}");
        let mut seen = BTreeSet::new();
        for _ in 0..12 {
            seen.insert(ok(&engine, &dir, &["exec", "-T", "web", "busybox", "wget", "-qO-", "http://app/hostname"]).trim().to_owned());
        }
        assert!(!seen.is_empty());

        // A changed service is recreated; the others are left alone.
        let db_before = service_ids(&engine, &dir, "db");
        let web_before = service_ids(&engine, &dir, "web");
        let (done, _, err) = compose(&engine, &dir, &["up", "-d", "--scale", "app=3"], &[("GREETING", "hi")]);
        assert!(done, "{err}");
        assert_ne!(service_ids(&engine, &dir, "web"), web_before);
        assert_eq!(service_ids(&engine, &dir, "db"), db_before);
        assert_eq!(ok(&engine, &dir, &["exec", "-T", "web", "sh", "-c", "echo $GREETING"]).trim(), "hi");

        // Logs, one-off run.
        let logs = ok(&engine, &dir, &["logs", "--no-color", "db"]);
        assert!(logs.is_empty() || logs.starts_with("shop-db-1"), "{logs}");
        let one_off = ok(&engine, &dir, &["run", "--rm", "-T", "db", "cat", "/data/state"]);
        assert_eq!(one_off, "ready\n");

        // down -v: no container, network or volume of the project is left.
        ok(&engine, &dir, &["down", "-v"]);
        assert!(ok(&engine, &dir, &["ps", "-a", "-q"]).is_empty());
        let containers = String::from_utf8_lossy(&engine.berth(&["ps", "-aq"]).stdout).into_owned();
        assert!(containers.is_empty(), "{containers}");
        let networks = String::from_utf8_lossy(&engine.berth(&["network", "ls", "--format", "{{.Name}}"]).stdout).into_owned();
        assert_eq!(networks, "bridge\nhost\nnone\n");
        let volumes = String::from_utf8_lossy(&engine.berth(&["volume", "ls", "-q"]).stdout).into_owned();
        assert!(volumes.is_empty(), "{volumes}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while engine.network_footprint() != baseline && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(engine.network_footprint(), baseline);

        // A service to build whose context has no Dockerfile: a clear error naming it and
        // the file; nothing is made.
        std::fs::write(dir.join("build.yaml"), "services:\n  api:\n    build: .\n  cache:\n    image: berth.test/busybox:compose\n").expect("write");
        let (done, _, err) = compose(&engine, &dir, &["-f", "build.yaml", "up", "-d"], &[]);
        assert!(!done);
        assert!(err.contains("service api") && err.contains("Cannot locate specified Dockerfile"), "{err}");
        assert!(String::from_utf8_lossy(&engine.berth(&["ps", "-aq"]).stdout).is_empty());
        // Its other services run on their own.
        let (done, _, err) = compose(&engine, &dir, &["-f", "build.yaml", "up", "-d", "cache"], &[]);
        assert!(done, "{err}");
        ok(&engine, &dir, &["-f", "build.yaml", "down"]);
    }
}

/// `pull_policy`, against a native engine in its own namespace and a registry there that
/// wants a login: `always` pulls an image the engine has, `missing` (the default) does
/// not, `never` refuses a missing image without pulling, and an unknown policy is
/// refused by name.
#[test]
fn pull_policies_pull_as_they_say() {
    use berth_tests::docker_target::DockerTarget;
    use berth_tests::fixtures;
    let target = DockerTarget::start("berth", "compose-pull");
    let registry = target.registry("cu", "cu-pw");
    let reference = format!("{}/pp/app:1", registry.addr);
    target.load(&fixtures::oci_archive(&fixtures::container_image(serde_json::json!({})), &reference));
    target.ok(&["login", "-u", "cu", "-p", "cu-pw", &registry.addr]);
    target.ok(&["push", "-q", &reference]);
    let dir = target.home().join("pp");
    std::fs::create_dir_all(&dir).expect("project");
    let compose = |policy: &str, args: &[&str]| {
        std::fs::write(
            dir.join("compose.yaml"),
            format!("services:\n  app:\n    image: {reference}\n    command: [\"sleep\", \"300\"]\n    pull_policy: {policy}\n"),
        )
        .expect("compose file");
        let out = Command::new(berth_tests::bin("berth"))
            .arg("compose")
            .args(args)
            .current_dir(&dir)
            .env("BERTH_HOME", target.home())
            .env("DOCKER_CONFIG", target.home().join("docker-config"))
            .env_remove("BERTH_HOST")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_FILE")
            .output()
            .expect("berth compose");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let (ok, text) = compose("always", &["up", "-d"]);
    assert!(ok && text.contains("Pulling"), "always pulls, with the login: {text}");
    let (ok, text) = compose("missing", &["up", "-d"]);
    assert!(ok && !text.contains("Pulling"), "missing does not pull what is there: {text}");
    let (ok, text) = compose("missing", &["down"]);
    assert!(ok, "{text}");
    target.ok(&["rmi", &reference]);
    let (ok, text) = compose("never", &["up", "-d"]);
    assert!(!ok && text.contains("is not present and its pull_policy is never") && !text.contains("Pulling"), "{text}");
    assert!(!target.docker(&["image", "inspect", &reference]).0, "never pulled it anyway");
    let (ok, text) = compose("sometimes", &["up", "-d"]);
    assert!(!ok && text.contains("pull_policy \"sometimes\" is not supported"), "{text}");
    let (ok, text) = compose("missing", &["up", "-d"]);
    assert!(ok && text.contains("Pulling"), "missing pulls what is not there: {text}");
    let (ok, text) = compose("missing", &["down"]);
    assert!(ok, "{text}");
}

/// The Kubernetes rendering's golden manifests (`tests/kube-corpus/*/expected.yaml`,
/// checked against the renderer by berth-compose's unit tests) pass Kubernetes' own
/// schemas offline, strictly (no field the API does not know), for the oldest API
/// version Berth renders for; and `berth stack deploy --dry-run` prints them.
#[test]
fn kubernetes_manifests_pass_the_api_schemas_offline() {
    let validate = berth_tests::root().join("build/py/bin/kubernetes-validate");
    assert!(validate.exists(), "cargo xtask setup installs kubernetes-validate into build/py");
    let run = |file: &std::path::Path| {
        let out = Command::new(&validate).args(["--strict", "--quiet", "-k", "1.33.0"]).arg(file).output().expect("kubernetes-validate");
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let corpus = berth_tests::root().join("tests/kube-corpus");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).expect("corpus") {
        let case = entry.expect("entry").path();
        if !case.is_dir() {
            continue;
        }
        let expected = case.join("expected.yaml");
        let compose: serde_json::Value = serde_norway::from_str(&std::fs::read_to_string(case.join("compose.yaml")).expect("compose")).expect("yaml");
        let project_name = compose["name"].as_str().expect("each case names its project").to_owned();
        let (ok, said) = run(&expected);
        assert!(ok, "{}: {said}", expected.display());
        // The CLI prints the same manifests (the stack's name is the project's).
        let out = Command::new(berth_tests::bin("berth"))
            .args(["stack", "deploy", "--orchestrator", "kubernetes", "--dry-run", "-c"])
            .arg(case.join("compose.yaml"))
            .arg(&project_name)
            .env("BERTH_HOME", std::env::temp_dir().join("berth-kube-dry-run"))
            .output()
            .expect("berth");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8_lossy(&out.stdout);
        let manifests = std::fs::read_to_string(&expected).expect("expected");
        let manifests: String = manifests.lines().filter(|l| !l.starts_with("# warning: ")).map(|l| format!("{l}\n")).collect();
        assert_eq!(printed, manifests, "{}", case.display());
        checked += 1;
    }
    assert!(checked >= 3);
    // The check can fail: a field the API does not have is refused.
    let bad = std::env::temp_dir().join(format!("berth-kube-bad-{}.yaml", std::process::id()));
    std::fs::write(&bad, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n  replicaCount: 2\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: x, image: busybox}]}}\n").expect("write");
    let (ok, said) = run(&bad);
    let _ = std::fs::remove_file(&bad);
    assert!(!ok && said.contains("replicaCount"), "{said}");
}

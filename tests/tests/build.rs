//! `berth build` and compose's `build:` on a native engine: a multi-stage Dockerfile with
//! COPY --from, .dockerignore applied on the host, the cache on a second build, a
//! Dockerfile outside the context, a failing RUN; compose building a missing image on
//! up, `up --build` and `compose build`. No step's container is left behind.

use berth_tests::fixtures;
use berth_tests::native::NativeEngine;

const IMAGE: &str = "berth.test/busybox:build";

fn engine(test: &str) -> NativeEngine {
    let engine = NativeEngine::start_isolated(test);
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&fixtures::container_image(serde_json::json!({})), IMAGE)).expect("write archive");
    let out = engine.berth(&["load", "-i", &archive.display().to_string()]);
    assert!(out.status.success(), "load: {}", String::from_utf8_lossy(&out.stderr));
    engine
}

fn berth(engine: &NativeEngine, args: &[&str]) -> (bool, String, String) {
    let out = engine.berth(args);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(engine: &NativeEngine, args: &[&str]) -> String {
    let (done, out, err) = berth(engine, args);
    assert!(done, "berth {args:?}: {err}");
    out
}

#[test]
fn berth_build_multi_stage_cached_and_failing() {
    let engine = engine("build-cli");
    let ctx = engine.home.join("ctx");
    std::fs::create_dir_all(ctx.join("src")).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE} AS base\nRUN echo from the first stage > /base.txt\nFROM {IMAGE}\nCOPY --from=base /base.txt /copied.txt\nCOPY src/ /src/\nCMD [\"cat\", \"/copied.txt\"]\n"),
    )
    .expect("Dockerfile");
    std::fs::write(ctx.join("src/kept.txt"), "kept\n").expect("file");
    std::fs::write(ctx.join("src/secret.txt"), "secret\n").expect("file");
    std::fs::write(ctx.join(".dockerignore"), "src/secret.txt\n").expect("ignore");
    let dir = ctx.display().to_string();
    let out = ok(&engine, &["build", "-t", "berth.test/built:1", &dir]);
    assert!(out.contains("Successfully tagged berth.test/built:1"), "{out}");
    assert_eq!(ok(&engine, &["run", "--rm", "berth.test/built:1"]), "from the first stage\n");
    assert_eq!(ok(&engine, &["run", "--rm", "berth.test/built:1", "ls", "/src"]), "kept.txt\n");
    // Again: every step after each FROM from the cache.
    let again = ok(&engine, &["build", "-t", "berth.test/built:1", &dir]);
    assert_eq!(again.matches("Using cache").count(), 4, "{again}");
    // Intermediate images are not listed; the built one is.
    let images = ok(&engine, &["images"]);
    assert!(!images.contains("<none>"), "{images}");
    // A Dockerfile outside the context; -q prints the id only.
    let outside = engine.home.join("outside.Dockerfile");
    std::fs::write(&outside, format!("FROM {IMAGE}\nCOPY src/kept.txt /k\n")).expect("Dockerfile");
    let id = ok(&engine, &["build", "-q", "-f", &outside.display().to_string(), &dir]);
    assert!(id.trim().starts_with("sha256:") && id.lines().count() == 1, "{id}");
    // A failing RUN: docker's words and code, and no container left.
    std::fs::write(&outside, format!("FROM {IMAGE}\nRUN echo failing; exit 7\n")).expect("Dockerfile");
    let (done, out, err) = berth(&engine, &["build", "-f", &outside.display().to_string(), &dir]);
    assert!(!done);
    assert!(out.contains("failing"), "{out}");
    assert!(err.contains("returned a non-zero code: 7"), "{err}");
    assert_eq!(ok(&engine, &["ps", "-aq"]), "", "a step's container was left");
}

#[test]
fn compose_builds_a_missing_image_and_rebuilds_on_request() {
    let engine = engine("build-compose");
    let project = engine.home.join("shop");
    std::fs::create_dir_all(project.join("web")).expect("project");
    std::fs::write(
        project.join("web/Dockerfile"),
        format!("FROM {IMAGE}\nARG WHO\nRUN echo built for $WHO > /who.txt\nCMD [\"sh\", \"-c\", \"cat /who.txt; exec sleep 300\"]\n"),
    )
    .expect("Dockerfile");
    std::fs::write(project.join("compose.yaml"), "services:\n  web:\n    build:\n      context: ./web\n      args:\n        WHO: compose\n").expect("compose");
    let file = project.join("compose.yaml").display().to_string();
    ok(&engine, &["compose", "-f", &file, "up", "-d"]);
    assert!(ok(&engine, &["images"]).contains("shop-web"), "the image is named <project>-<service>");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ok(&engine, &["logs", "shop-web-1"]).contains("built for compose") {
        assert!(std::time::Instant::now() < deadline, "the built image's command never ran");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (done, out, err) = berth(&engine, &["compose", "-f", &file, "up", "-d", "--build"]);
    assert!(done, "{err}");
    assert!(format!("{out}{err}").contains("Using cache"), "up --build builds again (from the cache): {out}{err}");
    let (done, out, err) = berth(&engine, &["compose", "-f", &file, "build"]);
    assert!(done && format!("{out}{err}").contains("Built"), "{out}{err}");
    ok(&engine, &["compose", "-f", &file, "down"]);
}

#[test]
fn onbuild_triggers_run_in_the_child_build_and_unsupported_flags_are_refused() {
    let engine = engine("build-onbuild");
    let ctx = engine.home.join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(ctx.join("note.txt"), "from the child's context\n").expect("file");
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {IMAGE}\nONBUILD COPY note.txt /note.txt\n")).expect("Dockerfile");
    let dir = ctx.display().to_string();
    ok(&engine, &["build", "-t", "berth.test/parent:1", &dir]);
    let child = engine.home.join("child.Dockerfile");
    std::fs::write(&child, "FROM berth.test/parent:1\nCMD [\"cat\", \"/note.txt\"]\n").expect("Dockerfile");
    let out = ok(&engine, &["build", "-t", "berth.test/child:1", "-f", &child.display().to_string(), &dir]);
    assert!(out.contains("Executing 1 build trigger"), "{out}");
    assert_eq!(ok(&engine, &["run", "--rm", "berth.test/child:1"]), "from the child's context\n");
    // A flag the builder does not do yet is refused, not ignored.
    std::fs::write(&child, format!("FROM {IMAGE}\nRUN --mount=type=cache,from=base,target=/cache true\n")).expect("Dockerfile");
    let (done, _, err) = berth(&engine, &["build", "-f", &child.display().to_string(), &dir]);
    assert!(!done && err.contains("seeding a cache from a stage is not supported"), "{err}");
}

#[test]
fn run_mounts_cache_bind_and_tmpfs_stay_out_of_the_image() {
    let engine = engine("build-mounts");
    let ctx = engine.home.join("ctx");
    std::fs::create_dir_all(ctx.join("data")).expect("ctx");
    std::fs::write(ctx.join("data/a.txt"), "from the context\n").expect("file");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE} AS tools\nRUN echo from the stage > /tool.txt\n\
             FROM {IMAGE}\nARG CACHE=/var/cache/mine\n\
             RUN --mount=type=cache,target=$CACHE,id=runs sh -c 'echo run >> $CACHE/runs; wc -l < $CACHE/runs > /count'\n\
             RUN --mount=type=bind,source=data,target=/data cat /data/a.txt > /from-context.txt\n\
             RUN --mount=type=bind,from=tools,source=/tool.txt,target=/mnt/deep/tool.txt cp /mnt/deep/tool.txt /from-stage.txt\n\
             RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/y && grep \" /scratch \" /proc/mounts | cut -d\" \" -f3 > /tmpfs.txt'\n\
             RUN --mount=type=bind,target=/ctx,rw sh -c 'echo w > /ctx/written && cat /ctx/data/a.txt > /rw.txt'\n\
             RUN --mount=type=bind,target=/ro sh -c 'echo w > /ro/written' || echo read-only > /ro.txt\n\
             RUN --mount=type=secret,id=token true\n"
        ),
    )
    .expect("Dockerfile");
    let dir = ctx.display().to_string();
    let run = |image: &str, script: &str| ok(&engine, &["run", "--rm", image, "sh", "-c", script]);
    ok(&engine, &["build", "-t", "berth.test/mounts:1", &dir]);
    assert_eq!(
        run("berth.test/mounts:1", "cat /count /from-context.txt /from-stage.txt /tmpfs.txt /rw.txt /ro.txt"),
        "1\nfrom the context\nfrom the stage\ntmpfs\nfrom the context\nread-only\n"
    );
    // No mount point is left in the image, nor what was written through the mounts.
    assert_eq!(run("berth.test/mounts:1", "ls -d /var/cache/mine /data /mnt /scratch /ctx /ro /run/secrets 2>/dev/null; true"), "");
    let base = run(IMAGE, "ls /");
    let built = run("berth.test/mounts:1", "ls /");
    let added: Vec<&str> = built.lines().filter(|l| !base.lines().any(|b| b == *l)).collect();
    assert_eq!(added, ["count", "from-context.txt", "from-stage.txt", "ro.txt", "rw.txt", "tmpfs.txt"]);
    assert!(!ctx.join("written").exists(), "an rw bind wrote into the context");
    // The cache mount keeps its files between builds; the bound files' content is part of
    // the step's cache key.
    let again = ok(&engine, &["build", "--no-cache", "-t", "berth.test/mounts:2", &dir]);
    assert!(!again.contains("Using cache"), "{again}");
    assert_eq!(run("berth.test/mounts:2", "cat /count"), "2\n");
    std::fs::write(ctx.join("data/a.txt"), "changed\n").expect("file");
    let changed = ok(&engine, &["build", "-t", "berth.test/mounts:3", &dir]);
    assert_eq!(changed.matches("Using cache").count(), 3, "ARG, the cache RUN and the stage's RUN only:\n{changed}");
    assert_eq!(run("berth.test/mounts:3", "cat /from-context.txt /count"), "changed\n2\n");
    // builder prune empties the cache mounts and says how much it freed.
    let pruned = ok(&engine, &["builder", "prune", "-f"]);
    let freed: u64 = pruned.lines().last().and_then(|l| l.split_whitespace().nth(3)).and_then(|n| n.parse().ok()).expect("bytes freed");
    assert!(freed > 0, "{pruned}");
    ok(&engine, &["build", "--no-cache", "-t", "berth.test/mounts:4", &dir]);
    assert_eq!(run("berth.test/mounts:4", "cat /count"), "1\n");
    // A required secret has no provider: a clear error, no image, no container.
    let child = engine.home.join("secret.Dockerfile");
    std::fs::write(&child, format!("FROM {IMAGE}\nRUN --mount=type=secret,id=token,required true\n")).expect("Dockerfile");
    let (done, _, err) = berth(&engine, &["build", "-t", "berth.test/secret:1", "-f", &child.display().to_string(), &dir]);
    assert!(!done && err.contains("secret token is required"), "{err}");
    assert_eq!(ok(&engine, &["ps", "-aq"]), "", "a step's or a mount's container was left");
}

#[test]
fn a_context_over_the_budget_is_refused_and_links_stay_links() {
    let engine = NativeEngine::start_isolated_with("build-limits", &[("BERTH_BUILD_CONTEXT_LIMIT", "262144")]);
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&fixtures::container_image(serde_json::json!({})), IMAGE)).expect("write archive");
    ok(&engine, &["load", "-i", &archive.display().to_string()]);
    let ctx = engine.home.join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    // A link to a host file outside the context: copied as the link, never followed.
    std::os::unix::fs::symlink("/etc/hostname", ctx.join("outside")).expect("link");
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {IMAGE}\nCOPY outside /outside\n")).expect("Dockerfile");
    let dir = ctx.display().to_string();
    ok(&engine, &["build", "-t", "berth.test/links:1", &dir]);
    assert_eq!(ok(&engine, &["run", "--rm", "berth.test/links:1", "readlink", "/outside"]), "/etc/hostname\n");
    // Over the engine's budget (256 KiB here): refused in words, nothing built or left.
    std::fs::write(ctx.join("big.bin"), vec![7u8; 1 << 20]).expect("big file");
    let (done, _, err) = berth(&engine, &["build", "-t", "berth.test/big:1", &dir]);
    assert!(!done && err.contains("larger than the limit"), "{err}");
    assert!(!ok(&engine, &["images"]).contains("berth.test/big"));
    let tmp = engine.home.join("engine/tmp");
    assert_eq!(std::fs::read_dir(&tmp).expect("engine tmp").count(), 0, "the refused context left files in {}", tmp.display());
}

#[test]
fn copy_exclude_and_parents() {
    let engine = engine("build-exclude");
    let ctx = engine.home.join("ctx");
    for dir in ["app/sub", "x/y"] {
        std::fs::create_dir_all(ctx.join(dir)).expect("ctx");
    }
    for file in ["app/a.txt", "app/b.log", "app/sub/c.txt", "app/sub/d.log", "x/one.js", "x/y/two.js", "home1.txt", "home2.md"] {
        std::fs::write(ctx.join(file), file).expect("file");
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nCOPY --exclude=**/*.log --exclude=sub/c.txt app /app/\nCOPY --exclude=*.md home* /homes/\n\
             COPY --parents x/y/two.js x/one.js /parents/\nCOPY --parents ./x/./y/*.js /pivot/\n"
        ),
    )
    .expect("Dockerfile");
    ok(&engine, &["build", "-t", "berth.test/exclude:1", &ctx.display().to_string()]);
    let found = ok(&engine, &["run", "--rm", "berth.test/exclude:1", "sh", "-c", "find /app /homes /parents /pivot | sort"]);
    assert_eq!(
        found.lines().collect::<Vec<_>>(),
        [
            "/app",
            "/app/a.txt",
            "/app/sub",
            "/homes",
            "/homes/home1.txt",
            "/parents",
            "/parents/x",
            "/parents/x/one.js",
            "/parents/x/y",
            "/parents/x/y/two.js",
            "/pivot",
            "/pivot/y",
            "/pivot/y/two.js"
        ],
        "{found}"
    );
}

#[test]
fn independent_stages_build_at_once_and_print_in_order() {
    let engine = engine("build-parallel");
    let ctx = engine.home.join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    // Each of the first two stages waits (20 s at most) until the other has started:
    // they meet in a shared cache mount, which only stages running at once can do.
    let meet = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,target=/sync,id=meet sh -c 'touch /sync/{me}; i=0; while [ ! -e /sync/{other} ]; do i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.1; done; echo {me} > /{me}.txt'"
        )
    };
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE} AS one\n{}\nFROM {IMAGE} AS two\n{}\nFROM {IMAGE}\nCOPY --from=one /one.txt /\nCOPY --from=two /two.txt /\n",
            meet("one", "two"),
            meet("two", "one")
        ),
    )
    .expect("Dockerfile");
    let out = ok(&engine, &["build", "--no-cache", "-t", "berth.test/parallel:1", &ctx.display().to_string()]);
    assert_eq!(ok(&engine, &["run", "--rm", "berth.test/parallel:1", "cat", "/one.txt", "/two.txt"]), "one\ntwo\n");
    // The output reads as a build in order: every step once, numbered 1 to 7.
    let steps: Vec<usize> = out.lines().filter_map(|l| l.strip_prefix("Step ")).filter_map(|l| l.split('/').next()?.parse().ok()).collect();
    assert_eq!(steps, (1..=7).collect::<Vec<_>>(), "{out}");
    assert_eq!(ok(&engine, &["ps", "-aq"]), "");
}

#[test]
fn predefined_platform_args() {
    let engine = engine("build-platform");
    let ctx = engine.home.join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    // As BuildKit gives them: in FROM undeclared, in a stage once declared, and a
    // --build-arg over the automatic value. (dockerd's classic builder leaves them empty.)
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM --platform=$BUILDPLATFORM {IMAGE} AS one\nARG TARGETARCH\nARG TARGETPLATFORM\nARG BUILDOS\nARG TARGETVARIANT\n\
             RUN echo \"$TARGETARCH $TARGETPLATFORM $BUILDOS [$TARGETVARIANT] [$BUILDARCH]\" > /p\n"
        ),
    )
    .expect("Dockerfile");
    let dir = ctx.display().to_string();
    ok(&engine, &["build", "-t", "berth.test/platform:1", &dir]);
    let arch = if std::env::consts::ARCH == "aarch64" { "arm64" } else { "amd64" };
    let variant = if arch == "arm64" { "v8" } else { "" };
    let platform = if variant.is_empty() { format!("linux/{arch}") } else { format!("linux/{arch}/{variant}") };
    assert_eq!(ok(&engine, &["run", "--rm", "berth.test/platform:1", "cat", "/p"]), format!("{arch} {platform} linux [{variant}] []\n"));
    ok(&engine, &["build", "--build-arg", "TARGETARCH=given", "-t", "berth.test/platform:2", &dir]);
    assert!(ok(&engine, &["run", "--rm", "berth.test/platform:2", "cat", "/p"]).starts_with("given "));
}

#[test]
fn run_heredocs_alone_with_other_words_and_with_a_shebang() {
    let engine = engine("build-heredoc");
    let ctx = engine.home.join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nARG WHO=builder\n\
             RUN <<EOF\necho \"plain $WHO\" > /plain.txt\nEOF\n\
             RUN cat <<A > /a.txt && cat <<'B' > /b.txt\nfirst $WHO\nA\nsecond $WHO\nB\n\
             RUN <<EOF\n#!/bin/sh\necho \"run as $0\" > /script.txt\nEOF\n"
        ),
    )
    .expect("Dockerfile");
    ok(&engine, &["build", "-t", "berth.test/heredoc:1", &ctx.display().to_string()]);
    assert_eq!(
        ok(&engine, &["run", "--rm", "berth.test/heredoc:1", "cat", "/plain.txt", "/a.txt", "/b.txt", "/script.txt"]),
        "plain builder\nfirst builder\nsecond $WHO\nrun as /dev/pipes/EOF\n"
    );
    // The script's mount point is in none of the image's layers.
    let paths = layer_paths(&engine, "berth.test/heredoc:1");
    assert!(paths.iter().any(|p| p == "script.txt"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.starts_with("dev")), "{paths:?}");
}

/// Every path in every layer of `image`, from `berth save`.
fn layer_paths(engine: &NativeEngine, image: &str) -> Vec<String> {
    use std::io::Read;
    let saved = engine.home.join("saved.tar");
    ok(engine, &["save", "-o", &saved.display().to_string(), image]);
    let mut out = Vec::new();
    let mut outer = tar::Archive::new(std::fs::File::open(&saved).expect("saved"));
    for member in outer.entries().expect("tar") {
        let mut member = member.expect("member");
        let mut data = Vec::new();
        member.read_to_end(&mut data).expect("read");
        let inner: Box<dyn Read> =
            if data.starts_with(&[0x1f, 0x8b]) { Box::new(flate2::read::GzDecoder::new(data.as_slice())) } else { Box::new(data.as_slice()) };
        let mut layer = tar::Archive::new(inner);
        let Ok(entries) = layer.entries() else { continue };
        for entry in entries.flatten() {
            if let Ok(path) = entry.path() {
                out.push(path.display().to_string().trim_start_matches("./").to_owned());
            }
        }
    }
    out
}

//! Running a parsed Dockerfile: its stages in order, each instruction a step whose image
//! the next builds on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_dockerfile::history::{copy_created_by, nop, nop_single};
use berth_dockerfile::{ArgDef, Command, CommandLine, Instruction};
use serde_json::{json, Map, Value};
use sha2::Digest as _;

use super::{BuildError, BuildOptions, Workspace};
use crate::container::{Containers, CreateRequest, LogsQuery};
use crate::image::{ImageRecord, NewImage, Scratch};

/// What a build says as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A piece of output, as docker's `stream` messages carry it (newlines included).
    Line(String),
    /// The image's id, once built (docker's `aux`).
    Built(String),
}

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

tokio::task_local! {
    /// Where the running stage's output goes (stages that run at once each hold theirs).
    static OUTPUT: tokio::sync::mpsc::UnboundedSender<BuildEvent>;
}

/// A Dockerfile as the build runs it.
pub(super) struct Plan {
    pub escape: char,
    pub global_args: Vec<ArgDef>,
    pub stages: Vec<PlanStage>,
}

pub(super) struct PlanStage {
    pub name: Option<String>,
    /// The FROM instruction.
    pub from: Instruction,
    pub instructions: Vec<Instruction>,
}

/// One stage's state between steps.
struct StageState {
    /// The stage's place in the Dockerfile.
    index: usize,
    /// The image so far; `None` for `FROM scratch` before its first layer.
    image: Option<ImageRecord>,
    /// The image config's `config` object.
    config: Map<String, Value>,
    shell: Vec<String>,
    /// ARGs declared in this stage, with their values (given or default).
    args: BTreeMap<String, Option<String>>,
}

impl StageState {
    fn env(&self) -> Vec<String> {
        self.config.get("Env").and_then(Value::as_array).map(|e| e.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    }

    /// What variables expand to: the ARGs, then the environment over them.
    fn lookup(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self.args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
        for entry in self.env() {
            if let Some((k, v)) = entry.split_once('=') {
                pairs.push((k.to_owned(), v.to_owned()));
            }
        }
        pairs
    }

    /// The build args a RUN sees that the environment does not set, sorted (dockerd's
    /// `|N k=v` prefix in the history).
    fn run_args(&self) -> Vec<String> {
        let env = self.env();
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .filter(|(k, _)| !env.iter().any(|e| e.split_once('=').is_some_and(|(ek, _)| ek == *k)))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
        self.config.insert("Env".into(), json!(env));
    }

    fn working_dir(&self) -> String {
        self.config.get("WorkingDir").and_then(Value::as_str).filter(|w| !w.is_empty()).unwrap_or("/").to_owned()
    }
}

pub(super) struct Build<'a> {
    containers: Arc<Containers>,
    workspace: &'a Workspace,
    options: &'a BuildOptions,
    events: tokio::sync::mpsc::UnboundedSender<BuildEvent>,
    plan: Plan,
    /// Each stage's image, by index (None until built, and for `FROM scratch` alone).
    done: Vec<Option<ImageRecord>>,
    /// The stages built so far.
    finished: Vec<usize>,
    /// The stages' names (lowercased), by index.
    names: Vec<Option<String>>,
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

impl<'a> Build<'a> {
    pub fn new(
        containers: Arc<Containers>,
        workspace: &'a Workspace,
        options: &'a BuildOptions,
        events: tokio::sync::mpsc::UnboundedSender<BuildEvent>,
    ) -> Result<Build<'a>, BuildError> {
        let name = if options.dockerfile.is_empty() { "Dockerfile" } else { options.dockerfile.as_str() };
        let path = super::copy::inside_context(&workspace.context(), name).map_err(|_| BuildError::NoDockerfile(name.to_owned()))?;
        let text = std::fs::read_to_string(&path).map_err(|_| BuildError::NoDockerfile(name.to_owned()))?;
        let plan = plan(&text)?;
        let done = Vec::with_capacity(plan.stages.len());
        let names = plan.stages.iter().map(|s| s.name.clone()).collect();
        Ok(Build { containers, workspace, options, events, plan, done, names, finished: Vec::new() })
    }

    /// Output: the running stage's (held, then sent in stage order), else the build's.
    fn say(&self, text: impl Into<String>) {
        let event = BuildEvent::Line(text.into());
        let event = match OUTPUT.try_with(|tx| tx.send(event.clone())) {
            Ok(Ok(())) => return,
            _ => event,
        };
        let _ = self.events.send(event);
    }

    pub async fn run(mut self) -> Result<ImageRecord, BuildError> {
        // The stages up to the target (all of them without one).
        let last = if self.options.target.is_empty() {
            self.plan.stages.len().saturating_sub(1)
        } else {
            let wanted = self.options.target.to_ascii_lowercase();
            self.plan.stages.iter().position(|s| s.name.as_deref() == Some(wanted.as_str())).ok_or_else(|| BuildError::NoTarget(self.options.target.clone()))?
        };
        let stages = std::mem::take(&mut self.plan.stages);
        let stages = &stages[..=last.min(stages.len().saturating_sub(1))];
        let labels = !self.options.labels.is_empty();
        let total: usize = stages.iter().map(|s| 1 + s.instructions.len()).sum::<usize>() + usize::from(labels);
        // The platform args are there for FROM undeclared; a global ARG or --build-arg
        // sets them over.
        let mut global: BTreeMap<String, String> = PLATFORM_ARGS.iter().filter_map(|n| platform_arg(n).map(|v| ((*n).to_owned(), v))).collect();
        global.extend(self.plan.global_args.iter().filter_map(|a| self.arg_value(a).map(|v| (a.name.clone(), v))));
        // Each stage's first step number, as the stages run in order.
        let mut first_step = Vec::with_capacity(stages.len());
        let mut step = 1;
        for stage in stages {
            first_step.push(step);
            step += 1 + stage.instructions.len();
        }
        self.done = vec![None; stages.len()];
        // Stages that need none of each other run at once, wave after wave; each one's
        // output is held and sent in stage order, so it reads as docker's does.
        for wave in waves(stages, &global, &self.names, self.plan.escape) {
            let runs = wave.iter().map(|&index| {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let run = OUTPUT.scope(tx, self.run_stage(index, &stages[index], first_step[index], total, index == last && labels, &global));
                async move {
                    let result = run.await;
                    let mut lines = Vec::new();
                    while let Ok(event) = rx.try_recv() {
                        lines.push(event);
                    }
                    (index, result, lines)
                }
            });
            let mut finished = futures::future::join_all(runs).await;
            finished.sort_by_key(|(index, _, _)| *index);
            let mut failure = None;
            for (index, result, lines) in finished {
                for event in lines {
                    let _ = self.events.send(event);
                }
                match result {
                    Ok(image) => self.done[index] = image,
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
                self.finished.push(index);
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        let image = self.done.get(last).cloned().flatten();
        // dockerd's words for a Dockerfile that makes nothing (FROM scratch alone).
        let image = image.ok_or_else(|| BuildError::Invalid("No image was generated. Is your Dockerfile empty?".into()))?;
        let images = self.containers.images();
        for tag in &self.options.tags {
            images.tag(&image.id.to_string(), tag).map_err(|e| BuildError::Invalid(e.to_string()))?;
        }
        let _ = self.events.send(BuildEvent::Built(image.id.to_string()));
        self.say(format!("Successfully built {}\n", short(&image.id.to_string())));
        for tag in &self.options.tags {
            self.say(format!("Successfully tagged {tag}\n"));
        }
        Ok(images.resolve(&image.id.to_string())?.unwrap_or(image))
    }

    /// One stage, its first step numbered `step` of `total`; `labels` adds the build's
    /// `--label`s as a last step. Returns its image (none for `FROM scratch` alone).
    async fn run_stage(
        &self,
        index: usize,
        stage: &PlanStage,
        mut step: usize,
        total: usize,
        labels: bool,
        global: &BTreeMap<String, String>,
    ) -> Result<Option<ImageRecord>, BuildError> {
        self.say(format!("Step {step}/{total} : {}\n", stage.from.original));
        let mut state = self.from(index, stage, global).await?;
        // The base image's ONBUILD triggers run first; the new image does not keep them.
        let triggers: Vec<String> = match state.config.remove("OnBuild") {
            Some(Value::Array(list)) => list.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        };
        if !triggers.is_empty() {
            self.say(format!("# Executing {} build trigger{}\n", triggers.len(), if triggers.len() == 1 { "" } else { "s" }));
            for trigger in &triggers {
                let parsed = berth_dockerfile::parse(&format!("FROM scratch\n{trigger}\n"))
                    .map_err(|e| BuildError::Parse(format!("in the base image's ONBUILD {trigger:?}: {e}")))?;
                let Some(instruction) = parsed.stages.first().and_then(|s| s.instructions.first()) else { continue };
                self.step(&mut state, instruction, global).await?;
            }
        }
        for instruction in &stage.instructions {
            step += 1;
            self.say(format!("Step {step}/{total} : {}\n", instruction.original));
            self.step(&mut state, instruction, global).await.map_err(|e| match e {
                BuildError::Failed { .. } | BuildError::Step { .. } => e,
                other => BuildError::Step { step: instruction.original.clone(), source: Box::new(other) },
            })?;
        }
        if labels {
            step += 1;
            let text = self.options.labels.iter().map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default())).collect::<Vec<_>>().join(" ");
            self.say(format!("Step {step}/{total} : LABEL {text}\n"));
            let mut all = state.config.get("Labels").and_then(Value::as_object).cloned().unwrap_or_default();
            for (k, v) in &self.options.labels {
                all.insert(k.clone(), json!(v));
            }
            state.config.insert("Labels".into(), Value::Object(all));
            let created_by = nop(&state.shell, &format!("LABEL {text}"));
            self.config_step(&mut state, created_by).await?;
        }
        Ok(state.image)
    }

    /// A build arg's value: given with the build, else the ARG's default.
    fn arg_value(&self, arg: &ArgDef) -> Option<String> {
        match self.options.build_args.get(&arg.name) {
            Some(Some(v)) => Some(v.clone()),
            _ => arg.default.clone().or_else(|| platform_arg(&arg.name)),
        }
    }

    async fn from(&self, index: usize, stage: &PlanStage, global: &BTreeMap<String, String>) -> Result<StageState, BuildError> {
        let expanded = stage.from.expand(global, self.plan.escape).map_err(|e| BuildError::Invalid(e.to_string()))?;
        let Command::From(from) = &expanded.command else { return Err(BuildError::Invalid("a stage must start with FROM".into())) };
        let base = from.image.clone();
        let image = if base.eq_ignore_ascii_case("scratch") {
            None
        } else if let Some(earlier) = self.stage_index(&base, index) {
            self.done.get(earlier).cloned().flatten()
        } else {
            Some(self.base_image(&base).await?)
        };
        let config = match &image {
            Some(i) => {
                let bytes = self.containers.images().content.read(&i.id).await.map_err(|e| BuildError::Invalid(e.to_string()))?;
                let value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                value["config"].as_object().cloned().unwrap_or_default()
            }
            None => Map::new(),
        };
        if let Some(i) = &image {
            self.say(format!(" ---> {}\n", short(&i.id.to_string())));
        }
        let mut state = StageState { index, image, config, shell: DEFAULT_SHELL.iter().map(|s| (*s).to_owned()).collect(), args: BTreeMap::new() };
        if !state.config.contains_key("Env") {
            state.config.insert("Env".into(), json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]));
        }
        Ok(state)
    }

    /// A stage before `before`, named (or numbered) `name`, once it has been built.
    fn stage_index(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        let found = match self.names.iter().position(|n| n.as_deref() == Some(lower.as_str())) {
            Some(i) => i,
            None => name.parse::<usize>().ok()?,
        };
        (found < before && self.finished.contains(&found)).then_some(found)
    }

    /// The image an earlier stage made, or an image (pulled if missing) by that name:
    /// what COPY --from and RUN --mount from= read.
    async fn stage_or_image(&self, name: &str, before: usize) -> Result<ImageRecord, BuildError> {
        match self.stage_index(name, before) {
            Some(i) => self.done.get(i).cloned().flatten().ok_or_else(|| BuildError::Invalid(format!("stage {name} made no image"))),
            None => self.base_image(name).await,
        }
    }

    async fn base_image(&self, name: &str) -> Result<ImageRecord, BuildError> {
        let images = self.containers.images();
        if !self.options.pull {
            if let Some(found) = images.resolve(name)? {
                return Ok(found);
            }
        }
        self.say(format!("{name}: Pulling from registry\n"));
        let (progress, _ignored) = tokio::sync::mpsc::unbounded_channel();
        Ok(images.pull(name, None, self.options.creds_for(name), progress).await?)
    }
}

impl Build<'_> {
    /// One instruction after FROM.
    async fn step(&self, state: &mut StageState, instruction: &Instruction, global: &BTreeMap<String, String>) -> Result<(), BuildError> {
        let expanded = instruction.expand(&state.lookup(), self.plan.escape).map_err(|e| BuildError::Invalid(e.to_string()))?;
        let shell = state.shell.clone();
        // The history line as dockerd writes it (SHELL's under the new shell).
        let history_shell = match &expanded.command {
            Command::Shell(argv) => argv.clone(),
            _ => shell.clone(),
        };
        let created_by = expanded.history_created_by(&history_shell).unwrap_or_default();
        match &expanded.command {
            Command::Env(pairs) => {
                for kv in pairs {
                    state.set_env(&kv.key, &kv.value);
                }
                self.config_step(state, created_by).await
            }
            Command::Label(pairs) => {
                let mut labels = state.config.get("Labels").and_then(Value::as_object).cloned().unwrap_or_default();
                for kv in pairs {
                    labels.insert(kv.key.clone(), json!(kv.value));
                }
                state.config.insert("Labels".into(), Value::Object(labels));
                self.config_step(state, created_by).await
            }
            Command::Cmd(line) => {
                let argv = line.to_argv(&shell);
                state.config.insert("Cmd".into(), json!(argv));
                self.config_step(state, created_by).await
            }
            Command::Entrypoint(line) => {
                let argv = line.to_argv(&shell);
                state.config.insert("Entrypoint".into(), if argv.is_empty() { Value::Null } else { json!(argv) });
                // An ENTRYPOINT resets a CMD set by the base image (dockerd's rule).
                state.config.insert("Cmd".into(), Value::Null);
                self.config_step(state, created_by).await
            }
            Command::Expose(ports) => {
                let mut exposed = state.config.get("ExposedPorts").and_then(Value::as_object).cloned().unwrap_or_default();
                for p in ports {
                    let p = if p.contains('/') { p.to_ascii_lowercase() } else { format!("{p}/tcp") };
                    exposed.insert(p, json!({}));
                }
                state.config.insert("ExposedPorts".into(), Value::Object(exposed));
                self.config_step(state, created_by).await
            }
            Command::User(user) => {
                state.config.insert("User".into(), json!(user));
                self.config_step(state, created_by).await
            }
            Command::Volume(paths) => {
                let mut volumes = state.config.get("Volumes").and_then(Value::as_object).cloned().unwrap_or_default();
                for p in paths {
                    volumes.insert(p.clone(), json!({}));
                }
                state.config.insert("Volumes".into(), Value::Object(volumes));
                self.config_step(state, created_by).await
            }
            Command::Stopsignal(signal) => {
                state.config.insert("StopSignal".into(), json!(signal));
                self.config_step(state, created_by).await
            }
            Command::Shell(argv) => {
                state.shell = argv.clone();
                state.config.insert("Shell".into(), json!(argv));
                self.config_step(state, created_by).await
            }
            Command::Maintainer(_) => self.config_step(state, created_by).await,
            Command::Onbuild(trigger) => {
                let text = trigger.original.clone();
                let mut triggers: Vec<Value> = state.config.get("OnBuild").and_then(Value::as_array).cloned().unwrap_or_default();
                triggers.push(json!(text));
                state.config.insert("OnBuild".into(), json!(triggers));
                self.config_step(state, created_by).await
            }
            Command::Healthcheck(check) => {
                let value = match check {
                    berth_dockerfile::Healthcheck::None => json!({"Test": ["NONE"]}),
                    berth_dockerfile::Healthcheck::Cmd(c) => {
                        let mut h = Map::new();
                        h.insert("Test".into(), json!(c.test()));
                        for (key, d) in [("Interval", c.interval), ("Timeout", c.timeout), ("StartPeriod", c.start_period), ("StartInterval", c.start_interval)]
                        {
                            if let Some(d) = d {
                                h.insert(key.into(), json!(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)));
                            }
                        }
                        if let Some(r) = c.retries {
                            h.insert("Retries".into(), json!(r));
                        }
                        Value::Object(h)
                    }
                };
                state.config.insert("Healthcheck".into(), value);
                self.config_step(state, created_by).await
            }
            Command::Arg(defs) => {
                for def in defs {
                    let value = self.arg_value(def).or_else(|| global.get(&def.name).cloned());
                    state.args.insert(def.name.clone(), value);
                }
                self.config_step(state, created_by).await
            }
            Command::Workdir(dir) => {
                let dir = if dir.starts_with('/') { dir.clone() } else { format!("{}/{dir}", state.working_dir().trim_end_matches('/')) };
                state.config.insert("WorkingDir".into(), json!(dir));
                let created_by = nop_single(&shell, &format!("WORKDIR {dir}"));
                // The folder is made (root-owned) if the image has none.
                self.files_step(state, created_by, None, |root| super::copy::make_dir(root, &dir)).await
            }
            Command::Run(run) => self.run_step(state, run).await,
            Command::Copy(copy) => {
                if copy.from.is_some() {
                    if copy.parents {
                        return Err(BuildError::Invalid("COPY --from with --parents is not supported by Berth's builder yet".into()));
                    }
                    return self.copy_from_step(state, copy).await;
                }
                let how = CopyHow { name: "COPY", add: false, parents: copy.parents, exclude: &copy.exclude, checksum: None };
                self.copy_step(state, &copy.files, copy.chown.as_deref(), copy.chmod.as_deref(), how).await
            }
            Command::Add(add) => {
                let how = CopyHow { name: "ADD", add: true, parents: false, exclude: &add.exclude, checksum: add.checksum.as_deref() };
                self.copy_step(state, &add.files, add.chown.as_deref(), add.chmod.as_deref(), how).await
            }
            Command::From(_) => Err(BuildError::Invalid("FROM inside a stage".into())),
        }
    }

    /// The cache key of a step on `parent`.
    fn cache_key(parent: Option<&ImageRecord>, created_by: &str, extra: &str) -> String {
        let mut hasher = sha2::Sha256::new();
        hasher.update(parent.map(|p| p.id.to_string()).unwrap_or_default());
        hasher.update([0]);
        hasher.update(created_by);
        hasher.update([0]);
        hasher.update(extra);
        format!("{:x}", hasher.finalize())
    }

    /// A step made before, if the cache may be used and has it.
    fn cached(&self, key: &str) -> Result<Option<ImageRecord>, BuildError> {
        if self.options.no_cache {
            return Ok(None);
        }
        let images = self.containers.images();
        let Some(found) = images.catalog.cached(key)? else { return Ok(None) };
        // Its blobs may have gone (a prune); then it is made again.
        let whole = images.content.contains(&found.id) && images.content.contains(&found.manifest_digest);
        Ok(whole.then_some(found))
    }

    fn adopt(&self, state: &mut StageState, image: ImageRecord, key: &str, from_cache: bool) -> Result<(), BuildError> {
        if from_cache {
            self.say(" ---> Using cache\n");
        } else {
            self.containers.images().catalog.remember(key, &image.id)?;
        }
        self.say(format!(" ---> {}\n", short(&image.id.to_string())));
        state.image = Some(image);
        Ok(())
    }

    /// A step that changes only the config: an image with no new layer.
    async fn config_step(&self, state: &mut StageState, created_by: String) -> Result<(), BuildError> {
        let key = Self::cache_key(state.image.as_ref(), &created_by, &serde_json::to_string(&state.config).unwrap_or_default());
        if let Some(found) = self.cached(&key)? {
            return self.adopt(state, found, &key, true);
        }
        let image = self
            .containers
            .images()
            .create_image(NewImage { parent: state.image.as_ref(), layer: None, config: state.config.clone(), created_by, ..Default::default() })
            .await?;
        self.adopt(state, image, &key, false)
    }
}

impl Build<'_> {
    /// RUN: the command in a container of the current image, its changes the layer.
    async fn run_step(&self, state: &mut StageState, run: &berth_dockerfile::Run) -> Result<(), BuildError> {
        if run.security == Some(berth_dockerfile::Security::Insecure) {
            return Err(BuildError::Invalid("RUN --security=insecure is not allowed".into()));
        }
        // A heredoc script with a `#!` line runs as a file of its own (BuildKit's
        // /dev/pipes/<name>), with the interpreter it names.
        let mut script = None;
        let argv = match (&run.command, run.heredocs.as_slice()) {
            (_, []) => run.command.to_argv(&state.shell),
            // `RUN <<EOF` alone: the heredoc is the script.
            (CommandLine::Shell(text), [doc]) if text.trim().trim_start_matches("<<").trim_start_matches('-').trim_matches(['"', '\'']) == doc.name => {
                if doc.content.starts_with("#!") {
                    let target = format!("/dev/pipes/{}", doc.name);
                    script = Some((doc.content.clone(), target.clone()));
                    vec![target]
                } else {
                    state.shell.iter().cloned().chain([doc.content.clone()]).collect()
                }
            }
            // Other words with it (`RUN cat <<EOF > /file`): the line and the bodies, as
            // the shell would read them from a script.
            (CommandLine::Shell(text), docs) => {
                let mut whole = text.clone();
                for doc in docs {
                    whole.push('\n');
                    whole.push_str(&doc.content);
                    if !doc.content.is_empty() && !doc.content.ends_with('\n') {
                        whole.push('\n');
                    }
                    whole.push_str(&doc.name);
                }
                state.shell.iter().cloned().chain([whole]).collect()
            }
            (CommandLine::Exec(_), _) => return Err(BuildError::Invalid("a RUN heredoc needs the shell form".into())),
        };
        if argv.is_empty() {
            return Err(BuildError::Invalid("RUN needs a command".into()));
        }
        let args = state.run_args();
        let created_by = if args.is_empty() { argv.join(" ") } else { format!("|{} {} {}", args.len(), args.join(" "), argv.join(" ")) };
        let mut mounts = self.run_mounts(state, &run.mounts).await?;
        if let Some((content, target)) = script {
            let file = self.workspace.root.join(format!("heredoc-{}", mounts.targets.len()));
            let written = std::fs::write(&file, content)
                .and_then(|()| std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755)))
                .map_err(super::io("write a RUN heredoc's script"));
            if let Err(e) = written {
                mounts.release(&self.containers).await;
                return Err(e);
            }
            mounts.add_file(&file, &target);
        }
        let key = Self::cache_key(state.image.as_ref(), &created_by, &format!("{}{}", mounts.key, serde_json::to_string(&state.config).unwrap_or_default()));
        let made = self.run_in_container(state, run, argv, created_by, &key, &mounts).await;
        mounts.release(&self.containers).await;
        let (image, from_cache) = made?;
        self.adopt(state, image, &key, from_cache)
    }

    /// A RUN's mounts, prepared (their words expanded as BuildKit does).
    async fn run_mounts(&self, state: &StageState, mounts: &[berth_dockerfile::Mount]) -> Result<super::mounts::Prepared, BuildError> {
        let lookup = state.lookup();
        let word = |w: &Option<String>| w.as_ref().map(|w| berth_dockerfile::expand(w, &lookup, self.plan.escape)).transpose();
        let mut expanded = Vec::with_capacity(mounts.len());
        let mut sources = BTreeMap::new();
        for mount in mounts {
            let mut m = mount.clone();
            m.target = word(&mount.target).map_err(|e| BuildError::Invalid(e.to_string()))?;
            m.source = word(&mount.source).map_err(|e| BuildError::Invalid(e.to_string()))?;
            m.from = word(&mount.from).map_err(|e| BuildError::Invalid(e.to_string()))?;
            m.id = word(&mount.id).map_err(|e| BuildError::Invalid(e.to_string()))?;
            if let Some(from) = m.from.clone().filter(|f| !f.is_empty() && m.kind == berth_dockerfile::MountType::Bind) {
                let image = self.stage_or_image(&from, state.index).await?;
                sources.insert(from, image);
            }
            expanded.push(m);
        }
        let scratch = self.workspace.root.join("mounts");
        super::mounts::Prepared::new(&self.containers, &expanded, &state.working_dir(), &self.workspace.context(), &scratch, |from| sources.get(from).cloned())
            .await
    }

    /// The RUN step itself (or its image from the cache), once its mounts are ready.
    async fn run_in_container(
        &self,
        state: &StageState,
        run: &berth_dockerfile::Run,
        argv: Vec<String>,
        created_by: String,
        key: &str,
        mounts: &super::mounts::Prepared,
    ) -> Result<(ImageRecord, bool), BuildError> {
        if let Some(found) = self.cached(key)? {
            return Ok((found, true));
        }
        let image = state
            .image
            .clone()
            .ok_or_else(|| BuildError::Invalid("RUN needs a base image with a shell (this stage is FROM scratch with nothing in it)".into()))?;
        let args = state.run_args();
        let mut env = state.env();
        env.extend(args);
        let network_mode = match (run.network, self.options.network_mode.as_str()) {
            (Some(berth_dockerfile::NetworkMode::None), _) | (None | Some(berth_dockerfile::NetworkMode::Default), "none") => "none",
            (Some(berth_dockerfile::NetworkMode::Host), _) | (None | Some(berth_dockerfile::NetworkMode::Default), "host") => "host",
            _ => "bridge",
        };
        let user = state.config.get("User").and_then(Value::as_str).unwrap_or_default().to_owned();
        let request = CreateRequest {
            image: image.id.to_string(),
            cmd: argv.clone(),
            entrypoint: Some(Vec::new()),
            env,
            working_dir: state.working_dir(),
            user,
            network_mode: network_mode.to_owned(),
            mounts: mounts.mounts.clone(),
            tmpfs: mounts.tmpfs.clone(),
            ..Default::default()
        };
        let record = self.containers.create(request).await?;
        self.say(format!(" ---> Running in {}\n", short(&record.id)));
        let outcome = self.run_mounted(&record.id, &mounts.targets).await;
        let made = match outcome {
            Ok(0) => self.commit_container(state, &record.id, created_by).await,
            Ok(code) => Err(BuildError::Failed { command: argv.join(" "), code }),
            Err(e) => Err(e),
        };
        let removed = self.containers.remove(&record.id, true, false).await;
        self.say(format!("Removing intermediate container {}\n", short(&record.id)));
        let image = made?;
        removed?;
        Ok((image, false))
    }

    /// Runs a step's container; the mount points its runtime had to make for `targets`
    /// are taken out of its layer after.
    async fn run_mounted(&self, id: &str, targets: &[String]) -> Result<i32, BuildError> {
        if targets.is_empty() {
            return self.run_container(id).await;
        }
        let targets = targets.to_vec();
        let stubs = self.containers.with_root(id, move |root, _| Ok(super::mounts::stubs(root, &targets))).await?;
        let code = self.run_container(id).await?;
        self.containers.remove_stubs(id, &stubs);
        Ok(code)
    }

    /// Starts a container, sends its output on as it comes, and returns its exit code.
    async fn run_container(&self, id: &str) -> Result<i32, BuildError> {
        self.containers.start(id).await?;
        let mut logs = self.containers.logs(id, LogsQuery { follow: true, stdout: true, stderr: true, since: None, until: None, tail: None })?;
        while let Some(line) = logs.recv().await {
            self.say(String::from_utf8_lossy(&line.data).into_owned());
        }
        Ok(self.containers.wait(id, "not-running").await?)
    }

    /// A container's changes on top of the stage's image, with the stage's config.
    async fn commit_container(&self, state: &StageState, id: &str, created_by: String) -> Result<ImageRecord, BuildError> {
        let images = self.containers.images();
        let layer = Scratch(images.scratch_file("step"));
        let (_, changed) = self.containers.layer_tar(id, &layer.0, false).await?;
        // The step's upper folder becomes the new snapshot (the container is removed
        // after): its files are not written a second time from the tar.
        let upper = self.containers.upper_as_snapshot(id);
        Ok(images
            .create_image(NewImage {
                parent: state.image.as_ref(),
                layer: changed.then_some(layer.0.as_path()),
                config: state.config.clone(),
                created_by,
                unpacked: upper.as_deref(),
                ..Default::default()
            })
            .await?)
    }

    /// A step that writes files (COPY, ADD, WORKDIR): `write` puts them into the image's
    /// root (a container's, or an empty folder on scratch); they become the layer.
    async fn files_step(
        &self,
        state: &mut StageState,
        created_by: String,
        checksum: Option<String>,
        write: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), BuildError> {
        let extra = format!("{}\n{}", checksum.unwrap_or_default(), serde_json::to_string(&state.config).unwrap_or_default());
        let key = Self::cache_key(state.image.as_ref(), &created_by, &extra);
        if let Some(found) = self.cached(&key)? {
            return self.adopt(state, found, &key, true);
        }
        let image = match state.image.clone() {
            Some(image) => {
                let request = CreateRequest { image: image.id.to_string(), cmd: vec!["true".into()], entrypoint: Some(Vec::new()), ..Default::default() };
                let record = self.containers.create(request).await?;
                let written = self.containers.with_root(&record.id, |root, _| write(root).map_err(crate::container::ContainerError::Invalid)).await;
                let made = match written {
                    Ok(()) => self.commit_container(state, &record.id, created_by).await,
                    Err(e) => Err(e.into()),
                };
                let removed = self.containers.remove(&record.id, true, false).await;
                let image = made?;
                removed?;
                image
            }
            None => {
                // FROM scratch: the files are the first layer.
                let root = self.workspace.root.join(format!("scratch-{}", &key[..12]));
                let _ = std::fs::remove_dir_all(&root);
                std::fs::create_dir_all(&root).map_err(super::io("make a scratch root"))?;
                write(&root).map_err(BuildError::Invalid)?;
                let layer = Scratch(self.containers.images().scratch_file("step"));
                crate::container::changes::write_layer(&root, &layer.0)?;
                let _ = std::fs::remove_dir_all(&root);
                self.containers
                    .images()
                    .create_image(NewImage { parent: None, layer: Some(&layer.0), config: state.config.clone(), created_by, ..Default::default() })
                    .await?
            }
        };
        self.adopt(state, image, &key, false)
    }

    /// COPY and ADD from the context.
    async fn copy_step(
        &self,
        state: &mut StageState,
        files: &berth_dockerfile::Files,
        chown: Option<&str>,
        chmod: Option<&str>,
        how: CopyHow<'_>,
    ) -> Result<(), BuildError> {
        let CopyHow { name, add, parents, exclude, checksum: expected } = how;
        let context = self.workspace.context();
        // ADD's URLs are fetched first (each time, as dockerd does: the content decides
        // whether the cached step still holds).
        let mut local = files.clone();
        let mut downloads = Vec::new();
        let mut remote_sums = String::new();
        if add {
            local.sources.retain(|s| !super::copy::is_url(s));
            for (n, url) in files.sources.iter().filter(|s| super::copy::is_url(s)).enumerate() {
                let into = self.workspace.root.join(format!("download-{n}"));
                let _ = std::fs::remove_dir_all(&into);
                let file = super::copy::download(url, &into, super::context_limit()).await?;
                if let Some(expected) = expected {
                    super::copy::verify_checksum(&file, url, expected)?;
                }
                let name = file.file_name().map(PathBuf::from).unwrap_or_default();
                remote_sums.push_str(&super::context::checksum(&into, &[name])?);
                downloads.push(file);
            }
        }
        if expected.is_some() && (downloads.is_empty() || !local.sources.is_empty()) {
            return Err(BuildError::Invalid(format!("{name} --checksum is for a URL source only")));
        }
        let plan = super::copy::Plan::new(&context, &local, &state.working_dir(), chown, chmod, add, parents)?
            .with_downloads(downloads, &files.dest)?
            .excluding(exclude)?;
        let local_count = plan.sources.iter().filter(|s| !s.is_absolute()).count();
        let local_sources: Vec<PathBuf> = plan.sources[..local_count].to_vec();
        let checksum = if remote_sums.is_empty() {
            super::context::checksum(&context, &local_sources)?
        } else {
            use sha2::Digest as _;
            format!("{:x}", sha2::Sha256::digest(format!("{}\n{remote_sums}", super::context::checksum(&context, &local_sources)?)))
        };
        let hash = match (plan.sources.as_slice(), local_count) {
            // One URL: the bare hash, as dockerd writes a download's.
            ([_], 0) if files.heredocs.is_empty() => checksum.clone(),
            _ => source_hash(&context, &plan.sources, files.heredocs.len(), &checksum),
        };
        let created_by = copy_created_by(&state.shell, name, chown, &hash, &files.dest);
        self.files_step(state, created_by, Some(checksum), |root| plan.write(&context, root)).await
    }

    /// COPY --from: files out of an earlier stage or an image.
    async fn copy_from_step(&self, state: &mut StageState, copy: &berth_dockerfile::Copy) -> Result<(), BuildError> {
        let from = copy.from.clone().unwrap_or_default();
        let source = self.stage_or_image(&from, state.index).await?;
        // The source image is content-addressed: the same image, sources and destination
        // copy the same files, so a cached step is found without reading them again.
        let quick = Self::cache_key(
            state.image.as_ref(),
            &format!("COPY --from={} {:?} {} {:?} {:?}", source.id, copy.files.sources, copy.files.dest, copy.chown, copy.chmod),
            &serde_json::to_string(&state.config).unwrap_or_default(),
        );
        if let Some(found) = self.cached(&quick)? {
            return self.adopt(state, found, &quick, true);
        }
        // The source image's files, read straight from a container of it (never started)
        // whose root stays mounted while the step copies them into its own.
        let request = CreateRequest { image: source.id.to_string(), cmd: vec!["true".into()], entrypoint: Some(Vec::new()), ..Default::default() };
        let record = self.containers.create(request).await?;
        let result = self.copy_from_root(state, copy, &source, &record.id).await;
        let removed = self.containers.remove(&record.id, true, false).await;
        result?;
        removed?;
        if let Some(image) = &state.image {
            self.containers.images().catalog.remember(&quick, &image.id)?;
        }
        Ok(())
    }

    /// COPY --from's step, once `holder` (a container of the source image) is made.
    async fn copy_from_root(&self, state: &mut StageState, copy: &berth_dockerfile::Copy, source: &ImageRecord, holder: &str) -> Result<(), BuildError> {
        let root = self.containers.hold_root(holder).await?;
        let plan = super::copy::Plan::from_image(&root.path, &copy.files, &state.working_dir(), copy.chown.as_deref(), copy.chmod.as_deref())?;
        let checksum = super::context::checksum(&root.path, &plan.sources)?;
        let created_by = copy_created_by(&state.shell, "COPY", copy.chown.as_deref(), &source_hash(&root.path, &plan.sources, 0, &checksum), &copy.files.dest);
        let from = root.path.clone();
        self.files_step(state, created_by, Some(format!("{}:{checksum}", source.id)), |into| plan.write(&from, into)).await
    }
}

/// What kind of COPY or ADD a step is.
struct CopyHow<'a> {
    name: &'a str,
    add: bool,
    parents: bool,
    exclude: &'a [String],
    /// ADD --checksum of a URL's download.
    checksum: Option<&'a str>,
}

/// dockerd's name for what a COPY or ADD copies: `file:<sum>` for one file, `dir:<sum>`
/// for one folder, `multi:<sum>` for several sources.
fn source_hash(base: &Path, sources: &[PathBuf], heredocs: usize, checksum: &str) -> String {
    let kind = match sources {
        _ if sources.len() + heredocs > 1 => "multi",
        [one] if std::fs::symlink_metadata(base.join(one)).is_ok_and(|m| m.is_dir()) => "dir",
        _ => "file",
    };
    format!("{kind}:{checksum}")
}

/// The predefined platform args: what a Dockerfile reads to know the platform it builds
/// for (TARGET*) and on (BUILD*). Berth builds for its own machine, so both are that.
const PLATFORM_ARGS: [&str; 8] = ["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"];

/// A predefined platform arg's value, if `name` is one.
fn platform_arg(name: &str) -> Option<String> {
    let host = crate::image::manifest::Platform::host();
    let platform = match &host.variant {
        Some(v) => format!("{}/{}/{v}", host.os, host.architecture),
        None => format!("{}/{}", host.os, host.architecture),
    };
    match name.strip_prefix("TARGET").or_else(|| name.strip_prefix("BUILD"))? {
        "PLATFORM" => Some(platform),
        "OS" => Some(host.os),
        "ARCH" => Some(host.architecture),
        "VARIANT" => Some(host.variant.unwrap_or_default()),
        _ => None,
    }
}

/// The stages in waves: each wave's stages need only stages of earlier waves (as FROM,
/// COPY --from or RUN --mount from=), so a wave's stages can be built at once. A
/// reference that cannot be read before the build (a variable no global ARG sets)
/// counts as needing every earlier stage.
fn waves(stages: &[PlanStage], global: &BTreeMap<String, String>, names: &[Option<String>], escape: char) -> Vec<Vec<usize>> {
    let find = |name: &str, before: usize| -> Vec<usize> {
        let expanded = berth_dockerfile::expand(name, global, escape).unwrap_or_else(|_| name.to_owned());
        if expanded.contains('$') {
            return (0..before).collect();
        }
        let lower = expanded.to_ascii_lowercase();
        let index = names.iter().position(|n| n.as_deref() == Some(lower.as_str())).or_else(|| lower.parse::<usize>().ok());
        index.filter(|i| *i < before).into_iter().collect()
    };
    let mut level = vec![0usize; stages.len()];
    for (i, stage) in stages.iter().enumerate() {
        let mut needs = Vec::new();
        if let Command::From(from) = &stage.from.command {
            let base = find(&from.image, i);
            // A base stage's ONBUILD triggers run here and may name any stage.
            let triggers = base.iter().any(|b| stages[*b].instructions.iter().any(|s| matches!(s.command, Command::Onbuild(_))));
            needs.extend(base);
            if triggers {
                needs.extend(0..i);
            }
        }
        for instruction in &stage.instructions {
            match &instruction.command {
                Command::Copy(copy) => needs.extend(copy.from.iter().flat_map(|f| find(f, i))),
                Command::Run(run) => needs.extend(run.mounts.iter().filter_map(|m| m.from.as_deref()).flat_map(|f| find(f, i))),
                _ => {}
            }
        }
        level[i] = needs.iter().map(|j| level[*j] + 1).max().unwrap_or(0);
    }
    let mut waves: Vec<Vec<usize>> = vec![Vec::new(); level.iter().max().map_or(0, |m| m + 1)];
    for (i, l) in level.iter().enumerate() {
        waves[*l].push(i);
    }
    waves
}

/// The Dockerfile as the build runs it (berth-dockerfile's parse, grouped by stage).
pub(super) fn plan(text: &str) -> Result<Plan, BuildError> {
    let file = berth_dockerfile::parse(text).map_err(|e| BuildError::Parse(e.to_string()))?;
    let escape = file.escape();
    let global_args = file
        .global_args
        .iter()
        .flat_map(|i| match &i.command {
            Command::Arg(defs) => defs.clone(),
            _ => Vec::new(),
        })
        .collect();
    let stages = file.stages.into_iter().map(|s| PlanStage { name: s.name.clone(), from: s.from_instruction, instructions: s.instructions }).collect();
    Ok(Plan { escape, global_args, stages })
}

//! Project names: `-p`, else `COMPOSE_PROJECT_NAME`, else the top-level `name:`, else
//! the project directory's name; normalised as compose does (lowercase, only
//! `[a-z0-9_-]`, starting with a letter or digit). Also: loading a whole project
//! (file discovery, `.env` and `--env-file`, several `-f` files merged in order).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Normalises a candidate; None when nothing valid is left.
pub fn normalise(name: &str) -> Option<String> {
    let lowered: String = name.to_lowercase().chars().filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-').collect();
    let trimmed = lowered.trim_start_matches(['_', '-']);
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Whether `name` is already a valid project name (what `-p` must give).
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Picks the project name by compose's precedence.
pub fn choose(flag: Option<&str>, env: Option<&str>, top_level: Option<&str>, directory: &str) -> Result<String, String> {
    if let Some(flag) = flag.filter(|f| !f.is_empty()) {
        return if is_valid(flag) {
            Ok(flag.to_owned())
        } else {
            Err(format!("invalid project name {flag:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"))
        };
    }
    for candidate in [env, top_level].into_iter().flatten().filter(|c| !c.is_empty()) {
        if let Some(name) = normalise(candidate) {
            return Ok(name);
        }
    }
    normalise(directory).ok_or_else(|| format!("cannot make a project name from the directory {directory:?}: use -p"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_normalisation() {
        assert_eq!(normalise("My App.v2"), Some("myappv2".into()));
        assert_eq!(normalise("__x"), Some("x".into()));
        assert_eq!(normalise("..."), None);
        assert_eq!(choose(Some("web"), Some("env"), Some("top"), "dir").as_deref(), Ok("web"));
        assert!(choose(Some("Web"), None, None, "dir").is_err());
        assert_eq!(choose(None, Some("Env Name"), Some("top"), "dir").as_deref(), Ok("envname"));
        assert_eq!(choose(None, None, Some("top"), "dir").as_deref(), Ok("top"));
        assert_eq!(choose(None, None, None, "My-Project").as_deref(), Ok("my-project"));
    }
}

/// Where a project's files come from, and what the user set.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files, in order; empty: `COMPOSE_FILE`, else discovered in `working_dir`.
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file` (replaces the project directory's `.env`).
    pub env_files: Vec<PathBuf>,
    pub working_dir: PathBuf,
    /// The process environment (wins over `.env` files).
    pub environ: BTreeMap<String, String>,
}

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// The project directory (relative paths in the files are relative to it).
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// The merged, interpolated tree (what `config` prints).
    pub resolved: serde_norway::Value,
    pub model: crate::model::ComposeFile,
    /// The variables interpolation saw.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("no configuration file provided: not found (looked for {0} in {1})")]
    NoFile(String, String),
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Dotenv(#[from] crate::dotenv::DotenvError),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Name(String),
    #[error("{file}: {source}")]
    Graph { file: String, source: crate::graph::GraphError },
    #[error("{0}")]
    Extends(String),
}

/// A service's `extends`: the base service (in this file, or in `file` relative to
/// `dir`) with the service's own keys merged over it by the merge rules; bases may
/// extend further. Cycles are refused.
/// `here` names the file `services` came from (empty: the project's own, merged files):
/// a service is known by file and name, so one named alike in another file is not a
/// cycle, and the same file reached by two spellings is.
fn resolve_extends(
    services: &serde_norway::Value,
    name: &str,
    here: &str,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    stack: &mut Vec<String>,
) -> Result<serde_norway::Value, ProjectError> {
    use serde_norway::Value;
    let service = services.get(name).cloned().ok_or_else(|| ProjectError::Extends(format!("cannot extend service {name:?}: it does not exist")))?;
    let Some(extends) = service.get("extends").cloned() else { return Ok(service) };
    let (base_name, file) = match &extends {
        Value::String(base) => (base.clone(), None),
        Value::Mapping(m) => (
            m.get("service").and_then(Value::as_str).ok_or_else(|| ProjectError::Extends(format!("service {name}: extends needs a service")))?.to_owned(),
            m.get("file").and_then(Value::as_str).map(str::to_owned),
        ),
        _ => return Err(ProjectError::Extends(format!("service {name}: extends must be a service name or a mapping"))),
    };
    let other_path = file.as_ref().map(|file| {
        let path = dir.join(file);
        std::fs::canonicalize(&path).unwrap_or(path)
    });
    let key = service_key(other_path.as_ref().map(|p| p.display().to_string()).as_deref().unwrap_or(here), &base_name);
    if stack.contains(&key) {
        stack.push(key);
        return Err(ProjectError::Extends(format!("circular reference with extends: {}", stack.join(" -> "))));
    }
    stack.push(key);
    let base = match &other_path {
        None => resolve_extends(services, &base_name, here, dir, lookup, stack)?,
        Some(path) => {
            let other = crate::load::load_file(path, lookup)?;
            let other_services = other.get("services").cloned().unwrap_or(Value::Null);
            let other_dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf());
            resolve_extends(&other_services, &base_name, &path.display().to_string(), &other_dir, lookup, stack)?
        }
    };
    stack.pop();
    let mut merged = base;
    let mut own = service;
    if let Value::Mapping(m) = &mut own {
        m.remove("extends");
    }
    crate::merge::merge(&mut merged, own);
    Ok(merged)
}

/// A service as the extends cycle check knows it: its file (empty: the project's own)
/// and its name.
fn service_key(file: &str, service: &str) -> String {
    if file.is_empty() {
        service.to_owned()
    } else {
        format!("{file}:{service}")
    }
}

/// The file names compose looks for, in its order.
pub const DISCOVERED: [&str; 4] = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"];

/// Loads a project as `docker compose` does.
pub fn load_project(options: &LoadOptions) -> Result<Project, ProjectError> {
    let files: Vec<PathBuf> = if !options.files.is_empty() {
        options.files.iter().map(|f| options.working_dir.join(f)).collect()
    } else if let Some(list) = options.environ.get("COMPOSE_FILE").filter(|l| !l.is_empty()) {
        list.split(':').map(|f| options.working_dir.join(f)).collect()
    } else {
        let found = DISCOVERED.iter().map(|n| options.working_dir.join(n)).find(|p| p.is_file());
        vec![found.ok_or_else(|| ProjectError::NoFile(DISCOVERED.join(", "), options.working_dir.display().to_string()))?]
    };
    let project_dir = files[0].parent().map(Path::to_path_buf).unwrap_or_else(|| options.working_dir.clone());

    // Variables: the env files (or the project's .env), then the process environment.
    let outer = |name: &str| options.environ.get(name).cloned();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let env_files: Vec<PathBuf> = if options.env_files.is_empty() {
        let default = project_dir.join(".env");
        if default.is_file() {
            vec![default]
        } else {
            Vec::new()
        }
    } else {
        options.env_files.iter().map(|f| options.working_dir.join(f)).collect()
    };
    for file in &env_files {
        let text = std::fs::read_to_string(file).map_err(|source| ProjectError::Read { path: file.display().to_string(), source })?;
        env.extend(crate::dotenv::parse(&text, &file.display().to_string(), &outer)?);
    }
    env.extend(options.environ.clone());
    let lookup = |name: &str| env.get(name).cloned();

    let mut merged: Option<serde_norway::Value> = None;
    for file in &files {
        let value = crate::load::load_file(file, &lookup)?;
        match &mut merged {
            None => merged = Some(value),
            Some(base) => crate::merge::merge(base, value),
        }
    }
    let mut resolved = merged.unwrap_or(serde_norway::Value::Mapping(Default::default()));
    if let Some(services) = resolved.get("services").cloned() {
        let names: Vec<String> = services.as_mapping().map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect()).unwrap_or_default();
        let mut done = serde_norway::Mapping::new();
        let label = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
        for name in names {
            let value = resolve_extends(&services, &name, "", &project_dir, &lookup, &mut vec![service_key("", &name)]).map_err(|e| match e {
                ProjectError::Extends(message) => ProjectError::Extends(format!("{label}: {message}")),
                other => other,
            })?;
            done.insert(name.into(), value);
        }
        if let serde_norway::Value::Mapping(map) = &mut resolved {
            map.insert("services".into(), serde_norway::Value::Mapping(done));
        }
    }
    let top_name = resolved.get("name").and_then(|n| n.as_str()).map(str::to_owned);
    let dir_name = project_dir.canonicalize().ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default();
    let name = choose(options.project_name.as_deref(), options.environ.get("COMPOSE_PROJECT_NAME").map(String::as_str), top_name.as_deref(), &dir_name)
        .map_err(ProjectError::Name)?;
    if let serde_norway::Value::Mapping(map) = &mut resolved {
        map.insert("name".into(), serde_norway::Value::String(name.clone()));
    }
    let label = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
    let model = crate::model::from_value(resolved.clone(), &label)?;
    crate::graph::start_order(&model).map_err(|source| ProjectError::Graph { file: label.clone(), source })?;
    Ok(Project { name, dir: project_dir, files, resolved, model, env })
}

#[cfg(test)]
mod load_tests {
    use super::*;

    #[test]
    fn discovery_env_files_and_several_files() {
        let dir = std::env::temp_dir().join(format!("berth-compose-{}", std::process::id())).join("My App");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("docker-compose.yml"), "services:\n  web:\n    image: \"nginx:${TAG:-latest}\"\n    ports: ['80:80']\n").expect("write");
        std::fs::write(dir.join("override.yml"), "services:\n  web:\n    ports: ['443:443']\n").expect("write");
        std::fs::write(dir.join(".env"), "TAG=1.25\n").expect("write");
        let options = LoadOptions { working_dir: dir.clone(), ..Default::default() };
        let project = load_project(&options).expect("load");
        assert_eq!(project.name, "myapp");
        assert_eq!(project.model.services["web"].image.as_deref(), Some("nginx:1.25"));
        // The process environment wins over .env; -f files merge in order; -p wins.
        let mut options = LoadOptions {
            working_dir: dir.clone(),
            files: vec!["docker-compose.yml".into(), "override.yml".into()],
            project_name: Some("shop".into()),
            ..Default::default()
        };
        options.environ.insert("TAG".into(), "2".into());
        let project = load_project(&options).expect("load");
        assert_eq!(project.name, "shop");
        assert_eq!(project.model.services["web"].image.as_deref(), Some("nginx:2"));
        assert_eq!(project.model.services["web"].ports.len(), 2);
        let empty = dir.parent().expect("parent").join("empty");
        std::fs::create_dir_all(&empty).expect("dir");
        let err = load_project(&LoadOptions { working_dir: empty, ..Default::default() }).expect_err("no file");
        assert!(err.to_string().starts_with("no configuration file provided"), "{err}");
        let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
    }

    #[test]
    fn extends_merges_bases_from_this_and_other_files_and_refuses_cycles() {
        let dir = std::env::temp_dir().join(format!("berth-compose-ext-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("common")).expect("dir");
        std::fs::write(dir.join("common/base.yaml"), "services:\n  logged:\n    image: busybox\n    environment: {LOG: info, LEVEL: '1'}\n    ports: ['80']\n")
            .expect("write");
        std::fs::write(
            dir.join("compose.yaml"),
            "services:\n  web:\n    extends: {file: common/base.yaml, service: logged}\n    environment: {LOG: debug}\n    ports: ['443']\n  worker:\n    extends: web\n    command: work\n",
        )
        .expect("write");
        let project = load_project(&LoadOptions { working_dir: dir.clone(), ..Default::default() }).expect("load");
        let web = &project.model.services["web"];
        assert_eq!(web.image.as_deref(), Some("busybox"));
        assert_eq!(web.environment["LOG"].as_deref(), Some("debug"));
        assert_eq!(web.environment["LEVEL"].as_deref(), Some("1"));
        assert_eq!(web.ports.len(), 2);
        let worker = &project.model.services["worker"];
        assert_eq!(worker.command.as_deref(), Some(&["work".to_owned()][..]));
        assert_eq!(worker.environment["LOG"].as_deref(), Some("debug"));
        std::fs::write(dir.join("compose.yaml"), "services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n").expect("write");
        let err = load_project(&LoadOptions { working_dir: dir.clone(), ..Default::default() }).expect_err("cycle");
        assert!(err.to_string().ends_with("compose.yaml: circular reference with extends: a -> b -> a"), "{err}");
        // A base in another file that extends a service of its own file named like one
        // here is no cycle (it used to be refused as one)...
        std::fs::write(dir.join("common/app.yaml"), "services:\n  app:\n    extends: web\n  web:\n    image: busybox\n").expect("write");
        std::fs::write(dir.join("compose.yaml"), "services:\n  web:\n    extends: {file: common/app.yaml, service: app}\n").expect("write");
        let project = load_project(&LoadOptions { working_dir: dir.clone(), ..Default::default() }).expect("no cycle across files");
        assert_eq!(project.model.services["web"].image.as_deref(), Some("busybox"));
        // ...and a real cycle through another file is still one.
        std::fs::write(dir.join("common/loop.yaml"), "services:\n  b:\n    extends: {file: ../compose.yaml, service: a}\n").expect("write");
        std::fs::write(dir.join("compose.yaml"), "services:\n  a:\n    extends: {file: common/loop.yaml, service: b}\n").expect("write");
        let err = load_project(&LoadOptions { working_dir: dir.clone(), ..Default::default() }).expect_err("cycle through a file");
        assert!(err.to_string().contains("circular reference with extends"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

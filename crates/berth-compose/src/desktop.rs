//! The compose projects Berth Desktop lists: the ones the user added (a compose file or
//! a folder with one, kept in `$BERTH_HOME/desktop/compose-projects.json` across
//! restarts) and the ones running in the engine that were started elsewhere; Up, Down,
//! Restart and Pull of a whole project, as `berth compose` does them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_host::agent::AgentClient;
use berth_host::home::BerthHome;
use berth_host::ui::rows::{ComposeProjectRow, ServiceRow};
use berth_host::ui::UiError;
use berth_host::ErrorKind;
use serde::{Deserialize, Serialize};

use crate::apply::{self, DownOptions, UpOptions};
use crate::plan::{LABEL_PROJECT, LABEL_SERVICE};
use crate::project::{load_project, LoadOptions, Project, DISCOVERED};

/// One added project: its files, as the user chose them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Added {
    name: String,
    files: Vec<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    projects: Vec<Added>,
}

fn internal(message: impl Into<String>) -> UiError {
    UiError::new(ErrorKind::Internal, message)
}

/// The added projects of one `BERTH_HOME`.
#[derive(Debug, Clone)]
pub struct Projects {
    path: PathBuf,
}

impl Projects {
    pub fn new(home: &BerthHome) -> Projects {
        Projects { path: home.root().join("desktop/compose-projects.json") }
    }

    fn load(&self) -> Result<Saved, UiError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| internal(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved::default()),
            Err(e) => Err(internal(format!("{}: {e}", self.path.display()))),
        }
    }

    fn save(&self, saved: &Saved) -> Result<(), UiError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| internal(format!("{}: {e}", dir.display())))?;
        }
        berth_host::vm::state::save_json(&self.path, saved).map_err(|e| internal(format!("{}: {e}", self.path.display())))
    }

    /// Adds the project of a compose file, or of the compose file in a folder. A file
    /// that does not load is refused with compose's words, and nothing is added.
    pub fn add(&self, path: &str) -> Result<ComposeProjectRow, UiError> {
        let path = PathBuf::from(path.trim());
        if !path.is_absolute() {
            return Err(UiError::invalid(format!("{}: choose a compose file or folder by its full path", path.display())));
        }
        let file = if path.is_dir() {
            DISCOVERED
                .iter()
                .map(|n| path.join(n))
                .find(|p| p.is_file())
                .ok_or_else(|| UiError::invalid(format!("no {} in {}", DISCOVERED.join(", "), path.display())))?
        } else {
            path
        };
        let project = load(std::slice::from_ref(&file)).map_err(UiError::invalid)?;
        let mut saved = self.load()?;
        if saved.projects.iter().any(|p| p.name == project.name && p.files != [file.clone()]) {
            return Err(UiError::new(ErrorKind::AlreadyExists, format!("a project named {} is already listed", project.name)));
        }
        if !saved.projects.iter().any(|p| p.name == project.name) {
            saved.projects.push(Added { name: project.name.clone(), files: vec![file] });
            self.save(&saved)?;
        }
        Ok(row(&project.name, &project.files, true, Some(&project), None, &[]))
    }

    /// Takes a project off the list (its containers stay; Down removes them).
    pub fn forget(&self, name: &str) -> Result<(), UiError> {
        let mut saved = self.load()?;
        let before = saved.projects.len();
        saved.projects.retain(|p| p.name != name);
        if saved.projects.len() == before {
            return Err(UiError::new(ErrorKind::NotFound, format!("no project {name} is listed")));
        }
        self.save(&saved)
    }

    /// Every added project, then every project the engine runs that is not added, each
    /// with its services' states.
    pub async fn list(&self, agent: &AgentClient) -> Result<Vec<ComposeProjectRow>, UiError> {
        let all = agent
            .containers()
            .list(berth_proto::v1::ListContainersRequest { all: true, filters: vec![format!("label={LABEL_PROJECT}")] })
            .await
            .map_err(|s| UiError::new(ErrorKind::from_grpc_code(s.code()), format!("list containers: {}", s.message())))?
            .into_inner()
            .containers;
        let mut by_project: BTreeMap<String, Vec<berth_proto::v1::ContainerSummary>> = BTreeMap::new();
        for c in all {
            if let Some(p) = c.labels.get(LABEL_PROJECT) {
                by_project.entry(p.clone()).or_default().push(c);
            }
        }
        let mut rows = Vec::new();
        for added in self.load()?.projects {
            let containers = by_project.remove(&added.name).unwrap_or_default();
            match load(&added.files) {
                Ok(project) => rows.push(row(&added.name, &added.files, true, Some(&project), None, &containers)),
                Err(error) => rows.push(row(&added.name, &added.files, true, None, Some(error), &containers)),
            }
        }
        for (name, containers) in by_project {
            rows.push(row(&name, &[], false, None, None, &containers));
        }
        Ok(rows)
    }

    fn project(&self, name: &str) -> Result<Project, UiError> {
        let added = self
            .load()?
            .projects
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| UiError::new(ErrorKind::NotFound, format!("project {name} is not added here: add its compose file first")))?;
        load(&added.files).map_err(UiError::invalid)
    }

    /// `compose up -d` of an added project; returns the progress lines.
    pub async fn up(&self, agent: &AgentClient, name: &str) -> Result<Vec<String>, UiError> {
        let project = self.project(name)?;
        let plan = plan_all(&project, false)?;
        let mut lines = Vec::new();
        let mut progress = |line: String| lines.push(line);
        apply::up(agent, &plan, &UpOptions::default(), &mut progress).await.map_err(|e| UiError::new(ErrorKind::Conflict, e.0))?;
        Ok(lines)
    }

    /// `compose down` of an added project (its volumes stay).
    pub async fn down(&self, agent: &AgentClient, name: &str) -> Result<Vec<String>, UiError> {
        let project = self.project(name)?;
        let plan = plan_all(&project, true)?;
        let mut lines = Vec::new();
        let mut progress = |line: String| lines.push(line);
        apply::down(agent, &plan, &DownOptions { volumes: false, rmi: None, remove_orphans: true }, &mut progress)
            .await
            .map_err(|e| UiError::new(ErrorKind::Conflict, e.0))?;
        Ok(lines)
    }

    /// `compose build` of an added project: its services with `build:`, each from its
    /// context; the build's output as lines.
    pub async fn build(&self, agent: &AgentClient, name: &str) -> Result<Vec<String>, UiError> {
        let project = self.project(name)?;
        let plan = plan_all(&project, false)?;
        let mut lines = Vec::new();
        let mut progress = |line: String| lines.push(line);
        let mut built = 0;
        for service in plan.services.iter().filter(|s| s.build.is_some()) {
            apply::build(agent, service, &mut progress).await.map_err(|e| UiError::new(ErrorKind::InvalidArgument, e.0))?;
            built += 1;
        }
        if built == 0 {
            lines.push(format!("{name}: no service has a build section"));
        }
        Ok(lines)
    }

    /// `compose pull` of an added project's images.
    pub async fn pull(&self, agent: &AgentClient, name: &str) -> Result<Vec<String>, UiError> {
        let project = self.project(name)?;
        let plan = plan_all(&project, false)?;
        let mut lines = Vec::new();
        let mut progress = |line: String| lines.push(line);
        let mut images: Vec<&str> = plan.services.iter().filter(|s| s.build.is_none()).map(|s| s.create.image.as_str()).collect();
        images.sort();
        images.dedup();
        for image in images {
            apply::pull(agent, image, &mut progress).await.map_err(|e| UiError::new(ErrorKind::Unavailable, e.0))?;
        }
        Ok(lines)
    }
}

/// Loads a project from its files as `docker compose -f FILE` run in the file's folder
/// would (the folder's `.env` applies).
fn load(files: &[PathBuf]) -> Result<Project, String> {
    let working_dir = files.first().and_then(|f| f.parent()).map(Path::to_path_buf).unwrap_or_default();
    let options = LoadOptions { files: files.to_vec(), project_name: None, env_files: Vec::new(), working_dir, environ: std::env::vars().collect() };
    load_project(&options).map_err(|e| e.to_string())
}

/// Every service (all profiles when tearing down, as `down` does).
fn plan_all(project: &Project, every_profile: bool) -> Result<crate::plan::Plan, UiError> {
    let profiles: Vec<String> = if every_profile { vec!["*".to_owned()] } else { Vec::new() };
    let enabled = crate::plan::enabled_services(&project.model, &profiles, &[]).map_err(UiError::invalid)?;
    crate::plan::plan(project, &enabled, &BTreeMap::new()).map_err(|e| UiError::invalid(e.to_string()))
}

fn row(
    name: &str,
    files: &[PathBuf],
    added: bool,
    project: Option<&Project>,
    error: Option<String>,
    containers: &[berth_proto::v1::ContainerSummary],
) -> ComposeProjectRow {
    let mut services: Vec<ServiceRow> = containers
        .iter()
        .map(|c| ServiceRow {
            name: c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
            state: c.state.clone(),
            status: c.status.clone(),
            container: Some(c.name.trim_start_matches('/').to_owned()),
        })
        .collect();
    if let Some(project) = project {
        for service in project.model.services.keys() {
            if !services.iter().any(|s| &s.name == service) {
                services.push(ServiceRow { name: service.clone(), state: "not created".into(), status: String::new(), container: None });
            }
        }
    }
    services.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.container.cmp(&b.container)));
    ComposeProjectRow { name: name.to_owned(), files: files.iter().map(|f| f.display().to_string()).collect(), added, services, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(test: &str) -> (BerthHome, PathBuf) {
        let dir = std::env::temp_dir().join(format!("berth-compose-desktop-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        (BerthHome::new(dir.join("home")), dir)
    }

    #[test]
    fn a_project_added_by_folder_stays_listed_and_a_broken_file_is_refused() {
        let (home, dir) = home("add");
        let shop = dir.join("shop");
        std::fs::create_dir_all(&shop).expect("dir");
        std::fs::write(shop.join("compose.yaml"), "services:\n  web:\n    image: busybox\n").expect("write");
        let projects = Projects::new(&home);
        let added = projects.add(&shop.display().to_string()).expect("add");
        assert_eq!(added.name, "shop");
        assert_eq!(added.services.iter().map(|s| (s.name.as_str(), s.state.as_str())).collect::<Vec<_>>(), [("web", "not created")]);
        // Kept: a new Projects (the app restarted) has it.
        assert_eq!(Projects::new(&home).load().expect("load").projects.len(), 1);
        let broken = dir.join("broken.yaml");
        std::fs::write(&broken, "services:\n  web:\n    image: [unclosed\n").expect("write");
        let refused = projects.add(&broken.display().to_string()).expect_err("broken");
        assert_eq!(refused.code, "invalid_argument");
        assert!(refused.message.contains("broken.yaml"), "{}", refused.message);
        assert!(projects.add("relative/compose.yaml").is_err());
        assert_eq!(projects.load().expect("load").projects.len(), 1);
        projects.forget("shop").expect("forget");
        assert!(projects.load().expect("load").projects.is_empty());
        assert_eq!(projects.forget("shop").expect_err("twice").code, "not_found");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! `exec`: a new process in a running container, through `<runtime> exec --process`.
//! The process joins the container's namespaces, cgroup and seccomp profile; its
//! capabilities are the container's, its user resolved in the container's image.

use std::sync::Arc;

use serde_json::json;

use super::create::merge_env;
use super::{caps, rootfs, ContainerError, Containers};

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub container: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub detach: bool,
    pub privileged: bool,
}

/// A started exec: its stdio (None when detached) and the runtime process to wait on.
#[derive(Debug)]
pub struct ExecStreams {
    pub child: tokio::process::Child,
    pub exec_id: String,
    pub container_id: String,
}

impl Containers {
    pub async fn exec(self: &Arc<Self>, request: ExecRequest) -> Result<ExecStreams, ContainerError> {
        let record = self.find(&request.container)?;
        if !record.state.status.is_running() {
            return Err(ContainerError::Conflict(format!("container {} is not running", record.name)));
        }
        if record.state.status == super::Status::Paused {
            return Err(ContainerError::Conflict(format!("container {} is paused, unpause the container before exec", record.name)));
        }
        if request.cmd.is_empty() {
            return Err(ContainerError::Invalid("no exec command specified".to_owned()));
        }
        if request.tty {
            return Err(ContainerError::Invalid("exec with a terminal (-t) is not supported yet".to_owned()));
        }
        if !request.working_dir.is_empty() && !request.working_dir.starts_with('/') {
            return Err(ContainerError::Invalid(format!("the working directory '{}' is invalid, it needs to be an absolute path", request.working_dir)));
        }
        let dir = self.dir(&record.id);
        let user_spec = if request.user.is_empty() { &record.config.user } else { &request.user };
        let user = rootfs::resolve_user(&dir.join("rootfs"), user_spec)?;
        let hc = &record.host_config;
        let caps = caps::compute(hc.privileged || request.privileged, &hc.cap_add, &hc.cap_drop, &self.facts.held_caps)
            .map_err(|e| ContainerError::Invalid(e.to_string()))?;
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        let no_new_privileges = hc.security_opt.iter().any(|o| {
            matches!(super::create::parse_security_opt(o), Ok(super::create::SecurityOpt::NoNewPrivileges(true)))
        });
        let mut env = merge_env(&record.config.env, &request.env);
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.insert(1.min(env.len()), format!("HOSTNAME={}", record.config.hostname));
        }
        let cwd = if !request.working_dir.is_empty() {
            request.working_dir.clone()
        } else if !record.config.working_dir.is_empty() {
            record.config.working_dir.clone()
        } else {
            "/".to_owned()
        };
        let (effective, permitted) = if user.uid == 0 { (caps.clone(), caps.clone()) } else { (Vec::new(), Vec::new()) };
        let process = json!({
            "terminal": false,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
            "args": request.cmd,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": effective, "permitted": permitted},
            "noNewPrivileges": no_new_privileges,
        });
        let process: oci_spec::runtime::Process =
            serde_json::from_value(process).map_err(|e| ContainerError::Spec(super::spec::SpecError(e)))?;
        let exec_id = super::new_id();
        let process_file = dir.join(format!("exec-{}.json", &exec_id[..12]));
        std::fs::write(&process_file, serde_json::to_vec(&process).unwrap_or_default())
            .map_err(ContainerError::io("write the exec process file"))?;
        let mut command = self.runtime_command();
        command.arg("exec").arg("--process").arg(&process_file);
        if request.detach {
            command.arg("--detach");
        }
        command.arg(&record.id);
        command
            .stdin(if request.attach_stdin && !request.detach { std::process::Stdio::piped() } else { std::process::Stdio::null() })
            .stdout(if request.detach { std::process::Stdio::null() } else { std::process::Stdio::piped() })
            .stderr(std::process::Stdio::piped());
        command.kill_on_drop(true);
        let child = command.spawn().map_err(|e| ContainerError::Runtime(format!("cannot run {}: {e}", self.runtime.runtime.display())))?;
        self.publish(&record, "exec_start", &[("execID", exec_id.clone()), ("exec", request.cmd.join(" "))]);
        Ok(ExecStreams { child, exec_id, container_id: record.id })
    }

    /// Removes an exec's process file and announces its end.
    pub(crate) fn exec_done(&self, streams_exec_id: &str, container_id: &str, exit_code: i32) {
        let _ = std::fs::remove_file(self.dir(container_id).join(format!("exec-{}.json", &streams_exec_id[..12])));
        if let Ok(record) = self.find(container_id) {
            self.publish(&record, "exec_die", &[("execID", streams_exec_id.to_owned()), ("exitCode", exit_code.to_string())]);
        }
    }
}

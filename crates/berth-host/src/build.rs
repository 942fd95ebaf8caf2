//! Image builds from the host: the context folder packed as a tar (`.dockerignore`
//! honoured, the Dockerfile and `.dockerignore` always sent, links kept as links) and
//! streamed to the engine's Build call, its output handed on as it comes. The CLI's
//! `berth build`, compose's `build:` and the desktop app share it; in the VM the context
//! goes through the session like every other call.

use std::path::{Path, PathBuf};

use berth_dockerfile::ignore::Ignore;
use berth_proto::v1::{build_output, BuildInput, BuildSpec};
use futures::StreamExt;

use crate::agent::{AgentClient, CallError};
use crate::ErrorKind;

/// How much of the context one message carries.
const CHUNK: usize = 1 << 20;

fn invalid(message: String) -> CallError {
    CallError { operation: "build", kind: ErrorKind::InvalidArgument, message }
}

/// Where the Dockerfile of `-f` goes in the context when it lives outside it.
pub const OUTSIDE_DOCKERFILE: &str = ".berth-dockerfile";

/// The context's files as a tar: what `.dockerignore` does not exclude, plus the
/// Dockerfile (`dockerfile`, relative to `dir`) and `.dockerignore` themselves, and a
/// Dockerfile from outside the context (`-f` elsewhere) as [`OUTSIDE_DOCKERFILE`].
pub fn pack(dir: &Path, dockerfile: &str, outside: Option<&[u8]>) -> Result<Vec<u8>, CallError> {
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text).map_err(|e| invalid(format!(".dockerignore: {e}")))?,
        Err(_) => Ignore::parse("").map_err(|e| invalid(e.to_string()))?,
    };
    let always = [PathBuf::from(dockerfile.trim_start_matches("./")), PathBuf::from(".dockerignore")];
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&rel)).map_err(|e| invalid(format!("{}: {e}", dir.join(&rel).display())))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let child = rel.join(entry.file_name());
            let text = child.to_string_lossy().into_owned();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let excluded = ignore.is_excluded(&text) && !always.contains(&child);
            if excluded && !(is_dir && ignore.may_reinclude_under(&text)) {
                continue;
            }
            if !excluded {
                builder.append_path_with_name(entry.path(), &child).map_err(|e| invalid(format!("{}: {e}", entry.path().display())))?;
            }
            if is_dir {
                stack.push(child);
            }
        }
    }
    if let Some(text) = outside {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, OUTSIDE_DOCKERFILE, text).map_err(|e| invalid(e.to_string()))?;
    }
    builder.into_inner().map_err(|e| invalid(e.to_string()))
}

/// Builds the image the context in `dir` describes; each piece of output goes to
/// `output`. `spec.dockerfile` is a path on this machine (absolute, or relative to the
/// context), inside the context or not. Returns the image's id.
pub async fn build(client: &AgentClient, dir: &Path, mut spec: BuildSpec, mut output: impl FnMut(&str)) -> Result<String, CallError> {
    let named = if spec.dockerfile.is_empty() { dir.join("Dockerfile") } else { dir.join(&spec.dockerfile) };
    let dir_real = std::fs::canonicalize(dir).map_err(|e| invalid(format!("{}: {e}", dir.display())))?;
    let file_real = std::fs::canonicalize(&named).map_err(|_| invalid(format!("Cannot locate specified Dockerfile: {}", named.display())))?;
    let (dockerfile, outside) = match file_real.strip_prefix(&dir_real) {
        Ok(rel) => (rel.to_string_lossy().into_owned(), None),
        Err(_) => (OUTSIDE_DOCKERFILE.to_owned(), Some(std::fs::read(&file_real).map_err(|e| invalid(format!("{}: {e}", file_real.display())))?)),
    };
    spec.dockerfile = dockerfile.clone();
    // The user's logins go with the build, for its base images' pulls (as the docker CLI
    // sends X-Registry-Config), whichever path builds: the CLI, compose, the app.
    if spec.registry_auths.is_empty() {
        let logins = crate::credentials::all_logins().map_err(|e| invalid(e.to_string()))?;
        spec.registry_auths = logins.into_iter().map(|(key, l)| (key, berth_proto::v1::RegistryAuth { username: l.username, password: l.password })).collect();
    }
    let context = {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || pack(&dir, &dockerfile, outside.as_deref()))
            .await
            .map_err(|_| invalid("packing the context was interrupted".into()))??
    };
    let mut messages = vec![BuildInput { spec: Some(spec), context: Vec::new() }];
    messages.extend(context.chunks(CHUNK).map(|c| BuildInput { spec: None, context: c.to_vec() }));
    let mut stream = client.images().build(futures::stream::iter(messages)).await.map_err(|s| CallError::from_status("build", s))?.into_inner();
    let mut id = None;
    while let Some(message) = stream.next().await {
        match message.map_err(|s| CallError::from_status("build", s))?.event {
            Some(build_output::Event::Stream(text)) => output(&text),
            Some(build_output::Event::ImageId(image)) => id = Some(image),
            None => {}
        }
    }
    id.ok_or_else(|| CallError { operation: "build", kind: ErrorKind::Unavailable, message: "the engine ended the build without an image".into() })
}

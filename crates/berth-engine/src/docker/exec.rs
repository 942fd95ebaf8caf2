//! `docker exec`: `POST /containers/{id}/exec` records what to run,
//! `POST /exec/{id}/start` runs it (hijacked like attach, or detached),
//! `GET /exec/{id}/json` reports it (the CLI reads the exit code there), and
//! `POST /exec/{id}/resize` sizes its terminal.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::containers::json_body;
use super::{full, json_reply, ok_json, ApiError, Reply};
use crate::container::{Containers, ExecRequest};

#[derive(Debug)]
struct ExecEntry {
    request: ExecRequest,
    container_id: String,
    running: bool,
    exit_code: Option<i32>,
    /// The terminal's master side while it runs (for resize).
    pty: Option<Arc<std::fs::File>>,
    created: std::time::Instant,
    /// When it ended (its exit code is known).
    ended: Option<std::time::Instant>,
    /// `DetachKeys` as given (empty: docker's default), which end its stream with a TTY.
    detach_keys: String,
}

/// How long an ended exec stays inspectable (a client reads the exit code right after
/// the end), and how long one never started is kept. dockerd forgets them too.
const KEEP_ENDED: std::time::Duration = std::time::Duration::from_secs(5 * 60);
const KEEP_UNSTARTED: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Forgets the execs that ended more than KEEP_ENDED ago and those made but never
/// started for KEEP_UNSTARTED: the table no longer grows with every exec ever run.
fn sweep(entries: &mut HashMap<String, ExecEntry>, now: std::time::Instant) {
    entries.retain(|_, e| match e.ended {
        Some(ended) => now.saturating_duration_since(ended) < KEEP_ENDED,
        None => e.running || now.saturating_duration_since(e.created) < KEEP_UNSTARTED,
    });
}

/// Execs created through the API, by id.
#[derive(Debug, Default)]
pub struct Execs {
    entries: Mutex<HashMap<String, ExecEntry>>,
}

impl Execs {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// `POST /containers/{id}/exec`.
pub async fn create(containers: &Arc<Containers>, execs: &Execs, container: &str, request: Request<Incoming>) -> Reply {
    // The body is read first: answering before the client has sent it breaks its write.
    let body = json_body(request).await?;
    let record = containers.find(container)?;
    if !record.state.status.is_running() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("container {} is not running", record.id)));
    }
    // Refused here, as dockerd refuses it, so the CLI says why instead of failing its
    // connection upgrade at start.
    if record.state.status == crate::container::Status::Paused {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("Container {} is paused, unpause the container before exec", record.name)));
    }
    let cmd = strings(&body["Cmd"]);
    if cmd.is_empty() {
        return Err(ApiError::bad_request("no exec command specified"));
    }
    let detach_keys = body["DetachKeys"].as_str().unwrap_or_default().to_owned();
    if crate::container::detach::parse(&detach_keys).is_err() {
        return Err(ApiError::bad_request(format!("Invalid escape keys ({detach_keys}) provided")));
    }
    let id = crate::container::new_id();
    let request = ExecRequest {
        container: record.id.clone(),
        cmd,
        env: strings(&body["Env"]),
        user: body["User"].as_str().unwrap_or_default().to_owned(),
        working_dir: body["WorkingDir"].as_str().unwrap_or_default().to_owned(),
        tty: body["Tty"].as_bool().unwrap_or(false),
        attach_stdin: body["AttachStdin"].as_bool().unwrap_or(false),
        detach: false,
        privileged: body["Privileged"].as_bool().unwrap_or(false),
    };
    let now = std::time::Instant::now();
    let mut entries = execs.entries();
    sweep(&mut entries, now);
    entries
        .insert(id.clone(), ExecEntry { request, container_id: record.id, running: false, exit_code: None, pty: None, created: now, ended: None, detach_keys });
    drop(entries);
    json_reply(StatusCode::CREATED, &json!({"Id": id}))
}

/// `GET /exec/{id}/json`.
pub fn inspect(execs: &Execs, id: &str) -> Reply {
    let entries = execs.entries();
    let entry = entries.get(id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("No such exec instance: {id}")))?;
    let r = &entry.request;
    ok_json(json!({
        "ID": id,
        "Running": entry.running,
        "ExitCode": entry.exit_code,
        "ProcessConfig": {"tty": r.tty, "entrypoint": r.cmd.first(), "arguments": r.cmd.get(1..).unwrap_or_default(), "privileged": r.privileged, "user": r.user},
        "OpenStdin": r.attach_stdin,
        "OpenStderr": true,
        "OpenStdout": true,
        "CanRemove": false,
        "ContainerID": entry.container_id,
        "DetachKeys": entry.detach_keys,
        "Pid": 0,
    }))
}

/// `POST /exec/{id}/resize?h=&w=`.
pub fn resize(execs: &Execs, id: &str, params: &BTreeMap<String, String>) -> Reply {
    let entries = execs.entries();
    let entry = entries.get(id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("No such exec instance: {id}")))?;
    let number = |k: &str| params.get(k).and_then(|v| v.parse::<u16>().ok()).unwrap_or(0);
    if let Some(pty) = &entry.pty {
        let size = libc::winsize { ws_row: number("h"), ws_col: number("w"), ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; the fd is the pty's.
        unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    }
    Ok(Response::builder().status(StatusCode::OK).body(full("")).unwrap_or_else(|_| Response::new(full(""))))
}

/// `POST /exec/{id}/start`.
pub async fn start(containers: &Arc<Containers>, execs: &Arc<Execs>, id: &str, mut request: Request<Incoming>) -> Reply {
    let upgrade = request.headers().get(hyper::header::UPGRADE).is_some().then(|| hyper::upgrade::on(&mut request));
    let body = json_body(request).await?;
    let detach = body["Detach"].as_bool().unwrap_or(false);
    let keys;
    let mut exec = {
        let mut entries = execs.entries();
        let entry = entries.get_mut(id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("No such exec instance: {id}")))?;
        if entry.running || entry.exit_code.is_some() {
            return Err(ApiError::new(StatusCode::CONFLICT, format!("exec {id} has already been started")));
        }
        entry.running = true;
        keys = crate::container::detach::parse(&entry.detach_keys).unwrap_or_default();
        let mut r = entry.request.clone();
        r.detach = detach;
        r
    };
    if detach {
        exec.attach_stdin = false;
    }
    let tty = exec.tty;
    let mut streams = match containers.exec(exec).await {
        Ok(s) => s,
        Err(e) => {
            if let Some(entry) = execs.entries().get_mut(id) {
                entry.running = false;
            }
            return Err(e.into());
        }
    };
    let pty = streams.pty.take().map(std::fs::File::from).map(Arc::new);
    if let Some(entry) = execs.entries().get_mut(id) {
        entry.pty = pty.clone();
    }
    let (execs, id, containers) = (execs.clone(), id.to_owned(), containers.clone());
    let finish = move |code: i32, exec_id: String, container_id: String| {
        containers.exec_done(&exec_id, &container_id, code);
        if let Some(entry) = execs.entries().get_mut(&id) {
            entry.running = false;
            entry.exit_code = Some(code);
            entry.ended = Some(std::time::Instant::now());
            entry.pty = None;
        }
    };
    let Some(upgrade) = upgrade.filter(|_| !detach) else {
        tokio::spawn(async move {
            let code = streams.wait().await;
            finish(code, streams.exec_id, streams.container_id);
        });
        return Ok(Response::builder().status(StatusCode::OK).body(full("")).unwrap_or_else(|_| Response::new(full(""))));
    };
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            let _ = streams.child.start_kill();
            let code = streams.wait().await;
            finish(code, streams.exec_id, streams.container_id);
            return;
        };
        let client = hyper_util::rt::TokioIo::new(upgraded);
        let (mut client_in, client_out) = tokio::io::split(client);
        let client_out = Arc::new(tokio::sync::Mutex::new(client_out));
        let mut pumps = Vec::new();
        if let Some(pty) = pty {
            let (Ok(reader), Ok(writer)) = (pty.try_clone(), pty.try_clone()) else { return };
            let mut reader = tokio::fs::File::from_std(reader);
            let mut writer = tokio::fs::File::from_std(writer);
            let out = client_out.clone();
            tokio::spawn(async move {
                // The detach keys end the stream; the command runs on.
                let mut watcher = crate::container::detach::Watcher::new(keys);
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = client_in.read(&mut buf).await {
                    let (data, detached) = watcher.feed(&buf[..n]);
                    if n == 0 || writer.write_all(&data).await.is_err() {
                        break;
                    }
                    if detached {
                        let _ = out.lock().await.shutdown().await;
                        break;
                    }
                }
            });
            let out = client_out.clone();
            pumps.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = reader.read(&mut buf).await {
                    if n == 0 || out.lock().await.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }));
        } else if let Some(mut stdin) = streams.child.stdin.take() {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = client_in.read(&mut buf).await {
                    if n == 0 || stdin.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                // Dropping stdin closes it: the command sees its end.
            });
        }
        for (stream_no, pipe) in [
            (1u8, streams.child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)),
            (2u8, streams.child.stderr.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)),
        ] {
            let Some(mut pipe) = pipe else { continue };
            let out = client_out.clone();
            pumps.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = pipe.read(&mut buf).await {
                    let chunk = if tty { Bytes::copy_from_slice(&buf[..n]) } else { super::containers::docker_frame(stream_no, &buf[..n]) };
                    if n == 0 || out.lock().await.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            }));
        }
        let code = streams.wait().await;
        // A background process can hold the output open: do not wait for it long.
        for pump in pumps {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), pump).await;
        }
        // The exit code is recorded before the stream ends: the client reads it next.
        finish(code, streams.exec_id, streams.container_id);
        let mut out = client_out.lock().await;
        let _ = out.flush().await;
        let _ = out.shutdown().await;
    });
    super::containers::upgraded(tty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(created: std::time::Instant, running: bool, ended: Option<std::time::Instant>) -> ExecEntry {
        ExecEntry {
            request: ExecRequest::default(),
            container_id: String::new(),
            running,
            exit_code: ended.map(|_| 0),
            pty: None,
            created,
            ended,
            detach_keys: String::new(),
        }
    }

    #[test]
    fn ended_and_abandoned_execs_are_forgotten_running_ones_kept() {
        let start = std::time::Instant::now();
        let later = start + KEEP_UNSTARTED + std::time::Duration::from_secs(1);
        let mut entries = HashMap::new();
        entries.insert("old-ended".to_owned(), entry(start, false, Some(start)));
        entries.insert("just-ended".to_owned(), entry(start, false, Some(later - std::time::Duration::from_secs(10))));
        entries.insert("running".to_owned(), entry(start, true, None));
        entries.insert("never-started".to_owned(), entry(start, false, None));
        entries.insert("new".to_owned(), entry(later, false, None));
        sweep(&mut entries, later);
        let mut left: Vec<_> = entries.keys().cloned().collect();
        left.sort();
        assert_eq!(left, ["just-ended", "new", "running"]);
    }
}

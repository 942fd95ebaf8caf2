//! `docker exec`: `POST /containers/{id}/exec` records what to run,
//! `POST /exec/{id}/start` runs it (hijacked like attach, or detached),
//! `GET /exec/{id}/json` reports it (the CLI reads the exit code there), and
//! `POST /exec/{id}/resize` sizes its terminal.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::containers::json_body;
use super::{full, json_reply, ok_json, Reply};
use crate::container::{Containers, ExecRequest};

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// `POST /containers/{id}/exec`: the session is the core's (`Containers::exec_create`).
pub async fn create(containers: &Arc<Containers>, container: &str, request: Request<Incoming>) -> Reply {
    // The body is read first: answering before the client has sent it breaks its write.
    let body = json_body(request).await?;
    let request = ExecRequest {
        container: container.to_owned(),
        cmd: strings(&body["Cmd"]),
        env: strings(&body["Env"]),
        user: body["User"].as_str().unwrap_or_default().to_owned(),
        working_dir: body["WorkingDir"].as_str().unwrap_or_default().to_owned(),
        tty: body["Tty"].as_bool().unwrap_or(false),
        attach_stdin: body["AttachStdin"].as_bool().unwrap_or(false),
        detach: false,
        privileged: body["Privileged"].as_bool().unwrap_or(false),
    };
    let id = containers.exec_create(request, body["DetachKeys"].as_str().unwrap_or_default())?;
    json_reply(StatusCode::CREATED, &json!({"Id": id}))
}

/// `GET /exec/{id}/json`.
pub fn inspect(containers: &Containers, id: &str) -> Reply {
    let info = containers.exec_info(id)?;
    let r = &info.request;
    ok_json(json!({
        "ID": id,
        "Running": info.running,
        "ExitCode": info.exit_code,
        "ProcessConfig": {"tty": r.tty, "entrypoint": r.cmd.first(), "arguments": r.cmd.get(1..).unwrap_or_default(), "privileged": r.privileged, "user": r.user},
        "OpenStdin": r.attach_stdin,
        "OpenStderr": true,
        "OpenStdout": true,
        "CanRemove": false,
        "ContainerID": info.container_id,
        "DetachKeys": info.detach_keys,
        "Pid": 0,
    }))
}

/// `POST /exec/{id}/resize?h=&w=`.
pub fn resize(containers: &Containers, id: &str, params: &BTreeMap<String, String>) -> Reply {
    let number = |k: &str| params.get(k).and_then(|v| v.parse::<u16>().ok()).unwrap_or(0);
    containers.exec_resize(id, number("h"), number("w"))?;
    Ok(Response::builder().status(StatusCode::OK).body(full("")).unwrap_or_else(|_| Response::new(full(""))))
}

/// `POST /exec/{id}/start`: the core starts the session; this streams it (hijacked like
/// attach), or leaves it to run detached.
pub async fn start(containers: &Arc<Containers>, id: &str, mut request: Request<Incoming>) -> Reply {
    let upgrade = request.headers().get(hyper::header::UPGRADE).is_some().then(|| hyper::upgrade::on(&mut request));
    let body = json_body(request).await?;
    let detach = body["Detach"].as_bool().unwrap_or(false);
    let Some(upgrade) = upgrade.filter(|_| !detach) else {
        let mut session = containers.exec_start(id, detach).await?;
        tokio::spawn(async move {
            session.wait().await;
        });
        return Ok(Response::builder().status(StatusCode::OK).body(full("")).unwrap_or_else(|_| Response::new(full(""))));
    };
    // Refused before the 101 when it cannot start; started after it, as dockerd does:
    // output that raced the 101 ended up in the client's header buffer (docker-py's
    // `exec_start(socket=True)` then lost the first lines).
    let info = containers.exec_info(id)?;
    if info.running || info.exit_code.is_some() {
        return Err(crate::container::ContainerError::Conflict(format!("exec {id} has already been started")).into());
    }
    let tty = info.request.tty;
    let (containers, id) = (containers.clone(), id.to_owned());
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let client = hyper_util::rt::TokioIo::new(upgraded);
        let (mut client_in, mut client_out) = tokio::io::split(client);
        let mut session = match containers.exec_start(&id, false).await {
            Ok(session) => session,
            Err(e) => {
                // The stream says why, as the daemon's words on stderr.
                let message = format!("{}\n", crate::error_chain(&e));
                let chunk = if tty { Bytes::from(message) } else { super::containers::docker_frame(2, message.as_bytes()) };
                let _ = client_out.write_all(&chunk).await;
                let _ = client_out.shutdown().await;
                return;
            }
        };
        let (keys, pty) = (session.keys.clone(), session.pty.clone());
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
        } else if let Some(mut stdin) = session.streams.child.stdin.take() {
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
            (1u8, session.streams.child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)),
            (2u8, session.streams.child.stderr.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)),
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
        // The exit code is recorded (by `wait`) before the stream ends: the client reads
        // it next. A background process can hold the output open: do not wait for it long.
        session.wait().await;
        for pump in pumps {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), pump).await;
        }
        let mut out = client_out.lock().await;
        let _ = out.flush().await;
        let _ = out.shutdown().await;
    });
    super::containers::upgraded(tty)
}

//! COPY and ADD: which context files a step takes, where they go in the image, and
//! writing them there (owned by root unless `--chown`, modes kept unless `--chmod`),
//! never following a link out of the context or out of the image's root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use berth_dockerfile::Files;

use super::BuildError;
use crate::container::rootfs;

/// `name` inside the context, with no `..` out of it and no link followed.
pub fn inside_context(context: &Path, name: &str) -> Result<PathBuf, BuildError> {
    let mut path = context.to_path_buf();
    for part in Path::new(name).components() {
        match part {
            Component::Normal(p) => path.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err(BuildError::Invalid(format!("{name}: outside the build context"))),
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) && path != context.join(name.trim_start_matches('/')) {
            return Err(BuildError::Invalid(format!("{name}: goes through a link in the build context")));
        }
    }
    Ok(path)
}

/// Every path in the context (files, links and folders), relative, sorted.
fn context_paths(context: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(context.join(&rel)) else { continue };
        for entry in entries.flatten() {
            let child = rel.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(child.clone());
            }
            out.push(child.display().to_string());
        }
    }
    out.sort();
    out
}

/// A COPY or ADD, resolved against the context.
#[derive(Debug)]
pub struct Plan {
    /// The sources, relative to the context (a folder means its contents).
    pub sources: Vec<PathBuf>,
    /// The name each source takes at the destination when not its own: a source that
    /// is a link into the context is copied as what it points to, under the link's name
    /// (dockerd follows it inside the context; one that leads out stays a link).
    names: Vec<Option<std::ffi::OsString>>,
    dest: String,
    into_dir: bool,
    chown: Option<String>,
    chmod: Option<u32>,
    /// ADD: local tar archives are unpacked.
    unpack: bool,
    /// Heredoc files: (name, content).
    heredocs: Vec<(String, String)>,
    /// `--exclude`.
    exclude: Option<berth_dockerfile::Ignore>,
    /// `--parents`: for each source, the path it keeps under the destination.
    kept: Vec<Option<PathBuf>>,
}

impl Plan {
    /// `parents` is COPY's `--parents`: each source keeps its path from the context
    /// (or from a `/./` pivot in its pattern) under the destination.
    pub fn new(context: &Path, files: &Files, workdir: &str, chown: Option<&str>, chmod: Option<&str>, add: bool, parents: bool) -> Result<Plan, BuildError> {
        let mut sources = Vec::new();
        // Where each source's kept path starts (`--parents`).
        let mut pivots: Vec<PathBuf> = Vec::new();
        let all = std::cell::OnceCell::new();
        for source in &files.sources {
            if add && (is_url(source) || source.starts_with("git@")) {
                return Err(BuildError::Invalid(format!("ADD {source}: Git sources are not supported by Berth's builder yet")));
            }
            if berth_dockerfile::glob::has_wildcards(source) {
                let paths = all.get_or_init(|| context_paths(context));
                let glob =
                    berth_dockerfile::glob::Glob::new(&source.trim_start_matches("./").replace("/./", "/")).map_err(|e| BuildError::Invalid(e.to_string()))?;
                let matched: Vec<&String> = paths.iter().filter(|p| glob.matches(p)).collect();
                if matched.is_empty() {
                    return Err(BuildError::Invalid(format!("no source files were specified (nothing matches {source})")));
                }
                pivots.extend(matched.iter().map(|_| pivot_of(source)));
                sources.extend(matched.into_iter().map(PathBuf::from));
            } else {
                let path = inside_context(context, source)?;
                if std::fs::symlink_metadata(&path).is_err() {
                    return Err(BuildError::Invalid(format!(
                        "COPY failed: file not found in build context or excluded by .dockerignore: stat {}: file does not exist",
                        source.trim_start_matches('/')
                    )));
                }
                sources.push(path.strip_prefix(context).map(Path::to_path_buf).unwrap_or_default());
                pivots.push(pivot_of(source));
            }
        }
        let kept: Vec<Option<PathBuf>> = if parents {
            sources.iter().zip(&pivots).map(|(s, pivot)| Some(s.strip_prefix(pivot).map(Path::to_path_buf).unwrap_or_else(|_| s.clone()))).collect()
        } else {
            Vec::new()
        };
        let mut names = Vec::with_capacity(sources.len());
        for source in &mut sources {
            // A link into the context is copied as what it points to; one out stays a link.
            let name = source.file_name().map(ToOwned::to_owned);
            let is_link = std::fs::symlink_metadata(context.join(&*source)).is_ok_and(|m| m.file_type().is_symlink());
            match crate::files::resolve_in_root(context, &source.display().to_string()) {
                Ok(real) if is_link && real.exists() => {
                    *source = real.strip_prefix(context).map(Path::to_path_buf).unwrap_or_default();
                    names.push(name);
                }
                _ => names.push(None),
            }
        }
        let mut plan = Plan::with_sources(sources, names, files, workdir, chown, chmod, add)?;
        if parents {
            plan.kept = kept;
            plan.into_dir = true;
        }
        Ok(plan)
    }

    /// COPY --from: the sources in an image's (mounted) root, links on their way and a
    /// link named as a source resolved inside that root, as dockerd follows them; a
    /// wildcard may stand in the last part of a source.
    pub fn from_image(root: &Path, files: &Files, workdir: &str, chown: Option<&str>, chmod: Option<&str>) -> Result<Plan, BuildError> {
        let missing = |source: &str| BuildError::Invalid(format!("COPY --from: {source} does not exist in the source image"));
        let mut sources = Vec::new();
        let mut names = Vec::new();
        let mut push = |real: PathBuf, name: Option<std::ffi::OsString>| {
            sources.push(real.strip_prefix(root).map(Path::to_path_buf).unwrap_or_default());
            names.push(name);
        };
        for source in &files.sources {
            let (parent, last) = source.trim_end_matches('/').rsplit_once('/').unwrap_or(("", source.as_str()));
            if berth_dockerfile::glob::has_wildcards(last) && !berth_dockerfile::glob::has_wildcards(parent) {
                let dir = crate::files::resolve_in_root(root, if parent.is_empty() { "/" } else { parent }).map_err(|_| missing(source))?;
                let glob = berth_dockerfile::glob::Glob::new(last).map_err(|e| BuildError::Invalid(e.to_string()))?;
                let mut matched: Vec<_> = std::fs::read_dir(&dir)
                    .map_err(|_| missing(source))?
                    .flatten()
                    .map(|e| e.file_name())
                    .filter(|n| glob.matches(&n.to_string_lossy()))
                    .collect();
                if matched.is_empty() {
                    return Err(BuildError::Invalid(format!("no source files were specified (nothing matches {source})")));
                }
                matched.sort();
                for name in matched {
                    let inner = format!("{}/{}", parent, name.to_string_lossy());
                    push(crate::files::resolve_in_root(root, &inner).map_err(|_| missing(source))?, Some(name));
                }
            } else if berth_dockerfile::glob::has_wildcards(source) {
                return Err(BuildError::Invalid(format!("COPY --from {source}: a wildcard is supported in the last part of the path only")));
            } else {
                let real = crate::files::resolve_in_root(root, source).map_err(|_| missing(source))?;
                push(real, Path::new(source).file_name().map(ToOwned::to_owned));
            }
        }
        Plan::with_sources(sources, names, files, workdir, chown, chmod, false)
    }

    fn with_sources(
        sources: Vec<PathBuf>,
        names: Vec<Option<std::ffi::OsString>>,
        files: &Files,
        workdir: &str,
        chown: Option<&str>,
        chmod: Option<&str>,
        add: bool,
    ) -> Result<Plan, BuildError> {
        let raw = files.dest.clone();
        let dest = if raw.starts_with('/') { raw.clone() } else { format!("{}/{raw}", workdir.trim_end_matches('/')) };
        let several = sources.len() + files.heredocs.len() > 1;
        if several && !raw.ends_with('/') {
            return Err(BuildError::Invalid(format!(
                "When using COPY with more than one source file, the destination must be a directory and end with a /: {raw}"
            )));
        }
        let chmod = match chmod {
            Some(text) => Some(u32::from_str_radix(text, 8).map_err(|_| BuildError::Invalid(format!("invalid --chmod {text}: an octal mode is expected")))?),
            None => None,
        };
        Ok(Plan {
            sources,
            names,
            into_dir: raw.ends_with('/') || raw == "." || several,
            dest,
            chown: chown.map(str::to_owned),
            chmod,
            unpack: add,
            heredocs: files.heredocs.iter().map(|h| (h.name.clone(), h.content.clone())).collect(),
            exclude: None,
            kept: Vec::new(),
        })
    }

    /// `--exclude`: paths that match are left out (patterns as .dockerignore's, matched
    /// against each source's name, and against paths inside a folder source relative
    /// to it).
    pub fn excluding(mut self, patterns: &[String]) -> Result<Plan, BuildError> {
        if !patterns.is_empty() {
            let ignore = berth_dockerfile::Ignore::parse(&patterns.join("\n")).map_err(|e| BuildError::Invalid(format!("--exclude: {e}")))?;
            self.exclude = Some(ignore);
        }
        Ok(self)
    }

    /// Adds files an ADD downloaded (absolute paths; they keep their names and are never
    /// unpacked, as dockerd does with a URL's file).
    pub fn with_downloads(mut self, downloads: Vec<PathBuf>, raw_dest: &str) -> Result<Plan, BuildError> {
        if downloads.is_empty() {
            return Ok(self);
        }
        self.names.extend(downloads.iter().map(|_| None));
        self.sources.extend(downloads);
        if self.sources.len() + self.heredocs.len() > 1 {
            if !raw_dest.ends_with('/') {
                return Err(BuildError::Invalid(format!(
                    "When using ADD with more than one source file, the destination must be a directory and end with a /: {raw_dest}"
                )));
            }
            self.into_dir = true;
        }
        Ok(self)
    }

    /// Writes the sources (from `context`) into `root`.
    pub fn write(&self, context: &Path, root: &Path) -> Result<(), String> {
        let (uid, gid) = match &self.chown {
            Some(spec) => {
                // A user alone means the group of the same name (or number), as dockerd
                // reads it: `--chown=app` is `app:app`.
                let full = if spec.contains(':') { spec.clone() } else { format!("{spec}:{spec}") };
                let user = rootfs::resolve_user(root, &full).map_err(|e| format!("--chown {spec}: {e}"))?;
                (user.uid, user.gid)
            }
            None => (0, 0),
        };
        let copier = Copier { uid, gid, chmod: self.chmod, exclude: self.exclude.as_ref() };
        let dest_is_dir =
            self.into_dir || self.sources.iter().any(|s| context.join(s).is_dir() && !context.join(s).is_symlink()) || dir_in_root(root, &self.dest).is_some();
        if dest_is_dir {
            let target = make_dirs_owned(root, &self.dest, uid, gid)?;
            for (n, (source, rename)) in self.sources.iter().zip(&self.names).enumerate() {
                let from = context.join(source);
                // --parents: the source's own path (from its pivot) under the destination.
                if let Some(kept) = self.kept.get(n).and_then(Option::as_ref) {
                    let parent = kept.parent().map(|p| p.display().to_string()).unwrap_or_default();
                    let into = make_dirs_owned(root, &format!("{}/{parent}", self.dest.trim_end_matches('/')), uid, gid)?;
                    let name = kept.file_name().ok_or_else(|| format!("{}: no file name", source.display()))?;
                    copier.one(&from, &into.join(name), "")?;
                    continue;
                }
                let name = rename.as_deref().or(source.file_name());
                if from.is_dir() && !from.is_symlink() {
                    copier.children(&from, &target, "")?;
                } else if self.unpack && !source.is_absolute() && is_archive(&from) {
                    unpack_archive(&from, &target)?;
                } else {
                    let name = name.ok_or_else(|| format!("{}: no file name", source.display()))?;
                    if copier.excluded(&name.to_string_lossy()) {
                        continue;
                    }
                    copier.one(&from, &target.join(name), "")?;
                }
            }
            for (name, content) in &self.heredocs {
                write_file(&target.join(name), content.as_bytes(), uid, gid, self.chmod.unwrap_or(0o644))?;
            }
        } else {
            let (parent, name) = self.dest.rsplit_once('/').unwrap_or(("", &self.dest));
            let target = make_dirs_owned(root, if parent.is_empty() { "/" } else { parent }, uid, gid)?;
            if let Some((_, content)) = self.heredocs.first() {
                return write_file(&target.join(name), content.as_bytes(), uid, gid, self.chmod.unwrap_or(0o644));
            }
            let source = self.sources.first().ok_or("no source")?;
            let from = context.join(source);
            if self.unpack && !source.is_absolute() && is_archive(&from) {
                let dir = make_dirs_owned(root, &self.dest, uid, gid)?;
                return unpack_archive(&from, &dir);
            }
            copier.one(&from, &target.join(name), "")?;
        }
        Ok(())
    }
}

/// The part of a `--parents` source pattern its kept path starts after: what comes
/// before a `/./` in it, else nothing (the whole path from the context is kept).
fn pivot_of(pattern: &str) -> PathBuf {
    let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
    match pattern.split_once("/./") {
        Some((before, _)) => PathBuf::from(before),
        None => PathBuf::new(),
    }
}

/// An ADD source that names a remote file.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// ADD of a URL: fetches it into a new folder `into`, as dockerd's classic builder
/// does: named after the URL's last path part (or the Content-Disposition's filename),
/// mode 0600, its time the Last-Modified header's. At most `limit` bytes. Returns the
/// file's path.
pub async fn download(url: &str, into: &Path, limit: u64) -> Result<PathBuf, BuildError> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let failed = |what: String| BuildError::Invalid(format!("ADD {url}: {what}"));
    let response = reqwest::Client::new().get(url).send().await.map_err(|e| failed(crate::error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let reason = status.canonical_reason().unwrap_or("");
        return Err(BuildError::Invalid(format!("failed to GET {url} with status {} {reason}: {}", status.as_u16(), body.trim())));
    }
    let path = response.url().path().to_owned();
    let name = filename_for_download(&path, response.headers().get(reqwest::header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()))
        .ok_or_else(|| failed(format!("cannot determine filename for source {url}")))?;
    let modified = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(&v.replace("GMT", "+0000")).ok())
        .map(|t| std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0)));
    std::fs::create_dir_all(into).map_err(super::io("make a folder for a download"))?;
    let file_path = into.join(&name);
    let mut file = tokio::fs::File::create(&file_path).await.map_err(super::io("write a download"))?;
    let mut stream = response.bytes_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failed(crate::error_chain(&e)))?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(failed(format!("larger than the limit of {limit} bytes")));
        }
        file.write_all(&chunk).await.map_err(super::io("write a download"))?;
    }
    file.flush().await.map_err(super::io("write a download"))?;
    let file = file.into_std().await;
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(super::io("set a download's mode"))?;
    if let Some(time) = modified {
        file.set_modified(time).map_err(super::io("set a download's time"))?;
    }
    Ok(file_path)
}

/// ADD --checksum: the download's digest (`sha256:<hex>`) must be the one given.
pub fn verify_checksum(file: &Path, url: &str, expected: &str) -> Result<(), BuildError> {
    use sha2::Digest as _;
    let Some(hex) = expected.strip_prefix("sha256:") else {
        return Err(BuildError::Invalid(format!("ADD --checksum={expected}: only sha256:<hex> digests are supported")));
    };
    let mut hasher = sha2::Sha256::new();
    let mut reader = std::fs::File::open(file).map_err(super::io("read a download"))?;
    std::io::copy(&mut reader, &mut hasher).map_err(super::io("read a download"))?;
    let got = format!("{:x}", hasher.finalize());
    if !got.eq_ignore_ascii_case(hex) {
        return Err(BuildError::Invalid(format!("ADD {url}: digest mismatch: expected {expected}, got sha256:{got}")));
    }
    Ok(())
}

/// The name dockerd gives a downloaded file: the URL path's last part, else the
/// Content-Disposition's filename.
fn filename_for_download(path: &str, disposition: Option<&str>) -> Option<String> {
    let base = |p: &str| p.rsplit('/').next().filter(|n| !n.is_empty() && *n != "." && *n != "..").map(str::to_owned);
    if !path.is_empty() && !path.ends_with('/') {
        if let Some(name) = base(path) {
            return Some(name);
        }
    }
    let disposition = disposition?;
    let filename = disposition.split(';').map(str::trim).find_map(|p| p.strip_prefix("filename="))?.trim_matches('"');
    if filename.ends_with('/') {
        return None;
    }
    base(filename)
}

/// The host path of a folder `path` in the image's root, if there is one.
fn dir_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    rootfs::resolve_in_root(root, path).ok().filter(|p| p.is_dir())
}

/// Makes `path` (and its parents) in the image's root as root-owned 0755 folders where
/// missing, links resolved inside the root; returns its host path.
fn make_dirs(root: &Path, path: &str) -> Result<PathBuf, String> {
    make_dirs_owned(root, path, 0, 0)
}

/// `make_dirs` with the new folders owned by `uid:gid` (a COPY's `--chown` owns the
/// folders it makes, as dockerd's do).
fn make_dirs_owned(root: &Path, path: &str, uid: u32, gid: u32) -> Result<PathBuf, String> {
    let mut sofar = String::new();
    let mut host = root.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err(format!("{path}: .. is not allowed in a destination"));
        }
        sofar.push('/');
        sofar.push_str(part);
        match rootfs::resolve_in_root(root, &sofar) {
            Ok(real) if real.is_dir() => host = real,
            Ok(real) => return Err(format!("{sofar} is not a folder in the image ({})", real.display())),
            Err(_) => {
                let next = host.join(part);
                std::fs::create_dir(&next).map_err(|e| format!("make {sofar}: {e}"))?;
                std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o755)).map_err(|e| format!("{sofar}: {e}"))?;
                std::os::unix::fs::lchown(&next, Some(uid), Some(gid)).map_err(|e| format!("{sofar}: {e}"))?;
                host = next;
            }
        }
    }
    Ok(host)
}

/// WORKDIR: the folder, made if the image has none.
pub fn make_dir(root: &Path, path: &str) -> Result<(), String> {
    make_dirs(root, path).map(drop)
}

fn write_file(to: &Path, data: &[u8], uid: u32, gid: u32, mode: u32) -> Result<(), String> {
    let _ = std::fs::remove_file(to);
    std::fs::write(to, data).map_err(|e| format!("write {}: {e}", to.display()))?;
    std::os::unix::fs::lchown(to, Some(uid), Some(gid)).map_err(|e| format!("{}: {e}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(|e| format!("{}: {e}", to.display()))
}

/// How files are written: their owner, a `--chmod`, and `--exclude` patterns (matched,
/// as .dockerignore's, against paths relative to the source being copied).
struct Copier<'a> {
    uid: u32,
    gid: u32,
    chmod: Option<u32>,
    exclude: Option<&'a berth_dockerfile::Ignore>,
}

impl Copier<'_> {
    fn excluded(&self, rel: &str) -> bool {
        self.exclude.is_some_and(|e| !rel.is_empty() && e.is_excluded(rel))
    }

    /// One file or link (a folder: with what it holds) to `to`; `rel` is its path for
    /// `--exclude`.
    fn one(&self, from: &Path, to: &Path, rel: &str) -> Result<(), String> {
        let (uid, gid, chmod) = (self.uid, self.gid, self.chmod);
        let meta = std::fs::symlink_metadata(from).map_err(|e| format!("{}: {e}", from.display()))?;
        if let Ok(existing) = std::fs::symlink_metadata(to) {
            if existing.is_dir() && !meta.is_dir() {
                return Err(format!("cannot replace the folder {} with a file", to.display()));
            }
            if !existing.is_dir() {
                std::fs::remove_file(to).map_err(|e| format!("{}: {e}", to.display()))?;
            }
        }
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(from).map_err(|e| format!("{}: {e}", from.display()))?;
            std::os::unix::fs::symlink(&link, to).map_err(|e| format!("{}: {e}", to.display()))?;
            std::os::unix::fs::lchown(to, Some(uid), Some(gid)).map_err(|e| format!("{}: {e}", to.display()))?;
        } else if meta.is_dir() {
            if !to.exists() {
                std::fs::create_dir(to).map_err(|e| format!("{}: {e}", to.display()))?;
            }
            std::os::unix::fs::lchown(to, Some(uid), Some(gid)).map_err(|e| format!("{}: {e}", to.display()))?;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(chmod.unwrap_or(meta.mode() & 0o7777)))
                .map_err(|e| format!("{}: {e}", to.display()))?;
            self.children(from, to, rel)?;
        } else if meta.is_file() {
            std::fs::copy(from, to).map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))?;
            std::os::unix::fs::lchown(to, Some(uid), Some(gid)).map_err(|e| format!("{}: {e}", to.display()))?;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(chmod.unwrap_or(meta.mode() & 0o7777)))
                .map_err(|e| format!("{}: {e}", to.display()))?;
        }
        Ok(())
    }

    /// What the folder `from` holds, into `to`.
    fn children(&self, from: &Path, to: &Path, rel: &str) -> Result<(), String> {
        let mut entries: Vec<_> = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let child = if rel.is_empty() { name.to_string_lossy().into_owned() } else { format!("{rel}/{}", name.to_string_lossy()) };
            if self.excluded(&child) {
                continue;
            }
            self.one(&entry.path(), &to.join(&name), &child)?;
        }
        Ok(())
    }
}

/// A local tar (plain, gzip, bzip2 or xz) that ADD unpacks: judged by its first bytes.
fn is_archive(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 512];
    let Ok(mut file) = std::fs::File::open(path) else { return false };
    let n = file.read(&mut head).unwrap_or(0);
    head[..n].starts_with(&[0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

fn unpack_archive(from: &Path, into: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).unwrap_or(0);
    let file = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    // The archive's owners are kept, as dockerd keeps them.
    archive.set_preserve_ownerships(true);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(|e| format!("{}: {e}", from.display()))? {
        let mut entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        // unpack_in refuses entries that would land outside `into`.
        entry.unpack_in(into).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_and_checksums() {
        assert_eq!(filename_for_download("/files/app.tar", None).as_deref(), Some("app.tar"));
        assert_eq!(filename_for_download("/", Some("attachment; filename=\"x.bin\"")).as_deref(), Some("x.bin"));
        assert_eq!(filename_for_download("/dir/", None), None);
        assert_eq!(pivot_of("./x/./y/*.js"), PathBuf::from("x"));
        assert_eq!(pivot_of("x/y/two.js"), PathBuf::new());
        let file = std::env::temp_dir().join(format!("berth-checksum-{}", std::process::id()));
        std::fs::write(&file, b"hello\n").expect("write");
        let sum = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        assert!(verify_checksum(&file, "http://x/f", sum).is_ok());
        let wrong = verify_checksum(&file, "http://x/f", "sha256:00").expect_err("a wrong sum is refused");
        assert!(wrong.to_string().contains("digest mismatch"), "{wrong}");
        assert!(verify_checksum(&file, "http://x/f", "md5:00").is_err());
        let _ = std::fs::remove_file(&file);
    }
}

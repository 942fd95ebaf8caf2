//! `system check`: every blob hashes to its name, every image's manifest, config and
//! layers are present, every image has its snapshots. Repair deletes only what is
//! provably garbage: blobs that do not match their digest, and content no image needs.

use super::manifest::Manifest;
use super::Images;
use crate::snapshot::chain_id;

/// What a check found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub problems: Vec<String>,
    pub repaired: Vec<String>,
    pub blobs: usize,
    pub images: usize,
    pub snapshots: usize,
}

impl Images {
    pub async fn check(&self, repair: bool) -> CheckReport {
        let mut report = CheckReport::default();
        let blobs = match self.content.list() {
            Ok(list) => list,
            Err(err) => {
                report.problems.push(err.to_string());
                return report;
            }
        };
        report.blobs = blobs.len();
        for digest in &blobs {
            if let Err(err) = self.content.verify(digest).await {
                report.problems.push(err.to_string());
                if repair && self.content.delete(digest).is_ok() {
                    report.repaired.push(format!("deleted corrupt blob {digest}"));
                }
            }
        }
        let images = match self.catalog.list() {
            Ok(list) => list,
            Err(err) => {
                report.problems.push(err.to_string());
                return report;
            }
        };
        report.images = images.len();
        report.snapshots = self.snapshots.list().len();
        for image in &images {
            for (what, digest) in [("manifest", &image.manifest_digest), ("config", &image.id)] {
                if !self.content.contains(digest) {
                    report.problems.push(format!("image {}: {what} {digest} is missing", image.id));
                }
            }
            match std::fs::read(self.content.path(&image.manifest_digest)).ok().and_then(|b| serde_json::from_slice::<Manifest>(&b).ok()) {
                Some(manifest) => {
                    for layer in manifest.layers {
                        match layer.digest() {
                            Ok(d) if self.content.contains(&d) => {}
                            Ok(d) => report.problems.push(format!("image {}: layer {d} is missing", image.id)),
                            Err(e) => report.problems.push(format!("image {}: {e}", image.id)),
                        }
                    }
                }
                None => report.problems.push(format!("image {}: manifest is unreadable", image.id)),
            }
            let mut parent = None;
            for diff_id in &image.layers {
                let chain = chain_id(parent.as_ref(), diff_id);
                if !self.snapshots.contains(&chain) {
                    report.problems.push(format!("image {}: snapshot {chain} is missing", image.id));
                }
                parent = Some(chain);
            }
        }
        if repair {
            let before = (self.content.list().map(|l| l.len()).unwrap_or(0), self.snapshots.list().len());
            match self.collect_garbage() {
                Ok(()) => {
                    let after = (self.content.list().map(|l| l.len()).unwrap_or(0), self.snapshots.list().len());
                    if before != after {
                        report.repaired.push(format!("deleted {} unreferenced blobs and {} unreferenced snapshots", before.0 - after.0, before.1 - after.1));
                    }
                }
                Err(err) => report.problems.push(err.to_string()),
            }
        }
        report
    }
}

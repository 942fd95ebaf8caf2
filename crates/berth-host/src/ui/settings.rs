//! The Settings and Troubleshoot views as a library: the settings file as a form (every
//! value validated by the same code as `berth settings set`), registry logins stored
//! where docker stores them, the diagnostics archive and the VM reset.

use serde::{Deserialize, Serialize};

use super::UiError;
use crate::home::BerthHome;
use crate::settings::Settings;
use crate::ErrorKind;

/// The settings as the form shows and sends them (numbers as typed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct SettingsForm {
    pub cpus: String,
    pub memory_mib: String,
    pub disk_gib: String,
    pub shares: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub dns_upstream: Vec<String>,
}

fn settings_error(e: crate::settings::SettingsError) -> UiError {
    UiError::from_error(e.kind(), &e)
}

/// The settings, defaults filled in.
pub fn read(home: &BerthHome) -> Result<SettingsForm, UiError> {
    let settings = Settings::load(home).map_err(settings_error)?;
    let effective = settings.effective();
    let text = |key: &str| effective.get(key).map(|v| v.to_string()).unwrap_or_default();
    Ok(SettingsForm {
        cpus: text("cpus"),
        memory_mib: text("memory-mib"),
        disk_gib: text("disk-gib"),
        shares: settings.shares().iter().map(|p| p.display().to_string()).collect(),
        insecure_registries: settings.insecure_registries.clone(),
        registry_mirrors: settings.registry_mirrors.clone(),
        dns_upstream: settings.dns_upstream.clone(),
    })
}

/// Validates every value, then saves them all (or none); returns the keys that changed.
/// They take effect when the VM (and so the engine) starts next.
pub fn apply(home: &BerthHome, form: &SettingsForm) -> Result<Vec<String>, UiError> {
    let mut settings = Settings::load(home).map_err(settings_error)?;
    let before = settings.effective();
    let one = |v: &str| vec![v.trim().to_owned()];
    let entries: [(&str, Vec<String>); 7] = [
        ("cpus", one(&form.cpus)),
        ("memory-mib", one(&form.memory_mib)),
        ("disk-gib", one(&form.disk_gib)),
        ("shares", form.shares.clone()),
        ("insecure-registries", form.insecure_registries.clone()),
        ("registry-mirrors", form.registry_mirrors.clone()),
        ("dns-upstream", form.dns_upstream.clone()),
    ];
    for (key, values) in &entries {
        settings.set(key, values).map_err(settings_error)?;
    }
    let after = settings.effective();
    let changed: Vec<String> = entries.iter().map(|(k, _)| (*k).to_owned()).filter(|k| before.get(k) != after.get(k)).collect();
    if !changed.is_empty() {
        settings.save(home).map_err(settings_error)?;
    }
    Ok(changed)
}

/// Writes the diagnostics archive into `$BERTH_HOME/diagnostics/`; returns its path.
pub async fn diagnose(home: &BerthHome) -> Result<String, UiError> {
    let dir = home.root().join("diagnostics");
    std::fs::create_dir_all(&dir).map_err(|e| UiError::new(ErrorKind::Internal, format!("{}: {e}", dir.display())))?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let out = dir.join(format!("berth-diagnose-{stamp}.tar.gz"));
    crate::diagnose::write(home, &out, env!("CARGO_PKG_VERSION")).await.map_err(|e| UiError::from_error(e.kind(), &e))?;
    Ok(out.display().to_string())
}

/// Wipes the VM's data (after the window asked the user); refused while it runs.
pub fn reset_vm(home: &BerthHome) -> Result<bool, UiError> {
    match crate::session::reset_data(home) {
        Ok(crate::session::Reset::Wiped) => Ok(true),
        Ok(crate::session::Reset::NothingToWipe) => Ok(false),
        Err(e @ crate::session::SessionError::Running { .. }) => Err(UiError::new(ErrorKind::Conflict, format!("{e}; stop it first"))),
        Err(e) => Err(UiError::from_error(e.kind(), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_saves_all_or_nothing_and_names_what_changed() {
        let dir = std::env::temp_dir().join(format!("berth-ui-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = BerthHome::new(&dir);
        let mut form = read(&home).expect("read");
        assert_eq!(form.cpus, "1");
        form.cpus = "2".into();
        form.insecure_registries = vec!["registry.local:5000".into()];
        assert_eq!(apply(&home, &form).expect("apply"), ["cpus", "insecure-registries"]);
        assert_eq!(read(&home).expect("read").cpus, "2");
        // One bad value: refused in the CLI's words, and nothing saved.
        form.memory_mib = "12".into();
        form.cpus = "3".into();
        let refused = apply(&home, &form).expect_err("too little memory");
        assert_eq!(refused.code, "invalid_argument");
        assert!(refused.message.contains("memory-mib"), "{}", refused.message);
        assert_eq!(read(&home).expect("read").cpus, "2");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! `update`: new resource limits and restart policy, applied at once to a running
//! container (`<runtime> update`) and kept for its next start.

use std::sync::Arc;

use super::record::{Resources, RestartPolicy};
use super::{ContainerError, Containers};

#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    /// Fields left at 0 keep their value.
    pub resources: Resources,
    pub restart_policy: Option<RestartPolicy>,
}

impl Containers {
    pub async fn update(self: &Arc<Self>, key: &str, update: UpdateRequest) -> Result<(), ContainerError> {
        let id = self.find(key)?.id;
        let lock = self.lock_of(&id);
        let _guard = lock.lock().await;
        let Some(mut record) = self.store.get(&id)? else { return Err(ContainerError::NotFound(key.to_owned())) };
        let mut r = record.host_config.resources.clone();
        let u = &update.resources;
        if u.memory != 0 {
            r.memory = u.memory;
        }
        if u.memory_swap != 0 {
            r.memory_swap = u.memory_swap;
        }
        if u.nano_cpus != 0 {
            r.nano_cpus = u.nano_cpus;
        }
        if u.cpu_shares != 0 {
            r.cpu_shares = u.cpu_shares;
        }
        if u.pids_limit != 0 {
            r.pids_limit = u.pids_limit;
        }
        // The same checks as create.
        let probe = super::CreateRequest { resources: r.clone(), restart_policy: update.restart_policy.clone().unwrap_or_default(), ..Default::default() };
        super::create::validate(&probe, self.facts.cpus)?;
        if record.host_config.auto_remove && update.restart_policy.as_ref().is_some_and(|p| !matches!(p.name.as_str(), "" | "no")) {
            return Err(ContainerError::Conflict("restart policy cannot be updated because AutoRemove is enabled for the container".into()));
        }
        if record.state.status.is_running() {
            let mut args: Vec<String> = vec!["update".into()];
            if r.memory > 0 {
                args.push(format!("--memory={}", r.memory));
                if self.facts.swap_accounting {
                    args.push(format!("--memory-swap={}", super::spec::swap_limit(r.memory, r.memory_swap)));
                }
            }
            if r.nano_cpus > 0 {
                args.push(format!("--cpu-period={}", super::spec::CPU_PERIOD));
                args.push(format!("--cpu-quota={}", super::spec::cpu_quota(r.nano_cpus)));
            }
            if r.cpu_shares > 0 {
                args.push(format!("--cpu-share={}", r.cpu_shares.max(2)));
            }
            if r.pids_limit != 0 {
                args.push(format!("--pids-limit={}", if r.pids_limit < 0 { -1 } else { r.pids_limit }));
            }
            args.push(id.clone());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if args.len() > 2 {
                self.runtime(&record, &args).await?;
            }
        }
        record.host_config.resources = r;
        if let Some(policy) = update.restart_policy {
            record.host_config.restart_policy = RestartPolicy { name: if policy.name.is_empty() { "no".into() } else { policy.name }, ..policy };
        }
        self.store.update(&record)?;
        self.publish(&record, "update", &[]);
        self.changed(&id);
        Ok(())
    }
}

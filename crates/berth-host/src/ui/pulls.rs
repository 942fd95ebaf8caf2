//! The pulls the window has under way, so that one can be cancelled. Cancelling drops
//! the pull's stream; the engine sees its client gone and stops the pull (what is
//! downloaded stays for the next one; no image is recorded).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use futures::future::{AbortHandle, Abortable};

use super::UiError;

/// The pulls under way, by reference.
#[derive(Debug, Default)]
pub struct Pulls {
    running: Mutex<HashMap<String, AbortHandle>>,
}

impl Pulls {
    /// Runs `pull` as the pull of `reference`: its result, or `None` when
    /// [`Pulls::cancel`] stopped it. A second pull of the same reference while one runs
    /// is refused.
    pub async fn run<T>(&self, reference: &str, pull: impl Future<Output = Result<T, UiError>>) -> Result<Option<T>, UiError> {
        let (handle, registration) = AbortHandle::new_pair();
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(reference) {
                return Err(UiError::new(crate::ErrorKind::Conflict, format!("{reference} is already being pulled")));
            }
            running.insert(reference.to_owned(), handle);
        }
        let outcome = Abortable::new(pull, registration).await;
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(reference);
        match outcome {
            Ok(result) => result.map(Some),
            Err(futures::future::Aborted) => Ok(None),
        }
    }

    /// Stops the pull of `reference`; false when none runs.
    pub fn cancel(&self, reference: &str) -> bool {
        match self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(reference) {
            Some(handle) => {
                handle.abort();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_cancelled_pull_ends_with_none_and_its_work_is_dropped() {
        let pulls = Arc::new(Pulls::default());
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct Flag(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let flag = Flag(dropped.clone());
        let running = tokio::spawn({
            let pulls = pulls.clone();
            async move {
                pulls
                    .run("busybox", async move {
                        let _flag = flag;
                        let _ = started_tx.send(());
                        std::future::pending::<()>().await;
                        Ok::<_, UiError>("never".to_owned())
                    })
                    .await
            }
        });
        started_rx.await.expect("started");
        assert!(pulls.cancel("busybox"));
        assert_eq!(running.await.expect("joined"), Ok(None));
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst), "the pull's future was not dropped");
        assert!(!pulls.cancel("busybox"), "a finished pull is still listed");
    }

    #[tokio::test]
    async fn a_finished_pull_gives_its_result_and_a_second_of_the_same_name_is_refused_while_one_runs() {
        let pulls = Pulls::default();
        assert_eq!(pulls.run("a", async { Ok::<_, UiError>(1) }).await, Ok(Some(1)));
        let failed = pulls.run("a", async { Err::<u8, _>(UiError::invalid("no")) }).await;
        assert_eq!(failed, Err(UiError::invalid("no")));
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        let first = pulls.run("b", async move {
            let _ = gate_rx.await;
            Ok::<_, UiError>(2)
        });
        let second = async {
            let refused = pulls.run("b", async { Ok::<_, UiError>(3) }).await;
            let _ = gate_tx.send(());
            refused
        };
        let (first, second) = tokio::join!(first, second);
        assert_eq!(first, Ok(Some(2)));
        assert_eq!(second.map_err(|e| e.code), Err("conflict".to_owned()));
    }
}

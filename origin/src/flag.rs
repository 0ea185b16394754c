//! [`Flag`]: a one-way signal that any number of tasks can wait on — set once, never
//! cleared. A job's "stop now" and "slot released" are flags.

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Flag(Arc<watch::Sender<bool>>);

impl Default for Flag {
    fn default() -> Self {
        Self::new()
    }
}

impl Flag {
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }

    /// Sets the flag and wakes every waiter; setting it again does nothing.
    pub fn set(&self) {
        self.0.send_if_modified(|set| !std::mem::replace(set, true));
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the flag is set (at once if it already is).
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`, so waiting can only end by the flag being set.
        let _ = rx.wait_for(|set| *set).await;
    }

    /// Whether `self` and `other` are the same flag, not merely both set or unset.
    pub fn same_as(&self, other: &Flag) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiters_wake_when_set_and_later_waits_return_at_once() {
        let flag = Flag::new();
        assert!(!flag.is_set());
        let waiter = tokio::spawn({
            let flag = flag.clone();
            async move { flag.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!waiter.is_finished());
        flag.set();
        flag.set();
        waiter.await.unwrap();
        assert!(flag.is_set());
        flag.wait().await;
        assert!(flag.same_as(&flag.clone()) && !flag.same_as(&Flag::new()));
    }
}

//! One project's trigger slot: triggers that arrive while a reconcile runs
//! (or before the worker gets to them) coalesce into one pending
//! reconcile, so a burst of edits or a resync during a long rollout costs
//! one more reconcile, not one per event. Level-triggered reconciles make
//! that safe: the next one compares the whole state anyway.
//!
//! Lifecycle: the manager [`Queue::push`]es; the worker awaits
//! [`Queue::next`] and runs what it gets; [`Queue::close`] ends the worker
//! once the slot is drained. A push to a closed queue is refused, so the
//! manager knows to start a new worker.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, oneshot};

use super::Finished;
use super::trigger::Trigger;

/// What a worker takes from the slot: the strongest trigger, everyone
/// waiting for the result, and how many triggers were folded in.
#[derive(Debug)]
pub struct Pending {
    pub trigger: Trigger,
    pub waiters: Vec<oneshot::Sender<Finished>>,
    pub coalesced: usize,
}

impl Pending {
    pub fn new(trigger: Trigger) -> Self {
        Self {
            trigger,
            waiters: Vec::new(),
            coalesced: 1,
        }
    }

    fn merge(&mut self, trigger: Trigger, waiter: Option<oneshot::Sender<Finished>>) {
        self.trigger = self.trigger.max(trigger);
        self.waiters.extend(waiter);
        self.coalesced += 1;
    }
}

#[derive(Debug, Default)]
struct Slot {
    pending: Option<Pending>,
    closed: bool,
}

#[derive(Debug, Default)]
pub struct Queue {
    slot: Mutex<Slot>,
    notify: Notify,
}

impl Queue {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        // The critical sections cannot panic; a poisoned lock still holds
        // a consistent slot.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a trigger; `false` when the queue is closed (the worker is
    /// gone), in which case the waiter is handed back.
    pub fn push(
        &self,
        trigger: Trigger,
        waiter: Option<oneshot::Sender<Finished>>,
    ) -> Result<(), Option<oneshot::Sender<Finished>>> {
        let mut slot = self.slot();
        if slot.closed {
            return Err(waiter);
        }
        match &mut slot.pending {
            Some(p) => p.merge(trigger, waiter),
            None => {
                let mut p = Pending::new(trigger);
                p.waiters.extend(waiter);
                slot.pending = Some(p);
            }
        }
        drop(slot);
        // Stores a permit when the worker is busy: it finds the slot full
        // as soon as it asks again.
        self.notify.notify_one();
        Ok(())
    }

    /// The pending triggers, waiting for one; `None` once closed.
    pub async fn next(&self) -> Option<Pending> {
        loop {
            {
                let mut slot = self.slot();
                if let Some(p) = slot.pending.take() {
                    return Some(p);
                }
                if slot.closed {
                    return None;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Takes what is pending without waiting.
    #[cfg(test)]
    pub fn take(&self) -> Option<Pending> {
        self.slot().pending.take()
    }

    /// Refuses further pushes; returns what was still pending, so its
    /// waiters can be answered.
    pub fn close(&self) -> Option<Pending> {
        let mut slot = self.slot();
        slot.closed = true;
        slot.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn triggers_coalesce_into_the_strongest_with_every_waiter() {
        let q = Queue::default();
        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        q.push(Trigger::Resync, None).unwrap();
        q.push(Trigger::Manual, Some(tx1)).unwrap();
        q.push(Trigger::FsWatch, Some(tx2)).unwrap();
        let p = q.next().await.unwrap();
        assert_eq!(p.trigger, Trigger::Manual);
        assert_eq!(p.coalesced, 3);
        assert_eq!(p.waiters.len(), 2);
        // Nothing left: one reconcile covers all three.
        assert!(q.take().is_none());
        drop(p);
        assert!(rx1.await.is_err() && rx2.await.is_err());
    }

    #[tokio::test]
    async fn a_push_while_busy_wakes_the_next_wait() {
        let q = std::sync::Arc::new(Queue::default());
        q.push(Trigger::Initial, None).unwrap();
        let first = q.next().await.unwrap();
        assert_eq!(first.trigger, Trigger::Initial);
        // The worker is "running" now; two triggers arrive.
        q.push(Trigger::Resync, None).unwrap();
        q.push(Trigger::Requeue, None).unwrap();
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), q.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.trigger, Trigger::Resync);
        assert_eq!(second.coalesced, 2);
    }

    #[tokio::test]
    async fn a_waiting_worker_is_woken_by_a_push_from_another_task() {
        let q = std::sync::Arc::new(Queue::default());
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.next().await.map(|p| p.trigger) }
        });
        tokio::task::yield_now().await;
        q.push(Trigger::FsWatch, None).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), worker)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, Some(Trigger::FsWatch));
    }

    #[tokio::test]
    async fn closing_refuses_pushes_and_hands_back_the_pending() {
        let q = Queue::default();
        let (tx, _rx) = oneshot::channel();
        q.push(Trigger::Resync, Some(tx)).unwrap();
        let left = q.close().unwrap();
        assert_eq!(left.waiters.len(), 1);
        let (tx, _rx) = oneshot::channel();
        assert!(matches!(q.push(Trigger::Manual, Some(tx)), Err(Some(_))));
        assert!(q.next().await.is_none());
    }
}

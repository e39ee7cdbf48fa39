//! Why a reconcile runs. The label of `berth_reconcile_total{trigger}`,
//! of the reconcile span, and of `status.operation.trigger`.

/// Ordered by how much the trigger says: when several coalesce into one
/// reconcile, the highest names it (a manual request beats a resync that
/// happened to be queued too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    /// A deferred restart came due, or a failed reconcile is retried.
    Requeue,
    /// A container of the project changed state (exited, was stopped or
    /// removed): `reconcile::events`.
    Event,
    /// The periodic `--resync-interval`: repairs drift.
    Resync,
    /// The agent started.
    Initial,
    /// The project's files changed (or the watcher lost track).
    FsWatch,
    /// A new commit of the git source changed the project's files.
    Git,
    /// The project's folder went away.
    Deletion,
    /// `POST /api/v1/projects/{name}/reconcile` (or resume).
    Manual,
    /// A rollout failed its health gate: the previous revision is
    /// applied again.
    Rollback,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Requeue => "requeue",
            Trigger::Event => "event",
            Trigger::Resync => "resync",
            Trigger::Initial => "initial",
            Trigger::FsWatch => "fswatch",
            Trigger::Git => "git",
            Trigger::Deletion => "deletion",
            Trigger::Manual => "manual",
            Trigger::Rollback => "rollback",
        }
    }

    /// Whether what a reconcile under this trigger finds to do is drift
    /// (the machine moved) rather than a change of the spec.
    pub fn finds_drift(self) -> bool {
        matches!(self, Trigger::Requeue | Trigger::Event | Trigger::Resync)
    }
}

//! The revision records a rollout writes: created before its run,
//! updated as it passes or fails (`rollout.rs` says when).

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::Shared;
use super::digests;
use super::revisions::{ActionRecord, Revision, RevisionState, Source};
use super::rollout::summaries;
use super::run::Job;
use super::status::{RunResult, StepState};
use crate::timefmt::rfc3339;

/// Before a fresh rollout runs: its revision record, `Progressing` (a
/// retry of the same files, or a forced one after a rollback, reuses the
/// newest record when it has the same files). Returns its number.
pub async fn begin(shared: &Shared, key: &str, job: &Job) -> Option<u64> {
    let (name, revision, tracked, source_revision) = {
        let store = shared.store.read().await;
        let p = store.get(key)?;
        let good = p.last_good.as_ref()?;
        (
            p.name.clone(),
            good.revision.clone(),
            p.tracked.clone(),
            good.source_revision.clone(),
        )
    };
    // `main@sha1:<commit>` → the commit.
    let commit = source_revision
        .as_deref()
        .and_then(|r| r.rsplit_once(':'))
        .map(|(_, c)| c.to_owned());
    let revisions = shared.revisions.clone();
    let options = shared.options.rollout.clone();
    let model = job.project.clone();
    let dir = job.dir.display().to_string();
    let store_name = name.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let now = rfc3339(SystemTime::now());
        let file_digests = digests::file_digests(&model);
        let files = super::revisions::source_files(&tracked);
        revisions.with(&options, &store_name, |s| {
            let retry = s
                .latest()
                .filter(|r| r.source.digest == revision)
                .filter(|r| r.state != RevisionState::Applied)
                .map(|r| r.number);
            let number = match retry {
                Some(n) => {
                    s.update(n, |r| {
                        r.state = RevisionState::Progressing;
                        r.rolled_back_to = None;
                        r.updated_at = now.clone();
                        r.reconciliations += 1;
                        r.model = model;
                        r.file_digests = file_digests;
                    })?;
                    n
                }
                None => {
                    let n = s.next_number();
                    s.insert(Revision {
                        number: n,
                        created_at: now.clone(),
                        updated_at: now,
                        last_applied_at: None,
                        state: RevisionState::Progressing,
                        message: String::new(),
                        rolled_back_to: None,
                        reconciliations: 1,
                        duration_ms: None,
                        source: Source {
                            digest: revision,
                            dir,
                            files,
                            commit,
                            revision: source_revision,
                        },
                        file_digests,
                        config_hashes: BTreeMap::new(),
                        actions: Vec::new(),
                        model,
                    })?;
                    n
                }
            };
            Ok((number, summaries(s)))
        })
    })
    .await;
    match recorded {
        Ok(Ok((number, history))) => {
            let mut store = shared.store.write().await;
            if let Some(p) = store.get_mut(key) {
                p.reconcile.rollout.history = history;
            }
            Some(number)
        }
        Ok(Err(e)) => {
            tracing::warn!(project = %name, error = %e, "cannot record the revision; applying it without a history entry");
            None
        }
        Err(e) => {
            tracing::warn!(project = %name, error = %e, "recording the revision failed");
            None
        }
    }
}

/// Updates revision `number` on a blocking thread and refreshes the
/// status's copy of the history.
pub(super) async fn update_revision(
    shared: &Shared,
    key: &str,
    name: &str,
    number: u64,
    change: impl FnOnce(&mut Revision) + Send + 'static,
) -> Option<Revision> {
    let revisions = shared.revisions.clone();
    let options = shared.options.rollout.clone();
    let store_name = name.to_owned();
    let done = tokio::task::spawn_blocking(move || {
        revisions.with(&options, &store_name, |s| {
            let now = rfc3339(SystemTime::now());
            let updated = s
                .update(number, |r| {
                    r.updated_at = now;
                    change(r);
                })?
                .cloned();
            Ok((updated, summaries(s)))
        })
    })
    .await;
    match done {
        Ok(Ok((updated, history))) => {
            let mut store = shared.store.write().await;
            if let Some(p) = store.get_mut(key) {
                p.reconcile.rollout.history = history;
            }
            updated
        }
        Ok(Err(e)) => {
            tracing::warn!(project = %name, revision = number, error = %e, "cannot update the revision record");
            None
        }
        Err(e) => {
            tracing::warn!(project = %name, error = %e, "updating the revision failed");
            None
        }
    }
}

pub fn action_records(steps: &[StepState]) -> Vec<ActionRecord> {
    steps
        .iter()
        .map(|s| ActionRecord {
            service: s.service.clone(),
            action: s.action.to_owned(),
            target: s.target.clone(),
            reasons: s
                .reasons
                .iter()
                .map(|r| format!("{}: {}", r.kind, r.message))
                .collect(),
            outcome: s.outcome.clone(),
        })
        .collect()
}

pub(super) fn config_hashes(result: &RunResult) -> BTreeMap<String, String> {
    result
        .observation
        .iter()
        .flat_map(|o| o.services.iter())
        .map(|s| (s.name.clone(), s.config_hash.clone()))
        .collect()
}

/// The services whose containers a run created, replaced or started:
/// what the gate watches.
pub fn changed_services(steps: &[StepState]) -> Vec<String> {
    let mut out: Vec<String> = steps
        .iter()
        .filter(|s| s.outcome.as_deref() == Some("done"))
        .filter(|s| {
            matches!(
                s.action,
                "CreateContainer" | "Recreate" | "StartContainer" | "RestartContainer"
            )
        })
        .filter_map(|s| s.service.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

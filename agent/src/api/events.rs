//! `GET /api/v1/events[?since=ID|TIME][&project=NAME][&watch=false]`:
//! the agent's events (Flux-shaped, see `reconcile::events_log`). By
//! default a Server-Sent Events stream: the stored events after `since`,
//! then each new one as it happens (`id:` is the event id, so a client
//! that reconnects with `Last-Event-ID` or `?since=` misses nothing the
//! ring still holds). With `watch=false`, a JSON list.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::types::{API_VERSION, ApiError};
use crate::reconcile::events_log::{Event, Since};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    since: Option<String>,
    project: Option<String>,
    watch: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: Vec<Event>,
}

pub async fn events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let control = state
        .control
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this agent does not reconcile: no events"))?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let since = Since::parse(query.since.as_deref().or(last_event_id.as_deref()))
        .map_err(ApiError::bad_request)?;
    let log = control.events().clone();
    let project = query.project.clone();
    if query.watch == Some(false) {
        return Ok(Json(EventList {
            api_version: API_VERSION,
            kind: "EventList",
            items: log.since(&since, project.as_deref()),
        })
        .into_response());
    }
    // Subscribed before the backlog is read: nothing falls between.
    let rx = log.subscribe();
    let backlog = log.since(&since, project.as_deref());
    let sent = backlog.last().map_or(0, |e| e.id);
    let live = stream::unfold((rx, sent), move |(mut rx, sent)| {
        let project = project.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.id <= sent => continue,
                    Ok(e)
                        if project
                            .as_ref()
                            .is_some_and(|p| *p != e.involved_object.project) =>
                    {
                        continue;
                    }
                    Ok(e) => return Some((e.clone(), (rx, e.id))),
                    // A slow reader lost some: go on with what comes next
                    // (they are in the ring for `?since=`).
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "an events stream fell behind");
                        continue;
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    let all = stream::iter(backlog).chain(live).map(to_sse);
    Ok(Sse::new(all)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn to_sse(e: Event) -> Result<SseEvent, Infallible> {
    let data = serde_json::to_string(&e).unwrap_or_default();
    Ok(SseEvent::default()
        .id(e.id.to_string())
        .event(e.kind.as_str())
        .data(data))
}

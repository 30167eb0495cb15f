//! `GET /tasks/{id}/live`: the task's state and graph as server-sent
//! events, sent again whenever they change.
//!
//! The stream wakes on this process's engine events for the task (at
//! once) and every [`POLL`] besides (workers in other processes publish
//! their events there, not here), reads the task's steps (one bounded
//! read under the API's concurrency limit, so watching pages cannot take
//! the workers' connections) and sends an event only when the picture
//! changed. It ends when the task is finished or after [`LIFETIME`] (the
//! browser reconnects); at most [`MAX_STREAMS`](super::session::MAX_STREAMS)
//! are open at once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Extension;
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;

use super::super::operations::SHOW_TASK;
use super::super::{may_on, Api, ApiError};
use super::pages::{forbidden, live_parts, parse_id};
use super::session::Session;
use super::{PageError, PageResult};
use crate::store::{ItemWindow, Store};
use crate::TaskId;

/// How often a stream reads its task without an event of this process.
const POLL: Duration = Duration::from_secs(2);
/// How long one stream lasts before the browser opens another.
const LIFETIME: Duration = Duration::from_secs(300);

struct Watch<S: Store> {
    api: Arc<Api<S>>,
    id: TaskId,
    events: Receiver<Arc<crate::events::Event>>,
    last: String,
    until: Instant,
    first: bool,
    finished: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl<S: Store> Watch<S> {
    /// Waits for an event of the task, the poll interval or the end of the
    /// stream's life; false at the end.
    async fn wait(&mut self) -> bool {
        if self.first {
            self.first = false;
            return true;
        }
        let poll = tokio::time::sleep(POLL);
        tokio::pin!(poll);
        let until = self.until;
        loop {
            tokio::select! {
                () = &mut poll => return Instant::now() < until,
                () = tokio::time::sleep_until(until) => return false,
                received = self.events.recv() => match received {
                    Ok(event) if event.task_id() == Some(self.id) => {
                        // Let a burst of the task's events settle first.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        return true;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return true,
                    Err(RecvError::Closed) => {
                        (&mut poll).await;
                        return Instant::now() < until;
                    }
                },
            }
        }
    }

    /// The task's picture as the data of an event, or `None` when it has
    /// not changed (or could not be read: the next wake tries again).
    async fn picture(&mut self) -> Option<String> {
        let task = {
            let _permit = self.api.gate.permit().await.ok()?;
            self.api
                .tasker
                .task_view(self.id, ItemWindow::NONE)
                .await
                .ok()?
        };
        let (state, graph) = live_parts(&self.api, &task);
        self.finished = task.state.is_finished();
        let data = serde_json::json!({
            "state": task.state.as_str(),
            "badge": state.into_string(),
            "graph": graph.into_string(),
            "finished": self.finished,
        })
        .to_string();
        if data == self.last {
            return None;
        }
        self.last.clone_from(&data);
        Some(data)
    }
}

pub(super) async fn task_events<S: Store>(
    State(api): State<Arc<Api<S>>>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> PageResult {
    let id = TaskId(parse_id(&id, "the task id")?);
    let (namespace, name) = api.tasker.store().handler_of_task(id).await?;
    if !may_on(
        &api,
        &session.who,
        &SHOW_TASK,
        (&namespace, &name),
        Some(id),
    ) {
        return Err(forbidden(&session, "see this task"));
    }
    let Ok(permit) = Arc::clone(&api.sessions.streams).try_acquire_owned() else {
        return Err(PageError(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many live views are open; the page shows the state as loaded",
        )));
    };
    let watch = Watch {
        events: api.tasker.live_events(),
        api: Arc::clone(&api),
        id,
        last: String::new(),
        until: Instant::now() + LIFETIME,
        first: true,
        finished: false,
        _permit: permit,
    };
    let events = stream::unfold(watch, |mut watch| async move {
        loop {
            if watch.finished || !watch.wait().await {
                return None;
            }
            if let Some(data) = watch.picture().await {
                let event = Event::default().event("task").data(data);
                return Some((Ok::<_, std::convert::Infallible>(event), watch));
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

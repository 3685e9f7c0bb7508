//! The event stream of `GET P/events` (`docs/events.md`).

use super::{Client, EventStream, check, sse_stream};
use crate::error::ClientError;
use reqwest::Method;
use reqwest::header::ACCEPT;

impl Client {
    /// Subscribes to the namespace's task and queue events: `task`, `queue` and `reset`
    /// events (see [`crate::SseEvent::event_data`]) and `ping` keep-alives. `last_event_id` (the
    /// [`crate::SseEvent::event_id`] of the last event seen) resumes after it: every later event
    /// comes once, in order, while the server still keeps them; otherwise a `reset` event
    /// comes first. Without it the stream starts from now. `queues` and `kinds` filter
    /// (empty: all).
    pub async fn events(
        &self,
        last_event_id: Option<u64>,
        queues: &[&str],
        kinds: &[&str],
    ) -> Result<EventStream, ClientError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        query.extend(queues.iter().map(|q| ("queue", q.to_string())));
        query.extend(kinds.iter().map(|k| ("event", k.to_string())));
        let mut req = self
            .request(Method::GET, &["events"], &query)?
            .header(ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        Ok(sse_stream(check(req.send().await?).await?))
    }
}

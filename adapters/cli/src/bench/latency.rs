//! W3: how soon an idle worker sees a new task.

use crate::error::CliError;
use pgqueue_app::{Manager, Worker};
use pgqueue_domain::TaskMeta;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Creates `count` tasks at `rate`/s for idle workers (concurrency 8); returns each task's
/// wake-up latency in ms (handler start − create call issued).
pub(super) async fn wakeup_latency(
    m: &Manager,
    count: usize,
    rate: u32,
) -> Result<Vec<f64>, CliError> {
    let issued: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; count]));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let (iss, lat) = (issued.clone(), latencies.clone());
    let worker = Worker::new(m.clone())
        .concurrency(8)
        .name("bench@latency")?
        .handle("bench", move |payload: Value| {
            let started = Instant::now();
            let (iss, lat) = (iss.clone(), lat.clone());
            async move {
                let k = payload["k"].as_u64().unwrap_or(0) as usize;
                let at = iss
                    .lock()
                    .map(|v| v.get(k).copied().flatten())
                    .unwrap_or(None);
                if let (Some(at), Ok(mut l)) = (at, lat.lock()) {
                    l.push(started.saturating_duration_since(at).as_secs_f64() * 1000.0);
                }
                Ok::<_, String>(Value::Null)
            }
        })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(500)).await; // let the workers go idle
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    for k in 0..count {
        tick.tick().await;
        if let Ok(mut v) = issued.lock() {
            v[k] = Some(Instant::now());
        }
        m.create_task("bench", TaskMeta::new(json!({"k": k})))
            .await?
            .into_task();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.lock().map(|l| l.len()).unwrap_or(0) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    let _ = run.await;
    let out = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(out)
}

/// The p-th percentile (0..1) of `values`, in the same unit.
pub(super) fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx.min(v.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.95), 3.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}

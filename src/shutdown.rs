//! Graceful shutdown on SIGTERM or SIGINT: stop accepting connections, let the requests in
//! flight finish (up to server.shutdown_timeout_seconds), then stop the workers.
//!
//! labcat does this itself rather than leave it to actix: actix stops each worker as soon as
//! that worker is idle, and a stopped worker's runtime takes down the pooled database
//! connections it opened, including one another worker's in-flight request is using at that
//! moment. So the workers are stopped only once no request is in flight anywhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use tokio::signal::unix::{SignalKind, signal};

const DRAIN_POLL: Duration = Duration::from_millis(20);

/// How many requests are being handled right now, over all workers.
#[derive(Debug, Default)]
pub struct InFlight(AtomicUsize);

impl InFlight {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Decrements on drop, so a request whose future is cancelled is not counted for ever.
struct Entered<'a>(&'a InFlight);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Middleware: counts the request as in flight until its response is ready.
pub async fn count_in_flight(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(in_flight) = request.app_data::<web::Data<InFlight>>().cloned() else {
        return next.call(request).await;
    };
    in_flight.0.fetch_add(1, Ordering::SeqCst);
    let _entered = Entered(&in_flight);
    next.call(request).await
}

/// Resolves on the first SIGTERM or SIGINT, naming it.
pub async fn signalled() -> std::io::Result<&'static str> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}

/// Stops accepting, waits for the requests in flight (at most `timeout`, or until a second
/// signal), then stops the server.
pub async fn drain(server: &ServerHandle, in_flight: &InFlight, timeout: Duration) {
    server.pause().await;
    let deadline = Instant::now() + timeout;
    let wait = async {
        while in_flight.count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(DRAIN_POLL).await;
        }
    };
    let graceful = tokio::select! {
        () = wait => in_flight.count() == 0,
        _ = signalled() => {
            tracing::warn!("second signal; stopping without waiting");
            false
        }
    };
    if !graceful {
        tracing::warn!(
            in_flight = in_flight.count(),
            "stopping with requests still in flight"
        );
    }
    server.stop(graceful).await;
}

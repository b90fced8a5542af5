//! Logging: one structured line per request, JSON in production and readable in a
//! terminal. Request ids: an incoming `X-Request-Id` is kept, otherwise one is made; it is
//! echoed back and carried in problem bodies.

use std::io::IsTerminal;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::auth::Principal;
use crate::config::LogFormat;
use crate::startup::AppState;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Installs the global subscriber. Logs go to stderr so stdout stays for what a command
/// prints (a key secret, the start-up banner).
pub fn init(level: &str, format: LogFormat) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .or_else(|| level.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    // A second init (tests build many apps in one process) is harmless; ignore it.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .try_init()
    } else {
        builder.compact().finish().with(filter).try_init()
    };
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn incoming_request_id(request: &ServiceRequest) -> Option<String> {
    let value = request.headers().get(&REQUEST_ID_HEADER)?.to_str().ok()?;
    let sane =
        !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    sane.then(|| value.to_owned())
}

/// Middleware: request id in, request id out, and the request's log line.
pub async fn request_context(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id =
        incoming_request_id(&request).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let started = Instant::now();
    let method = request.method().clone();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let result = REQUEST_ID
        .scope(request_id.clone(), next.call(request))
        .await;
    let mut line = RequestLine {
        request_id: &request_id,
        method: &method,
        route: "(unmatched)".to_owned(),
        status: 0,
        elapsed: started.elapsed().as_secs_f64(),
        principal: None,
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            // Only the time bound gives up like this, and the request (so its route and
            // caller) went with it; the line is still written.
            line.route = "(unknown)".to_owned();
            line.status = error.as_response_error().status_code().as_u16();
            line.record(state.as_ref().map(|state| state.get_ref()));
            return Err(error);
        }
    };
    if let Some(route) = response.request().match_pattern() {
        line.route = route;
    }
    line.status = response.status().as_u16();
    line.principal = response.request().extensions().get::<Principal>().cloned();
    line.record(state.as_ref().map(|state| state.get_ref()));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// What the request's log line and metrics say.
struct RequestLine<'a> {
    request_id: &'a str,
    method: &'a Method,
    route: String,
    status: u16,
    elapsed: f64,
    principal: Option<Principal>,
}

impl RequestLine<'_> {
    /// The log line (never the secret or a body: only the key's id) and, from the same
    /// values, the request metrics.
    fn record(&self, state: Option<&AppState>) {
        if let Some(state) = state {
            state
                .metrics
                .observe_request(self.method, &self.route, self.status, self.elapsed);
        }
        let (user_id, key_id) = self
            .principal
            .as_ref()
            .map(|p| (p.user_id.as_str(), p.key_id.to_string()))
            .unwrap_or_default();
        tracing::info!(
            request_id = %self.request_id,
            method = %self.method,
            route = %self.route,
            status = self.status,
            latency_ms = self.elapsed * 1000.0,
            user_id = %user_id,
            key_id = %key_id,
            "request"
        );
    }
}

//! HTTP only: extract, call the domain and the database, shape the response.

mod api_keys;
mod body;
mod data_entries;
mod health;
pub mod idempotency;
mod metadata;
mod metrics;
mod physical_samples;
mod response;
mod v2;

use actix_web::{HttpResponse, Resource, web};

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").get(health::healthz))
        .service(resource("/readyz").get(health::readyz))
        .service(resource("/metrics").get(metrics::metrics))
        .service(
            resource("/api_keys")
                .get(api_keys::list)
                .post(api_keys::create),
        )
        .service(resource("/api_keys/{key_id}").delete(api_keys::revoke))
        .service(
            resource("/data_entries")
                .get(data_entries::search)
                .post(data_entries::create)
                .patch(data_entries::bulk_update),
        )
        .service(
            resource("/data_entries/{data_id}")
                .get(data_entries::get)
                .patch(data_entries::update)
                .delete(data_entries::delete),
        )
        .service(
            resource("/data_entries/{data_id}/metadata")
                .get(metadata::get)
                .patch(metadata::merge)
                .put(metadata::replace),
        )
        .service(resource("/data_entries/{data_id}/history").get(data_entries::history))
        .service(
            resource("/physical_samples")
                .get(physical_samples::list)
                .post(physical_samples::create),
        )
        .service(resource("/physical_samples/{physical_sample_id}").get(physical_samples::get))
        // The Seven Bridges-compatible surface: its own shapes, outside the native table.
        .service(v2::scope())
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::NoRoute)
        }));
}

/// A resource whose unsupported methods get a 405 problem rather than an empty body.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed)
    }))
}

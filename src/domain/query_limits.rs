//! How much one query may ask for. Each filter is work for PostgreSQL on every candidate row
//! (a metadata filter unpacks the whole document again), so the counts are bounded: generous
//! for what a person or a client writes, small enough that no request can starve the others.
//! Over a limit is a 400 `too_many_values` naming the parameter and the limit.

use super::FieldError;

/// `metadata.<key>=<value>` filters in one query (native: filters; `/v2`: values).
pub const MAX_METADATA_FILTERS: usize = 32;
/// Words in `keywords`, over every `keywords` parameter.
pub const MAX_KEYWORDS: usize = 32;
/// Ids in `data_ids`, `physical_sample_ids` (each); also `name` and `tag` values on `/v2`.
pub const MAX_IDS: usize = 1000;
/// Names in one `fields` parameter (repeats count once).
pub const MAX_FIELD_NAMES: usize = 64;
/// Query parameters in one request, whatever they are.
pub const MAX_PARAMETERS: usize = 2048;

pub const TOO_MANY_VALUES: &str = "too_many_values";

pub fn too_many(parameter: &str, limit: usize) -> FieldError {
    FieldError::new(
        parameter,
        TOO_MANY_VALUES,
        format!("at most {limit} values of '{parameter}' are allowed in one request"),
    )
}

/// Whether any of these errors is a limit (a 400, where other bad values may be a 422).
pub fn exceeds_a_limit(errors: &[FieldError]) -> bool {
    errors.iter().any(|error| error.code == TOO_MANY_VALUES)
}

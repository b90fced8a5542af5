//! Types and rules of the catalogue. No I/O: everything here is checked once, at the edge,
//! and the rest of the service works with values that are already valid.

pub mod access;
pub mod api_key;
pub mod data_entry;
pub mod discovery;
pub mod enums;
pub mod event;
pub mod field_error;
pub mod fields;
pub mod file_query;
pub mod history;
pub mod metadata;
pub mod metadata_query;
pub mod metadata_schema;
pub mod patch;
pub mod physical_sample;
pub mod precondition;
pub mod project;
pub mod query_limits;
pub mod search;
pub mod tags;
pub mod timestamp;
pub mod units;
pub mod webhook;

pub use access::Access;
pub use data_entry::{DataEntry, DataEntryPatch, NewDataEntry};
pub use enums::{CharSourceType, EventType, PipelineStatus, Role, SchemaMode, Scope};
pub use field_error::FieldError;
pub use fields::FieldSelection;
pub use metadata::{MetadataLimits, MetadataPatch};
pub use patch::Patch;
pub use physical_sample::{NewPhysicalSample, PhysicalSample};
pub use precondition::IfMatch;
pub use search::{SearchQuery, SortKey};

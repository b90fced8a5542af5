//! Closed sets of values. Each is checked here (a clear 422 listing the allowed values) and
//! again by PostgreSQL (an enum type or CHECK), so no writer can store anything else. The
//! PostgreSQL enum types are mapped in `db::row`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = ();

            fn from_str(text: &str) -> Result<Self, ()> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// What instrument or technique produced the raw data.
    pub enum CharSourceType {
        RheedVideo => "rheed_video",
        Xps => "xps",
        Sem => "sem",
        Metrology => "metrology",
        Optical => "optical",
        Raman => "raman",
        Photoluminescence => "photoluminescence",
        Ellipsometry => "ellipsometry",
        Sims => "sims",
        Oes => "oes",
        Xrd => "xrd",
        Afm => "afm",
    }
}

text_enum! {
    /// How a project's metadata schema applies to writes: `enforce` refuses a write whose
    /// resulting metadata does not validate; `report` stores it and flags the entry.
    pub enum SchemaMode {
        Enforce => "enforce",
        Report => "report",
    }
}

text_enum! {
    /// Where the entry's processing pipeline is.
    #[derive(Default)]
    pub enum PipelineStatus {
        Success => "success",
        #[default]
        Pending => "pending",
        Error => "error",
        Running => "running",
    }
}

text_enum! {
    /// What an API key may do: `read` for GET, `write` for changes (and reading what it may
    /// change: see `Scope::grants`), `admin` for other users' keys.
    pub enum Scope {
        Read => "read",
        Write => "write",
        Admin => "admin",
    }
}

impl CharSourceType {
    /// The Atomscale SDK sends legacy or short names for some types (`metrology` as
    /// `tool_state`, the RHEED variants as `rheed`, `pl`); search accepts them.
    pub fn from_search_alias(text: &str) -> Option<Self> {
        match text {
            "tool_state" => Some(Self::Metrology),
            "pl" => Some(Self::Photoluminescence),
            "rheed" | "rheed_stationary" | "rheed_rotating" => Some(Self::RheedVideo),
            other => other.parse().ok(),
        }
    }
}

impl Scope {
    /// Whether a key holding `self` may do what needs `needed`. `write` implies `read`: a
    /// write answers with what it wrote (a `{}` PATCH returns the whole entry), so refusing
    /// such a key a GET would hide nothing. Scopes are stored and listed as given.
    pub fn grants(self, needed: Scope) -> bool {
        self == needed || (self == Scope::Write && needed == Scope::Read)
    }

    /// Parses `read,write` (commas and/or spaces); duplicates collapse.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for name in text.split([',', ' ']).filter(|s| !s.is_empty()) {
            let scope: Scope = name.parse().map_err(|()| {
                format!(
                    "unknown scope '{name}'; allowed: {}",
                    Scope::NAMES.join(", ")
                )
            })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err("at least one scope is required".into());
        }
        Ok(scopes)
    }
}

text_enum! {
    /// What an event in the change feed (and a webhook delivery) tells.
    pub enum EventType {
        EntryCreated => "entry.created",
        EntryUpdated => "entry.updated",
        EntryDeleted => "entry.deleted",
        /// Sent to the project the entry went to and to the one it left.
        EntryMoved => "entry.moved",
        SampleCreated => "sample.created",
        /// A member added, removed, or given another role.
        MemberChanged => "project.member_changed",
    }
}

text_enum! {
    /// A member's role in a project. Weakest first: a role includes every role before it,
    /// in Rust (`Ord`) as in PostgreSQL's `project_role` enum.
    pub enum Role {
        /// Reads the project's entries, samples and metadata.
        Viewer => "viewer",
        /// Also creates, changes and deletes them.
        Editor => "editor",
        /// Also manages members, renames or deletes the project.
        Admin => "admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for value in CharSourceType::ALL {
            let json = serde_json::to_value(value).unwrap();
            assert_eq!(json, value.as_str());
            assert_eq!(value.as_str().parse::<CharSourceType>(), Ok(*value));
        }
        assert_eq!(PipelineStatus::default(), PipelineStatus::Pending);
    }

    #[test]
    fn search_aliases_map_to_current_names() {
        assert_eq!(
            CharSourceType::from_search_alias("tool_state"),
            Some(CharSourceType::Metrology)
        );
        assert_eq!(
            CharSourceType::from_search_alias("rheed"),
            Some(CharSourceType::RheedVideo)
        );
        assert_eq!(CharSourceType::from_search_alias("nope"), None);
    }

    #[test]
    fn write_grants_read_and_nothing_else_is_implied() {
        assert!(Scope::Write.grants(Scope::Read));
        assert!(Scope::Write.grants(Scope::Write));
        assert!(!Scope::Read.grants(Scope::Write));
        assert!(!Scope::Write.grants(Scope::Admin));
        assert!(!Scope::Admin.grants(Scope::Read));
        assert!(!Scope::Admin.grants(Scope::Write));
    }

    #[test]
    fn scope_lists_reject_unknown_names() {
        assert_eq!(
            Scope::parse_list("read,write"),
            Ok(vec![Scope::Read, Scope::Write])
        );
        assert!(Scope::parse_list("read,root").is_err());
        assert!(Scope::parse_list("").is_err());
    }
}

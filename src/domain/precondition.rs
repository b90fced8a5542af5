//! `If-Match` on writes: the revisions a client expects the entry to be at.

/// A parsed `If-Match` header. ETags are `"<revision>"`; comparison is strong, so weak tags
/// (`W/"3"`) and tags labcat never issued match nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    Revisions(Vec<i64>),
}

impl IfMatch {
    pub fn parse(header: &str) -> Self {
        if header.trim() == "*" {
            return IfMatch::Any;
        }
        let revisions = header
            .split(',')
            .map(str::trim)
            .filter_map(|tag| tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok())
            .collect();
        IfMatch::Revisions(revisions)
    }

    pub fn matches(&self, revision: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Revisions(revisions) => revisions.contains(&revision),
        }
    }

    /// The revisions a conditional write may apply to; `None` means any.
    pub fn revisions(&self) -> Option<&[i64]> {
        match self {
            IfMatch::Any => None,
            IfMatch::Revisions(revisions) => Some(revisions),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_tags_match_their_revision_only() {
        assert!(IfMatch::parse("\"3\"").matches(3));
        assert!(!IfMatch::parse("\"3\"").matches(4));
        assert!(IfMatch::parse("\"1\", \"4\"").matches(4));
        assert!(!IfMatch::parse("W/\"3\"").matches(3));
        assert!(!IfMatch::parse("garbage").matches(1));
        assert!(IfMatch::parse("*").matches(17));
    }
}

//! Who may reach what. A request reaches an entry, a sample or a project through the
//! caller's role in its project, narrowed to the projects its key is limited to (if any);
//! the key's scopes come on top (`Scope`). `db::access` turns this into the predicate every
//! statement carries, so the rule is applied inside the statement, not before it.

use uuid::Uuid;

pub use super::enums::Role;

/// What one request may reach: the projects `user_id` is a member of, limited to
/// `projects` when the key is.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub user_id: &'a str,
    pub projects: Option<&'a [Uuid]>,
}

impl Access<'_> {
    /// Where something created without a project goes: the key's one project when it is
    /// limited to exactly one, else `None` (the caller's personal project).
    pub fn default_project(&self, asked: Option<Uuid>) -> Option<Uuid> {
        asked.or(match self.projects {
            Some([only]) => Some(*only),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_includes_the_roles_before_it() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        assert_eq!(Role::ALL.iter().max(), Some(&Role::Admin));
    }
}

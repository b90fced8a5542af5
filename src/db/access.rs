//! The one place a permission becomes SQL. Every statement that touches entries, samples or
//! projects carries this predicate, so access is decided by the statement itself, in the
//! same round trip, and a change of membership counts from the next statement on.

use sqlx::{Postgres, QueryBuilder};

use crate::domain::{Access, Role};

/// The predicate "`$column` is a project the caller holds `$role` or more in, and one its
/// key may reach", for a statement written out in full: `$user`, `$role` and `$projects`
/// are its placeholders for `Access::user_id`, the `Role` and `Access::projects`.
macro_rules! reachable {
    ($column:literal, $user:literal, $role:literal, $projects:literal) => {
        concat!(
            $column,
            " IN (SELECT member.project_id FROM project_members AS member WHERE member.user_id = ",
            $user,
            " AND member.role >= ",
            $role,
            " AND (",
            $projects,
            "::uuid[] IS NULL OR member.project_id = ANY(",
            $projects,
            ")))"
        )
    };
}
pub(crate) use reachable;

/// Joins `member`, the caller's membership of `$column`'s project (any role), for a
/// statement that answers with the caller's role: a write that found nothing to change
/// tells "may not" (403) from "cannot see" (404) by it. Rows of projects the caller is no
/// member of, or whose key does not reach them, are dropped.
macro_rules! role_join {
    ($column:literal, $user:literal, $projects:literal) => {
        concat!(
            "JOIN project_members AS member ON member.project_id = ",
            $column,
            " AND member.user_id = ",
            $user,
            " AND (",
            $projects,
            "::uuid[] IS NULL OR member.project_id = ANY(",
            $projects,
            "))"
        )
    };
}
pub(crate) use role_join;

/// The same predicate, pushed onto a statement being built.
pub fn push(sql: &mut QueryBuilder<Postgres>, column: &str, access: Access<'_>, role: Role) {
    sql.push(column)
        .push(
            " IN (SELECT member.project_id FROM project_members AS member \
             WHERE member.user_id = ",
        )
        .push_bind(access.user_id.to_owned())
        .push(" AND member.role >= ")
        .push_bind(role);
    if let Some(projects) = access.projects {
        sql.push(" AND member.project_id = ANY(")
            .push_bind(projects.to_vec())
            .push(")");
    }
    sql.push(")");
}

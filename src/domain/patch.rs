/// A field of a PATCH body: absent (leave it), `null` (clear it) or a value (set it).
/// Plain `Option` cannot tell "absent" from "null", and for nullable columns that is the
/// difference between "keep" and "clear".
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// `(touch, value)`: whether the column is written at all, and with what.
    pub fn into_column(self) -> (bool, Option<T>) {
        match self {
            Patch::Absent => (false, None),
            Patch::Null => (true, None),
            Patch::Set(value) => (true, Some(value)),
        }
    }
}

//! Task complexity: how demanding a request is, which selects the matrix column.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Complexity {
    Simple = 0,
    Medium = 1,
    Complex = 2,
}

impl Complexity {
    pub const ALL: [Complexity; 3] = [Complexity::Simple, Complexity::Medium, Complexity::Complex];

    pub fn name(self) -> &'static str {
        match self {
            Complexity::Simple => "simple",
            Complexity::Medium => "medium",
            Complexity::Complex => "complex",
        }
    }

    pub fn from_name(name: &str) -> Option<Complexity> {
        Complexity::ALL.into_iter().find(|c| c.name() == name)
    }
}

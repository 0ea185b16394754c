//! Checks an API-format graph against `/object_info`. (Interface stub.)

use super::template::Graph;

#[derive(Debug, Clone)]
pub struct Problem {
    pub node: String,
    pub class_type: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node {} ({}): {}",
            self.node, self.class_type, self.message
        )
    }
}

pub fn check(_graph: &Graph, _object_info: &serde_json::Value) -> Result<(), Vec<Problem>> {
    Ok(())
}
